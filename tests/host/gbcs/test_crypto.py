"""gbmeter.gbcs: signing, MAC and ACB wrapping. Own vectors use keys generated at
run time; the RTDS tests read ../shared at run time and skip when it is absent."""

import hashlib

import pytest
import rtdsref
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gbmeter.gbcs import codec, crypto
from gbmeter import paths

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and ZAZ1 keys) is absent")

SUPPLIER = bytes.fromhex("0211223344556677")
METER = bytes.fromhex("0a0b0c0d0e0f10a1")


@pytest.fixture(scope="module")
def k():
    gen = lambda: ec.generate_private_key(ec.SECP256R1())  # noqa: E731
    return {"sup_ds": gen(), "acb_ka": gen(), "meter_ka": gen(), "meter_ds": gen(),
            "sup_ka": gen(), "other": gen()}


def precommand(counter=1000, content=None):
    content = content or codec.build_gbz([(0x0705, 2, codec.change_debt(1, 0, 0, 4))])
    return codec.build_apdu(1, counter, SUPPLIER, METER, 0x0F01, content)


def test_signed_precommand_layout_and_verification(k):
    pre = precommand()
    spc = crypto.sign_precommand(k["sup_ds"], pre)
    assert spc[:len(pre)] == pre and spc[len(pre)] == 0x40 and len(spc) == len(pre) + 65
    sig = spc[-64:]
    # independent check: ECDSA over PRECOMMAND[1:] (everything after DF)
    der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
    k["sup_ds"].public_key().verify(der, pre[1:], ec.ECDSA(hashes.SHA256()))
    assert crypto.verify_apdu(k["sup_ds"].public_key(), spc)
    assert not crypto.verify_apdu(k["other"].public_key(), spc)
    # deterministic nonce: same input, same signature
    assert crypto.sign_precommand(k["sup_ds"], pre) == spc


def test_tampering_breaks_the_signature(k):
    spc = crypto.sign_precommand(k["sup_ds"], precommand())
    pub = k["sup_ds"].public_key()
    for i in (1, 2, 10, 20, 40, len(spc) - 66, len(spc) - 1, len(spc) - 40):
        bad = bytearray(spc)
        bad[i] ^= 0x01
        try:
            assert not crypto.verify_apdu(pub, bytes(bad)), i
        except codec.DecodeError:
            pass    # a flipped framing byte no longer parses: also a rejection


def test_unsigned_apdu_does_not_verify(k):
    assert not crypto.verify_apdu(k["sup_ds"].public_key(), precommand())
    with pytest.raises(ValueError):
        crypto.sign_apdu(k["sup_ds"], crypto.sign_precommand(k["sup_ds"], precommand()))


def test_kdf_matches_notes_formula():
    z = bytes(range(32))
    key = crypto.kdf_mac_key(z, SUPPLIER, 1, 0x3E8, METER)
    expect = hashlib.sha256(
        bytes.fromhex("00000001") + z + bytes.fromhex("60857406080300") + SUPPLIER + b"\x09"
        + b"\x01" + (0x3E8).to_bytes(8, "big") + METER).digest()[:16]
    assert key == expect
    assert crypto.kdf_mac_key(z, SUPPLIER, 1, 0x3E9, METER) != key   # counter is in it


def test_mac_matches_notes_formula(k):
    z = crypto.ecdh(k["acb_ka"], k["meter_ka"].public_key())
    apdu = crypto.sign_precommand(k["sup_ds"], precommand(counter=77))
    key = crypto.kdf_mac_key(z, SUPPLIER, 1, 77, METER)
    tag = AESGCM(key).encrypt(SUPPLIER + bytes(4), b"", bytes.fromhex("110000000000") + apdu)
    assert crypto.mac(z, apdu) == tag[:12]


def test_wrap_and_check_mac_from_both_sides(k):
    spc = crypto.sign_precommand(k["sup_ds"], precommand())
    cmd = crypto.wrap(k["acb_ka"], k["meter_ka"].public_key(), spc)
    m = codec.parse_message(cmd)
    assert m["apdu"] == spc and len(m["mac"]) == 12
    assert m["mac_header"]["length"] == 5 + len(spc) + 12
    # the meter computes the same Z from its KA key and the ACB's KA key
    assert crypto.check_mac_keys(k["meter_ka"], k["acb_ka"].public_key(), cmd)
    assert crypto.check_mac_keys(k["acb_ka"], k["meter_ka"].public_key(), cmd)
    assert not crypto.check_mac_keys(k["other"], k["acb_ka"].public_key(), cmd)
    assert crypto.unwrap(cmd) == (spc, m["mac"])
    # every single-bit change in the APDU or the MAC is caught
    z = crypto.ecdh(k["meter_ka"], k["acb_ka"].public_key())
    for i in range(13, len(cmd)):
        bad = bytearray(cmd)
        bad[i] ^= 0x80
        try:
            assert not crypto.check_mac(z, bytes(bad)), i
        except codec.DecodeError:
            pass


def test_wrap_refuses_what_is_not_a_signed_command(k):
    meter = k["meter_ka"].public_key()
    with pytest.raises(ValueError):
        crypto.wrap(k["acb_ka"], meter, precommand())              # no signature
    resp = codec.build_apdu(2, 1, METER, SUPPLIER, 0x0F01, b"\x01\x09", bytes(64))
    with pytest.raises(ValueError):
        crypto.wrap(k["acb_ka"], meter, resp)                      # not a Command
    with pytest.raises(codec.DecodeError):
        crypto.wrap(k["acb_ka"], meter, precommand()[:20])
    assert not crypto.check_mac(bytes(32), precommand())           # no MAC header
    with pytest.raises(codec.DecodeError):
        crypto.unwrap(precommand())


def test_mac_alert_like_a_meter(k):
    """Non-critical alert: signature length 00, MAC'd with the meter's and the
    Supplier's KA keys."""
    apdu = codec.build_apdu(3, 2000, METER, SUPPLIER, 0x1001,
                            bytes.fromhex("0F200007D0000202128F3D0900"), signature=b"")
    msg = crypto.wrap_with_z(crypto.ecdh(k["meter_ka"], k["sup_ka"].public_key()), apdu)
    assert crypto.check_mac_keys(k["sup_ka"], k["meter_ka"].public_key(), msg)
    assert not crypto.verify_apdu(k["meter_ds"].public_key(), msg)    # not signed


def test_key_loading_errors(tmp_path):
    bad = tmp_path / "x.key"
    bad.write_text("not a key")
    with pytest.raises(crypto.KeyFileError):
        crypto.load_private_key(bad)
    with pytest.raises(crypto.KeyFileError):
        crypto.load_public_key(bad)
    with pytest.raises(crypto.KeyFileError):
        crypto.load_private_key(tmp_path / "missing.key")
    with pytest.raises(crypto.KeyFileError):
        crypto.load_public_key(b"\x04" + bytes(64))            # not on the curve


def test_public_point_round_trip(k):
    pt = crypto.public_point(k["meter_ds"])
    assert len(pt) == 65 and pt[0] == 4
    assert crypto.public_point(crypto.load_public_key(pt)) == pt


# --- RTDS + ZAZ1 ----------------------------------------------------------------------

def _rtds():
    return sorted((SHARED / "gbcs" / "rtds").glob("*/*.HEX"))


def _hex(p):
    return bytes.fromhex(p.read_text().strip())


def _keys():
    return SHARED / "gbcs" / "keys"


@needs_shared
def test_rtds_every_command_wraps_byte_for_byte():
    """Every COMMAND in RTDS, critical or not: the ACB's MAC header and MAC rebuilt from
    its APDU; where a PRECOMMAND exists, the APDU is it + 40 + the Supplier's signature."""
    acb = crypto.load_private_key(rtdsref.key(rtdsref.ACB, "ka", private=True))
    checked = []
    for r in rtdsref.messages():
        if r.kind != "COMMAND":
            continue
        meter_ka = rtdsref.key(r.msg["recipient"].hex(), "ka")
        assert crypto.wrap_with_z(crypto.ecdh(acb, meter_ka), r.msg["apdu"]) == r.data, r.name
        pre = rtdsref.sibling(r, "PRECOMMAND")
        if pre is not None:
            assert crypto.wrap(acb, meter_ka, pre.data + b"\x40" + r.msg["signature"]) == r.data
        checked.append(r.name)
    assert checked


@needs_shared
def test_rtds_every_signature_verifies_with_the_right_key_only():
    """Every signed RTDS message verifies with its originator's DS certificate (the
    Supplier for Commands, the meter for Responses and Alerts) and with no other."""
    other = crypto.load_public_key(rtdsref.key(rtdsref.OTHER_SUPPLIER, "ds"))
    checked = []
    for r in rtdsref.messages():
        m = r.msg
        if m["signature"] is None:
            continue
        if m["cra"] == 1:
            assert m["originator"].hex() == rtdsref.SUPPLIER, r.name
        assert crypto.verify_apdu(rtdsref.key(m["originator"].hex(), "ds"), r.data), r.name
        wrong = other if m["cra"] != 1 else rtdsref.key(m["recipient"].hex(), "ds")
        assert not crypto.verify_apdu(wrong, r.data), r.name
        checked.append(r.name)
    assert checked


@needs_shared
def test_rtds_every_mac_verifies_with_the_right_keys_only():
    """Every MAC'd RTDS message: a Command's MAC is the ACB's (ACB KA with the meter's
    KA); a Response's or Alert's is the meter's (meter KA with the Supplier's KA)."""
    acb = crypto.load_private_key(rtdsref.key(rtdsref.ACB, "ka", private=True))
    sup = crypto.load_private_key(rtdsref.key(rtdsref.SUPPLIER, "ka", private=True))
    checked = []
    for r in rtdsref.messages():
        m = r.msg
        if m["mac"] is None:
            continue
        if m["cra"] == 1:
            right, wrong, meter = acb, sup, m["recipient"].hex()
        else:
            right, wrong, meter = sup, acb, m["originator"].hex()
        assert crypto.check_mac_keys(right, rtdsref.key(meter, "ka"), r.data), r.name
        assert not crypto.check_mac_keys(wrong, rtdsref.key(meter, "ka"), r.data), r.name
        checked.append(r.name)
    assert checked
