"""Virtual boards: the MicroPython unix port on a pseudo-terminal, with its own
folder as the board's flash, deployed with mpremote like a real board.

Two pty pairs: the unix port owns the slave of the first as its console; the slave
of the second is the board's port that mpremote and gbmeter open. A bridge thread
copies bytes between the two masters. This process keeps the port's slave open too,
so tools can come and go without the bridge seeing a hang-up.

Booting is a board's: the unix port starts with its REPL, mpremote copies the
firmware in (`resume`: the unix port cannot soft-reset), and then the board is reset
the way a power cycle resets it: the unix port starts again on the same console, on
a fresh heap, runs main.py and after it the REPL (`-i`), as a board does. Running
main.py from the REPL that mpremote used instead would start the firmware on a heap
that REPL has already scattered blocks across, which a 64K heap cannot spare."""

import os
import pty
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import tty
from pathlib import Path

from gbmeter.board import deploy
from gbmeter import paths
from gbmeter.errors import UserError
from gbmeter.board.link import Link, LinkError, T_RELEASE, encode


# Whatever REPL the unix port is in (raw or friendly, maybe with stray input): end the
# line, clear it, leave raw mode, then end-of-file on an empty line, and it exits.
LEAVE_REPL = b"\r\x03\x02\x04"

HEAP_MIN = 16 * 1024          # below this the unix port's REPL cannot take mpremote
HEAP_MAX = 1024 ** 3
FIRMWARE_HEAP = "64K"         # what the firmware is made to fit (README "Heap")
CONSOLE_TAIL = 4096


def heap_option(text):
    """The unix port's -X heapsize= value for a heap size such as 64K, 2M or 65536,
    checked: a UserError names what is wrong (the unix port itself would exit, or run
    out of memory somewhere in mpremote)."""
    t = str(text).strip().upper()
    scale = {"K": 1024, "M": 1024 ** 2}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit():
        raise UserError(f"--heap {text!r}: give a size in bytes, or with K or M, e.g. 64K")
    n = int(digits) * scale
    if not HEAP_MIN <= n <= HEAP_MAX:
        raise UserError(f"--heap {text}: give {HEAP_MIN // 1024}K to {HEAP_MAX // 1024 ** 2}M "
                        f"(the firmware is made to fit {FIRMWARE_HEAP})")
    return t


def _a(device):
    d = str(device).upper()
    return ("an " if d[:1] in "AEIOU" else "a ") + d


def board_folder(path):
    """Make the board folder (its flash) if needed; a UserError when the path is not
    one (a file, or under a file)."""
    return paths.make_folder(path, "--dir", "a board folder")


class VirtualBoard:
    def __init__(self, dir=None, device="gsme", heap=None, mpy=False, board="unix",
                 factory=None, start_timeout=30.0, profile=None):
        self.tempdir = None
        if dir is None:
            self.tempdir = tempfile.mkdtemp(prefix="gbmeter-board-")
            dir = self.tempdir
        self.dir = Path(dir).resolve()
        self.device = device          # None: whatever the folder holds (new: gsme)
        self.heap = heap_option(heap) if heap else None
        self.mpy = mpy
        self.board = board
        self.factory = dict(factory or {}, device=device or "gsme")
        if profile:
            self.factory["profile"] = profile
        self.profile = profile
        self.start_timeout = start_timeout
        self.proc = None
        self.port = None
        self._stop = threading.Event()
        self._tail = bytearray()

    # What ends the REPL session at stop (after RELEASE): the unix port exits.
    LEAVE = LEAVE_REPL

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    # -- lifecycle ----------------------------------------------------------------
    def start(self):
        board_folder(self.dir)
        self._exe = self._prepare()
        m1, s1 = pty.openpty()
        tty.setraw(s1)  # no echo, no signals, no CR/LF mangling: bytes pass as they are
        m2, s2 = pty.openpty()
        tty.setraw(s2)
        self._m1, self._m2, self._s2 = m1, m2, s2
        self._console = os.ttyname(s1)
        self.port = os.ttyname(s2)
        try:
            self._spawn(s1)
        finally:
            os.close(s1)
        self._bridge = threading.Thread(target=self._pump, daemon=True)
        self._bridge.start()
        try:
            self._deploy_and_boot()
            if self.device and self.hello.get("device") != self.device:
                raise UserError(
                    f"the board folder {self.dir} holds {_a(self.hello.get('device', '?'))}, "
                    f"not {_a(self.device)}: --device sets up a new board folder (leave it out "
                    "to run the folder's meter); `gbmeter provision --device ... "
                    "--factory-reset` changes the device of an existing meter")
            if self.profile and self.hello.get("profile") != self.profile:
                raise UserError(
                    f"the board folder {self.dir} holds a {self.hello.get('profile')} meter: "
                    "--profile sets up a new board folder; `gbmeter provision --profile` "
                    "changes the profile of an existing meter")
        except BaseException:
            self.stop()
            raise
        return self

    def _prepare(self):
        # What the board runs on: the unix port (qemu.QemuBoard builds its image).
        return paths.micropython()

    def _spawn(self, console, *args):
        # The unix port on the console pty (a slave fd), in its own process group.
        argv = [self._exe]
        if self.heap:
            argv += ["-X", f"heapsize={self.heap}"]
        self.proc = subprocess.Popen(argv + list(args), stdin=console, stdout=console,
                                     stderr=console, cwd=self.dir, start_new_session=True)

    def _reset(self):
        """Power-cycle the board: the unix port leaves its REPL and starts again on a
        fresh heap, running main.py and then the REPL."""
        # Held open meanwhile, so the console pty never hangs up under the bridge.
        console = os.open(self._console, os.O_RDWR | os.O_NOCTTY)
        try:
            os.write(self._m1, LEAVE_REPL)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill()
            self._spawn(console, "-i", "main.py")
        finally:
            os.close(console)

    def _deploy_and_boot(self):
        # Only a fresh board takes the factory settings: a reused folder keeps its own.
        factory = None if (self.dir / "device.json").exists() else self.factory
        with tempfile.TemporaryDirectory(prefix="gbmeter-stage-") as work:
            files = deploy.stage(self.board, self.mpy, factory, work)
            argv = deploy.mpremote_argv(self.port, files, self.mpy, resume=True)
            try:
                deploy.run_mpremote(argv, self.port, timeout=self.start_timeout * 4)
            except UserError as e:
                raise UserError(f"{e}{self._heap_hint()}") from None
        self._tail = bytearray()
        self._reset()
        self._await_ping()

    PING_TRY = 1.0      # seconds each ping may take while the board boots

    def _boot_problem(self):
        """Why the board can no longer come up (None: keep waiting for its ping)."""
        if self.proc.poll() is not None:
            return (f"the unix port exited with status {self.proc.returncode} "
                    f"while booting{self._heap_hint()}")
        if self.heap and b"MemoryError" in self._tail:
            return (f"the firmware ran out of memory while booting "
                    f"({self._console_line('MemoryError')}){self._heap_hint()}")
        return None

    def _no_answer(self, last):
        return f"virtual board on {self.port} did not answer ping: {last}{self._heap_hint()}"

    def _await_ping(self):
        """Ping until the board answers (self.hello), a boot problem shows, or
        start_timeout passes."""
        deadline = time.monotonic() + self.start_timeout
        last = None
        while time.monotonic() < deadline:
            problem = self._boot_problem()
            if problem:
                raise UserError(problem)
            try:
                with Link(self.port, timeout=self.PING_TRY) as link:
                    self.hello = link.ping()
                    return
            except LinkError as e:
                last = e
        raise UserError(self._no_answer(last))

    def _console_line(self, word):
        """The last line of the unix port's console output holding `word`."""
        lines = [ln for ln in bytes(self._tail).decode(errors="replace").splitlines()
                 if word in ln]
        return lines[-1].strip() if lines else word

    def _heap_hint(self):
        if not self.heap:
            return ""
        return (f"; the board did not come up in a heap of {self.heap}: the firmware is "
                f"made to fit {FIRMWARE_HEAP} as .mpy (--mpy), more as .py; give a larger "
                "--heap, or leave it out")

    def _pump(self):
        fds = (self._m1, self._m2)
        while not self._stop.is_set():
            try:
                r, _, _ = select.select(fds, (), (), 0.2)
            except (OSError, ValueError):
                return
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    return  # the unix port went away
                out = self._m2 if fd == self._m1 else self._m1
                if fd == self._m1:       # what the unix port printed: kept for errors
                    self._tail = (self._tail + data)[-CONSOLE_TAIL:]
                try:
                    os.write(out, data)
                except OSError:
                    return

    def stop(self, timeout=5.0):
        """Stop cleanly: ask the firmware to release the stream, leave the REPL with
        end-of-file, and only then signal the process."""
        if self.proc and self.proc.poll() is None:
            self._stop.set()
            self._bridge.join(1.0)
            try:
                os.write(self._m1, encode(T_RELEASE, 0, b""))
                time.sleep(0.2)
                os.write(self._m1, self.LEAVE)
            except OSError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.terminate()
                try:
                    self.proc.wait(2)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()
        self._stop.set()
        for fd in ("_m1", "_m2", "_s2"):
            v = getattr(self, fd, None)
            if v is not None:
                try:
                    os.close(v)
                except OSError:
                    pass
                setattr(self, fd, None)
        if self.tempdir:
            shutil.rmtree(self.tempdir, ignore_errors=True)

    def kill(self):
        """Power cut: SIGKILL the unix port, whatever it is doing."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
