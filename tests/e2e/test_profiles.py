"""Device profiles end to end: the same scenario (load debt, reset each register, read
back, activate emergency credit at a zero limit) on a board of each profile, and the
CLI a test engineer uses to choose and inspect profiles."""

import json
import subprocess

import pytest

from gbmeter import dcc
from gbmeter.dcc import duis, srxml
from gbmeter.gbcs import keys, pki
from gbmeter.supplier.provision import provision
from gbmeter.dcc.chain import reset_register, update_debt
from gbmeter.errors import UserError
from gbmeter.board.link import Link
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import meter_floor
from gbmeter.dcc.chain import run_chain
from simboards import GBMETER

pytestmark = pytest.mark.e2e

IDS = {"gsme": "00db1234567890a1", "esme": "00db1234567890a0"}
SENT = {"time1": 123456, "time2": 500789, "payment": 1000000}
# What each profile holds of SENT, written out rather than computed: whole pence on
# SMETS1 Secure (S1SR 18.16, 18.27), every unit elsewhere.
HELD = {
    "smets2": SENT,
    "smets2-pre": SENT,
    "smets1-secure": {"time1": 123000, "time2": 500000, "payment": 1000000},
}
RECOVERY = {"gsme": ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"}),
            "esme": ({"rate": 3, "period": "DAILY", "price_scale": -1},
                     {"rate": 3, "period": "DAILY", "price_scale": -1})}


def gb(*args):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True,
                          timeout=120)


def regs(link):
    return link.diag("registers")


def activate_ec(s, link, meter_id, device, counter):
    xml = srxml.activate_emergency_credit_xml(s.supplier.title, bytes.fromhex(meter_id), counter)
    req = duis.parse_request(xml, device=device)
    return run_chain(s, link, req, dcc.transform(req), None)


@pytest.mark.parametrize("profile", ["smets2", "smets2-pre", "smets1-secure"])
def test_same_scenario_on_each_profile(start_board, tmp_path, profile):
    kdir = tmp_path / "keys"
    pki.init(kdir)
    s = Session(kdir)
    for device in ("gsme", "esme"):
        b = start_board(device, profile=profile)
        mid = IDS[device]
        with Link(b.port) as link:
            hello = link.ping()
            assert hello["profile"] == profile
            out = provision(s, link, device, mid)   # keeps the board's own profile
            assert out["profile"] == profile
            link.diag("set", fields={"mode": "prepayment"})
            r = update_debt(s, link, mid, device, SENT["time1"], SENT["time2"],
                            SENT["payment"], 100, *RECOVERY[device], tmp_path / "dcc")
            assert r["ok"], r
            before = regs(link)
            assert {k: before[k] for k in SENT} == HELD[profile]
            if profile == "smets2-pre":
                # the host refuses, nothing is sent: the meter's counter does not move
                for reg in SENT:
                    with pytest.raises(UserError) as e:
                        reset_register(s, link, mid, device, reg, tmp_path / "dcc")
                    assert e.value.exit_code == 4 and "--force" in str(e.value)
                assert regs(link)["counters"] == before["counters"]
                # forced, the meter treats it as an unknown message code
                r = reset_register(s, link, mid, device, "time1", tmp_path / "dcc", force=True)
                assert not r["ok"] and r["alert"] == "8F1E", r
                after = regs(link)
                assert {k: after[k] for k in SENT} == HELD[profile]
                assert after["counters"] == before["counters"]
            else:
                for reg in SENT:
                    r = reset_register(s, link, mid, device, reg, tmp_path / "dcc")
                    assert r["ok"] and r["use_case"] in ("GCS04a", "ECS07a"), r
                after = regs(link)
                assert {k: after[k] for k in SENT} == {"time1": 0, "time2": 0, "payment": 0}
            # S1SR 18.5: at an emergency credit limit of zero a SMETS1 Secure meter
            # cannot activate emergency credit; SMETS2 offers it by the threshold alone
            link.diag("set", fields={"ec_limit": 0, "balance": 0})
            r = activate_ec(s, link, mid, device,
                            s.next_counter(mid, meter_floor(link, s.supplier.eui)))
            assert r["use_case"] == ("GCS06" if device == "gsme" else "ECS09")
            ec = regs(link)
            if profile == "smets1-secure":
                assert not r["ok"] and "signature_valid" in r and r["signature_valid"], r
                assert not ec["ec_active"]
            else:
                assert r["ok"], r
                assert ec["ec_active"] and ec["ec_balance"] == 0


def test_smets1_secure_keeps_whole_pence_cli(start_board, tmp_path):
    b = start_board("gsme", profile="smets1-secure")
    k = tmp_path / "keys"
    assert gb("keys", "init", k).returncode == 0
    r = gb("provision", "--port", b.port, "--device", "gsme", "--id", IDS["gsme"], "--keys", k)
    assert r.returncode == 0 and "as a smets1-secure meter" in r.stdout, r.stderr
    r = gb("manage-debt", "--port", b.port, "--time1", 123456, "--keys", k,
           "--dcc-dir", tmp_path / "dcc", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["ok"], r.stdout + r.stderr
    out = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert out["time1"] == 123000 and out["profile"] == "smets1-secure"
    assert out["settings"]["whole_pence"] is True
    plain = gb("registers", "--port", b.port).stdout
    line = next(x for x in plain.splitlines() if "Time Debt Register 1" in x)
    assert "(smets1-secure)" in plain and line.split()[4] == "123000", plain


def test_smets2_pre_reset_refused_unless_forced_cli(start_board, tmp_path):
    b = start_board("esme", profile="smets2-pre")
    k = tmp_path / "keys"
    gb("keys", "init", k)
    gb("provision", "--port", b.port, "--device", "esme", "--id", IDS["esme"], "--keys", k)
    gb("diag", "set", "--port", b.port, "--time2", 7000)
    before = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    dcc_args = ("--keys", k, "--dcc-dir", tmp_path / "dcc")
    r = gb("reset-debt", "--port", b.port, "--register", "time2", *dcc_args)
    assert r.returncode == 4 and "smets2-pre" in r.stderr and "--force" in r.stderr
    assert json.loads(gb("registers", "--port", b.port, "--json").stdout) == before
    r = gb("reset-debt", "--port", b.port, "--register", "time2", "--force", "--json", *dcc_args)
    out = json.loads(r.stdout)
    assert r.returncode == 2 and out["alert"] == "8F1E"
    after = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    assert after["time2"] == 7000 and after["counters"] == before["counters"]
    # every other use case works on it
    r = gb("manage-debt", "--port", b.port, "--time1", 1500, "--json", *dcc_args)
    assert r.returncode == 0 and json.loads(r.stdout)["ok"]
    # a raw COMMAND (`gbmeter send`) meets the same check before it is sent
    s = Session(k)
    with Link(b.port) as link:
        counter = s.next_counter(IDS["esme"], meter_floor(link, s.supplier.eui))
        xml = srxml.reset_debt_xml(s.supplier.title, bytes.fromhex(IDS["esme"]), counter, "time2")
        command, _ = s.command(dcc.transform(duis.parse_request(xml, device="esme")))
        last = regs(link)["counters"]
        with pytest.raises(UserError) as e:
            s.send(link, command)
        assert e.value.exit_code == 4 and regs(link)["counters"] == last
        r = s.send(link, command, force=True)
        assert r["alert"] == "8F1E" and regs(link)["time2"] == 7000


def test_choose_and_change_profiles_cli(start_board, tmp_path):
    b = start_board("gsme", profile="smets1-secure")
    hello = json.loads(gb("ping", "--port", b.port, "--json").stdout)
    assert hello["profile"] == "smets1-secure" and hello["settings"]["ec_zero_limit"] == "fail"
    assert "(smets1-secure)" in gb("ping", "--port", b.port).stdout
    k = tmp_path / "keys"
    gb("keys", "init", k)
    base = ("provision", "--port", b.port, "--device", "gsme", "--id", IDS["gsme"], "--keys", k)
    # bad settings are named and change nothing
    before = json.loads(gb("registers", "--port", b.port, "--json").stdout)
    for bad, word in ((("--setting", "colour=red"), "colour"),
                      (("--setting", "ec_amount=all"), "ec_amount"),
                      (("--setting", "whole_pence=maybe"), "whole_pence"),
                      (("--setting", "nonsense"), "NAME=VALUE")):
        r = gb(*base, *bad)
        assert r.returncode == 1 and word in r.stderr, r.stderr
    assert gb("provision", "--profile", "smets9", *base[1:]).returncode == 64  # usage error
    assert json.loads(gb("registers", "--port", b.port, "--json").stdout) == before
    # a new profile, one setting overridden
    r = gb(*base, "--profile", "smets2", "--setting", "whole-pence=true", "--json")
    out = json.loads(r.stdout)
    assert out["profile"] == "smets2" and out["settings"]["whole_pence"] is True
    assert out["settings"]["ec_zero_limit"] == "activate"
    # provisioning again without --profile keeps the profile and its override
    out = json.loads(gb(*base, "--json").stdout)
    assert out["profile"] == "smets2" and out["settings"]["whole_pence"] is True
    # the profile is in flash: a restart on the same folder keeps it; asking the
    # folder for another profile is an error in plain words
    d = b.dir
    b.stop()
    b2 = start_board("gsme", dir=d)
    assert json.loads(gb("ping", "--port", b2.port, "--json").stdout)["profile"] == "smets2"
    b2.stop()
    with pytest.raises(RuntimeError) as e:
        start_board("gsme", dir=d, profile="smets2-pre")
    assert "holds a smets2 meter" in str(e.value)
