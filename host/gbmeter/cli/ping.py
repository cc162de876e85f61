"""gbmeter ping: ask a board who it is."""

import json

from gbmeter.board.link import Link


def register(sub):
    p = sub.add_parser("ping", help="show a board's firmware version, board, device and free heap")
    p.add_argument("--port", required=True, help="serial device or pyserial URL")
    p.add_argument("--json", action="store_true")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=run)


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
    return 0
