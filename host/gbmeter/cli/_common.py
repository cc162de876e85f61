"""What the sending verbs share: their common options and the body that opens the key
folder and the port, runs one chain and prints the result."""

import argparse
import json
import os
import re
import sys
from pathlib import Path

from gbmeter.board.link import Link
from gbmeter.errors import UserError
from gbmeter.gbcs import codec
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import describe


KEYS_HELP = ("key folder (default: keys/ in gbmeter's home, $GBMETER_HOME, else "
             "~/.local/share/gbmeter: one per user, made on first use)")
DCC_DIR_HELP = ("the DCC folder: anomaly detection and quarantine (default: "
                "$GBMETER_DCC_DIR, else dcc/ in gbmeter's home)")
PORT_ENV = "GBMETER_PORT"


def add_port(p, help="the board's serial port or pyserial URL (default: $GBMETER_PORT)"):
    """--port, which $GBMETER_PORT saves typing on every call."""
    default = os.environ.get(PORT_ENV) or None
    p.add_argument("--port", metavar="PORT", default=default, required=default is None,
                   help=help)


def seconds(text):
    """argparse type: a number of seconds above 0."""
    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not v > 0 or v == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds above 0")
    return v


def add_timeout(p, default=10.0, what="each answer"):
    p.add_argument("--timeout", type=seconds, default=default, metavar="SECONDS",
                   help=f"how long to wait for {what} from the board (default {default:g})")


def add_force(p):
    p.add_argument("--force", action="store_true",
                   help="send it even when the meter's profile does not know the use case "
                        "(negative testing: expect alert 8F1E)")


def add_common(p):
    add_port(p)
    add_timeout(p)
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP)
    p.add_argument("--supplier", help="Supplier system title (default: the lowest)")
    p.add_argument("--dcc-dir", metavar="DIR", help=DCC_DIR_HELP)
    add_force(p)
    p.add_argument("--json", action="store_true")


def run_verb(args, send, suffix=""):
    """The body of a sending verb: open the key folder and the port, ask the meter who
    it is, run send(session, link, meter_id, device) and print the result (JSON or
    plain words, `suffix` added on success). Exit 0 only when the Response meets the
    criterion, 2 when it does not."""
    s = Session(args.keys, args.supplier)
    with Link(args.port, timeout=args.timeout) as link:
        hello = link.ping()
        result = send(s, link, hello["id"], hello["device"])
    if args.json:
        print(json.dumps(result))
    else:
        print(describe(result) + (suffix if result["ok"] else ""))
    return 0 if result["ok"] else 2


HEXISH = re.compile(r"\s*(0[xX])?[0-9a-fA-F\s]+")


def _exists(path):
    try:
        return path.is_file()
    except OSError:          # e.g. a long hex string is not a valid file name
        return False


def read_hex_arg(arg):
    """Bytes from a hex string, a file holding hex, or - (stdin). Text made only of
    hex digits is taken as hex; anything else that names a file is read."""
    if arg == "-":
        text = sys.stdin.read()
    elif HEXISH.fullmatch(arg):
        text = arg
    else:
        path = Path(arg)
        if _exists(path) or "/" in arg or arg.lower().endswith((".hex", ".txt")):
            try:
                text = path.read_text(errors="replace")
            except OSError as e:
                raise UserError(f"cannot read {arg}: {e.strerror}") from None
        else:
            text = arg
    try:
        return codec.parse_hex(text)
    except codec.DecodeError as e:
        raise UserError(str(e)) from None
