"""gbmeter deploy: put the firmware on a real board and reset it (`make deploy`)."""

import json
import sys

from gbmeter.board import deploy
from gbmeter.cli._common import add_port, add_timeout
from gbmeter import profiles


def register(sub):
    p = sub.add_parser("deploy", help="copy the firmware to a real board with mpremote and reset it",
                       description="Compile the firmware with mpy-cross (main.py stays "
                       "source), copy it and boards/BOARD/board.json to the board on PORT "
                       "with mpremote, and reset the board so main.py starts serving. A "
                       "board that already holds a meter keeps it; --device and --profile "
                       "are the factory settings of a new one.")
    p.add_argument("--board", required=True, help="board settings folder under boards/ "
                   "(rpi_pico, esp32, unix)")
    add_port(p, help="the board's serial port, e.g. /dev/ttyACM0 (default: $GBMETER_PORT)")
    add_timeout(p, 60.0, "mpremote to copy the firmware")
    p.add_argument("--py", action="store_true", help="copy .py sources instead of .mpy")
    p.add_argument("--device", choices=("esme", "gsme"), help="factory device type")
    p.add_argument("--profile", choices=profiles.names(), help="factory device profile")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    factory = {k: v for k, v in (("device", args.device), ("profile", args.profile)) if v}
    deploy.deploy(args.port, args.board, mpy=not args.py, factory=factory or None,
                  timeout=args.timeout,
                  notify=lambda text: print(f"gbmeter deploy: {text}", file=sys.stderr,
                                            flush=True))
    if args.json:
        print(json.dumps({"port": args.port, "board": args.board, "mpy": not args.py}))
    else:
        print(f"deployed the {args.board} firmware to {args.port} and reset the board; "
              f"`gbmeter ping --port {args.port}` should answer")
    return 0
