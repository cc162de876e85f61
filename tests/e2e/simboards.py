"""Virtual boards for end-to-end tests, started with `gbmeter sim --json` exactly as a
user starts them."""

import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

GBMETER = str(Path(sys.executable).parent / "gbmeter")

SMALL_HEAP = os.environ.get("GBMETER_SMALL_HEAP", "64K")

VARIANTS = {
    "py": [],
    "mpy": ["--mpy"],
    # Small boards run compiled modules in a small heap: 64K, as on the smallest
    # boards, although the 64-bit unix port doubles every pointer.
    "smallheap": ["--mpy", "--heap", SMALL_HEAP],
}


class SimBoard:
    """A `gbmeter sim` process and what it printed."""

    def __init__(self, dir, device="gsme", extra=(), timeout=60):
        # device None: no --device, so a reused folder runs the meter it holds
        self.argv = [GBMETER, "sim", "--json", "--dir", str(dir),
                     *(["--device", device] if device else []), *extra]
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        if not line:
            self.proc.kill()
            err = self.proc.stderr.read()
            raise RuntimeError(f"gbmeter sim did not start: {err}")
        info = json.loads(line)
        self.port, self.dir, self.pid = info["port"], Path(info["dir"]), info["pid"]
        self.device = info["device"]

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def unix_port_alive(self):
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        # a zombie is not alive: look at its state
        try:
            return Path(f"/proc/{self.pid}/stat").read_text().split()[2] != "Z"
        except OSError:
            return False


def wait_until(pred, timeout=5.0, step=0.05):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
