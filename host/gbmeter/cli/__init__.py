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

import os
import signal
import sys

from gbmeter.errors import UserError

# Only what main() needs before its Ctrl-C guard is imported here (a Ctrl-C while the
# interpreter starts must not end in a traceback): the parser and the verbs are in
# gbmeter.cli._parser, imported inside the guard.


def _who(verb):
    return f"gbmeter {verb}" if verb else "gbmeter"


def _exit_interrupted(signum, frame):
    # Ctrl-C while the modules load or the options are read: nothing has been done yet,
    # so stop at once (an interrupt raised inside an import can surface as another
    # exception, e.g. RuntimeError from __set_name__, which no except clause expects)
    os.write(2, b"gbmeter: interrupted\n")
    os._exit(130)


def _interrupt(e):
    """Whether an exception is, or was caused by, a Ctrl-C."""
    seen = set()
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return e
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return None


def main(argv=None):
    verb = None
    restore = None
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        try:
            signal.signal(signal.SIGINT, _exit_interrupted)
            restore = signal.default_int_handler
        except ValueError:       # not the main thread: leave signals alone
            pass
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        first = next((a for a in argv if not a.startswith("-")), None)
        from gbmeter.cli._parser import build_parser, usage, verbs
        verb = first if first in verbs() else None
        parser = build_parser(verb)
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            return usage(parser)
        if restore is not None:
            # from here a Ctrl-C raises KeyboardInterrupt, so the verb can clean up
            # (stop a sim, close the port) and say what was in flight
            signal.signal(signal.SIGINT, restore)
            restore = None
        return args.func(args) or 0
    except UserError as e:
        print(f"{_who(verb)}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt as e:
        # Ctrl-C at any instant, even while the verb's modules load: no traceback;
        # a request that was out and unanswered is named (board.link.Interrupted)
        note = f": {e.args[0]}" if e.args else ""
        print(f"{_who(verb)}: interrupted{note}", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader (`| head`) stopped early: nothing of ours went wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as e:
        ki = _interrupt(e)
        if ki is None:
            raise
        note = f": {ki.args[0]}" if ki.args else ""
        print(f"{_who(verb)}: interrupted{note}", file=sys.stderr)
        return 130
    finally:
        if restore is not None:
            signal.signal(signal.SIGINT, restore)


if __name__ == "__main__":
    sys.exit(main())
