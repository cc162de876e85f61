"""Put the firmware on a board with mpremote, the same way for a real board and for
a virtual one (the unix port cannot soft-reset, so virtual boards use `resume`)."""

import json
import os
import subprocess
import tempfile
from pathlib import Path

from gbmeter import paths
from gbmeter.board.portlock import PortLock
from gbmeter.errors import UserError

# main.py stays source so the board can run it at boot whatever else is compiled.
BOOT = "main.py"

# A .mpy is loaded into the heap whole, and on a 64K board every byte counts:
#   no-source-lines  drops the line-number tables (about 1K over the firmware); a
#                    traceback still names each function, and the firmware's error
#                    replies carry the error text anyway
#   -s <module>      (in stage) names the source after the module, whose name is
#                    interned already: a path would be one more string per module
MPY_CROSS_OPTIONS = ("-X", "no-source-lines")


def firmware_files():
    return sorted(p for p in paths.FIRMWARE.glob("*.py"))


def board_config(board):
    p = paths.BOARDS / board / "board.json"
    if not p.exists():
        known = ", ".join(sorted(d.name for d in paths.BOARDS.iterdir() if d.is_dir()))
        raise UserError(f"no board called {board!r} (boards: {known})")
    return p


def stage(board, mpy=False, factory=None, workdir=None):
    """The files to copy to the board, built into workdir: firmware modules (compiled
    by mpy-cross with --mpy), board.json, and device.json (factory settings)."""
    out = Path(workdir or tempfile.mkdtemp(prefix="gbmeter-stage-"))
    files = []
    for src in firmware_files():
        if mpy and src.name != BOOT:
            dst = out / (src.stem + ".mpy")
            r = subprocess.run([paths.tool("mpy-cross"), *MPY_CROSS_OPTIONS, "-s", src.stem,
                                "-o", str(dst), str(src)], capture_output=True, text=True)
            if r.returncode:
                raise UserError(f"mpy-cross failed on {src.name}: {r.stderr.strip()}")
            files.append(dst)
        else:
            files.append(src)
    files.append(board_config(board))
    if factory:
        dev = out / "device.json"
        dev.write_text(json.dumps(factory))
        files.append(dev)
    return files


def _cleanup_code(mpy):
    # Remove modules of the other format so a stale .py never shadows a new .mpy.
    # The module names go over as one string, split on the board: one literal for the
    # REPL to compile, however many modules there are.
    stale = ".py" if mpy else ".mpy"
    stems = " ".join(p.stem for p in firmware_files() if p.name != BOOT)
    return ("import os\nfor n in %r.split():\n try:\n  os.remove(n+%r)\n"
            " except OSError:\n  pass\n" % (stems, stale))


def mpremote_argv(port, files, mpy, resume, then=None):
    """One mpremote invocation: clean stale modules, copy the files, then `then`."""
    argv = [paths.tool("mpremote"), "connect", port]
    if resume:
        argv.append("resume")
    argv += ["exec", _cleanup_code(mpy), "+", "cp", *map(str, files), ":./"]
    if then:
        argv += ["+", *then]
    return argv


def run_mpremote(argv, port, timeout=120):
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise UserError(f"mpremote got no answer from {port} within {timeout:g} s: is a "
                        "MicroPython board there, with its REPL free?") from None
    if r.returncode:
        msg = (r.stderr or r.stdout).strip().splitlines()
        raise UserError(f"mpremote failed on {port}: {msg[-1] if msg else 'no output'}")
    return r.stdout


def check_port(port):
    """A device path that does not exist is named as such (mpremote would say it
    "may be in use by another program"); pyserial URLs are left to mpremote."""
    if "://" not in str(port) and not os.path.exists(port):
        raise UserError(f"no such port {port}: is the board plugged in? (ls /dev/ttyACM* "
                        "/dev/ttyUSB*; a virtual board's port is what `gbmeter sim` printed)")


def deploy(port, board, mpy=False, factory=None, timeout=120, notify=None):
    """Deploy to a real board and reset it so main.py starts serving. The port's
    lock is held meanwhile, so no gbmeter command talks to it half-deployed.
    notify(text) hears when mpremote starts (it may wait up to `timeout` s)."""
    check_port(port)
    with tempfile.TemporaryDirectory(prefix="gbmeter-stage-") as work:
        files = stage(board, mpy, factory, work)
        with PortLock(port):
            if notify:
                notify(f"copying {len(files)} files to {port} with mpremote (gives up after "
                       f"{timeout:g} s)")
            run_mpremote(mpremote_argv(port, files, mpy, resume=False, then=["reset"]), port,
                         timeout)
