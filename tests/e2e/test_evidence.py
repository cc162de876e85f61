"""Issue 11 items 3-5 end to end: the exact frames every meter-facing verb reports in
--json (`command`, `response`, `alert_messages`) parse with `gbmeter parse --keys`
and verify, with a copy of the ZAZ1 folder whose meter certificates are not the
keys the virtual meters made; `send` refuses what is not a COMMAND for the meter
and `send --raw` delivers anything, reporting the meter's answer.

These are host features on bytes the firmware makes; the firmware's own behaviour
runs in all three variants elsewhere, so these tests run one (compiled .mpy)."""

import json
import shutil
import subprocess

import pytest

from gbmeter import dcc
from gbmeter.dcc import duis, srxml
from gbmeter.gbcs import codec
from gbmeter.gbcs import pki as testpki
from gbmeter.supplier.session import Session

from simboards import GBMETER

pytestmark = pytest.mark.e2e

IDS = {"gsme": "00db1234567890a1", "esme": "00db1234567890a0"}
ESME_CODE = 0x001E   # ECS07


@pytest.fixture(scope="module")
def variant():
    return "mpy"


def gb(*args, ok=True):
    r = subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True, timeout=120)
    if ok:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def gbj(*args, ok=True):
    r = gb(*args, "--json", ok=ok)
    return r, json.loads(r.stdout)


def registers(port):
    return gbj("registers", "--port", port)[1]


def tampered(message):
    """The message with the last byte of its content flipped."""
    m = codec.parse_message(message)
    t = bytearray(message)
    t[m["content_offset"] + len(m["content"]) - 1] ^= 1
    return bytes(t)


def checks(message):
    """The checks `parse --keys` must make of a message: signature, MAC or both."""
    m = codec.parse_message(message)
    return [k for k, present in (("signature_valid", m["signature"] is not None),
                                 ("mac_valid", m["mac"] is not None)) if present]


def parse(keys, message):
    return gbj("parse", bytes(message).hex(), "--keys", keys)[1]


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_json_frames_parse_and_verify_with_a_zaz1_copy(start_board, shared, tmp_path, device):
    meter = IDS[device]
    copy = tmp_path / "zaz1"
    shutil.copytree(shared / "gbcs" / "keys", copy)
    # the GSME's copy is writable (state kept in it), the ESME's read-only (state in
    # $GBMETER_HOME): parse finds the provisioned keys in either
    copy.chmod(0o755 if device == "gsme" else 0o555)
    b = start_board(device)
    port = ["--port", b.port]
    keys = ["--keys", copy]
    dccdir = ["--dcc-dir", tmp_path / "dcc"]
    gb("provision", *port, "--device", device, "--id", meter, *keys)
    frames = []   # (verb, kind, hex)

    def keep(verb, out, command=True, response=True):
        if command:
            frames.append((verb, "command", out["command"]))
        if response:
            frames.append((verb, "response", out["response"]))
        frames.extend((verb, "alert", a) for a in out["alert_messages"])
        assert len(out["alert_messages"]) == len(out["alerts"])

    r, out = gbj("manage-debt", *port, "--time1", 4000, "--payment", 3000, *keys, *dccdir)
    assert out["ok"], out
    keep("manage-debt", out)
    r, out = gbj("reset-debt", *port, "--register", "time2", *keys, *dccdir)
    assert out["ok"], out
    keep("reset-debt", out)
    s = Session(copy)
    counter = registers(b.port)["counters"][s.supplier.eui] + 1
    xml = tmp_path / "reset.xml"
    xml.write_text(srxml.reset_debt_xml(s.supplier.title, bytes.fromhex(meter), counter, "time1"))
    r, out = gbj("sr", xml, *port, "--device", device, *keys, *dccdir)
    assert out["ok"] and out["counter"] == counter, out
    keep("sr", out)
    # send: the JSON's command is the very bytes given; sent again, the replay is
    # refused with a critical alert (8F53), whose frame is reported too
    xml2 = srxml.reset_debt_xml(s.supplier.title, bytes.fromhex(meter), counter + 1, "payment")
    command, _ = s.command(dcc.transform(duis.parse_request(xml2, device=device)))
    r, out = gbj("send", command.hex(), *port, *keys)
    assert out["ok"] and out["command"] == command.hex(), out
    keep("send", out)
    r, out = gbj("send", command.hex(), *port, *keys, ok=False)
    assert r.returncode == 2 and out["command"] == command.hex()
    assert out["alerts"][0] == "8F53" and "response" not in out, out
    keep("send", out, command=False, response=False)
    # diag advance (Debt Collection Completed, time debt 1) and diag topup (payment debt)
    gb("diag", "set", *port, "--time1", 4000, "--time1-rate", 2000, "--time1-freq", 0,
       "--payment", 3000, "--payment-pct", 5000, "--balance", 100000, "--mode", "prepayment")
    r, out = gbj("diag", "advance", *port, 4 * 3600)
    assert out["alerts"] == ["81A7"], out
    keep("diag advance", out, command=False, response=False)
    r, out = gbj("diag", "topup", *port, 10000)
    assert out["alerts"] == ["81A9"], out
    keep("diag topup", out, command=False, response=False)
    assert registers(b.port)["counters"] == {s.supplier.eui: counter + 1}

    kinds = {}
    for verb, kind, text in frames:
        msg = bytes.fromhex(text)
        need = checks(msg)
        got = parse(copy, msg)
        assert got["recipient" if kind == "command" else "originator"] == meter.upper()
        for check in need:
            assert got[check] is True, (verb, kind, check, got)
        bad = parse(copy, tampered(msg))
        for check in need:
            assert bad[check] is False, (verb, kind, check, bad)
        kinds.setdefault(got["kind"], set()).add(got["message_code_hex"])
    # every family was seen: Commands (signature and MAC), Responses, critical and
    # non-critical alerts
    assert {"COMMAND", "RESPONSE", "ALERT"} <= set(kinds)
    assert {"1000", "1001"} <= kinds["ALERT"]


def test_send_refuses_what_is_not_a_command_and_raw_reaches_the_meter(start_board, tmp_path):
    k = tmp_path / "keys"
    testpki.init(k)
    b = start_board("gsme")
    port = ["--port", b.port]
    keys = ["--keys", k]
    meter = IDS["gsme"]
    gb("provision", *port, "--device", "gsme", "--id", meter, *keys)
    s = Session(k)
    title = bytes.fromhex(meter)
    # GCS04a: reset Time Debt Register 1 (amount 0, absolute)
    content = codec.build_gbz([(0x0705, 2, codec.change_debt(1, 0, 0, 0))])

    def precommand(counter, code=0x0F01, recipient=title):
        return codec.build_apdu(1, counter, s.supplier.title, recipient, code, content)

    gb("diag", "set", *port, "--time1", 7000)
    # a genuine COMMAND, sent raw: delivered and checked as `send` checks it
    good = s.wrap(s.sign(precommand(10)), meter)
    r, out = gbj("send", "--raw", good.hex(), *port, *keys)
    assert out["ok"] is True and out["raw"] is True and out["command"] == good.hex()
    response = bytes.fromhex(out["response"])
    assert registers(b.port)["time1"] == 0
    gb("diag", "set", *port, "--time1", 7000)

    wrong = s.sign(precommand(11, recipient=bytes.fromhex("00db1234567890ff")))
    cases = {  # name: (bytes, exit code without --raw, words, the meter's alert with --raw)
        "PRECOMMAND": (precommand(11), 1, "a PRECOMMAND, not a COMMAND", "8F1E"),
        "Signed Pre-Command": (s.sign(precommand(11)), 1, "a Signed Pre-Command", "8F1E"),
        "RESPONSE": (response, 1, "a Response, not a COMMAND", "8F1E"),
        "ESME Command to a GSME": (s.wrap(s.sign(precommand(11, ESME_CODE)), meter), 4,
                                   "ECS07 (001E) is an ESME use case", "8F1E"),
        "another meter's Command": (s.wrap(wrong, meter), 1, "addressed to 00db1234567890ff",
                                    "8F53"),
    }
    before = registers(b.port)
    for name, (msg, code, words, _) in cases.items():
        r = gb("send", msg.hex(), *port, *keys, ok=False)
        assert r.returncode == code and words in r.stderr, (name, r.stderr)
        assert "Nothing was sent" in r.stderr and r.stdout == ""
    # nothing reached the meter: not even its alert counter moved
    assert registers(b.port) == before
    for name, (msg, _, _, alert) in cases.items():
        r, out = gbj("send", "--raw", msg.hex(), *port, *keys, ok=False)
        assert r.returncode == 2 and out["ok"] is False and out["raw"] is True, (name, out)
        assert out["alerts"][0] == alert and out["command"] == msg.hex(), (name, out)
        assert "response" not in out
        # the meter's alert frame itself, signed by the meter
        a = codec.parse_message(bytes.fromhex(out["alert_messages"][0]))
        assert a["cra"] == codec.CRA_ALERT and a["originator"] == title
    # truncated and garbage bytes, as given, from a file too
    f = tmp_path / "cut.hex"
    f.write_text(good[:40].hex().upper() + "\n")
    for given in (str(f), "DEADBEEF"):
        r, out = gbj("send", "--raw", given, *port, *keys, ok=False)
        assert r.returncode == 2 and out["alerts"][0] == "8F1E", out
    plain = gb("send", "--raw", "00", *port, *keys, ok=False)
    assert plain.returncode == 2 and "sent raw, 1 bytes that are not a GBCS message" in plain.stdout
    assert "success" not in plain.stdout
    after = registers(b.port)
    assert after["counters"] == before["counters"] and after["time1"] == 7000
    assert after["alert_ctr"] > before["alert_ctr"]


def test_a_command_the_host_refuses_is_not_counted_by_the_dcc(start_board, tmp_path):
    """`sr --port` for another meter than the board's is refused before the DCC's
    anomaly detection sees it: nothing unsent counts towards a volume threshold."""
    from gbmeter.dcc.anomaly import DB_FILE
    from gbmeter.dcc.store import Store
    k, d = tmp_path / "keys", tmp_path / "dcc"
    testpki.init(k)
    b = start_board("gsme")
    gb("provision", "--port", b.port, "--device", "gsme", "--id", IDS["gsme"], "--keys", k)
    sup = Session(k).supplier.title
    other = tmp_path / "other.xml"
    other.write_text(srxml.reset_debt_xml(sup, bytes.fromhex("00db1234567890ff"), 1, "time1"))
    r = gb("sr", other, "--port", b.port, "--device", "gsme", "--keys", k, "--dcc-dir", d,
           ok=False)
    assert r.returncode == 1 and "00db1234567890ff" in r.stderr.lower().replace("-", ""), r.stderr
    with Store(d / DB_FILE) as st:
        assert st.volume() == []
    # the same request for the board's meter is counted once, and runs
    mine = tmp_path / "mine.xml"
    mine.write_text(srxml.reset_debt_xml(sup, bytes.fromhex(IDS["gsme"]), 1, "time1"))
    gb("sr", mine, "--port", b.port, "--device", "gsme", "--keys", k, "--dcc-dir", d)
    with Store(d / DB_FILE) as st:
        assert len(st.volume()) == 1
