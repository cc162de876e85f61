"""gbmeter send: send a GBCS COMMAND and check the answer; with --raw, any bytes.

Without --raw, only a COMMAND for the meter on the port is sent: a MAC header and a
General-Signing APDU with CRA 01, addressed to the meter's id, for a use case of its
device type (supplier.answer.refuse_unfit); anything else is refused, nothing sent
(exit 1; exit 4 when the meter does not know the use case). With --raw the bytes go
to the meter exactly as given, with no check on the host, and the meter's answer is
reported: alert codes, a NAK's reason or the Response (checked when what was sent is
a Command; otherwise "cannot tell", never a success)."""

import json

from gbmeter.cli._common import read_hex_arg
from gbmeter.cli._common import KEYS_HELP, add_force, add_port, add_timeout
from gbmeter.board.link import Link
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import describe


def register(sub):
    p = sub.add_parser("send", help="send a COMMAND (hex or file) and verify the Response",
                       description=__doc__.split("\n\n", 1)[1])
    p.add_argument("command", metavar="HEX|FILE",
                   help="the COMMAND in hex, a file holding its hex, or - for stdin")
    add_port(p)
    add_timeout(p)
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP + "; the meter's keys from "
                   "provisioning are read from it to check the Response")
    p.add_argument("--supplier", metavar="EUI",
                   help="Supplier system title whose state folder is used (default: the lowest)")
    add_force(p)
    p.add_argument("--raw", action="store_true",
                   help="deliver the bytes exactly as given, with no host-side check "
                        "(negative testing: truncated, garbage, a PRECOMMAND, a Response), "
                        "and report what the meter answered")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: the result, with the command, response and "
                        "alert_messages hex")
    p.set_defaults(func=run)


def run(args):
    command = read_hex_arg(args.command)
    s = Session(args.keys, args.supplier)
    with Link(args.port, timeout=args.timeout) as link:
        result = s.send(link, command, args.force, raw=args.raw)
    print(json.dumps(result) if args.json else describe(result))
    return 0 if result["ok"] else 2
