"""`gbmeter` command line: short verbs in the spirit of mpremote.

Each verb lives in a module `gbmeter.cmd_<verb>.py` that defines
`register(subparsers)` (adds its parser and sets `func`) and the function it set.
Verbs return an exit code; errors are raised as `gbmeter.errors.UserError` and
printed in plain words, never as a traceback.
"""

import argparse
import importlib
import pkgutil
import sys

import gbmeter
from gbmeter.errors import UserError


def build_parser():
    p = argparse.ArgumentParser(
        prog="gbmeter",
        description="Drive gbmeter GSME/ESME test meters: virtual boards, GBCS "
                    "Commands, Service Requests and the DCC's checks.")
    p.add_argument("--version", action="version", version=f"gbmeter {gbmeter.__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    for mod in sorted(m.name for m in pkgutil.iter_modules(gbmeter.__path__)):
        if mod.startswith("cmd_"):
            importlib.import_module(f"gbmeter.{mod}").register(sub)
    return p


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except UserError as e:
        print(f"gbmeter {args.verb}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
