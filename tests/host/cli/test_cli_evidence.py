"""Issue 11 items 3 and 5 on the host: `parse --keys` trusts the keys a meter made at
provisioning before the folder's certificates; `send` refuses what is not a COMMAND
for the meter on the port; `send --raw` reports whatever the meter answered.
Own vectors: a fresh test PKI, a "certified" meter key pair (as ZAZ1's meters have)
and the different key pair an emulated meter makes at provisioning."""

import json

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from gbmeter import cli
from gbmeter.board import link as wire
from gbmeter.errors import UserError
from gbmeter.gbcs import codec, crypto, keys, pki
from gbmeter.supplier.session import Session, state_folder
from gbmeter.supplier.answer import describe, raw_answer, refuse_unfit

METER = "00db1234567890a1"
OTHER = "00db1234567890b7"   # a meter with no certificate, only a provisioning record
GSME = {"id": METER, "device": "gsme"}


def point(key):
    return crypto.public_point(key.public_key())[1:].hex()


def parse(capsys, message, folder):
    rc = cli.main(["parse", bytes(message).hex(), "--keys", str(folder), "--json"])
    out, err = capsys.readouterr()
    assert rc == 0, err
    return json.loads(out)


def make_world(d, read_only):
    """A PKI whose meter METER has certificates for one key pair and a provisioning
    record for another (what `provision` saves for an emulated meter)."""
    pki.init(d)
    cert_ds, cert_ka = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    pki.issue_device_cert(d, METER, cert_ds.public_key(), "ds")
    pki.issue_device_cert(d, METER, cert_ka.public_key(), "ka")
    if read_only:
        d.chmod(0o555)
    s = Session(d)
    own = {}
    for meter in (METER, OTHER):
        ds, ka = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
        s.save_meter(meter, {"device": "gsme", "ds": point(ds), "ka": point(ka),
                             "supplier": s.supplier.eui, "acb": s.acb().eui})
        own[meter] = (ds, ka)
    return s, (cert_ds, cert_ka), own


def messages(s, meter, ds, ka):
    """A COMMAND MAC'd for `ka`, a Response and a critical alert signed with `ds`, a
    non-critical alert MAC'd with `ka` and the Supplier's KA key."""
    title = bytes.fromhex(meter)
    sup = s.supplier
    content = codec.build_gbz([(0x0705, 2, codec.change_debt(0, 0, 1, 4))])
    spc = s.sign(codec.build_apdu(1, 77, sup.title, title, 0x0F01, content))
    command = crypto.wrap(s.acb().ka_priv, ka.public_key(), spc)
    resp_content = codec.build_gbz([(0x0705, 0x0B, codec.default_response(2, 0), 0)],
                                   frame_control=codec.ZCL_FC_RESPONSE)
    response = crypto.sign_apdu(ds, codec.build_apdu(2, 77, title, sup.title, 0x0F01,
                                                     resp_content))
    critical = crypto.sign_apdu(ds, codec.build_apdu(
        3, 9, title, sup.title, 0x1000, bytes.fromhex("0109008F3D1C374A80")))
    nc = codec.build_apdu(3, 10, title, sup.title, 0x1001,
                          bytes.fromhex("01090081A71C374A80"), signature=b"")
    noncritical = crypto.wrap_with_z(crypto.ecdh(ka, sup.ka_pub), nc)
    return {"command": command, "response": response, "critical": critical,
            "noncritical": noncritical}


def tampered(message):
    """The message with the last byte of its content flipped."""
    m = codec.parse_message(message)
    t = bytearray(message)
    t[m["content_offset"] + len(m["content"]) - 1] ^= 1
    return bytes(t)


CHECKS = {"command": ("signature_valid", "mac_valid"), "response": ("signature_valid",),
          "critical": ("signature_valid",), "noncritical": ("mac_valid",)}


@pytest.mark.parametrize("read_only", [False, True], ids=["state-in-folder", "state-in-home"])
def test_parse_trusts_provisioned_keys_first(capsys, tmp_path, read_only):
    d = tmp_path / "keys"
    s, cert, own = make_world(d, read_only)
    assert (s.state == d.resolve()) is not read_only
    assert state_folder(d) == s.state
    # what the emulated meter sends verifies with the key it made at provisioning
    for name, msg in messages(s, METER, *own[METER]).items():
        out = parse(capsys, msg, d)
        for check in CHECKS[name]:
            assert out[check] is True, (name, check, out)
        key = "mac_key" if name in ("command", "noncritical") else "signature_key"
        assert out[key] == "provisioned", name
        bad = parse(capsys, tampered(msg), d)
        for check in CHECKS[name]:
            assert bad[check] is False, (name, check, bad)
    # messages of the certified key pair (an RTDS meter) stay valid
    for name, msg in messages(s, METER, *cert).items():
        out = parse(capsys, msg, d)
        assert all(out[c] is True for c in CHECKS[name]), (name, out)
        bad = parse(capsys, tampered(msg), d)
        assert all(bad[c] is False for c in CHECKS[name]), (name, bad)
    # a meter known only from provisioning: no certificate, still checked
    for name, msg in messages(s, OTHER, *own[OTHER]).items():
        out = parse(capsys, msg, d)
        assert all(out[c] is True for c in CHECKS[name]), (name, out)
        assert "key_notes" not in out
        who = "recipient_role" if name == "command" else "originator_role"
        assert out[who] == "device"


def test_parse_tree_names_the_provisioned_key(capsys, tmp_path):
    d = tmp_path / "keys"
    s, _, own = make_world(d, False)
    rc = cli.main(["parse", messages(s, METER, *own[METER])["response"].hex(), "--keys", str(d)])
    out = capsys.readouterr().out
    assert rc == 0 and "(valid) with the key the meter made at provisioning" in out
    # a folder that never provisioned the meter: its certificate, so INVALID
    bare = tmp_path / "bare"
    pki.init(bare)
    pki.issue_device_cert(bare, METER, own[METER][0].public_key(), "ka")  # a wrong key
    rc = cli.main(["parse", messages(s, METER, *own[METER])["response"].hex(),
                   "--keys", str(bare), "--json"])
    out = json.loads(capsys.readouterr().out)
    assert out["signature_valid"] is None and "no DS key" in out["key_notes"][0]


# --- send: what is refused before anything is sent ---------------------------------

@pytest.fixture(scope="module")
def pki_session(tmp_path_factory):
    d = tmp_path_factory.mktemp("pki")
    pki.init(d)
    s = Session(d)
    ka = ec.generate_private_key(ec.SECP256R1())
    s.save_meter(METER, {"device": "gsme", "ds": point(ka), "ka": point(ka)})
    return s, ka


def command_for(s, code=0x0F01, recipient=METER, sign=True, wrap=True, counter=5):
    content = codec.build_gbz([(0x0705, 2, codec.change_debt(0, 0, 1, 4))])
    apdu = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(recipient), code,
                            content)
    if sign:
        apdu = s.sign(apdu)
    if not wrap:
        return apdu
    if not sign:   # signature length 00, then the ACB's MAC header
        apdu = codec.build_apdu(1, counter, s.supplier.title, bytes.fromhex(recipient), code,
                                content, signature=b"")
        return crypto.wrap_with_z(crypto.ecdh(s.acb().ka_priv, s.meter_key(METER, "ka")), apdu)
    return s.wrap(apdu, METER)


def refusal(message, hello=GSME):
    with pytest.raises(UserError) as e:
        refuse_unfit(hello, codec.parse_message(message))
    assert "Nothing was sent" in str(e.value) and "--raw" in str(e.value)
    return e.value


def test_send_accepts_a_command_for_this_meter(pki_session):
    s, _ = pki_session
    row = refuse_unfit(GSME, codec.parse_message(command_for(s)))
    assert row[1] == "GCS04a"


def test_send_refuses_what_is_not_a_command(pki_session):
    s, meter_ka = pki_session
    e = refusal(command_for(s, wrap=False, sign=False))
    assert e.exit_code == 1 and "a PRECOMMAND, not a COMMAND" in str(e)
    e = refusal(command_for(s, wrap=False))
    assert e.exit_code == 1 and "a Signed Pre-Command, not a COMMAND" in str(e)
    msgs = messages(s, METER, meter_ka, meter_ka)
    for name in ("response", "critical", "noncritical"):
        e = refusal(msgs[name])
        assert e.exit_code == 1 and "not a COMMAND" in str(e)
    assert "a Response" in str(refusal(msgs["response"]))
    assert "an Alert" in str(refusal(msgs["noncritical"]))


def test_send_refuses_rtds_precommand_and_response(shared):
    rtds = shared / "gbcs" / "rtds" / "2.3_GCS04"
    for kind, what in (("PRECOMMAND", "a PRECOMMAND"), ("RESPONSE", "a Response")):
        f = next(rtds.glob(f"*_SUCCESS_{kind}_GBCS.HEX"))
        assert what in str(refusal(codec.parse_hex(f.read_text())))


def test_send_refuses_another_meter_or_device_type(pki_session):
    s, _ = pki_session
    e = refusal(command_for(s, recipient="00db1234567890a0"))
    assert e.exit_code == 1 and "addressed to 00db1234567890a0" in str(e)
    e = refusal(command_for(s), {"id": None, "device": "gsme"})
    assert "unprovisioned" in str(e)
    e = refusal(command_for(s, code=0x001E))             # ECS07, to a GSME
    assert e.exit_code == 4 and "ECS07 (001E) is an ESME use case" in str(e)
    assert "is a GSME" in str(e)
    e = refusal(command_for(s, code=0x0ABC))
    assert e.exit_code == 4 and "0ABC is not a use case" in str(e)
    e = refusal(command_for(s), {"id": METER, "device": "esme"})
    assert e.exit_code == 4 and "GSME use case" in str(e)
    e = refusal(command_for(s, sign=False))               # MAC header, no signature
    assert e.exit_code == 1 and "no Supplier signature" in str(e)


# --- send --raw: the meter's answer, whatever it is ---------------------------------

def frame(ftype, payload, final=True):
    return wire.Frame(ftype, wire.FINAL if final else 0, 1, payload)


def test_raw_answer_reports_a_nak_read_off_a_real_link(pki_session):
    """The meter's NAK, as its firmware frames it, read by a real Link (pyserial's
    loop:// transport stands in for a board that NAKs: no GBCS frame makes a
    healthy meter NAK on demand)."""
    s, _ = pki_session
    nak = wire.encode(wire.T_NAK, 11, b"\x07internal error")   # for the request after 10
    with wire.Link("loop://", timeout=2) as link:
        link.seq = 10
        link.write(nak)
        frames = link.gbcs(b"\x00\x01", naks=True)
    r = raw_answer(s, b"\x00\x01", frames)
    assert r["ok"] is False and r["raw"] is True and r["nak"] == "internal error"
    assert r["command"] == "0001" and "rejected the frame: internal error" in r["reason"]
    with wire.Link("loop://", timeout=2) as link:          # without naks: a LinkError
        link.seq = 10
        link.write(nak)
        with pytest.raises(wire.LinkError, match="rejected the frame: internal error"):
            link.gbcs(b"\x00\x01")
    with wire.Link("loop://", timeout=2) as link:
        with pytest.raises(wire.LinkError, match="nothing was sent"):
            link.gbcs(bytes(wire.MAX_PAYLOAD + 1), naks=True)


def test_raw_answer_never_claims_what_it_cannot_know(pki_session):
    s, meter_ka = pki_session
    msgs = messages(s, METER, meter_ka, meter_ka)
    response = msgs["response"]                            # Response to counter 77
    # a Response answering bytes that are not a Command: cannot tell
    r = raw_answer(s, b"\xde\xad", [frame(wire.T_RESPONSE, response)])
    assert r["ok"] is None and r["response"] == response.hex()
    assert r["signature_valid"] is True and "cannot tell" in r["reason"]
    assert "CANNOT TELL" in describe(r) and "not a GBCS message" in describe(r)
    # a Command answered by its Response: checked as `send` checks it
    cmd = command_for(s, counter=77)
    r = raw_answer(s, cmd, [frame(wire.T_RESPONSE, response)])
    assert r["ok"] is True and r["raw"] is True and r["command"] == cmd.hex()
    # ... and another Command's Response is not a success
    r = raw_answer(s, command_for(s, counter=78), [frame(wire.T_RESPONSE, response)])
    assert r["ok"] is False and "counter 77 is not the Command's 78" in r["reason"]
    # alerts: every frame kept, every code named
    alerts = [frame(wire.T_ALERT, msgs["critical"], False), frame(wire.T_ALERT, msgs["critical"])]
    r = raw_answer(s, b"\xdd\x00", alerts)
    assert r["ok"] is False and r["alerts"] == ["8F3D", "8F3D"]
    assert r["alert_messages"] == [msgs["critical"].hex()] * 2
    assert r["meter"] is None and r["counter"] is None
    pre = command_for(s, wrap=False, sign=False)
    r = raw_answer(s, pre, alerts[1:])
    assert r["sent"].startswith("a PRECOMMAND (GCS04a 0F01, counter 5)")
    assert describe(r).startswith("sent raw, a PRECOMMAND") and "8F3D" in describe(r)
