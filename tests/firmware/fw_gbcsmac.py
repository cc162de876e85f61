# The GBCS MAC in the unix port: AES (FIPS-197) and GCM (NIST) known answers, the KDF,
# the MAC header, and every RTDS MAC recomputed with the ZAZ1 test keys.
import hashlib

import aes
import gbcsmac
import p256
from fw_p256 import det_rand, pem_point, pkcs8_scalar, rtds_messages, rtds_names
from fwtest import SkipTest, raises, rtds_hex

# FIPS-197 appendices B and C.1: (key, plaintext, ciphertext).
AES_VECTORS = (
    ("2b7e151628aed2a6abf7158809cf4f3c", "3243f6a8885a308d313198a2e0370734",
     "3925841d02dc09fbdc118597196a0b32"),
    ("000102030405060708090a0b0c0d0e0f", "00112233445566778899aabbccddeeff",
     "69c4e0d86a7b0430d8cdb78070b4c55a"),
)

# The GCM specification's test cases 1, 2 and 4 (AES-128): key, IV, AAD, ciphertext, tag.
GCM_VECTORS = (
    ("00000000000000000000000000000000", "000000000000000000000000", "", "",
     "58e2fccefa7e3061367f1d57a4e7455a"),
    ("00000000000000000000000000000000", "000000000000000000000000", "",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
    ("feffe9928665731c6d6a8f9467308308", "cafebabefacedbaddecaf888",
     "feedfacedeadbeeffeedfacedeadbeefabaddad2",
     "42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
     "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091",
     "5bc94fbc3221a5db94fae95ae7121a47"),
)


def _gcm(cipher, key, iv, aad, ct):
    # Full GCM tag from gbcsmac's GHASH: E(J0) xor GHASH_H(A, C).
    blocks = cipher(key, 1).encrypt(bytes(16) + iv + b"\x00\x00\x00\x01")
    s = gbcsmac._ghash(int.from_bytes(blocks[:16], "big"), aad, ct)
    return bytes(a ^ b for a, b in zip(blocks[16:], s))


def _apdu(cra=1, counter=0x1122334455667788, originator=b"\x90\xb3\xd5\x1f\x30\x01\x00\x00",
          recipient=b"\x00\xdb\x12\x34\x56\x78\x90\xa0", content=b"\x01\x09\x00", sig=True):
    # A General-Signing APDU laid out as NOTES 2.1 (no date-time, message code 0F00).
    out = (b"\xdf\x09" + bytes((cra,)) + counter.to_bytes(8, "big") + b"\x08" + originator
           + b"\x08" + recipient + b"\x00\x02\x0f\x00" + gbcsmac.der_len(len(content))
           + content)
    return out + (b"\x40" + bytes(range(64)) if sig else b"\x00")


# --- AES and GCM known answers (no ../shared needed)


def test_aes_fips197():
    for key, pt, ct in AES_VECTORS:
        key, pt, ct = bytes.fromhex(key), bytes.fromhex(pt), bytes.fromhex(ct)
        assert aes.aes(key, 1).encrypt(pt) == ct
        assert aes.aes(key).encrypt(pt + pt) == ct + ct  # ECB: block by block
    assert aes._SBOX[0x00] == 0x63 and aes._SBOX[0x53] == 0xED


def test_aes_bad_input():
    raises(ValueError, aes.aes, bytes(15), 1)
    raises(ValueError, aes.aes, bytes(32), 1)  # AES-128 only
    raises(ValueError, aes.aes, bytes(16), 2)
    raises(ValueError, aes.aes(bytes(16)).encrypt, bytes(15))


def test_aes_matches_cryptolib():
    try:
        import cryptolib
    except ImportError:
        return  # nothing to compare with; FIPS-197 covers aes.py
    rand = det_rand(b"aes")
    for _ in range(20):
        key, blk = rand(16), rand(48)
        assert aes.aes(key, 1).encrypt(blk) == cryptolib.aes(key, 1).encrypt(blk)


def test_gcm_nist_vectors_both_ciphers():
    ciphers = [aes.aes]
    if gbcsmac._aes is not aes.aes:
        ciphers.append(gbcsmac._aes)  # cryptolib
    for cipher in ciphers:
        for key, iv, aad, ct, t in GCM_VECTORS:
            key, iv, aad, ct = (bytes.fromhex(v) for v in (key, iv, aad, ct))
            assert _gcm(cipher, key, iv, aad, ct) == bytes.fromhex(t)
    key, iv, aad, ct, t = GCM_VECTORS[0]
    assert gbcsmac._gcm_tag(bytes.fromhex(key), bytes.fromhex(iv), b"") == bytes.fromhex(t)


def test_tag_is_gcm_with_gbcs_iv_and_aad():
    key = bytes(range(16))
    originator = b"\x90\xb3\xd5\x1f\x30\x01\x00\x00"
    apdu = _apdu()
    t = gbcsmac.tag(key, originator, apdu)
    aad = b"\x11\x00\x00\x00\x00\x00" + apdu
    assert t == _gcm(aes.aes, key, originator + bytes(4), aad, b"")[:12]
    assert len(t) == 12
    raises(ValueError, gbcsmac.tag, bytes(15), originator, apdu)
    raises(ValueError, gbcsmac.tag, key, originator[:7], apdu)


def test_mac_key_kdf():
    z = bytes(range(32))
    o = b"\x90\xb3\xd5\x1f\x30\x01\x00\x00"
    r = b"\x00\xdb\x12\x34\x56\x78\x90\xa0"
    k = gbcsmac.mac_key(z, o, 1, 0x1122334455667788, r)
    other = (b"\x00\x00\x00\x01" + z + b"\x60\x85\x74\x06\x08\x03\x00" + o + b"\x09\x01"
             + b"\x11\x22\x33\x44\x55\x66\x77\x88" + r)
    assert k == hashlib.sha256(other).digest()[:16]
    # Every input changes the key.
    for changed in ((bytes(32), o, 1, 0x1122334455667788, r), (z, r, 1, 0x1122334455667788, o),
                    (z, o, 2, 0x1122334455667788, r), (z, o, 1, 0x1122334455667789, r)):
        assert gbcsmac.mac_key(*changed) != k
    raises(ValueError, gbcsmac.mac_key, z[:31], o, 1, 1, r)
    raises(ValueError, gbcsmac.mac_key, z, o[:7], 1, 1, r)
    raises(ValueError, gbcsmac.mac_key, z, o, 256, 1, r)
    raises(ValueError, gbcsmac.mac_key, z, o, 1, 1 << 64, r)


def test_wrap_and_parse_own_keys():
    # ACB and meter with run-time keys: both ends of the ECDH reach the same MAC.
    rand = det_rand(b"mac")
    acb, acb_pub = p256.keypair(rand)
    meter, meter_pub = p256.keypair(rand)
    z = p256.ecdh(acb, meter_pub)
    for content in (b"\x01", bytes(100), bytes(200), bytes(300)):
        apdu = _apdu(content=content)
        cmd = gbcsmac.wrap(z, apdu)
        off, n = gbcsmac.parse_header(cmd)
        assert cmd[off:off + n] == apdu and len(cmd) == off + n + 12
        assert cmd[:7] == b"\xdd" + bytes(6) and cmd[off - 5:off] == b"\x11" + bytes(4)
        key = gbcsmac.mac_key(p256.ecdh(meter, acb_pub), apdu[12:20], 1, 0x1122334455667788,
                              apdu[21:29])
        assert cmd[-12:] == gbcsmac.tag(key, apdu[12:20], apdu)
    # DER length forms: 1 byte, 81 nn, 82 nn nn.
    assert gbcsmac.wrap(z, _apdu(content=b"\x01"))[7] < 0x80
    assert gbcsmac.wrap(z, _apdu(content=bytes(100)))[7] == 0x81
    assert gbcsmac.wrap(z, _apdu(content=bytes(300)))[7] == 0x82
    # Any change to the APDU or Z changes the MAC.
    apdu = _apdu()
    mac = gbcsmac.wrap(z, apdu)[-12:]
    for i in (0, 2, 5, 15, 25, len(apdu) - 1):
        changed = bytearray(apdu)
        changed[i] ^= 0x01
        try:
            assert gbcsmac.wrap(z, changed)[-12:] != mac
        except ValueError:
            assert i in (0,)  # no longer a General-Signing APDU
    assert gbcsmac.wrap(p256.ecdh(acb, acb_pub), apdu)[-12:] != mac


def test_der_len_at_forms_and_errors():
    # Every form der_len writes reads back, followed by other bytes or not.
    for n in (0, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF):
        enc = gbcsmac.der_len(n)
        assert gbcsmac.der_len_at(enc, 0, len(enc)) == (n, len(enc))
        data = b"\xee\xee" + enc + b"\xee"
        assert gbcsmac.der_len_at(memoryview(data), 2, len(data)) == (n, 2 + len(enc))
        # end, not the buffer's size, is where the bytes stop
        for end in range(2, 2 + len(enc)):
            raises(ValueError, gbcsmac.der_len_at, data, 2, end)
    # longer forms than needed read too: parse_header alone asks for the shortest
    assert gbcsmac.der_len_at(b"\x81\x05", 0, 2) == (5, 2)
    assert gbcsmac.der_len_at(b"\x82\x00\x05", 0, 3) == (5, 3)
    for bad in (b"\x80", b"\x80\x01", b"\x83\x00\x00\x01", b"\xff\x01\x01", b""):
        raises(ValueError, gbcsmac.der_len_at, bad, 0, len(bad))


def test_wrap_rejects_non_apdu():
    z = bytes(32)
    raises(ValueError, gbcsmac.wrap, z, b"\xdf\x09\x01")
    raises(ValueError, gbcsmac.wrap, z, b"\xde" + _apdu()[1:])
    bad = bytearray(_apdu())
    bad[11] = 7  # originator length
    raises(ValueError, gbcsmac.wrap, z, bad)
    raises(ValueError, gbcsmac.wrap, z[:31], _apdu())


def test_parse_header_rejects():
    good = gbcsmac.wrap(bytes(32), _apdu())
    off, n = gbcsmac.parse_header(good)
    assert (off, n) == (13, len(_apdu()))
    assert gbcsmac.parse_header(memoryview(good)) == (off, n)

    def with_byte(i, v):
        b = bytearray(good)
        b[i] = v
        return bytes(b)
    body = good[8:]
    bad = (
        b"", good[:7], with_byte(0, 0xDE), with_byte(3, 1), with_byte(6, 1),
        good[:-1], good + b"\x00",                       # length does not match
        with_byte(7, good[7] + 1), with_byte(7, good[7] - 1),
        with_byte(8, 0x10), with_byte(12, 1),            # security header not 11 00 00 00 00
        good[:7] + b"\x81" + bytes((len(body),)) + body,  # 81 nn with nn < 0x80
        good[:7] + b"\x82\x00" + bytes((len(body),)) + body,
        good[:7] + b"\x83\x00\x00" + bytes((len(body),)) + body,
        good[:7] + b"\x80" + body,
        b"\xdd" + bytes(6) + b"\x11\x11\x00\x00\x00\x00" + bytes(12),  # no APDU
        b"\xdd" + bytes(6) + b"\x81",
    )
    for data in bad:
        raises(ValueError, gbcsmac.parse_header, data)


# --- RTDS with the ZAZ1 test PKI


def test_rtds_command_macs():
    # Every RTDS COMMAND present, critical (signed) or not (signature length 00),
    # carries the ACB's MAC: it verifies with the ACB's KA key and the KA certificate
    # of the meter it is addressed to, and not over other bytes.
    acb = pkcs8_scalar("90b3d51f30000002-ka.key")
    for name in rtds_names("_COMMAND_"):
        cmd = rtds_hex(name)
        off, n = gbcsmac.parse_header(cmd)
        apdu = cmd[off:off + n]
        assert apdu[2] == 1, name  # CRA: command
        meter = apdu[21:29].hex()  # the recipient
        z = p256.ecdh(acb, pem_point(meter + "-ka.pem"))
        assert gbcsmac.wrap(z, apdu) == cmd, name
        key = gbcsmac.mac_key(z, apdu[12:20], apdu[2], int.from_bytes(apdu[3:11], "big"),
                              apdu[21:29])
        assert gbcsmac.tag(key, apdu[12:20], apdu) == cmd[-12:], name
        assert gbcsmac.tag(key, apdu[12:20], apdu[:-1]) != cmd[-12:], name


def test_rtds_meter_macs():
    # Every MAC-headed RTDS RESPONSE and ALERT present (non-critical: the meter MACs it)
    # carries the meter's MAC: Z of the meter's KA key and the KA key of the party it
    # is sent to, the Supplier. The meters' private keys are not published; holding the
    # Supplier's private key instead gives the same Z. Another Supplier's key does not.
    wrong = pkcs8_scalar("90b3d51f30030000-ka.key")
    n = 0
    for name, cra, apdu, mac in rtds_messages():
        if cra == 1 or mac is None:
            continue
        data = rtds_hex(name)
        orig, recip = apdu[12:20].hex(), apdu[21:29].hex()
        assert recip == "90b3d51f30010000", name
        meter = pem_point(orig + "-ka.pem")
        z = p256.ecdh(pkcs8_scalar(recip + "-ka.key"), meter)
        assert gbcsmac.wrap(z, apdu) == data, name
        assert gbcsmac.wrap(p256.ecdh(wrong, meter), apdu) != data, name
        n += 1
    if not n:
        raise SkipTest("no MAC-headed RTDS RESPONSE or ALERT")
    print("RTDS meter MACs verified: %d" % n)


def test_rtds_macs_with_pure_aes():
    # The same MAC with aes.py standing in for a missing cryptolib.
    saved = gbcsmac._aes
    gbcsmac._aes = aes.aes
    try:
        name = rtds_names("SUCCESS_COMMAND")[0]
        cmd = rtds_hex(name)
        off, n = gbcsmac.parse_header(cmd)
        apdu = cmd[off:off + n]
        z = p256.ecdh(pkcs8_scalar("90b3d51f30000002-ka.key"),
                      pem_point(apdu[21:29].hex() + "-ka.pem"))
        assert gbcsmac.wrap(z, apdu) == cmd
    finally:
        gbcsmac._aes = saved
