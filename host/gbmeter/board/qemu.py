"""A bare-metal board in qemu: MicroPython's qemu port for the MPS2-AN385 (Cortex-M3)
built with the project's board folder (boards/qemu_mps2: littlefs on a flash that is
a host file reached through ARM semihosting, a 64K heap by default) and run under
qemu-system-arm, its UART on a pseudo-terminal.

It is deployed and booted as a dev board is: qemu starts (power on), `gbmeter
deploy`'s own mpremote run (soft reset, clean, cp, `reset`) copies the compiled
firmware over the emulated UART and resets the board, which here makes qemu exit
(the port's machine.reset), so qemu starts again on the same flash file (power on)
and main.py serves. The pty pair and the bridge are the unix-port board's
(sim.VirtualBoard): the port the user sees stays the same across resets.

The firmware image is built when needed and cached under build/ in the checkout:
the MicroPython source is the tree MICROPYTHON_SRC names, else
../shared/micropython/micropython-src.tar.gz (extracted into the cache, never into
the repository). Building needs Debian's gcc-arm-none-eabi and
libnewlib-arm-none-eabi; running needs qemu-system-arm."""

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import termios
from pathlib import Path

from gbmeter import paths
from gbmeter.board import deploy
from gbmeter.board.sim import VirtualBoard
from gbmeter.errors import UserError

BOARD = "qemu_mps2"
PACKAGES = ("gcc-arm-none-eabi", "libnewlib-arm-none-eabi", "qemu-system-arm")
QEMU = "qemu-system-arm"
CC = "arm-none-eabi-gcc"
ARCHIVE = Path("micropython") / "micropython-src.tar.gz"
FLASH = "flash.bin"   # the board's flash, in the board folder (board.c's default)
# The board files the image is built from (board.json is read at run time only).
BUILD_FILES = ("mpconfigboard.mk", "board.c")
HEAP_MIN, HEAP_MAX = 16 * 1024, 1024 * 1024  # board.c takes up to 1M
INSTALL = "apt-get install " + " ".join(PACKAGES)


def board_settings(board):
    """board.json of a board folder, or {} when there is none."""
    try:
        return json.loads((paths.BOARDS / board / "board.json").read_text())
    except (OSError, ValueError):
        return {}


def is_qemu_board(board):
    """A board folder for qemu names the machine it runs on in board.json."""
    return "machine" in board_settings(board)


def cache():
    return paths.ROOT / "build"


def heap_bytes(text):
    """'64K', '1M' or '65536' -> bytes, in the range the board takes."""
    t = str(text).strip().upper()
    scale = {"K": 1024, "M": 1024 * 1024}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit():
        raise UserError(f"heap size {text!r}: give bytes, or K or M, e.g. 64K")
    n = int(digits) * scale
    if not HEAP_MIN <= n <= HEAP_MAX:
        raise UserError(f"heap size {text!r}: the {BOARD} board takes 16K to 1M")
    return n


# -- what is needed -------------------------------------------------------------------

def _archive():
    sh = paths.shared()
    p = sh / ARCHIVE if sh else None
    return p if p and p.is_file() else None


def missing():
    """Why the qemu board cannot be built and run here, or None when it can."""
    for tool in ("make", CC, QEMU):
        if not shutil.which(tool):
            return f"{tool} not found (Debian: {INSTALL})"
    libc = subprocess.run([CC, "-print-file-name=libc.a"], capture_output=True, text=True)
    if not os.path.isabs(libc.stdout.strip()):
        return f"no C library for {CC} (Debian: {INSTALL})"
    env = os.environ.get("MICROPYTHON_SRC")
    if env:
        if not (Path(env) / "ports" / "qemu" / "Makefile").is_file():
            return f"MICROPYTHON_SRC={env} is not a MicroPython source tree (no ports/qemu/Makefile)"
    elif _archive() is None:
        return ("no MicroPython source: set MICROPYTHON_SRC to a checkout, or put the "
                f"reference data (../shared/{ARCHIVE}) beside the checkout")
    return None


def _check():
    why = missing()
    if why:
        raise paths.ToolMissing(f"cannot build the {BOARD} board: {why}")


# -- building ---------------------------------------------------------------------------

class _Lock:
    """An exclusive lock on a file in the cache: one build at a time, across processes."""

    def __init__(self, name):
        cache().mkdir(parents=True, exist_ok=True)
        self.path = cache() / name

    def __enter__(self):
        self.f = open(self.path, "w")
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.f.close()


def _digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


def source():
    """(MicroPython source tree, what identifies it). The archive is extracted into
    the cache once (into a temporary folder, renamed into place when complete)."""
    _check()
    env = os.environ.get("MICROPYTHON_SRC")
    if env:
        p = Path(env).resolve()
        return p, f"checkout {p}"
    tar = _archive()
    ident = _digest(tar)
    dest = cache() / "micropython" / ident[:16]
    tree = dest / "micropython"
    if (tree / "ports" / "qemu" / "Makefile").is_file():
        return tree, f"archive {ident}"
    with _Lock("micropython.lock"):
        if not (tree / "ports" / "qemu" / "Makefile").is_file():
            dest.parent.mkdir(parents=True, exist_ok=True)
            work = Path(tempfile.mkdtemp(prefix="extract-", dir=dest.parent))
            try:
                with tarfile.open(tar) as t:
                    if hasattr(tarfile, "data_filter"):
                        t.extractall(work, filter="data")
                    else:  # Python without extraction filters: check the names
                        for m in t.getmembers():
                            if m.name.startswith(("/", "..")) or "/../" in m.name:
                                raise UserError(f"{tar}: unsafe member {m.name}")
                        t.extractall(work)
                if not (work / "micropython" / "ports" / "qemu" / "Makefile").is_file():
                    raise UserError(f"{tar} holds no micropython/ports/qemu")
                shutil.rmtree(dest, ignore_errors=True)
                work.rename(dest)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    return tree, f"archive {ident}"


def build_dir(board, ident):
    """The cache folder of a board's image: named by the source (`ident`) and the
    contents of the board files it is built from, so editing one builds anew."""
    bdir = paths.BOARDS / board
    h = hashlib.sha256(ident.encode())
    for name in BUILD_FILES:
        try:
            h.update(name.encode() + b"\0" + (bdir / name).read_bytes())
        except OSError:
            raise UserError(f"boards/{board}/{name} is missing: the board cannot be built") from None
    return cache() / board / h.hexdigest()[:16]


def firmware(board=BOARD, log=None):
    """The firmware image (firmware.elf) of a qemu board folder, built when its board
    files or the MicroPython source changed since the last build."""
    tree, ident = source()
    bdir = (paths.BOARDS / board).resolve()
    out = build_dir(board, ident)
    elf, stamp = out / "firmware.elf", out / "built"
    # A checkout can change under the same path: make decides there (it is quick
    # when nothing changed); the archive is fixed by its digest.
    if stamp.exists() and elf.exists() and not ident.startswith("checkout"):
        return elf
    with _Lock(f"{board}.lock"):
        if stamp.exists() and elf.exists() and not ident.startswith("checkout"):
            return elf
        out.mkdir(parents=True, exist_ok=True)
        stamp.unlink(missing_ok=True)
        argv = ["make", "-C", str(tree / "ports" / "qemu"), f"BOARD={board}",
                f"BOARD_DIR={bdir}", f"BUILD={out}", "FROZEN_MANIFEST=",
                f"PYTHON={sys.executable}", f"-j{os.cpu_count() or 1}"]
        if log:
            log(f"building the {board} firmware ({ident.split()[0]}) in {out}")
        with open(out / "make.log", "w") as f:
            r = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT)
        if r.returncode or not elf.exists():
            tail = (out / "make.log").read_text(errors="replace").strip().splitlines()[-8:]
            raise UserError(f"building the {board} firmware failed (log {out / 'make.log'}):\n  "
                            + "\n  ".join(tail))
        stamp.write_text(" ".join(argv) + "\n")
    return elf


# -- running ------------------------------------------------------------------------------

class QemuBoard(VirtualBoard):
    """A qemu board folder run as a virtual board (same interface as VirtualBoard):
    `dir` holds its flash (flash.bin) and qemu's log, `heap` its heap (default the
    board's 64K). The firmware always goes over compiled, as `make deploy` sends it;
    deploy=False powers on a flash that holds it already (the bench's heap search)."""

    # After RELEASE the firmware is at the REPL: reset the board, which ends qemu.
    LEAVE = b"\r\x03\x03import machine\rmachine.reset()\r"

    def __init__(self, dir=None, device="gsme", heap=None, mpy=True, board=BOARD,
                 factory=None, start_timeout=60.0, profile=None, deploy=True):
        self.heap_size = heap_bytes(heap) if heap else None
        self.deploy = deploy
        self.machine = board_settings(board).get("machine")
        if not self.machine:
            raise UserError(f"boards/{board}/board.json names no qemu machine")
        self._hold = None
        super().__init__(dir=dir, device=device, heap=heap, mpy=True, board=board,
                         factory=factory, start_timeout=start_timeout, profile=profile)

    def _prepare(self):
        elf = firmware(self.board, log=lambda m: print(m, file=sys.stderr, flush=True))
        exe = shutil.which(QEMU)
        if not exe:
            raise paths.ToolMissing(f"{QEMU} not found (Debian: {INSTALL})")
        self._elf = elf
        self._fresh = not (self.dir / FLASH).exists()  # a new board: factory settings
        return exe

    def _spawn(self, console, *args):
        # The console pty stays open here for the board's whole life, so a reset
        # (qemu exits and starts again) never hangs it up under the bridge.
        if self._hold is None:
            self._hold = os.dup(console)
        semi = "enable=on,target=native,arg=gbmeter,arg=flash=" + FLASH
        if self.heap_size:
            semi += f",arg=heap={self.heap_size}"
        argv = [self._exe, "-machine", self.machine, "-nographic", "-monitor", "null",
                "-semihosting-config", semi, "-kernel", str(self._elf),
                "-serial", self._console]
        with open(self.dir / "qemu.log", "ab") as logf:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=logf, cwd=self.dir, start_new_session=True)

    def power_on(self, timeout=10.0):
        """After `reset` (qemu exits, as the port's machine.reset does): drop what
        was left unread on the console and start qemu again on the same flash."""
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise UserError(f"the {self.board} board did not reset (qemu still running "
                            f"{timeout:.0f} s after mpremote's reset)") from None
        termios.tcflush(self._hold, termios.TCIFLUSH)
        self._spawn(self._hold)

    def _reset(self):
        self.kill()
        self.power_on()

    def _deploy_and_boot(self):
        # `make deploy`'s own run: mpremote soft-resets the board, cleans, copies and
        # resets it (qemu exits); then power on.
        if self.deploy:
            deploy.deploy(self.port, self.board, mpy=True,
                          factory=self.factory if self._fresh else None)
            self.power_on()
        self._await_ping()

    PING_TRY = 2.0      # qemu's emulated UART is slow

    def _boot_problem(self):
        if self.proc.poll() is not None:
            return (f"qemu exited with status {self.proc.returncode} while the board "
                    f"booted (log {self.dir / 'qemu.log'})")
        return None

    def _no_answer(self, last):
        return f"the {self.board} board on {self.port} did not answer ping: {last}"

    def stop(self, timeout=10.0):
        super().stop(timeout)
        if self._hold is not None:
            try:
                os.close(self._hold)
            except OSError:
                pass
            self._hold = None

