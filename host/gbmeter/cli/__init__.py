"""`gbmeter` command line: short verbs in the spirit of mpremote.

Each verb lives in a module of this package, `gbmeter/cli/<verb>.py` (reset_debt.py
is `reset-debt`), that defines `register(subparsers)` (adds its parser and sets
`func`) and the function it set. Modules whose names start with `_` are shared
helpers, not verbs. Nothing outside gbmeter.cli imports from here: the verbs sit on
top of the DCC (gbmeter.dcc), the Supplier (gbmeter.supplier), the wire
(gbmeter.gbcs) and the boards (gbmeter.board).
Verbs return an exit code; errors are raised as `gbmeter.errors.UserError` and
printed in plain words, never as a traceback.
"""

import argparse
import importlib
import os
import pkgutil
import sys

import gbmeter
from gbmeter.errors import UserError


def verbs():
    """Verb name -> module, from this package's modules (reset_debt -> reset-debt)."""
    return {m.name.replace("_", "-"): f"{__name__}.{m.name}"
            for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")}


def build_parser(only=None):
    """The parser; with `only`, just that verb's module is imported, so one verb starts
    fast and does not depend on the others."""
    p = argparse.ArgumentParser(
        prog="gbmeter",
        description="Drive gbmeter GSME/ESME test meters: virtual boards, GBCS "
                    "Commands, Service Requests and the DCC's checks.")
    p.add_argument("--version", action="version", version=f"gbmeter {gbmeter.__version__}")
    sub = p.add_subparsers(dest="verb", metavar="VERB")
    table = verbs()
    for name in sorted(table):
        if only is None or name == only:
            importlib.import_module(table[name]).register(sub)
    return p


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    first = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(first if first in verbs() else None)
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
    except BrokenPipeError:
        # the reader (`| head`) stopped early: nothing of ours went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
