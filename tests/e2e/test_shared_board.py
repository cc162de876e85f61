"""One board shared by several processes (issue 12 item 1), in every variant: a port
lock makes them take turns, counters are taken atomically, and every call reports
exactly what the meter did."""

import json
import subprocess

import pytest

from firsthour import GSME_ID, provisioned, registers
from simboards import GBMETER

pytestmark = pytest.mark.e2e


def test_concurrent_commands_on_one_board(start_board, tmp_path):
    """Six processes send Update Debt to one board at once (and two read it meanwhile):
    every call says exactly what the meter did (the debt it reports is the sum of the
    amounts of the calls that said success), and no two took the same counter."""
    b, opts = provisioned(start_board, tmp_path)
    before = registers(b.port)
    amounts = [1 << i for i in range(6)]
    procs = [subprocess.Popen([GBMETER, "manage-debt", *map(str, opts), "--json",
                               "--time1", str(a)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for a in amounts]
    readers = [subprocess.Popen([GBMETER, "registers", "--port", b.port, "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for _ in range(2)]
    results = []
    for a, p in zip(amounts, procs):
        out, err = p.communicate(timeout=120)
        results.append((a, p.returncode, out, err))
    for p in readers:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        assert json.loads(out)["id"] == GSME_ID
    after = registers(b.port)
    ok = [a for a, rc, out, _ in results if rc == 0 and json.loads(out)["ok"]]
    assert after["time1"] - before["time1"] == sum(ok)
    counters = [json.loads(out)["counter"] for _, rc, out, _ in results if out]
    assert len(counters) == len(set(counters)), counters
    for a, rc, out, err in results:
        assert rc == 0, f"manage-debt --time1 {a}: rc {rc}: {out} {err}"
        assert "Traceback" not in err
    (last,) = after["counters"].values()      # one Supplier: its last counter accepted
    assert last == max(counters)
