"""`gbmeter sr FILE --port P` with the SR 4.3 and 1.6 requests of ../shared/gbcs/duis on
virtual meters in the RTDS meters' places (ZAZ1 keys): the 1.6 ones go through the
whole chain as critical (Parse and Correlate, anomaly detection: a volume threshold
quarantines one, which is never sent), the 4.3 ones straight through as
non-critical (no threshold applies). Runs on .py firmware: the chain is the host's,
the same for every variant (test_paymode_read runs the meters in all three)."""

import json
import subprocess

import pytest

from gbmeter import paths

from simboards import GBMETER

pytestmark = pytest.mark.e2e

SHARED = paths.shared()


@pytest.fixture(scope="module")
def variant():
    return "py"


def gb(*args, timeout=120):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def duis(name):
    return SHARED / "gbcs" / "duis" / name


def zaz1_board(start_board, device, meter_id):
    b = start_board(device)
    r = gb("provision", "--port", b.port, "--device", device, "--id", meter_id, "--keys",
           SHARED / "gbcs" / "keys")
    assert r.returncode == 0, r.stderr
    return b


def sr(b, name, dcc, expect=0):
    r = gb("sr", duis(name), "--port", b.port, "--keys", SHARED / "gbcs" / "keys",
           "--dcc-dir", dcc, "--json")
    assert r.returncode == expect, r.stdout + r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else None


def mode(b):
    return json.loads(gb("registers", "--port", b.port, "--json").stdout)["mode"]


@pytest.mark.skipif(SHARED is None, reason="../shared/gbcs (DUIS requests, ZAZ1 keys) is absent")
def test_sr_runs_the_shared_4_3_and_1_6_requests(start_board, tmp_path):
    dcc = tmp_path / "dcc"
    dcc.mkdir()
    # at most one GCS02 an hour, and a threshold for every other use case that a read
    # would trip if reads were counted
    (dcc / "adt.json").write_text(json.dumps({"thresholds": [
        {"use_case": "GCS02", "limit": 1, "window_seconds": 3600},
        {"use_case": "*", "limit": 1, "window_seconds": 3600}]}))
    esme = zaz1_board(start_board, "esme", "00db1234567890a0")
    for _ in range(2):    # the read twice: non-critical, never counted nor quarantined
        out = sr(esme, "ECS19_4.3_SUCCESS_REQUEST_DUIS.XML", dcc)
        assert out["ok"] and out["use_case"] == "ECS19" and out["mac_valid"] is True
        assert out["dcc"] == "not applicable" and out["correlation"] == "non-critical"
        assert set(out["registers"]) == {"time1", "time2", "payment", "balance",
                                         "ec_balance", "acc_debt"}
    out = sr(esme, "ECS03_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML", dcc)
    assert out["ok"] and out["use_case"] == "ECS03" and out["correlation"] == "correlates"
    assert out["dcc"] == "pass" and out["signature_valid"] is True and mode(esme) == "prepayment"
    out = sr(esme, "ECS02_1.6_IMMEDIATE_SINGLE_SUCCESS_REQUEST_DUIS.XML", dcc)
    assert out["ok"] and out["use_case"] == "ECS02" and mode(esme) == "credit"
    gsme = zaz1_board(start_board, "gsme", "00db1234567890a1")
    out = sr(gsme, "GCS03_1.6_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", dcc)
    assert out["ok"] and out["use_case"] == "GCS03" and mode(gsme) == "prepayment"
    out = sr(gsme, "GCS02_1.6_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML", dcc)
    assert out["ok"] and out["use_case"] == "GCS02" and mode(gsme) == "credit"
    # a second GCS02 within the hour passes the volume threshold: quarantined, not sent
    before = json.loads(gb("registers", "--port", gsme.port, "--json").stdout)["counters"]
    r = gb("sr", duis("GCS02_1.6_IMMEDIATE_SUCCESS_REQUEST_DUIS.XML"), "--port", gsme.port,
           "--keys", SHARED / "gbcs" / "keys", "--dcc-dir", dcc)
    assert r.returncode == 3 and "quarantin" in (r.stdout + r.stderr).lower(), r.stdout + r.stderr
    after = json.loads(gb("registers", "--port", gsme.port, "--json").stdout)
    assert after["counters"] == before and after["mode"] == "credit"
    # the read of the third ZAZ1 meter, the GSME of RTDS GCS14
    a3 = zaz1_board(start_board, "gsme", "00db1234567890a3")
    assert gb("diag", "set", "--port", a3.port, "--time1", 5000, "--time2", 5000, "--payment",
              5000, "--acc-debt", 2500000, "--ec-balance", 500000, "--balance",
              2500000).returncode == 0
    out = sr(a3, "GCS14_4.3_SUCCESS_RELIABLE_GSME_REQUEST_DUIS.XML", dcc)
    assert out["ok"] and out["use_case"] == "GCS14"
    assert out["registers"] == {"acc_debt": 2500000, "ec_balance": 500000, "balance": 2500000,
                                "time1": 5000, "time2": 5000, "payment": 5000}
