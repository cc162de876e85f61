"""`gbmeter parse`, `gbmeter wrap` and `gbmeter keys` through gbmeter.cli.main (and
once through the installed console script). Own vectors: a fresh test PKI plus a
meter whose keys are made here; RTDS tests read ../shared and skip without it."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gbmeter import cli, paths
from gbmeter.gbcs import codec, crypto, keys, pki

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and ZAZ1 keys) is absent")
METER = "00db1234567890a1"


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def run_json(capsys, *argv):
    rc, out, err = run(capsys, *argv, "--json")
    assert rc == 0, err
    return json.loads(out)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A test PKI with a provisioned meter, and one message of every family."""
    d = tmp_path_factory.mktemp("keys")
    made = pki.init(d)
    meter_ds = ec.generate_private_key(ec.SECP256R1())
    meter_ka = ec.generate_private_key(ec.SECP256R1())
    pki.issue_device_cert(d, METER, meter_ds.public_key(), "ds")
    pki.issue_device_cert(d, METER, meter_ka.public_key(), "ka")
    f = keys.KeyFolder(d)
    sup, acb = f.pick("supplier"), f.pick("acb")
    meter = bytes.fromhex(METER)
    content = codec.build_gbz([(0x0705, 2, codec.change_debt(473385600, 0, 1, 4))])
    pre = codec.build_apdu(1, 4097, sup.title, meter, 0x0F01, content)
    spc = crypto.sign_precommand(sup.ds_priv, pre)
    command = crypto.wrap(acb.ka_priv, meter_ka.public_key(), spc)
    resp_content = codec.build_gbz([(0x0705, 0x0B, codec.default_response(2, 0), 0)],
                                   frame_control=codec.ZCL_FC_RESPONSE)
    response = crypto.sign_apdu(meter_ds, codec.build_apdu(2, 4097, meter, sup.title, 0x0F01,
                                                         resp_content))
    crit = crypto.sign_apdu(meter_ds, codec.build_apdu(
        3, 9, meter, sup.title, 0x1000, bytes.fromhex("0109008F3D1C374A80")))
    # DLMS data-notification: structure { long-unsigned alert code, octet-string "" }
    nc_apdu = codec.build_apdu(3, 10, meter, sup.title, 0x1001,
                               bytes.fromhex("0F2000000A00020212810E0900"), signature=b"")
    noncrit = crypto.wrap_with_z(crypto.ecdh(meter_ka, sup.ka_pub), nc_apdu)
    return {"dir": str(d), "made": made, "pre": pre, "spc": spc, "command": command,
            "response": response, "critical": crit, "noncritical": noncrit,
            "meter_ka_pem": str(d / f"{METER}-ka.pem"),
            "acb_key": str(d / f"{acb.eui}-ka.key"), "supplier": sup.eui}


def test_parse_own_command_with_keys(capsys, world):
    d = run_json(capsys, "parse", world["command"].hex(), "--keys", world["dir"])
    assert d["message_code"] == 0x0F01 and d["use_case"] == "GCS04a"
    assert d["cra"] == "command" and d["counter"] == 4097
    assert d["originator"] == world["supplier"].upper() and d["recipient"] == METER.upper()
    assert d["signature_valid"] is True and d["mac_valid"] is True
    assert d["kind"] == "COMMAND" and d["originator_role"] == "supplier"
    cd = d["payload"]["components"][0]["change_debt"]
    assert cd["debt_amount"] == 0 and cd["debt_amount_type"] == 4
    assert cd["debt_recovery_method"] == 1


def test_parse_each_family_with_and_without_keys(capsys, world):
    expect = {  # name: (cra, signature_valid, mac_valid) with keys
        "pre": ("command", None, None), "spc": ("command", True, None),
        "command": ("command", True, True), "response": ("response", True, None),
        "critical": ("alert", True, None), "noncritical": ("alert", None, True),
    }
    for name, (cra, sig, mac) in expect.items():
        d = run_json(capsys, "parse", world[name].hex(), "--keys", world["dir"])
        assert (d["cra"], d["signature_valid"], d["mac_valid"]) == (cra, sig, mac), name
        bare = run_json(capsys, "parse", world[name].hex())
        assert bare["signature_valid"] is None and bare["mac_valid"] is None
        assert bare["payload"] == d["payload"]
    d = run_json(capsys, "parse", world["critical"].hex())
    assert d["payload"]["alert_code"] == "8F3D"
    d = run_json(capsys, "parse", world["noncritical"].hex())
    assert d["payload"]["alert_code"] == "810E"
    d = run_json(capsys, "parse", world["response"].hex())
    assert d["payload"]["components"][0]["default_response"]["status"] == 0


def test_parse_detects_tampering(capsys, world):
    cmd = bytearray(world["command"])
    cmd[-1] ^= 1                                  # MAC
    d = run_json(capsys, "parse", cmd.hex(), "--keys", world["dir"])
    assert d["mac_valid"] is False and d["signature_valid"] is True
    cmd = bytearray(world["command"])
    cmd[-20] ^= 1                                 # signature
    d = run_json(capsys, "parse", cmd.hex(), "--keys", world["dir"])
    assert d["signature_valid"] is False and d["mac_valid"] is False
    resp = bytearray(world["response"])
    resp[-66] ^= 1                                # content
    d = run_json(capsys, "parse", resp.hex(), "--keys", world["dir"])
    assert d["signature_valid"] is False


def test_parse_tree_output_and_file_input(capsys, world, tmp_path):
    f = tmp_path / "cmd.hex"
    f.write_text(world["command"].hex().upper() + "\n")
    rc, out, err = run(capsys, "parse", str(f), "--keys", world["dir"])
    assert rc == 0 and err == ""
    assert out.startswith("COMMAND  message code 0F01 GCS04a")
    assert "signature:" in out and "(valid)" in out and "mac:" in out
    assert "change_debt:" in out and "debt_amount: 0" in out and "cluster_id: 0705" in out


def test_parse_unknown_content_shown_raw(capsys):
    apdu = codec.build_apdu(1, 1, bytes(8), bytes(8), 0x4242, b"\x55\x66")
    d = run_json(capsys, "parse", apdu.hex())
    assert d["payload"] == {"format": "unknown", "raw": "5566"}
    assert d["use_case"] is None
    bad_axdr = codec.build_apdu(1, 1, bytes(8), bytes(8), 0x001E,
                                bytes.fromhex("D9000000010000") + b"\x01\xfe")
    d = run_json(capsys, "parse", bad_axdr.hex())
    assert d["payload"]["format"] == "unknown" and "FE" in d["payload"]["decode_error"]


def test_parse_bad_input_plain_errors(capsys, world, tmp_path):
    rc, out, err = run(capsys, "parse", "DF09ZZ")
    assert rc == 1 and out == "" and "not hex" in err and "character 4" in err
    assert "Traceback" not in err
    cut = world["response"][:40].hex()
    rc, out, err = run(capsys, "parse", cut)
    assert rc == 1 and out == "" and "byte" in err and "cut short" in err
    rc, out, err = run(capsys, "parse", str(tmp_path / "missing.hex"))
    assert rc == 1 and "cannot read" in err
    rc, out, err = run(capsys, "parse", world["command"].hex(), "--keys",
                       str(tmp_path / "nokeys"))
    assert rc == 1 and "does not exist" in err


def test_wrap_cli_own_vectors(capsys, world, tmp_path):
    rc, out, err = run(capsys, "wrap", "--acb-key", world["acb_key"], "--meter-ka",
                       world["meter_ka_pem"], world["spc"].hex())
    assert rc == 0, err
    assert bytes.fromhex(out.strip()) == world["command"]
    rc, out, err = run(capsys, "wrap", "--acb-key", world["acb_key"], "--meter-ka",
                       world["meter_ka_pem"], world["pre"].hex())
    assert rc == 1 and out == "" and "signature" in err
    rc, out, err = run(capsys, "wrap", "--acb-key", str(tmp_path / "x.key"), "--meter-ka",
                       world["meter_ka_pem"], world["spc"].hex())
    assert rc == 1 and "cannot read" in err


def test_keys_cli(capsys, tmp_path):
    d = tmp_path / "k"
    rc, out, err = run(capsys, "keys", "init", str(d))
    assert rc == 0 and "supplier" in out
    rc, out, err = run(capsys, "keys", "init", str(d))
    assert rc == 1 and "--force" in err
    listed = run_json(capsys, "keys", "list", str(d))
    assert sorted(p["role"] for p in listed["parties"]) == [
        "acb", "network-operator", "supplier", "supplier"]
    assert listed["root"] is True
    sup = min(p["system_title"] for p in listed["parties"] if p["role"] == "supplier")
    assert listed["defaults"]["supplier"] == sup
    rc, out, err = run(capsys, "keys", "init", str(d), "--force", "--json")
    assert rc == 0 and len(json.loads(out)["parties"]) == 4
    rc, out, err = run(capsys, "keys", "list", str(d))
    assert rc == 0 and "(default)" in out


def test_console_script_subprocess(world):
    exe = Path(sys.executable).parent / "gbmeter"
    if not exe.exists():
        pytest.skip(f"{exe} is not installed (run `make setup`)")
    r = subprocess.run([str(exe), "parse", "--json", "--keys", world["dir"],
                        world["command"].hex()], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["signature_valid"] is True and d["mac_valid"] is True
    r = subprocess.run([str(exe), "parse", "nothex!"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 1 and "not hex" in r.stderr and "Traceback" not in r.stderr


# --- RTDS ----------------------------------------------------------------------------

@needs_shared
def test_parse_every_rtds_file_with_zaz1_keys(capsys):
    keys_dir = str(SHARED / "gbcs" / "keys")
    files = sorted((SHARED / "gbcs" / "rtds").glob("*/*.HEX"))
    assert files
    for f in files:
        d = run_json(capsys, "parse", str(f), "--keys", keys_dir)
        m = codec.parse_message(bytes.fromhex(f.read_text().strip()))
        assert d["message_code"] == m["message_code"]
        assert d["cra"] == {1: "command", 2: "response", 3: "alert"}[m["cra"]]
        assert d["counter"] == m["counter"]
        assert d["originator"] == m["originator"].hex().upper()
        assert len(d["recipient"]) == 16
        assert d["payload"]["format"] != "unknown", f.name
        assert d["signature_valid"] is (True if m["signature"] else None), f.name
        assert d["mac_valid"] is (True if m["mac"] else None), f.name
        if "PRECOMMAND" in f.name:
            assert d["signature_valid"] is None
    gcs04 = run_json(capsys, "parse", str(SHARED / "gbcs/rtds/2.3_GCS04/"
                                          "GCS04_2.3_SUCCESS_PRECOMMAND_GBCS.HEX"))
    amounts = [c["change_debt"]["debt_amount"] for c in gcs04["payload"]["components"]]
    assert amounts == [1000000, 500000, 1000000]


@needs_shared
def test_wrap_cli_rtds(capsys):
    k = SHARED / "gbcs" / "keys"
    # every COMMAND, critical (Signed Pre-Command) or not (signature length 00)
    for f in sorted((SHARED / "gbcs" / "rtds").glob("*/*_COMMAND_GBCS.HEX")):
        command = bytes.fromhex(f.read_text().strip())
        m = codec.parse_message(command)
        rc, out, err = run(capsys, "wrap", "--acb-key", str(k / "90b3d51f30000002-ka.key"),
                           "--meter-ka", str(k / f"{m['recipient'].hex()}-ka.pem"),
                           m["apdu"].hex())
        assert rc == 0, err
        assert out.strip() == command.hex().upper(), f.name


def test_parse_reads_stdin_and_0x_prefix(capsys, monkeypatch, world):
    import io
    monkeypatch.setattr(sys, "stdin", io.StringIO(world["response"].hex() + "\n"))
    d = run_json(capsys, "parse", "-")
    assert d["cra"] == "response" and d["counter"] == 4097
    d = run_json(capsys, "parse", "0x" + world["pre"].hex())
    assert d["kind"] == "PRECOMMAND" and d["signature"] is None
