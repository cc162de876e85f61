"""make bench: speed and memory figures, printed and written to bench/results.json.

Crypto figures come from bench_crypto.py (the firmware's own p256/gbcsmac modules in
the unix port and under CPython, next to the ecdsa package and OpenSSL). The round
trip is a signed GCS04a reset through a virtual board: build, sign, wrap on the host,
frame, execute and commit on the meter, signed Response back, verified."""

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_crypto  # noqa: E402

from gbmeter import codec, keys  # noqa: E402
from gbmeter.cmd_provision import provision  # noqa: E402
from gbmeter.link import Link  # noqa: E402
from gbmeter.session import Session, check_answer  # noqa: E402
from gbmeter.sim import VirtualBoard  # noqa: E402

ROUNDS = 60
GSME_ID = "00db1234567890a1"


def reset_command(s, counter):
    payload = codec.change_debt(1, 0, 0, 0)
    content = codec.build_gbz([(0x0705, 0x02, payload)])
    pre = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(GSME_ID), 0x0F01, content)
    return s.command(pre)[0]


def roundtrip():
    with tempfile.TemporaryDirectory() as work:
        kd = Path(work) / "keys"
        keys.init(kd)
        s = Session(kd)
        with VirtualBoard(dir=Path(work) / "b", device="gsme") as vb, Link(vb.port) as link:
            provision(s, link, "gsme", GSME_ID)
            link.diag("heap", measure=True)
            times = []
            for i in range(ROUNDS):
                link.diag("set", fields={"time1": 1000 + i})
                cmd = reset_command(s, 10 + i)
                t0 = time.perf_counter()
                frames = link.gbcs(cmd)
                r = check_answer(s, codec.parse_message(cmd)["apdu"], frames)
                times.append((time.perf_counter() - t0) * 1000)
                assert r["ok"], r
            peak = link.diag("heap")["peak"]
            t0 = time.perf_counter()
            n = 0
            for i in range(ROUNDS):
                frames = link.gbcs(reset_command(s, 1000 + i))
                n += 1
            rate = n / (time.perf_counter() - t0)
    times.sort()
    return {"roundtrip_ms_median": round(statistics.median(times), 2),
            "roundtrip_ms_p95": round(times[int(len(times) * 0.95) - 1], 2),
            "commands_per_s": round(rate, 1),
            "heap_peak_bytes": peak}


def main():
    results = bench_crypto.run()
    results.update(roundtrip())
    (HERE / "results.json").write_text(json.dumps(results, indent=1, sort_keys=True))
    width = max(len(k) for k in results)
    for k in sorted(results):
        print(f"{k:{width}}  {results[k]}")
    print(f"written to {HERE / 'results.json'}")


if __name__ == "__main__":
    main()
