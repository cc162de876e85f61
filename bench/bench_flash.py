"""Flash wear: bytes the firmware writes to flash per accepted and per refused Command.

The meter runs in the unix port as a board runs it (appboot, the store on littlefs,
os.VfsLfs2) over an emulated NOR flash chip of RP2040 geometry (4 KiB erase blocks,
256-byte pages) that counts what its block writes carry and its erases. A provisioned
GSME takes signed GCS04a resets (each commits its effects and counters as one state
record), then a flood of refused frames (garbage, bad MAC, bad signature, replay),
whose alerts take alert counter values reserved ahead (firmware/alerts.py): the
state is written once per reservation, not once per refusal.

    python bench/bench_flash.py [--json]

run() returns the figures; bench/run.py prints them with the others."""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "host"))

from gbmeter import paths  # noqa: E402

ACCEPTED = 64
REFUSED = 64 * 8

# Runs inside the unix port: argv = firmware dir, accepted count, refused count.
_UNIX_SCRIPT = r"""
import sys, os, json, struct
sys.path.insert(0, sys.argv[1])
import appboot, envelope, gbcsmac, link, p256

BS, BLOCKS, PAGE = 4096, 64, 256
SUPPLIER, ACB, METER = "90b3d51f30010000", "90b3d51f30000002", "00db1234567890a1"

class Flash:
    def __init__(self):
        self.img = bytearray(b"\xff" * BS * BLOCKS)
        self.bytes = self.erases = 0
    def readblocks(self, block, buf, off=0):
        a = block * BS + off
        buf[:] = self.img[a:a + len(buf)]
    def writeblocks(self, block, buf, off=None):
        a = block * BS + (off or 0)
        self.img[a:a + len(buf)] = buf
        self.bytes += len(buf)
    def ioctl(self, op, arg):
        if op == 4:
            return BLOCKS
        if op == 5:
            return BS
        if op == 6:
            self.img[arg * BS:(arg + 1) * BS] = b"\xff" * BS
            self.erases += 1
        return 0

flash = Flash()
os.VfsLfs2.mkfs(flash, readsize=PAGE, progsize=PAGE, lookahead=32)
os.mount(os.VfsLfs2(flash, readsize=PAGE, progsize=PAGE, lookahead=32), "/flash")
m = appboot.make_meter({"root": "/flash", "name": "bench"}, {"device": "gsme"})
sup_ds, sup_ds_pub = p256.keypair()
_, sup_ka_pub = p256.keypair()
acb_ka, acb_ka_pub = p256.keypair()
reply, _ = m.diag("provision", {"anchors": {
    SUPPLIER: {"role": 2, "ds": sup_ds_pub.hex(), "ka": sup_ka_pub.hex()},
    ACB: {"role": 4, "ka": acb_ka_pub.hex()}}})
z = p256.ecdh(acb_ka, bytes.fromhex(reply["ka"]))
# GCS04a Reset Debt Register, time debt 1 (NOTES 5): one Change Debt, absolute, 0
debt = struct.pack("<IBiBBIHBiH", 1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
content = b"\x01\x09\x01" + struct.pack(">BHH", 1, 0x0705, len(debt) + 3) + b"\x01\x00\x02" + debt

def command(counter, key=sup_ds):
    apdu = envelope.build_apdu(1, counter, bytes.fromhex(SUPPLIER), bytes.fromhex(METER),
                               0x0F01, content, key)
    return gbcsmac.wrap(z, apdu)

def run(frames, n, want):
    b, e, s = flash.bytes, flash.erases, m.store.seq
    for i in range(n):
        out = m.gbcs(frames(i))
        assert out[-1][0] == want, out
    return flash.bytes - b, flash.erases - e, m.store.seq - s

accepted, refused = int(sys.argv[2]), int(sys.argv[3])
a = run(lambda i: command(100 + i), accepted, link.T_RESPONSE)
other, _ = p256.keypair()
good = command(100 + accepted)
bad_mac = bytearray(good)
bad_mac[-1] ^= 1
bad = [b"\xdd\x00 garbage", bytes(bad_mac), command(100 + accepted, other), command(5)]
r = run(lambda i: bad[i % len(bad)], refused, link.T_ALERT)
print(json.dumps({
    "flash_bytes_per_accepted_command": round(a[0] / accepted),
    "flash_erases_per_accepted_command": round(a[1] / accepted, 2),
    "flash_bytes_per_refused_command": round(r[0] / refused, 1),
    "flash_erases_per_refused_command": round(r[1] / refused, 3),
    "flash_state_writes_per_64_refused": round(r[2] * 64 / refused, 2),
    "flash_refused_per_state_write": round(refused / r[2], 1) if r[2] else None,
    "flash_state_record_bytes": max(os.stat("/flash/state." + x)[6] for x in "ab"),
}))
"""


def run(accepted=ACCEPTED, refused=REFUSED):
    """The flash figures (dict), measured in the unix port."""
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "bench_flash_unix.py"
        script.write_text(_UNIX_SCRIPT)
        proc = subprocess.run([paths.micropython(), "-X", "heapsize=4M", str(script),
                               str(paths.FIRMWARE), str(accepted), str(refused)],
                              capture_output=True, text=True, timeout=600)
    if proc.returncode:
        raise RuntimeError(f"flash bench failed in the unix port:\n{proc.stdout}{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", action="store_true")
    out = run()
    if ap.parse_args().json:
        print(json.dumps(out, indent=1, sort_keys=True))
    else:
        for k in sorted(out):
            print(f"{k:36}  {out[k]}")


if __name__ == "__main__":
    main()
