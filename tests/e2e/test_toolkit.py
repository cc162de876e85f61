"""The CLI a test engineer drives, end to end on virtual boards."""

import json
import os
import subprocess

import pytest

from simboards import GBMETER

pytestmark = pytest.mark.e2e


def gb(*args, env=None):
    r = subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                       timeout=120, env=env)
    return r


def demo_table(out):
    """{(meter, register): (sent, held, after, expected)} from the demo's table."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 6 and f[0] in ("GSME", "ESME"):
            rows[f[0], f[1]] = tuple(int(x) for x in f[2:])
    return rows


@pytest.mark.parametrize("profile", ["smets2", "smets2-pre", "smets1-secure"])
def test_demo_runs_the_whole_job(tmp_path, profile):
    r = gb("demo", "--profile", profile, "--keep", tmp_path / "demo")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"every meter behaved as a {profile} meter should" in r.stdout
    table = demo_table(r.stdout)
    assert len(table) == 6
    verified = r.stdout.count("success, Response signature verified")
    # the registers are read over GBCS before and after the resets, on both meters
    assert r.stdout.count("Read Instantaneous Prepay Values") == 4
    assert r.stdout.count("success, Response MAC verified, registers decrypted") == 4
    # prepayment set over GBCS on both meters, the ESME switched to credit before its resets
    assert r.stdout.count("Update Payment Mode prepayment: GCS03") == 1
    assert r.stdout.count("Update Payment Mode prepayment: ECS03") == 1
    assert r.stdout.count("Update Payment Mode credit: ECS02") == 1
    if profile == "smets2-pre":
        # Update Debt and the payment modes; each reset refused by the host, one forced
        # per meter: 8F1E
        assert verified == 2 + 3
        assert r.stdout.count("refused by the host") == 6
        assert r.stdout.count("as expected: the meter refused the Command with alert 8F1E") == 2
        assert all(after == held == sent for sent, held, after, _ in table.values())
    else:
        assert verified == 8 + 3  # 2 x (update + 3 resets) + the payment modes
        assert all(after == 0 for _, _, after, _ in table.values())
    whole = profile == "smets1-secure"
    assert table["GSME", "time1"][:2] == (1000456, 1000000 if whole else 1000456)
    assert table["ESME", "time2"][:2] == (500789, 500000 if whole else 500789)


def test_reset_and_manage_debt_cli(start_board, tmp_path):
    b = start_board("esme")
    k = tmp_path / "keys"
    assert gb("keys", "init", k).returncode == 0
    r = gb("provision", "--port", b.port, "--device", "esme", "--id", "00DB1234567890A0",
           "--keys", k, "--json")
    assert r.returncode == 0, r.stderr
    dcc = ["--keys", k, "--dcc-dir", tmp_path / "dcc", "--json"]
    r = gb("manage-debt", "--port", b.port, "--time1", 1000, "--payment", 5000, *dcc)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] and out["use_case"] == "ECS07"
    regs = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert (regs["time1"], regs["time2"], regs["payment"]) == (1000, 0, 5000)
    assert {"balance", "mode", "device", "counters"} <= set(regs)
    first = out["counter"]
    for reg in ("payment", "time1", "time2"):  # time2 is already zero: still success
        r = gb("reset-debt", "--port", b.port, "--register", reg, *dcc)
        out = json.loads(r.stdout)
        assert r.returncode == 0 and out["ok"] and out["use_case"] == "ECS07a", out
        assert out["counter"] > first  # counters are never reused
        first = out["counter"]
    regs = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert (regs["time1"], regs["time2"], regs["payment"]) == (0, 0, 0)


def test_diag_cli_and_fault_injection(start_board, tmp_path):
    b = start_board("gsme")
    k = tmp_path / "keys"
    gb("keys", "init", k)
    gb("provision", "--port", b.port, "--device", "gsme", "--id", "00DB1234567890A1", "--keys", k)
    assert gb("diag", "set", "--port", b.port, "--time1", 5000, "--time1-rate", 2000,
              "--time1-freq", 0, "--balance", 100000, "--mode", "prepayment").returncode == 0
    r = gb("diag", "advance", "--port", b.port, 4 * 3600, "--json")
    out = json.loads(r.stdout)
    assert out["alerts"] == ["81A7"]  # Debt Collection Completed, time debt 1
    regs = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert regs["time1"] == 0 and regs["balance"] == 95000
    bad = gb("diag", "set", "--port", b.port, "--time1", -5)
    assert bad.returncode == 1 and "time1" in bad.stderr
    assert gb("diag", "fault", "--port", b.port, "--at", 1, "--status", "hardware").returncode == 0
    r = gb("reset-debt", "--port", b.port, "--register", "payment", "--keys", k,
           "--dcc-dir", tmp_path / "dcc", "--json")
    out = json.loads(r.stdout)
    assert r.returncode == 2 and not out["ok"] and out["results"][0]["status"] == "HARDWARE_FAILURE"


def test_quarantined_reset_is_never_sent(start_board, tmp_path):
    """Past the volume threshold the DCC quarantines the next reset: exit 3, the reason
    named, nothing reaches the meter (its registers and counter stay as they were),
    and the quarantine log lists it."""
    b = start_board("gsme")
    k, dcc = tmp_path / "keys", tmp_path / "dcc"
    gb("keys", "init", k)
    gb("provision", "--port", b.port, "--device", "gsme", "--id", "00DB1234567890A1", "--keys", k)
    dcc.mkdir()
    (dcc / "adt.json").write_text(json.dumps({"thresholds": [
        {"use_case": "GCS04a", "limit": 1, "window_seconds": 3600}]}))
    args = ["--port", b.port, "--keys", k, "--dcc-dir", dcc, "--json"]
    assert gb("reset-debt", "--register", "time1", *args).returncode == 0
    gb("diag", "set", "--port", b.port, "--time2", 4000)
    before = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    r = gb("reset-debt", "--register", "time2", *args)
    assert r.returncode == 3 and "quarantined" in r.stderr
    after = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert after == before and after["time2"] == 4000
    listed = json.loads(gb("quarantine", "list", "--dcc-dir", dcc, "--json").stdout)
    (row,) = listed["quarantined"]
    assert row["use_case"] == "GCS04a" and len(listed["notifications"]) == 1


def test_debt_collection_alert_is_maced_for_the_supplier(start_board, tmp_path):
    """Debt Collection Completed is a non-critical Alert: MAC header, signature length
    00, and a MAC that verifies with the Supplier's KA key and the meter's."""
    from gbmeter.gbcs import codec, crypto, keys, pki
    from gbmeter.supplier.provision import provision
    from gbmeter.board.link import Link
    from gbmeter.supplier.session import Session
    from gbmeter.supplier.answer import frame_alert_code

    b = start_board("esme")
    kd = tmp_path / "keys"
    pki.init(kd)
    s = Session(kd)
    with Link(b.port) as link:
        provision(s, link, "esme", "00DB1234567890A0")
        link.diag("set", fields={"time2": 1000, "time2_rate": 1000, "time2_freq": 0,
                                 "balance": 5000, "mode": "prepayment"})
        reply = link.diag("advance", seconds=2 * 3600)
    (raw,) = reply["alerts"]
    assert frame_alert_code(raw) == "81A8"
    msg = codec.parse_message(raw)
    a = codec.parse_apdu(msg["apdu"])
    assert (a["cra"], a["message_code"], a["signature"]) == (3, 0x1001, None)
    assert a["recipient"] == s.supplier.title
    meter_ka = s.meter_key("00db1234567890a0", "ka")
    assert crypto.check_mac_keys(s.supplier.ka_priv, meter_ka, raw)
    tampered = bytearray(raw)
    tampered[-20] ^= 1
    assert not crypto.check_mac_keys(s.supplier.ka_priv, meter_ka, bytes(tampered))
