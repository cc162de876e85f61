"""`gbmeter sr`, `inspect`, `quarantine` and `correlate` through gbmeter.cli.main,
and once through the installed console script in a new process (the quarantine log
survives a restart). Own requests and keys are made here; RTDS tests read ../shared
and skip without it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import rtdsref

from gbmeter import cli, dcc, paths
from gbmeter.dcc import duis, srxml
from gbmeter.gbcs import codec, crypto, keys
from gbmeter.gbcs import pki as testpki
from gbmeter.cli import sr as cli_sr

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and DUIS reference data) is absent")
METER = bytes.fromhex("0a0b0c0d0e0f1011")
NOW = "2021-03-04T05:06:07Z"
GBMETER = Path(sys.executable).parent / "gbmeter"


def run(capsys, *argv):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(autouse=True)
def own_dcc_dir(tmp_path, monkeypatch):
    """Every test gets its own DCC folder through the environment variable."""
    monkeypatch.setenv("GBMETER_DCC_DIR", str(tmp_path / "dcc"))
    return tmp_path / "dcc"


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    testpki.init(d)
    folder = keys.KeyFolder(d)
    return d, folder.pick("supplier")


def _second(d):
    return keys.KeyFolder(d).by_role("supplier")[1].eui


def reset_file(tmp_path, supplier, register="time1", counter=1000, name="reset.xml"):
    f = tmp_path / name
    f.write_text(srxml.reset_debt_xml(supplier.title, METER, counter, register))
    return f


def write_inventory(own_dcc_dir, device="gsme"):
    own_dcc_dir.mkdir(parents=True, exist_ok=True)
    (own_dcc_dir / "inventory.json").write_text(json.dumps({METER.hex(): device}))


# --- sr ---------------------------------------------------------------------------------

def test_sr_precommand(capsys, tmp_path, pki):
    _, sup = pki
    f = reset_file(tmp_path, sup, "payment")
    rc, out, err = run(capsys, "sr", f, "--precommand", "--now", NOW, "--device", "gsme")
    assert rc == 0, err
    pre = bytes.fromhex(out.strip())
    request = duis.read_request(f, device="gsme")
    assert pre == dcc.transform(request, NOW)
    assert pre[31:33] == b"\x0f\x01" and pre[-15:-13] == b"\x01\x04"   # payment-based, absolute
    rc, out, err = run(capsys, "sr", f, "--precommand", "--now", NOW, "--device", "esme", "--json")
    d = json.loads(out)
    assert rc == 0 and d["use_case"] == "ECS07a" and d["message_code"] == "0F00"
    assert d["fields"] == {"register": "payment"} and d["now"] == NOW
    assert d["precommand"].endswith("0300710000131403FF05" "01" "0500000000")


def test_sr_device_from_inventory_file(capsys, tmp_path, pki, own_dcc_dir):
    f = reset_file(tmp_path, pki[1])
    rc, out, err = run(capsys, "sr", f, "--precommand")
    assert rc == 1 and "cannot tell" in err and out == ""
    write_inventory(own_dcc_dir, "esme")
    rc, out, err = run(capsys, "sr", f, "--precommand", "--json")
    assert rc == 0 and json.loads(out)["use_case"] == "ECS07a"


def test_sr_port_goes_through_the_chain(capsys, tmp_path, pki, monkeypatch):
    f = reset_file(tmp_path, pki[1])
    # the real hook: a request from another Supplier than the key folder's is refused
    # before anything is signed or sent, and a port that is no board is named
    other = reset_file(tmp_path, keys.KeyFolder(pki[0]).pick("supplier", _second(pki[0])),
                       name="other.xml")
    rc, out, err = run(capsys, "sr", other, "--port", "/dev/null", "--device", "gsme",
                       "--keys", str(pki[0]))
    assert rc == 1 and "is not the Supplier" in err
    rc, out, err = run(capsys, "sr", f, "--port", "/dev/gbmeter-none", "--device", "gsme",
                       "--keys", str(pki[0]))
    assert rc == 1 and "cannot open /dev/gbmeter-none" in err
    calls = []
    monkeypatch.setattr(cli_sr, "send", lambda *a: calls.append(a) or 0)
    rc, _, _ = run(capsys, "sr", f, "--port", "P", "--device", "gsme", "--now", NOW)
    assert rc == 0 and calls[0][0].use_case == "GCS04a"
    # the PRECOMMAND is built once the next counter is taken (send), at the DCC's clock
    assert calls[0][1] == dcc.parse_now(NOW) and calls[0][2].port == "P"


BAD_REQUESTS = [
    ("<sr:Request", "malformed XML"),
    (srxml.reset_debt_xml(METER, METER, 1, "time1").replace("2.3.1", "7.7"), "7.7"),
    (srxml.reset_debt_xml(METER, METER, 1, "time1").replace(
        "<sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>", ""),
     "missing field sr:DebtRegister"),
    (srxml.reset_debt_xml(METER, METER, 1, "time1").replace(
        "</sr:DebtRegister>", "</sr:DebtRegister><sr:DebtRegister>TimeDebtRegister2"
                              "</sr:DebtRegister>"), "2 registers in one request"),
    (srxml.reset_debt_xml(METER, METER, 1, "time1").replace(
        "</sr:DebtRegister>", "</sr:DebtRegister><sr:Extra/>"), "unexpected field sr:Extra"),
    (srxml.reset_debt_xml(METER, METER, 1, "time1").replace(":1<", ":x1<"),
     "counter 'x1' is not a number"),
]


@pytest.mark.parametrize("text,words", BAD_REQUESTS)
def test_sr_bad_input_sends_nothing(capsys, tmp_path, monkeypatch, text, words):
    calls = []
    monkeypatch.setattr(cli_sr, "send", lambda *a: calls.append(a) or 0)
    f = tmp_path / "bad.xml"
    f.write_text(text)
    for mode in (["--precommand"], ["--port", "P"]):
        rc, out, err = run(capsys, "sr", f, *mode, "--device", "gsme")
        assert rc == 1 and out == "" and words in err, err
    assert calls == []


def test_sr_usage_errors(capsys, tmp_path, pki):
    f = reset_file(tmp_path, pki[1])
    rc, out, err = run(capsys, "sr", f)           # neither --precommand nor --port
    assert rc == 64 and "--port" in err and "GBMETER_PORT" in err
    rc, out, err = run(capsys, "sr", tmp_path / "none.xml", "--precommand")
    assert rc == 1 and "cannot read" in err
    rc, out, err = run(capsys, "sr", f, "--precommand", "--device", "gsme", "--now", "soon")
    assert rc == 1 and "--now" in err


@needs_shared
def test_sr_rtds(capsys):
    """`gbmeter sr --precommand` on every DUIS request in ../shared: the RTDS PRECOMMAND
    (or, for a non-critical request, the COMMAND's unsigned APDU) for those the project
    builds; a plain "not supported" error (exit 1, no traceback) for the others."""
    built = 0
    for f in rtdsref.duis_requests():
        rc, out, err = run(capsys, "sr", f, "--precommand", "--now", "2015-01-01T00:00:00Z")
        if rc == 1 and "not supported" in err:
            assert "Traceback" not in err and out == "", f.name
            continue
        pre = rtdsref.rtds_for(f, "PRECOMMAND")
        if pre is not None:
            want = pre.read_text().strip()
        else:
            cmd = bytes.fromhex(rtdsref.rtds_for(f, "COMMAND").read_text().strip())
            want = codec.parse_message(cmd)["precommand"].hex().upper()
        assert rc == 0 and out.strip() == want, (f.name, err)
        built += 1
    assert built


# --- inspect and quarantine ------------------------------------------------------------------

def signed_reset(pki, register="time1", counter=1000, now=NOW, amount_type=None, amount=0):
    _, sup = pki
    r = duis.parse_request(srxml.reset_debt_xml(sup.title, METER, counter, register),
                           device="gsme")
    pre = dcc.transform(r, now)
    if amount_type is not None or amount:
        i = len(pre) - 24             # Change Debt: issuer id, label, amount, method, type
        pre = bytearray(pre)
        pre[i + 5:i + 9] = amount.to_bytes(4, "little", signed=True)
        if amount_type is not None:
            pre[i + 10] = amount_type
        pre = bytes(pre)
    return crypto.sign_precommand(sup.ds_priv, pre).hex().upper()


def test_inspect_exit_codes(capsys, pki, own_dcc_dir):
    rc, out, err = run(capsys, "inspect", signed_reset(pki), "--now", NOW)
    assert rc == 0 and out.startswith("pass: GCS04a") and "inspection passed" in out
    rc, out, err = run(capsys, "inspect", signed_reset(pki, amount=1), "--now", NOW)
    assert rc == 3 and "debt amount is 1, a reset must set 0" in out
    rc, out, err = run(capsys, "inspect", signed_reset(pki, amount_type=1), "--now", NOW, "--json")
    d = json.loads(out)
    assert rc == 3 and d["verdict"] == "quarantine" and d["release"] is False
    assert "absolute type" in d["reasons"][0] and d["quarantine_id"] == 2
    rc, out, err = run(capsys, "quarantine", "list", "--json")
    q = json.loads(out)
    assert [r["id"] for r in q["quarantined"]] == [1, 2] and len(q["notifications"]) == 2
    assert q["dir"] == str(own_dcc_dir)


def test_inspect_dry_run_and_files(capsys, tmp_path, pki):
    spc = signed_reset(pki, amount=1)
    f = tmp_path / "spc.hex"
    f.write_text(spc + "\n")
    d = tmp_path / "elsewhere"
    rc, out, err = run(capsys, "inspect", f, "--dry-run", "--dcc-dir", d, "--now", NOW)
    assert rc == 3 and "quarantine" in out and not d.exists()
    rc, out, err = run(capsys, "inspect", "DF09ZZ")
    assert rc == 1 and "not hex" in err
    rc, out, err = run(capsys, "inspect", spc[:40])
    assert rc == 1 and "not a Signed Pre-Command" in err


def test_threshold_and_restart_in_a_new_process(capsys, pki, own_dcc_dir):
    """The (N+1)th reset inside the window is quarantined; after a restart (the
    console script in a new process) both quarantine entries are still listed and the
    counts still hold."""
    own_dcc_dir.mkdir(parents=True)
    (own_dcc_dir / "adt.json").write_text(json.dumps(
        {"thresholds": [{"use_case": "GCS04a", "limit": 2, "window_seconds": 3600}]}))
    results = [run(capsys, "inspect", signed_reset(pki, counter=10 + i), "--now", NOW)[0]
               for i in range(3)]
    assert results == [0, 0, 3]
    rc, out, err = run(capsys, "inspect", signed_reset(pki, counter=20, amount=1), "--now", NOW)
    assert rc == 3
    rc, out, err = run(capsys, "quarantine", "list")
    assert rc == 0 and "[threshold]" in out and "[inspection]" in out and "notifications:" in out

    p = subprocess.run([str(GBMETER), "quarantine", "list", "--json"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    q = json.loads(p.stdout)
    assert [(r["check"], r["counter"]) for r in q["quarantined"]] == [
        ("threshold", 12), ("inspection", 20)]
    assert [n["kind"] for n in q["notifications"]] == ["threshold", "inspection"]
    p = subprocess.run([str(GBMETER), "inspect", signed_reset(pki, counter=21), "--now", NOW],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 3 and "volume threshold" in p.stdout, p.stdout + p.stderr
    # an hour later the window has moved on
    rc, out, err = run(capsys, "inspect", signed_reset(pki, counter=22),
                       "--now", "2021-03-04T06:06:08Z")
    assert rc == 0, out


def test_quarantine_list_empty(capsys, own_dcc_dir):
    rc, out, err = run(capsys, "quarantine", "list")
    assert rc == 0 and "no quarantined Commands" in out and not own_dcc_dir.exists()
    rc, out, err = run(capsys, "quarantine", "list", "--json")
    assert json.loads(out)["quarantined"] == []


# --- correlate ---------------------------------------------------------------------------------

def test_correlate(capsys, tmp_path, pki):
    kdir, sup = pki
    f = reset_file(tmp_path, sup, "time2", 1000)
    write_inventory(tmp_path / "dcc")
    good = signed_reset(pki, "time2", 1000)
    rc, out, err = run(capsys, "correlate", f, good, "--keys", kdir)
    assert rc == 0 and "correlates" in out and "signature: valid" in out, out + err
    rc, out, err = run(capsys, "correlate", f, good)
    assert rc == 0 and "signature: not checked" in out
    wrong_reg = signed_reset(pki, "time1", 1000)
    rc, out, err = run(capsys, "correlate", f, wrong_reg, "--keys", kdir, "--json")
    d = json.loads(out)
    assert rc == 3 and d["correlates"] is False and d["signature"] == "valid"
    assert [x["text"] for x in d["differences"]] == [
        "register: SR says TimeDebtRegister2, pre-command resets time debt 1"]
    wrong_ctr = signed_reset(pki, "time2", 1001)
    rc, out, err = run(capsys, "correlate", f, wrong_ctr, "--keys", kdir)
    assert rc == 3 and "counter: SR says 1000, pre-command has 1001" in out
    rc, out, err = run(capsys, "correlate", f, good, "--keys", kdir, "--now",
                       "2021-03-04T05:06:09Z")
    assert rc == 3 and "issuer_event_id" in out
    rc, out, err = run(capsys, "correlate", f, "00", "--keys", kdir)
    assert rc == 1 and "not a Signed Pre-Command" in err
    rc, out, err = run(capsys, "correlate", f, good, "--keys", tmp_path / "nokeys")
    assert rc == 1 and "does not exist" in err
