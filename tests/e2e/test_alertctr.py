"""A flood of refused Commands on a virtual board (issue 16: flash wear): the board
writes its state once per reservation of alert counter values, not once per refusal,
and across restarts and power cuts (SIGKILL of the unix port) no alert counter value
goes out twice. The firmware test fw_alertctr.py counts the bytes on emulated flash
and cuts power at every block write; this one drives the real board over its link."""

import os
import signal
import struct

import pytest

from gbmeter.gbcs import pki
from gbmeter.supplier.provision import provision
from gbmeter.board.link import Link, T_ALERT
from gbmeter.supplier.session import Session

pytestmark = pytest.mark.e2e

GSME_ID = "00db1234567890a1"
SLOTS = ("state.a", "state.b")


def state_writes(d):
    """The sequence number of the newest record in the board folder's store (every
    state write adds one; firmware/store.py: magic GBS1, sequence u32 little-endian)."""
    seqs = [0]
    for name in SLOTS:
        for p in d.rglob(name):
            head = p.read_bytes()[:8]
            if head[:4] == b"GBS1":
                seqs.append(struct.unpack("<I", head[4:8])[0])
    return max(seqs)


def flood(port, n, tag):
    """Send n frames the meter refuses; the counters of the Alerts that come back."""
    got = []
    with Link(port) as link:
        for i in range(n):
            frames = link.gbcs(b"\xdd\x00 flood %s %d" % (tag.encode(), i))
            assert frames and frames[-1].type == T_ALERT
            for f in frames:
                assert f.payload[:3] == b"\xdf\x09\x03"          # a critical Alert
                got.append(int.from_bytes(f.payload[3:11], "big"))
    return got


def test_flood_restart_and_power_cut_never_reuse_an_alert_counter(start_board, tmp_path,
                                                                 variant):
    d = tmp_path / "flash"
    kd = tmp_path / "keys"
    pki.init(kd)
    s = Session(kd)
    b = start_board("gsme", dir=d)
    with Link(b.port) as link:
        provision(s, link, "gsme", GSME_ID)
    n = 200 if variant == "py" else 80
    w0 = state_writes(d)
    used = flood(b.port, n, "a")
    writes = state_writes(d) - w0
    print(f"{n} refused Commands, {len(used)} alerts: {writes} state writes")
    assert len(used) > n and 1 <= writes <= max(1, n // 64)
    b.stop()                                     # a clean restart
    b = start_board("gsme", dir=d)
    used += flood(b.port, 7, "b")
    os.killpg(b.pid, signal.SIGKILL)             # a power cut between frames
    b.stop()
    b = start_board("gsme", dir=d)
    used += flood(b.port, 3, "c")
    for i in range(len(used) - 1):
        assert used[i] < used[i + 1], f"alert counter {used[i + 1]} after {used[i]}"
