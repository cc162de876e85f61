"""make bench: speed and memory figures, printed and written to bench/results.json.

heap_peak_bytes is the heap one Command needs beyond what the meter holds at rest:
the smallest unix-port heap (found by binary search, firmware as .mpy) in which a
provisioned board still serves signed Commands, less the heap it holds between
Commands. (MicroPython cannot report a peak of live heap, and counting allocations
with the collector off counts every big-integer temporary, megabytes per verify.)
heap_peak_bytes_read is the same for the prepayment registers read (GCS14, SR 4.3:
a non-critical Command, its Response MAC'd and its registers AES-GCM encrypted on the
meter, checked and decrypted on the host). Provisioning (two key pairs made on the
meter) may need more than a Command: the *_provisioned figures boot a board already
provisioned in a large heap (its flash folder copied), so only the Commands bound
the search.

Crypto figures come from bench_crypto.py (the firmware's own p256/gbcsmac modules in
the unix port and under CPython, next to the ecdsa package and OpenSSL). The round
trip is a signed GCS04a reset through a virtual board: build, sign, wrap on the host,
frame, execute and commit on the meter, signed Response back, verified. Flash figures
(bytes and erases per accepted and per refused Command) come from bench_flash.py: the
meter on littlefs over an emulated, counting flash chip in the unix port. The 32-bit
heap figures (qemu32_*) come from bench_qemu.py: the firmware on the qemu_mps2 board
(Cortex-M3 in qemu), memory only (qemu is not cycle-accurate)."""

import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_crypto  # noqa: E402
import bench_duis  # noqa: E402
import bench_flash  # noqa: E402
import bench_qemu  # noqa: E402

from gbmeter.gbcs import codec, pki  # noqa: E402
from gbmeter.supplier.provision import provision  # noqa: E402
from gbmeter.board.link import Link  # noqa: E402
from gbmeter.supplier.answer import check_answer  # noqa: E402
from gbmeter.supplier.session import Session  # noqa: E402
from benchmeter import GSME_ID, reset_command, serves  # noqa: E402
from gbmeter.board.sim import VirtualBoard  # noqa: E402
from gbmeter.dcc import duis, srxml  # noqa: E402
from gbmeter.dcc.precommand import transform  # noqa: E402

ROUNDS = 60


def read_command(s, counter):
    """GCS14 Read GSME Prepayment Registers, as the DCC builds it: not signed, MAC'd."""
    req = duis.parse_request(srxml.read_prepayment_registers_xml(
        s.supplier.title, bytes.fromhex(GSME_ID), counter))
    return s.command(transform(req))[0]


def roundtrip():
    with tempfile.TemporaryDirectory() as work:
        kd = Path(work) / "keys"
        pki.init(kd)
        s = Session(kd)
        with VirtualBoard(dir=Path(work) / "b", device="gsme") as vb, Link(vb.port) as link:
            provision(s, link, "gsme", GSME_ID)
            times = []
            for i in range(ROUNDS):
                link.diag("set", fields={"time1": 1000 + i})
                cmd = reset_command(s, 10 + i)
                t0 = time.perf_counter()
                frames = link.gbcs(cmd)
                r = check_answer(s, codec.parse_message(cmd)["apdu"], frames)
                times.append((time.perf_counter() - t0) * 1000)
                assert r["ok"], r
            t0 = time.perf_counter()
            n = 0
            for i in range(ROUNDS):
                frames = link.gbcs(reset_command(s, 1000 + i))
                n += 1
            rate = n / (time.perf_counter() - t0)
    times.sort()
    return {"roundtrip_ms_median": round(statistics.median(times), 2),
            "roundtrip_ms_p95": round(times[int(len(times) * 0.95) - 1], 2),
            "commands_per_s": round(rate, 1)}


def _board_handles_commands(heap, work, s, make=reset_command, provisioned=None):
    """Boot a board with this heap (.mpy, as small boards run), provision it, and run
    four signed resets (the first also builds the Supplier's comb table), or four of
    what `make` builds. With `provisioned` (a board folder) the board starts from a
    copy of it instead of being provisioned. Returns the heap the meter holds at
    rest, or None if anything failed."""
    d = work / f"h{heap}{make.__name__}{'p' if provisioned else ''}"
    if provisioned:
        shutil.copytree(provisioned, d)
    try:
        with VirtualBoard(dir=d, device="gsme", heap=f"{heap // 1024}K",
                          mpy=True, start_timeout=10) as vb, Link(vb.port, timeout=10) as link:
            if not provisioned:
                provision(s, link, "gsme", GSME_ID)
            rest = link.diag("heap")["alloc"]
            return rest if serves(s, link, make) else None
    except Exception:
        return None


def smallest_heap(make=reset_command, suffix="", provisioned_first=False):
    """Binary search (1 KiB steps) for the smallest unix-port heap that serves
    Commands (those `make` builds); the heap a Command needs is that less what the
    meter holds at rest. provisioned_first: each board starts provisioned (see the
    module docstring)."""
    with tempfile.TemporaryDirectory() as work:
        work = Path(work)
        kd = work / "keys"
        pki.init(kd)
        s = Session(kd)
        base = None
        if provisioned_first:
            base = work / "provisioned"
            with VirtualBoard(dir=base, device="gsme", mpy=True) as vb, Link(vb.port) as link:
                provision(s, link, "gsme", GSME_ID)
        lo, hi = 16, 256  # in KiB: lo fails, hi works
        rest = _board_handles_commands(hi * 1024, work, s, make, base)
        if rest is None:
            return {}
        while hi - lo > 1:
            mid = (lo + hi) // 2
            r = _board_handles_commands(mid * 1024, work, s, make, base)
            if r is None:
                lo = mid
            else:
                hi, rest = mid, r
        return {"heap_min_bytes_mpy" + suffix: hi * 1024, "heap_rest_bytes" + suffix: rest,
                "heap_peak_bytes" + suffix: hi * 1024 - rest}


def main():
    results = bench_crypto.run()
    results.update(roundtrip())
    results.update(smallest_heap())
    results.update(smallest_heap(read_command, "_read"))   # SR 4.3: the read's heap
    results.update(smallest_heap(reset_command, "_provisioned", True))
    results.update(smallest_heap(read_command, "_read_provisioned", True))
    results.update(bench_duis.run())    # DUIS web service round trip and SRs per second
    results.update(bench_flash.run())   # flash bytes per accepted / refused Command
    results.update(bench_qemu.run())    # 32-bit heap figures on the qemu_mps2 board
    (HERE / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    width = max(len(k) for k in results)
    for k in sorted(results):
        print(f"{k:{width}}  {results[k]}")
    print(f"written to {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
