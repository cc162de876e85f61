"""gbmeter send: send a raw GBCS COMMAND and check the answer."""

import json

from gbmeter.cli._common import read_hex_arg
from gbmeter.cli._common import add_force
from gbmeter.board.link import Link
from gbmeter.supplier.session import Session, describe


def register(sub):
    p = sub.add_parser("send", help="send a COMMAND (hex or file) and verify the Response")
    p.add_argument("command", metavar="HEX|FILE")
    p.add_argument("--port", required=True)
    p.add_argument("--keys", help="key folder (default .gbmeter/keys)")
    p.add_argument("--supplier")
    add_force(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    command = read_hex_arg(args.command)
    s = Session(args.keys, args.supplier)
    with Link(args.port) as link:
        result = s.send(link, command, args.force)
    print(json.dumps(result) if args.json else describe(result))
    return 0 if result["ok"] else 2
