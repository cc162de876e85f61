"""gbmeter sim: run a virtual board until interrupted."""

import json
import signal
import sys
import threading

from gbmeter import profiles
from gbmeter.board import qemu
from gbmeter.board.sim import VirtualBoard


def register(sub):
    p = sub.add_parser("sim", help="run a virtual meter on the MicroPython unix port or in qemu",
                       description="Start the unix port on a pseudo-terminal (or, for a qemu "
                       "board such as qemu_mps2, build its firmware image when needed and start "
                       "qemu with its UART on one), deploy the firmware with mpremote, print "
                       "the port, and run until interrupted.")
    p.add_argument("--dir", help="board folder (its flash); reuse it to keep state across restarts")
    p.add_argument("--device", choices=("esme", "gsme"),
                   help="device type of a new board (default gsme); a reused --dir runs the "
                        "meter it holds, and naming another device for it is an error")
    p.add_argument("--heap", help="heap size, e.g. 64K (the unix port's -X heapsize=; "
                   "a qemu board's default is its own 64K)")
    p.add_argument("--mpy", action="store_true", help="deploy mpy-cross compiled .mpy files "
                   "(a qemu board always gets them, as `make deploy` sends them)")
    p.add_argument("--profile", choices=profiles.names(),
                   help="device profile of a new board (default smets2; `gbmeter profiles`)")
    p.add_argument("--board", default="unix", help="board settings folder under boards/ "
                   "(unix; qemu_mps2 runs the Cortex-M3 firmware in qemu)")
    p.add_argument("--json", action="store_true", help="print one JSON line when the board answers")
    p.set_defaults(func=run)


def run(args):
    done = threading.Event()
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, lambda *_: done.set())
    kind = qemu.QemuBoard if qemu.is_qemu_board(args.board) else VirtualBoard
    vb = kind(dir=args.dir, device=args.device, heap=args.heap, mpy=args.mpy,
              board=args.board, profile=args.profile)
    runs_on = "qemu" if kind is qemu.QemuBoard else "unix port"
    vb.start()
    try:
        if args.json:
            print(json.dumps({"port": vb.port, "dir": str(vb.dir), "pid": vb.pid,
                              "device": vb.hello.get("device"),
                              "profile": vb.hello.get("profile")}), flush=True)
        else:
            h = vb.hello
            print(f"virtual {h.get('device', '?').upper()} ({h.get('profile')}) on {vb.port} "
                  f"(board folder {vb.dir}, {runs_on} pid {vb.pid}); Ctrl-C stops it",
                  flush=True)
        while not done.wait(0.5):
            if vb.proc.poll() is not None:
                if runs_on == "qemu" and vb.proc.returncode == 0:
                    vb.power_on()  # the board was reset (its machine.reset ends qemu)
                    continue
                print(f"the {runs_on} exited (status {vb.proc.returncode})", file=sys.stderr)
                return 1
    finally:
        vb.stop()
    return 0
