"""One process at a time on a board's port.

Two programs writing frames to one serial port interleave their bytes and read each
other's answers, so every gbmeter Link (and `gbmeter deploy`) holds an exclusive
fcntl lock on a lock file named after the port's real path (a symlink such as
/dev/serial/by-id/... and the device it points at are one port; a pyserial URL is
its own key). Whoever holds it writes who it is into the file, so a process that
has to wait can say who it waits for.

The lock files live in $GBMETER_LOCK_DIR, else <temp dir>/gbmeter-locks (shared by
every user, as the ports are). The kernel drops the lock when its holder exits, even
on SIGKILL, so a stale file never blocks anyone. Waiting gives up after
$GBMETER_PORT_WAIT seconds (default 60), naming the holder.

Within one process the lock is counted, so a second Link on the same port in the
same process does not wait for itself.
"""

import errno
import fcntl
import hashlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from gbmeter.errors import UserError

ENV_DIR = "GBMETER_LOCK_DIR"
ENV_WAIT = "GBMETER_PORT_WAIT"
DEFAULT_WAIT = 60.0
NOTICE_AFTER = 0.5   # seconds of waiting before saying so on stderr

_held = {}           # key -> [fd, count]: the locks this process holds


class PortBusy(UserError):
    """Another process held the port for longer than we were willing to wait."""


def key(port):
    """What identifies a port: the real path of a device, else the URL as given."""
    port = str(port)
    if "://" in port:
        return port
    return os.path.realpath(port)


def lock_dir():
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else Path(tempfile.gettempdir()) / "gbmeter-locks"


def lock_path(port):
    k = key(port)
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", k).strip("_")[-60:]
    tag = hashlib.sha256(k.encode()).hexdigest()[:10]
    return lock_dir() / f"{safe}-{tag}.lock"


def default_wait():
    text = os.environ.get(ENV_WAIT)
    if text is None:
        return DEFAULT_WAIT
    try:
        wait = float(text)
    except ValueError:
        wait = -1
    if not wait >= 0:
        raise UserError(f"{ENV_WAIT}={text!r} is not a number of seconds >= 0")
    return wait


def _open(path):
    d = path.parent
    try:
        d.mkdir(parents=True, exist_ok=True)
        if d.stat().st_uid == os.getuid():
            os.chmod(d, 0o1777)      # every user's gbmeter shares the folder
    except OSError as e:
        raise UserError(f"cannot make the port lock folder {d}: {e.strerror} "
                        f"(set {ENV_DIR} to a writable folder)") from None
    try:
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                os.fchmod(fd, 0o666)
            except OSError:
                pass
    except OSError as e:
        raise UserError(f"cannot open the port lock {path}: {e.strerror} "
                        f"(set {ENV_DIR} to a writable folder)") from None
    return fd


def holder(path):
    """Who holds the lock file, in words (from what the holder wrote into it)."""
    try:
        info = json.loads(Path(path).read_text() or "{}")
    except (OSError, ValueError):
        info = {}
    if not info.get("pid"):
        return "another process"
    what = f"pid {info['pid']}"
    if info.get("command"):
        what += f" ({info['command']})"
    if info.get("since"):
        what += f", since {time.strftime('%H:%M:%S', time.localtime(info['since']))}"
    return what


def _command():
    argv = list(sys.argv)
    if argv:
        argv[0] = os.path.basename(argv[0])
        if argv[0] in ("__main__.py", "-m"):
            argv[0] = "gbmeter"
    text = " ".join(argv)
    return text if len(text) <= 120 else text[:117] + "..."


def acquire(port, wait=None, notify=None):
    """Take the lock of `port`, waiting up to `wait` seconds (default
    $GBMETER_PORT_WAIT or 60). notify(text) is told once when we have to wait
    (default: a line on stderr). Raises PortBusy naming the holder on timeout."""
    k = key(port)
    if k in _held:
        _held[k][1] += 1
        return k
    wait = default_wait() if wait is None else wait
    path = lock_path(port)
    fd = _open(path)
    start = time.monotonic()
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as e:
                if e.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise UserError(f"cannot lock {path}: {e.strerror}") from None
            waited = time.monotonic() - start
            if waited >= wait:
                raise PortBusy(f"{port} is in use by {holder(path)}: gave up after "
                               f"{waited:.1f} s (one process at a time on a board's port; "
                               f"{ENV_WAIT} sets how long to wait)")
            if not told and waited >= NOTICE_AFTER:
                told = True
                text = f"waiting for {port}: in use by {holder(path)}"
                if notify is None:
                    print(f"gbmeter: {text}", file=sys.stderr, flush=True)
                else:
                    notify(text)
            time.sleep(0.05)
    except BaseException:
        os.close(fd)
        raise
    info = {"pid": os.getpid(), "command": _command(), "since": time.time(), "port": str(port)}
    try:
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
    except OSError:
        pass   # the lock holds without the note
    _held[k] = [fd, 1]
    return k


def release(k):
    """Give back a lock taken with acquire (its return value)."""
    entry = _held.get(k)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] > 0:
        return
    del _held[k]
    fd = entry[0]
    try:
        os.ftruncate(fd, 0)
    except OSError:
        pass
    os.close(fd)   # closing drops the flock


class PortLock:
    """`with PortLock(port):` holds the port's lock for the block."""

    def __init__(self, port, wait=None, notify=None):
        self.port, self.wait, self.notify = port, wait, notify
        self._key = None

    def __enter__(self):
        self._key = acquire(self.port, self.wait, self.notify)
        return self

    def __exit__(self, *exc):
        release(self._key)
        self._key = None
