"""State survives restarts and power cuts of a virtual board (SIGKILL of the unix port
at random instants while it handles a Command)."""

import os
import random
import signal
import time

import pytest

from gbmeter.gbcs import codec, keys, pki
from gbmeter.supplier.provision import provision
from gbmeter.board.link import Link, LinkError, T_GBCS, encode
from gbmeter.supplier.session import Session

pytestmark = pytest.mark.e2e

GSME_ID = "00db1234567890a1"


def reset(s, counter, register):
    payload = codec.change_debt(1, 0, 1 if register == 2 else 0, register * 2)
    content = codec.build_gbz([(0x0705, 0x02, payload)])
    pre = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(GSME_ID), 0x0F01, content)
    return s.command(pre)[0]


def state(link):
    r = link.diag("registers")
    r.pop("alerts", None)
    r.pop("alert_ctr", None)
    return r


def test_restart_preserves_all_state(start_board, tmp_path):
    d = tmp_path / "flash"
    b = start_board("gsme", dir=d)
    with Link(b.port) as link:
        link.diag("set", fields={"time1": 111000, "time2": 222000, "payment": 333000,
                                 "balance": -4000, "mode": "prepayment", "clock": 86400,
                                 "time1_rate": 1000, "payment_pct": 2500})
        before = state(link)
    b.stop()
    b2 = start_board(None, dir=d)  # the folder decides (naming another device is an error)
    with Link(b2.port) as link:
        assert state(link) == before


def test_power_cut_mid_command(start_board, tmp_path, variant):
    """Kill the unix port at random instants after a reset Command was sent; after each
    cut the board restarts on its folder with exactly the old or the new state."""
    d = tmp_path / "flash"
    kd = tmp_path / "keys"
    pki.init(kd)
    s = Session(kd)
    b = start_board("gsme", dir=d)
    with Link(b.port) as link:
        provision(s, link, "gsme", GSME_ID)
    rng = random.Random(int(os.environ.get("GBMETER_CUT_SEED", "7")))
    cuts = int(os.environ.get("GBMETER_CUTS", "12" if variant == "py" else "4"))
    counter, outcomes = 100, {"old": 0, "new": 0}
    for i in range(cuts):
        register = i % 3
        with Link(b.port) as link:
            link.diag("set", fields={("time1", "time2", "payment")[register]: 5000 + i})
            old = state(link)
            counter += 1
            link.write(encode(T_GBCS, 1, reset(s, counter, register)))
            time.sleep(rng.uniform(0, 0.1))  # a cold board needs ~30 ms
            os.killpg(b.pid, signal.SIGKILL)  # the power cut
        b.stop()
        b = start_board("gsme", dir=d)
        with Link(b.port) as link:
            now = state(link)
        name = ("time1", "time2", "payment")[register]
        new = dict(old, **{name: 0})
        new["counters"] = dict(old["counters"], **{s.supplier.eui: counter})
        assert now in (old, new), f"torn state after cut {i}"
        outcomes["new" if now == new else "old"] += 1
    print(f"power cuts mid-Command: {cuts}, state old {outcomes['old']}, new {outcomes['new']}")
