"""The 32-bit figures: the firmware on the qemu_mps2 board (MicroPython's qemu port,
Cortex-M3, built by gbmeter.board.qemu), where pointers are 4 bytes, not the unix
port's 8. Memory only: qemu is not cycle-accurate, so no timing comes from it.

  qemu32_heap_min_bytes   the smallest heap (1 KiB steps) in which a provisioned board
                          serves signed Commands (four GCS04a resets, the first also
                          building the Supplier's comb table)
  qemu32_heap_rest_bytes  what the meter holds between Commands in that heap
                          (gc.mem_alloc after a collection, provisioned)
  qemu32_heap_peak_bytes  the heap one Command needs beyond that: min less rest
  qemu32_serves_in_64k    whether the board serves Commands in its own 64K heap

The firmware is deployed once with mpremote, as `make deploy` does; each heap tried
then powers on a copy of that flash with `heap=` on qemu's command line."""

import shutil
import sys
import tempfile
from pathlib import Path

from gbmeter.board import qemu
from gbmeter.board.link import Link
from gbmeter.gbcs import pki
from gbmeter.supplier.provision import provision
from gbmeter.supplier.session import Session
from benchmeter import GSME_ID, serves

GOAL = 64 * 1024


def _serves(heap, flash, work, s):
    """The heap the meter holds at rest if a board with this heap boots, is provisioned
    and answers four signed resets with verified Responses; else None."""
    d = work / f"h{heap}"
    d.mkdir()
    shutil.copy(flash, d / qemu.FLASH)
    try:
        with qemu.QemuBoard(dir=d, heap=str(heap), deploy=False, start_timeout=30) as vb, \
                Link(vb.port, timeout=30) as link:
            provision(s, link, "gsme", GSME_ID)
            rest = link.diag("heap")["alloc"]
            return rest if serves(s, link) else None
    except Exception:
        return None
    finally:
        shutil.rmtree(d, ignore_errors=True)


def run():
    why = qemu.missing()
    if why:
        print(f"qemu_mps2 (32-bit) figures skipped: {why}", file=sys.stderr)
        return {"qemu32_skipped": why}
    with tempfile.TemporaryDirectory(prefix="gbmeter-bench-qemu-") as work:
        work = Path(work)
        kd = work / "keys"
        pki.init(kd)
        s = Session(kd)
        with qemu.QemuBoard(dir=work / "deployed", device="gsme"):
            pass  # deployed as `make deploy` does; the flash file keeps it
        flash = work / "deployed" / qemu.FLASH
        at_goal = _serves(GOAL, flash, work, s)
        lo, hi = 16, 256  # KiB: lo fails, hi works
        rest = at_goal if at_goal is not None else _serves(hi * 1024, flash, work, s)
        if rest is None:
            return {"qemu32_serves_in_64k": False}
        if at_goal is not None:
            hi = GOAL // 1024
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = _serves(mid * 1024, flash, work, s)
            if r is None:
                lo = mid
            else:
                hi, rest = mid, r
    return {"qemu32_serves_in_64k": at_goal is not None, "qemu32_heap_min_bytes": hi * 1024,
            "qemu32_heap_rest_bytes": rest, "qemu32_heap_peak_bytes": hi * 1024 - rest}


if __name__ == "__main__":
    for k, v in sorted(run().items()):
        print(f"{k}  {v}")
