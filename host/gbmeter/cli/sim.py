"""gbmeter sim: run a virtual board until interrupted."""

import json
import signal
import sys
import threading

from gbmeter import profiles
from gbmeter.board.sim import VirtualBoard


def register(sub):
    p = sub.add_parser("sim", help="run a virtual meter on the MicroPython unix port",
                       description="Start the unix port on a pseudo-terminal, deploy the "
                       "firmware with mpremote, print the port, and run until interrupted.")
    p.add_argument("--dir", help="board folder (its flash); reuse it to keep state across restarts")
    p.add_argument("--device", choices=("esme", "gsme"), default="gsme")
    p.add_argument("--heap", help="unix port heap size, e.g. 64K (-X heapsize=)")
    p.add_argument("--mpy", action="store_true", help="deploy mpy-cross compiled .mpy files")
    p.add_argument("--profile", choices=profiles.names(),
                   help="device profile of a new board (default smets2; `gbmeter profiles`)")
    p.add_argument("--board", default="unix", help="board settings folder under boards/")
    p.add_argument("--json", action="store_true", help="print one JSON line when the board answers")
    p.set_defaults(func=run)


def run(args):
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: done.set())
    vb = VirtualBoard(dir=args.dir, device=args.device, heap=args.heap, mpy=args.mpy,
                      board=args.board, profile=args.profile)
    vb.start()
    try:
        if args.json:
            print(json.dumps({"port": vb.port, "dir": str(vb.dir), "pid": vb.pid,
                              "device": vb.hello.get("device"),
                              "profile": vb.hello.get("profile")}), flush=True)
        else:
            h = vb.hello
            print(f"virtual {h.get('device', '?').upper()} ({h.get('profile')}) on {vb.port} "
                  f"(board folder {vb.dir}, unix port pid {vb.pid}); Ctrl-C stops it",
                  flush=True)
        while not done.wait(0.5):
            if vb.proc.poll() is not None:
                print(f"the unix port exited (status {vb.proc.returncode})", file=sys.stderr)
                return 1
    finally:
        vb.stop()
    return 0
