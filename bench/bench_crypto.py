"""Crypto speed of the firmware: P-256 verify / sign / ECDH and the GBCS MAC in the
MicroPython unix port, and the same p256.py under CPython against the `ecdsa` package
(with precompute) and OpenSSL (`cryptography`).  Keys are made at run time.

    python bench/bench_crypto.py [--window W] [--json]

run() returns medians in ms and the heap bytes of a comb table for each window."""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from gbmeter import paths  # noqa: E402

WINDOWS = range(1, 9)

# Runs inside the unix port: argv = firmware dir, window for the headline figures.
_UNIX_SCRIPT = r"""
import sys, gc, time, json, os
sys.path.insert(0, sys.argv[1])
import p256, gbcsmac
window = int(sys.argv[2])

def med(fn, n):
    ts = []
    for _ in range(n):
        t = time.ticks_us()
        fn()
        ts.append(time.ticks_diff(time.ticks_us(), t))
    ts.sort()
    return ts[n // 2] / 1000

out = {}
priv, pub = p256.keypair()
priv2, pub2 = p256.keypair()
msg = os.urandom(150)
# Heap kept by one table: everything else is built before the first measurement.
p256.set_window(window)
sig = p256.sign(priv, msg)
for w in range(1, 9):
    gc.collect()
    before = gc.mem_alloc()
    t = p256.table(pub, w)
    gc.collect()
    out["table_heap_bytes_w%d" % w] = gc.mem_alloc() - before
    out["verify_ms_unix_w%d" % w] = 0
    t = None
for w in range(1, 9):
    p256.set_window(w)
    t = p256.table(pub, w)
    out["verify_ms_unix_w%d" % w] = med(lambda: p256.verify(t, msg, sig), 21)
    t = None
p256.set_window(window)
tab = p256.table(pub, window)
out["table_build_ms_unix"] = med(lambda: p256.table(pub, window), 5)
out["verify_ms_unix"] = med(lambda: p256.verify(tab, msg, sig), 31)
out["verify_ms_unix_no_table"] = med(lambda: p256.verify(pub, msg, sig), 15)
out["sign_ms_unix"] = med(lambda: p256.sign(priv, msg), 31)
out["ecdh_ms_unix"] = med(lambda: p256.ecdh(priv, pub2), 15)
z = p256.ecdh(priv, pub2)
apdu = (b"\xdf\x09\x01" + bytes(7) + b"\x01\x08" + bytes(8) + b"\x08" + bytes(8)
        + b"\x00\x02\x00\x6e\x58" + os.urandom(88) + b"\x40" + os.urandom(64))
out["mac_apdu_bytes"] = len(apdu)
out["mac_ms_unix"] = med(lambda: gbcsmac.wrap(z, apdu), 31)
out["unix_window"] = window
print(json.dumps(out))
"""


def _median_ms(fn, n):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts) * 1000


def run_unix(window):
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_crypto_unix.py"
        script.write_text(_UNIX_SCRIPT)
        proc = subprocess.run(
            [paths.micropython(), "-X", "heapsize=4M", str(script), str(paths.FIRMWARE),
             str(window)], capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError("unix port benchmark failed:\n" + proc.stdout + proc.stderr)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_cpython():
    import ecdsa
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, utils

    if str(paths.FIRMWARE) not in sys.path:
        sys.path.append(str(paths.FIRMWARE))
    import p256

    priv, pub = p256.keypair()
    msg = os.urandom(150)
    sig = p256.sign(priv, msg)
    tab = p256.table(pub)  # CPython default window
    assert p256.verify(tab, msg, sig)

    # The point needs its order for ecdsa's precompute (from_string leaves it out).
    point = ecdsa.ellipticcurve.PointJacobi(
        ecdsa.NIST256p.curve, int.from_bytes(pub[:32], "big"), int.from_bytes(pub[32:], "big"),
        1, ecdsa.NIST256p.order)
    vk = ecdsa.VerifyingKey.from_public_point(point, ecdsa.NIST256p, hashlib.sha256)
    vk.precompute()
    assert vk.verify(sig, msg)

    key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b"\x04" + pub)
    der = utils.encode_dss_signature(int.from_bytes(sig[:32], "big"),
                                     int.from_bytes(sig[32:], "big"))
    algo = ec.ECDSA(hashes.SHA256())
    key.verify(der, msg, algo)

    out = {
        "cpython_window": tab.window,
        "verify_ms_cpython": _median_ms(lambda: p256.verify(tab, msg, sig), 201),
        "verify_ms_cpython_no_table": _median_ms(lambda: p256.verify(pub, msg, sig), 51),
        "sign_ms_cpython": _median_ms(lambda: p256.sign(priv, msg), 101),
        "verify_ms_ecdsa_pkg": _median_ms(lambda: vk.verify(sig, msg), 201),
        "verify_ms_openssl": _median_ms(lambda: key.verify(der, msg, algo), 501),
    }
    out["cpython_vs_ecdsa_pkg"] = out["verify_ms_cpython"] / out["verify_ms_ecdsa_pkg"]
    return out


def unix_board_window():
    """The comb window the unix board uses (boards/unix/board.json ec_window), else 4."""
    try:
        return int(json.loads((paths.BOARDS / "unix" / "board.json").read_text())["ec_window"])
    except (OSError, KeyError, ValueError):
        return 4


def run(window=None):
    """Medians in ms (and table heap bytes) as one flat dict; window is the comb window
    for the unix-port headline figures (default: the unix board's)."""
    out = run_unix(window or unix_board_window())
    out.update(run_cpython())
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--window", type=int, default=None,
                    help="comb window for the unix headline figures (default: the unix "
                         "board's ec_window)")
    ap.add_argument("--json", action="store_true", help="print the dict as JSON")
    args = ap.parse_args(argv)
    r = run(args.window)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    w = r["unix_window"]
    print("P-256 / GBCS MAC, median ms (unix port window %d, CPython window %d)"
          % (w, r["cpython_window"]))
    rows = (
        ("verify, unix port, both tables", r["verify_ms_unix"]),
        ("verify, unix port, key without table", r["verify_ms_unix_no_table"]),
        ("sign, unix port", r["sign_ms_unix"]),
        ("ECDH, unix port", r["ecdh_ms_unix"]),
        ("MAC (KDF + GCM tag, %d-byte APDU), unix port" % r["mac_apdu_bytes"],
         r["mac_ms_unix"]),
        ("table build, unix port", r["table_build_ms_unix"]),
        ("verify, CPython p256.py", r["verify_ms_cpython"]),
        ("verify, CPython ecdsa package (precompute)", r["verify_ms_ecdsa_pkg"]),
        ("verify, OpenSSL (cryptography)", r["verify_ms_openssl"]),
    )
    for name, v in rows:
        print("  %-48s %8.3f" % (name, v))
    print("  %-48s %8.2f" % ("p256.py / ecdsa package (CPython verify)",
                             r["cpython_vs_ecdsa_pkg"]))
    print("\nwindow  table heap bytes  verify ms (unix port)")
    for w in WINDOWS:
        print("  %d     %8d          %6.2f" % (w, r["table_heap_bytes_w%d" % w],
                                             r["verify_ms_unix_w%d" % w]))


if __name__ == "__main__":
    main()
