"""The reads' encrypted registers on the host (NOTES 7): gbcs.crypto seal / unseal,
the GBZ encrypted component and Read Attributes, gbcs.protected opening an ECS19 /
GCS14 Response. The RTDS Responses open with the RTDS keys (the Supplier's KA
private key and the meter's KA certificate) to the RTDS values; own vectors use
keys made at run time. Any change to the ciphertext or the tag is a SealError and
nothing of it is decoded."""

import struct

import pytest
import rtdsref
from cryptography.hazmat.primitives.asymmetric import ec

from gbmeter import paths
from gbmeter.gbcs import codec, crypto, protected

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and ZAZ1 keys) is absent")

ESME = bytes.fromhex("00db1234567890a0")
SUPPLIER = bytes.fromhex("90b3d51f30010000")

# the values the RTDS read Responses hold (the figures)
RTDS_READS = {
    "ECS19": ("4.3_ECS19/ECS19_4.3_SUCCESS_RESPONSE_GBCS.HEX", "00db1234567890a0",
              {"ec_balance": 250000, "acc_debt": 95000, "payment": 187000, "time1": 203000,
               "time2": 243000, "balance": 46000}),
    "GCS14": ("4.3_GCS14/GCS14_4.3_SUCCESS_RELIABLE_GSME_RESPONSE_GBCS.HEX", "00db1234567890a3",
              {"acc_debt": 2500000, "ec_balance": 500000, "balance": 2500000, "time1": 5000,
               "time2": 5000, "payment": 5000}),
}


def rtds(name):
    return bytes.fromhex((rtdsref.rtds_dir() / name).read_text().strip())


def opened(data, z):
    m = codec.parse_message(data)
    decoded = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
    return protected.open_read(m["message_code"], decoded, z, m["originator"], m["counter"],
                               m["recipient"])


def rtds_z(meter):
    sup = crypto.load_private_key(rtdsref.key(rtdsref.SUPPLIER, "ka", private=True))
    return crypto.ecdh(sup, rtdsref.key(meter, "ka"))


@needs_shared
@pytest.mark.parametrize("use_case", sorted(RTDS_READS))
def test_rtds_read_responses_open_to_the_rtds_values(use_case):
    name, meter, want = RTDS_READS[use_case]
    data = rtds(name)
    z = rtds_z(meter)
    assert crypto.check_mac(z, data)        # the meter's MAC, for the Supplier
    out = opened(data, z)
    assert out["registers"] == want
    if use_case == "GCS14":
        assert (out["currency"], out["trailing_digits"]) == (826, 5)
    # another meter's key, or another counter, does not open it
    other = "00db1234567890a1" if meter != "00db1234567890a1" else "00db1234567890a0"
    with pytest.raises(crypto.SealError):
        opened(data, rtds_z(other))
    m = codec.parse_message(data)
    decoded = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
    with pytest.raises(crypto.SealError):
        protected.open_read(m["message_code"], decoded, z, m["originator"], m["counter"] + 1,
                            m["recipient"])


@needs_shared
@pytest.mark.parametrize("use_case", sorted(RTDS_READS))
def test_tampered_ciphertext_or_tag_fails_and_decodes_nothing(use_case):
    name, meter, _ = RTDS_READS[use_case]
    data = rtds(name)
    z = rtds_z(meter)
    m = codec.parse_message(data)
    decoded = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
    (_, sealed, _), = protected.sealed_parts(m["message_code"], decoded)
    at = data.index(sealed)
    for i in (at + 5, at + len(sealed) // 2, at + len(sealed) - 12, at + len(sealed) - 1):
        bad = bytearray(data)
        bad[i] ^= 0x40
        with pytest.raises(crypto.SealError, match="does not verify"):
            opened(bytes(bad), z)
        assert not crypto.check_mac(z, bytes(bad))   # the MAC covers it too


@needs_shared
def test_seal_reproduces_the_rtds_ciphertext():
    # the host's seal of the RTDS plaintext is the RTDS sealed bytes (same Z, counter,
    # originator and recipient): the formula of NOTES 7 exactly
    name, meter, _ = RTDS_READS["ECS19"]
    data = rtds(name)
    z = rtds_z(meter)
    plain = b"\x02\x01\x02\x06" + b"".join(
        b"\x05" + struct.pack(">i", v) for v in (250000, 95000, 187000, 203000, 243000, 46000))
    sealed = crypto.seal(z, bytes.fromhex(meter), 1000, SUPPLIER, plain)
    assert sealed in data
    assert crypto.unseal(z, bytes.fromhex(meter), 1000, SUPPLIER, sealed) == plain


def test_seal_unseal_own_keys_and_bad_input():
    a, b = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
    z = crypto.ecdh(a, b.public_key())
    assert z == crypto.ecdh(b, a.public_key())
    for plain in (b"", b"x", bytes(range(48)), bytes(100)):
        s = crypto.seal(z, ESME, 7, SUPPLIER, plain)
        assert s[:5] == b"\x31\x00\x00\x00\x00" and len(s) == 5 + len(plain) + 12
        assert crypto.unseal(z, ESME, 7, SUPPLIER, s) == plain
        assert crypto.seal(z, ESME, 8, SUPPLIER, plain) != s or not plain
    s = crypto.seal(z, ESME, 7, SUPPLIER, b"personal data")
    # cut short, another security header, a ciphertext bit flipped, a tag bit flipped
    # (flipped, not overwritten: a random first byte may already be the new value)
    for bad in (s[:16], b"\x11" + s[1:], s[:5] + bytes([s[5] ^ 1]) + s[6:],
                s[:-1] + bytes([s[-1] ^ 1])):
        with pytest.raises(crypto.SealError):
            crypto.unseal(z, ESME, 7, SUPPLIER, bad)
    with pytest.raises(crypto.SealError):
        crypto.unseal(z, SUPPLIER, 7, ESME, s)      # originator and recipient swapped
    # the encryption key is the MAC's KDF with 04 in place of the CRA flag
    assert crypto.kdf_encryption_key(z, ESME, 7, SUPPLIER) == \
        crypto.kdf_mac_key(z, ESME, 0x04, 7, SUPPLIER)


def test_gbz_read_attributes_and_encrypted_component():
    req = codec.build_gbz([(0x0700, 0, codec.read_attributes([0x0617, 0x0616])),
                           (0x0705, 0, codec.read_attributes([0x0005, 0x0231]))],
                          frame_control=codec.ZCL_FC_GENERAL)
    comps = codec.parse_gbz(req)["components"]
    assert [c["command"] for c in comps] == ["read_attributes"] * 2
    assert comps[1]["read_attributes"]["attributes"] == [0x0005, 0x0231]
    # the same command ids in the other direction are a Read Attributes Response
    recs = [{"attribute": 0x0617, "status": 0, "type": 0x18, "value": 0x50},
            {"attribute": 0x9999, "status": 0x86},
            {"attribute": 0x0616, "status": 0, "type": 0x21, "value": 826}]
    payload = codec.attribute_records(recs)
    assert payload == bytes.fromhex("1706001850" "999986" "160600213a03")
    resp = codec.build_gbz([(0x0700, 1, payload, 0)], frame_control=codec.ZCL_FC_RESPONSE)
    got = codec.parse_gbz(resp)["components"][0]["read_attributes_response"]["records"]
    assert [r.get("value") for r in got] == [0x50, None, 826]
    assert [r.get("name") for r in got] == ["price_trailing_digit_and_price_tier", None,
                                            "currency"]
    assert got[1]["status_name"] == "UNSUPPORTED_ATTRIBUTE"
    for bad in (payload[:-1], payload + b"\x01", bytes.fromhex("01000048")):  # 48: no such type
        with pytest.raises(codec.DecodeError):
            codec.parse_attribute_records(0x0700, bad)
    # an encrypted component: additional header, ZCL header, ciphered length, sealed
    sealed = b"\x31\x00\x00\x00\x00" + bytes(20)
    comp = struct.pack(">BHH", 3, 0x0705, 7 + len(sealed)) + b"\x00\x00\x08\x01\x01" + \
        struct.pack(">H", len(sealed)) + sealed
    c = codec.parse_gbz(b"\x01\x09\x01" + comp)["components"][0]
    assert c["encrypted"] and c["ciphered"] == sealed and c["command"] == "read_attributes_response"
    assert (b"\x01\x09\x01" + comp)[c["ciphered_offset"]:][:len(sealed)] == sealed
    with pytest.raises(codec.DecodeError):
        codec.parse_gbz(b"\x01\x09\x01" + comp[:-1])


def test_open_read_refuses_a_response_with_nothing_sealed():
    # an ECS19 whose action failed: no data, nothing to open (never a guess)
    content = codec.build_access_response(0x200003E8, [b"\x00"], [("action", 1)])
    decoded = codec.decode_content(0x002D, content)
    assert protected.sealed_parts(0x002D, decoded) == []
    with pytest.raises(codec.DecodeError, match="no encrypted part"):
        protected.open_read(0x002D, decoded, bytes(32), ESME, 1, SUPPLIER)
    # a sealed part whose plaintext is not six double-longs is not taken as values
    z = bytes(range(32))
    sealed = crypto.seal(z, ESME, 1, SUPPLIER, b"\x02\x01\x02\x01\x05\x00\x00\x00\x01")
    data = codec.axdr("structure", [codec.axdr("array", []), codec.axdr("octet-string", sealed)])
    content = codec.build_access_response(0x200003E8, [data], [("action", 0)])
    decoded = codec.decode_content(0x002D, content)
    with pytest.raises(codec.DecodeError, match="six double-longs"):
        protected.open_read(0x002D, decoded, z, ESME, 1, SUPPLIER)
