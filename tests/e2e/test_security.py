"""GBCS security end to end on virtual boards: provisioned meters accept correctly
signed and MAC'd Commands and refuse everything else with the right alert, changing
nothing (registers and counters read back)."""

import json
import os
import signal
import subprocess
import time

import pytest

from gbmeter.gbcs import codec, crypto, keys
from gbmeter.gbcs import pki as testpki
from gbmeter.supplier.provision import provision
from gbmeter.board.link import Link
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import alert_code, check_answer

from simboards import GBMETER, wait_until

pytestmark = pytest.mark.e2e

GSME_ID = "00db1234567890a1"
ESME_ID = "00db1234567890a0"
PREPAYMENT_CLUSTER = 0x0705


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    made = testpki.init(d)
    return d, made


def reset_precommand(s, meter_id, counter, register=0, amount=0, amount_type=None,
                     code=0x0F01, originator=None):
    """A GCS04a PRECOMMAND: one Change Debt component resetting `register`."""
    amount_type = register * 2 if amount_type is None else amount_type
    payload = codec.change_debt(1, amount, 1 if register == 2 else 0, amount_type)
    content = codec.build_gbz([(PREPAYMENT_CLUSTER, 0x02, payload)])
    return codec.build_apdu(1, counter, originator or s.supplier.title,
                            bytes.fromhex(meter_id), code, content)


def registers(link):
    r = link.diag("registers")
    r.pop("alerts", None)
    return r


@pytest.fixture
def gsme(start_board, pki):
    b = start_board("gsme")
    s = Session(pki[0])
    with Link(b.port) as link:
        provision(s, link, "gsme", GSME_ID)
        link.diag("set", fields={"time1": 123000, "time2": 5000, "payment": 7000})
    return b, s


def send(link, s, command):
    return check_answer(s, codec.parse_message(command)["apdu"], link.gbcs(command))


def test_signed_reset_accepted_and_response_verified(gsme):
    b, s = gsme
    with Link(b.port) as link:
        cmd, _ = s.command(reset_precommand(s, GSME_ID, 10))
        r = send(link, s, cmd)
        assert r["ok"], r
        assert r["signature_valid"] is True
        assert registers(link)["time1"] == 0
        assert registers(link)["counters"][s.supplier.eui] == 10


def _alert_case(b, s, command, alert):
    with Link(b.port) as link:
        before = registers(link)
        frames = link.gbcs(command)
        after = registers(link)
    # nothing changed but the meter's own alert counter
    before.pop("alert_ctr"), after.pop("alert_ctr")
    assert after == before
    codes = []
    for f in frames:  # the refusal's alert, then 8F60 after a run of bad Commands
        assert f.type == 0x03
        a = codec.parse_apdu(f.payload)
        assert a["cra"] == 3 and a["message_code"] == 0x1000
        # critical alerts are signed by the meter
        assert crypto.verify_apdu(s.meter_key(a["originator"].hex(), "ds"), f.payload)
        codes.append("%04X" % alert_code(f.payload))
    assert codes[0] == alert and set(codes[1:]) <= {"8F60"}


def test_replay_and_lower_counter_refused(gsme):
    b, s = gsme
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 20))
    with Link(b.port) as link:
        assert send(link, s, cmd)["ok"]
    _alert_case(b, s, cmd, "8F53")                         # the same Command again
    low, _ = s.command(reset_precommand(s, GSME_ID, 19, register=1))
    _alert_case(b, s, low, "8F53")                         # a lower counter


def test_wrong_recipient(gsme):
    b, s = gsme
    pre = reset_precommand(s, "00db1234567890ff", 30)
    signed = s.sign(pre)
    cmd = s.wrap(signed, GSME_ID)  # MAC'd for this meter's key, addressed elsewhere
    _alert_case(b, s, cmd, "8F53")


def test_untrusted_supplier_and_network_operator(gsme, pki):
    b, s = gsme
    second = Session(pki[0], supplier=pki[1]["second supplier"])
    cmd, _ = second.command(reset_precommand(second, GSME_ID, 40))
    _alert_case(b, s, cmd, "8F30")
    no = keys.KeyFolder(pki[0]).pick(3)
    pre = reset_precommand(s, GSME_ID, 41, originator=no.title)
    signed = crypto.sign_precommand(no.ds_priv, pre)
    _alert_case(b, s, s.wrap(signed, GSME_ID), "8F30")


def test_tampered_content_signature_and_mac(gsme):
    b, s = gsme
    pre = reset_precommand(s, GSME_ID, 50)
    signed = bytearray(s.sign(pre))
    # content changed after signing, MAC made over the changed bytes: signature fails
    t = bytearray(signed)
    t[len(pre) - 3] ^= 1
    _alert_case(b, s, s.wrap(bytes(t), GSME_ID), "8F3D")
    # signature changed
    t = bytearray(signed)
    t[-1] ^= 1
    _alert_case(b, s, s.wrap(bytes(t), GSME_ID), "8F3D")
    # MAC changed
    cmd = bytearray(s.wrap(bytes(signed), GSME_ID))
    cmd[-1] ^= 1
    _alert_case(b, s, bytes(cmd), "8F53")


def test_unknown_and_mismatched_message_code(gsme):
    b, s = gsme
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 60, code=0x0ABC))
    _alert_case(b, s, cmd, "8F1E")
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 61, code=0x001E))  # an ESME code
    _alert_case(b, s, cmd, "8F1E")
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 62, code=0x00B4))  # GCS40b code, reset content
    _alert_case(b, s, cmd, "8F1E")


def test_reset_content_rules(gsme):
    b, s = gsme
    for n, kw in enumerate(({"amount": 1}, {"amount_type": 1})):  # non-zero, incremental
        cmd, _ = s.command(reset_precommand(s, GSME_ID, 70 + n, **kw))
        _alert_case(b, s, cmd, "8F1E")


def test_truncated_at_every_length(gsme, variant):
    b, s = gsme
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 80))
    step = 1 if variant == "py" else 7
    for n in range(0, len(cmd), step):
        _alert_case(b, s, cmd[:n], "8F1E")
    with Link(b.port) as link:  # the whole Command still works afterwards
        assert send(link, s, cmd)["ok"]


def test_run_of_bad_commands_raises_8F60(gsme):
    b, s = gsme
    with Link(b.port) as link:
        seen = []
        for i in range(5):
            frames = link.gbcs(b"\xdd\x00junk%d" % i)
            seen += [codec.parse_apdu(f.payload)["content"][3:5].hex().upper() for f in frames]
        assert "8F60" in seen and seen.count("8F1E") == 5


def test_replay_protection_survives_restart_and_power_cut(start_board, pki, tmp_path):
    d = tmp_path / "flash"
    b = start_board("gsme", dir=d)
    s = Session(pki[0])
    with Link(b.port) as link:
        provision(s, link, "gsme", GSME_ID)
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 90))
    with Link(b.port) as link:
        assert send(link, s, cmd)["ok"]
    b.stop()
    b2 = start_board("gsme", dir=d)
    _alert_case(b2, s, cmd, "8F53")
    os.killpg(b2.pid, signal.SIGKILL)  # power cut
    b2.stop()
    b3 = start_board("gsme", dir=d)
    _alert_case(b3, s, cmd, "8F53")


def test_rtds_gcs04_signed_precommand_on_virtual_gsme(start_board, shared):
    """The ZAZ1 Supplier-signed RTDS GCS04 Signed Pre-Command, wrapped by the host as
    ACB for the meter's own KA key, runs and answers RTDS's Response content."""
    for device, meter_id, case in (("gsme", GSME_ID, "2.3_GCS04/GCS04_2.3"),
                                   ("esme", ESME_ID, "2.3_ECS07/ECS07_2.3")):
        b = start_board(device)
        s = Session(shared / "gbcs" / "keys")
        rtds = shared / "gbcs" / "rtds"
        pre = bytes.fromhex((rtds / f"{case}_SUCCESS_PRECOMMAND_GBCS.HEX").read_text().strip())
        com = bytes.fromhex((rtds / f"{case}_SUCCESS_COMMAND_GBCS.HEX").read_text().strip())
        resp = bytes.fromhex((rtds / f"{case}_SUCCESS_RESPONSE_GBCS.HEX").read_text().strip())
        signed = pre + b"\x40" + com[-76:-12]
        with Link(b.port) as link:
            provision(s, link, device, meter_id)
            r = send(link, s, s.wrap(signed, meter_id))
        assert r["ok"], r
        got = codec.parse_apdu(bytes.fromhex(r["response"]))
        want = codec.parse_apdu(resp)
        assert got["content"] == want["content"]
        assert (got["counter"], got["message_code"]) == (want["counter"], want["message_code"])


def test_send_cli_json(start_board, pki):
    b = start_board("gsme")
    s = Session(pki[0])
    with Link(b.port) as link:
        provision(s, link, "gsme", GSME_ID)
    cmd, _ = s.command(reset_precommand(s, GSME_ID, 5))
    r = subprocess.run([GBMETER, "send", "--port", b.port, "--keys", str(pki[0]), "--json",
                        cmd.hex()], capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout)
    assert r.returncode == 0 and out["ok"] is True and out["response"]
    r = subprocess.run([GBMETER, "send", "--port", b.port, "--keys", str(pki[0]), "--json",
                        cmd.hex()], capture_output=True, text=True, timeout=60)
    out = json.loads(r.stdout)
    assert r.returncode == 2 and out["ok"] is False and out["alert"] == "8F53"
