"""gbmeter ping: ask a board who it is."""

import json

from gbmeter.board.link import Link
from gbmeter.cli._common import add_port, add_timeout


def register(sub):
    p = sub.add_parser("ping", help="show a board's firmware version, board, device and free heap",
                       description="Ask the board who it is over its local port: firmware "
                       "version, board, device type and system title, profile, whether it is "
                       "provisioned, and free heap.")
    add_port(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object, with the profile's settings")
    add_timeout(p, 5.0, "the answer")
    p.set_defaults(func=run)


def not_provisioned(reply, port):
    """The line that says a meter is not provisioned yet (None when it is)."""
    if reply.get("provisioned", True):
        return None
    return (f"not provisioned: it has no key pairs or trust anchors yet, so it refuses "
            f"every Command (`gbmeter provision --port {port} --device "
            f"{reply.get('device', 'gsme')} --id <system title>`)")


def run(args):
    with Link(args.port, timeout=args.timeout) as link:
        reply = link.ping()
    reply.pop("ok", None)
    reply.pop("alerts", None)
    if args.json:
        print(json.dumps(reply))
    else:
        print(f"{reply.get('device', '?').upper()} {reply.get('id')} ({reply.get('profile')}) "
              f"on board {reply.get('board')}: firmware {reply.get('fw')}, "
              f"{reply.get('heap_free')} bytes heap free")
        note = not_provisioned(reply, args.port)
        if note:
            print(f"  {note}")
    return 0
