# P-256 ECDSA / ECDH in the unix port: RFC 6979 vectors, round trips, bad input, and
# the RTDS signatures made with the ZAZ1 test PKI (read from ../shared at run time).
import binascii
import hashlib
import os

import envelope
import gbcsmac
import p256
from fwtest import SkipTest, raises, rtds_hex, shared_dir

N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF

# RFC 6979 A.2.5: the P-256 key and the SHA-256 signatures of "sample" and "test".
RFC_X = "C9AFA9D845BA75166B5C215767B1D6934E50C3DB36E89B127B8A622B120F6721"
RFC_U = ("60FED4BA255A9D31C961EB74C6356D68C049B8923B61FA6CE669622E60F29FB6"
         "7903FE1008B8BC99A41AE9E95628BC64F2F1B20C2D7E9F5177A3C294D4462299")
RFC_SIGS = (
    (b"sample",
     "EFD48B2AACB6A8FD1140DD9CD45E81D69D2C877B56AAF991C34D0EA84EAF3716"
     "F7CB1C942D657C41D436C7A1B6E29F65F3E900DBB9AFF4064DC4AB2F843ACDA8"),
    (b"test",
     "F1ABB023518351CD71D881567B1EA663ED3EFCF6C5132B354F28D3B0B7D38367"
     "019F4113742A2B14BD25926B49C649155F267E60D3814B4C0CC84250E46F0083"),
)
G = ("6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296"
     "4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5")


# --- helpers (fw_gbcsmac imports these too)


def det_rand(seed):
    """A repeatable rand(n) for keypair(): SHA-256 in counter mode."""
    state = [0]

    def rand(n):
        out = b""
        while len(out) < n:
            state[0] += 1
            out += hashlib.sha256(seed + str(state[0]).encode()).digest()
        return out[:n]
    return rand


def _der(path):
    with open(path) as f:
        text = f.read()
    body = "".join(line for line in text.split("\n") if line and not line.startswith("-----"))
    return binascii.a2b_base64(body)


def pem_point(name):
    """The 64-byte x||y of keys/<name> (an X.509 certificate): the uncompressed point in
    the subjectPublicKeyInfo BIT STRING (03 42 00 04 ...)."""
    der = _der(shared_dir() + "/gbcs/keys/" + name)
    i = der.find(b"\x03\x42\x00\x04")
    assert i > 0, "no uncompressed P-256 point in " + name
    return der[i + 4:i + 68]


def pkcs8_scalar(name):
    """The 32-byte private scalar of keys/<name> (PKCS#8): the OCTET STRING 04 20 after
    the ECPrivateKey version 02 01 01."""
    der = _der(shared_dir() + "/gbcs/keys/" + name)
    i = der.find(b"\x02\x01\x01\x04\x20")
    assert i > 0, "no EC private key in " + name
    return der[i + 5:i + 37]


def rtds_names(kind):
    """'folder/file' of every RTDS file whose name contains kind, sorted."""
    base = shared_dir() + "/gbcs/rtds"
    out = []
    for d in os.ilistdir(base):
        if d[1] != 0x4000:
            continue
        for f in os.ilistdir(base + "/" + d[0]):
            if kind in f[0]:
                out.append(d[0] + "/" + f[0])
    out.sort()
    if not out:
        raise SkipTest("no RTDS files matching " + kind)
    return out


# What each kind of RTDS message file holds: its CRA flag (NOTES 2.1).
RTDS_KINDS = (("_COMMAND_", 1), ("_RESPONSE_", 2), ("_ALERT_", 3))


def rtds_messages():
    """(name, CRA its kind says, General-Signing APDU, MAC or None) of every RTDS
    COMMAND, RESPONSE and ALERT file present, however many there are: a MAC-headed
    one (DD ...) is split into its APDU and 12-byte MAC, any other is the APDU."""
    shared_dir()  # skips, saying why, without ../shared
    out = []
    for kind, cra in RTDS_KINDS:
        try:
            names = rtds_names(kind)
        except SkipTest:
            continue
        for name in names:
            data = rtds_hex(name)
            if data[0] == 0xDD:
                o, n = gbcsmac.parse_header(data)
                out.append((name, cra, data[o:o + n], data[o + n:]))
            else:
                out.append((name, cra, data, None))
    if not out:
        raise SkipTest("no RTDS COMMAND, RESPONSE or ALERT files")
    return out


def flip(b, i):
    b = bytearray(b)
    b[i] ^= 1
    return bytes(b)


# --- RFC 6979 and known answers


def test_rfc6979_public_key():
    assert p256.pubkey(bytes.fromhex(RFC_X)) == bytes.fromhex(RFC_U)


def test_rfc6979_signatures():
    x = bytes.fromhex(RFC_X)
    u = bytes.fromhex(RFC_U)
    for msg, sig in RFC_SIGS:
        sig = bytes.fromhex(sig)
        assert p256.sign(x, msg) == sig
        assert p256.verify(u, msg, sig)
        assert p256.verify(b"\x04" + u, msg, sig)
        assert p256.verify(p256.table(u, 3), msg, sig)


def test_small_multiples_of_g():
    # 1*G is G; n-1 is -G (same x, y negated).
    assert p256.pubkey((1).to_bytes(32, "big")) == bytes.fromhex(G)
    neg = p256.pubkey((N - 1).to_bytes(32, "big"))
    assert neg[:32] == bytes.fromhex(G)[:32]
    assert int.from_bytes(neg[32:], "big") == P - int.from_bytes(bytes.fromhex(G)[32:], "big")


# --- round trips over every window


def test_sign_verify_round_trip_all_windows():
    rand = det_rand(b"round trip")
    old = p256.WINDOW
    try:
        for w in range(1, 9):
            p256.set_window(w)
            priv, pub = p256.keypair(rand)
            assert len(priv) == 32 and len(pub) == 64 and p256.check_point(pub)
            msg = rand(w * 13)
            sig = p256.sign(priv, msg)
            assert p256.sign(priv, msg) == sig  # deterministic
            tab = p256.table(pub)
            assert tab.window == w and tab.pub() == pub
            # Mixed windows share the doublings of the longer comb.
            for key in (pub, b"\x04" + pub, tab, p256.table(pub, 9 - w)):
                assert p256.verify(key, msg, sig)
                assert not p256.verify(key, msg + b"\x00", sig)
    finally:
        p256.set_window(old)
    assert p256.WINDOW == old


def test_keypair_rejects_zero_and_out_of_range():
    draws = [bytes(32), N.to_bytes(32, "big"), b"\xff" * 32, (N - 1).to_bytes(32, "big")]
    priv, pub = p256.keypair(lambda n: draws.pop(0))
    assert priv == (N - 1).to_bytes(32, "big") and not draws
    assert pub == p256.pubkey(priv)


def test_bad_private_keys():
    for priv in (bytes(32), N.to_bytes(32, "big"), b"\xff" * 32, b"\x01" * 31, b""):
        raises(ValueError, p256.pubkey, priv)
        raises(ValueError, p256.sign, priv, b"m")
        raises(ValueError, p256.ecdh, priv, bytes.fromhex(RFC_U))


# --- verify says False, never raises


def test_tampered_message_signature_key():
    rand = det_rand(b"tamper")
    priv, pub = p256.keypair(rand)
    _, other = p256.keypair(rand)
    msg = b"\xdf\x09 a General-Signing APDU"
    sig = p256.sign(priv, msg)
    tab = p256.table(pub, 4)
    for key in (pub, tab):
        assert p256.verify(key, msg, sig)
        for i in (0, 5, len(msg) - 1):
            assert not p256.verify(key, flip(msg, i), sig)
        for i in (0, 17, 31, 32, 50, 63):
            assert not p256.verify(key, msg, flip(sig, i))
        assert not p256.verify(key, msg[:-1], sig)
    assert not p256.verify(other, msg, sig)
    assert not p256.verify(p256.table(other, 4), msg, sig)
    # The same signature with r and s swapped, or s negated, is not valid.
    assert not p256.verify(pub, msg, sig[32:] + sig[:32])
    s = int.from_bytes(sig[32:], "big")
    assert p256.verify(pub, msg, sig[:32] + (N - s).to_bytes(32, "big"))  # ECDSA malleability
    assert not p256.verify(pub, msg, sig[:32] + (N - s + 1).to_bytes(32, "big"))


def test_signature_values_out_of_range():
    priv, pub = p256.keypair(det_rand(b"range"))
    msg = b"m"
    sig = p256.sign(priv, msg)
    r, s = sig[:32], sig[32:]
    z = bytes(32)
    n = N.to_bytes(32, "big")
    big = b"\xff" * 32
    for bad in (z + s, r + z, n + s, r + n, big + s, r + big, z + z,
                sig[:63], sig + b"\x00", b"", None, 12345):
        assert p256.verify(pub, msg, bad) is False


def test_verify_bad_keys_false():
    priv, pub = p256.keypair(det_rand(b"bad keys"))
    msg = b"m"
    sig = p256.sign(priv, msg)
    off = pub[:63] + bytes((pub[63] ^ 1,))
    for key in (off, b"\x04" + off, b"\x02" + pub, pub[:63], pub + b"\x00", b"", bytes(64),
                None, "text", 7):
        assert p256.verify(key, msg, sig) is False


# --- point validation


def _small_x_point():
    # A point with a small x, so x + p still fits in 32 bytes and satisfies the curve
    # equation mod p: only the range check rejects it.  (p = 3 mod 4: sqrt is a power.)
    b = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
    x = 0
    while True:
        x += 1
        rhs = (x * x * x - 3 * x + b) % P
        y = pow(rhs, (P + 1) // 4, P)
        if y * y % P == rhs:
            return x, y


def test_invalid_points_rejected():
    u = bytes.fromhex(RFC_U)
    x, y = _small_x_point()
    good = x.to_bytes(32, "big") + y.to_bytes(32, "big")
    bad = (
        u[:63] + bytes((u[63] ^ 1,)),                         # off the curve
        bytes(64),                                            # (0, 0)
        (x + P).to_bytes(32, "big") + y.to_bytes(32, "big"),  # x not reduced mod p
        P.to_bytes(32, "big") + u[32:],                       # x = p
        b"\x03" + u,                                          # not uncompressed
        u[:32],                                               # compressed length
    )
    assert p256.check_point(u) and p256.check_point(b"\x04" + u) and p256.check_point(good)
    for pt in bad:
        assert not p256.check_point(pt)
        raises(ValueError, p256.table, pt)
        raises(ValueError, p256.ecdh, bytes.fromhex(RFC_X), pt)
        assert not p256.verify(pt, b"m", bytes(31) + b"\x01" + bytes(31) + b"\x01")


def test_set_window_bounds():
    old = p256.WINDOW
    raises(ValueError, p256.set_window, 0)
    raises(ValueError, p256.set_window, 9)
    raises(ValueError, p256.table, bytes.fromhex(RFC_U), 9)
    raises(ValueError, p256.table, bytes.fromhex(RFC_U), 0)
    assert p256.WINDOW == old


def test_failed_set_window_keeps_the_generator_table():
    import sys
    p256.sign(bytes.fromhex(RFC_X), b"sample")   # the generator's table exists
    gtab = p256._gtab
    assert gtab is not None
    for w in (0, p256.MAX_WINDOW + 1, 99):
        raises(ValueError, p256.set_window, w)
        assert p256._gtab is gtab and "p256make" not in sys.modules
    assert p256.sign(bytes.fromhex(RFC_X), b"sample") == bytes.fromhex(RFC_SIGS[0][1])
    assert p256._gtab is gtab


# --- ECDH


def test_ecdh_agrees():
    rand = det_rand(b"ecdh")
    a, pa = p256.keypair(rand)
    b, pb = p256.keypair(rand)
    z = p256.ecdh(a, pb)
    assert len(z) == 32
    assert z == p256.ecdh(b, pa)
    assert z == p256.ecdh(a, b"\x04" + pb)
    assert z == p256.ecdh(a, p256.table(pb, 5))
    assert z != p256.ecdh(a, pa)
    # priv * G has the x coordinate of the public key.
    assert p256.ecdh(a, bytes.fromhex(G)) == pa[:32]


# --- RTDS: the ZAZ1 test PKI


def test_rtds_precommands_signed_by_supplier():
    # Every PRECOMMAND present (the DCC's unsigned APDU of a critical Command) ends
    # right after its content, and its COMMAND's APDU is exactly PRECOMMAND + 40 + a
    # signature over PRECOMMAND[1:] that verifies with its originator's DS key (the
    # Supplier the meters trust) and with no other.
    wrong = pem_point("90b3d51f30030000-ds.pem")  # the Supplier the meters do not trust
    for name in rtds_names("_PRECOMMAND_"):
        pre = rtds_hex(name)
        f = envelope.parse_apdu(memoryview(pre + b"\x00"))  # content ends the file
        assert f[0] == 1 and f[6] == len(pre), name
        cmd = rtds_hex(name.replace("_PRECOMMAND_", "_COMMAND_"))
        o, n = gbcsmac.parse_header(cmd)
        apdu = cmd[o:o + n]
        assert apdu[:len(pre)] == pre and apdu[len(pre)] == 0x40, name
        assert len(apdu) == len(pre) + 65, name
        sig = apdu[-64:]
        pub = pem_point(bytes(f[2]).hex() + "-ds.pem")
        assert pub == pem_point("90b3d51f30010000-ds.pem"), name
        tab = p256.table(pub)
        assert p256.verify(pub, pre[1:], sig), name
        assert p256.verify(tab, pre[1:], sig), name
        assert not p256.verify(tab, pre, sig), name
        assert not p256.verify(wrong, pre[1:], sig), name


def test_rtds_messages_signed_or_macd():
    # Every RTDS COMMAND, RESPONSE and ALERT present parses as a General-Signing APDU
    # with the CRA its kind says. One that carries a signature (length 40: critical
    # Commands, their Responses, critical Alerts) verifies with its originator's DS
    # certificate, over APDU[1:] up to the end of the content, and not with another key
    # nor over other bytes. One that carries none (length 00: non-critical Commands,
    # Responses and Alerts) must carry a MAC header instead: fw_gbcsmac.py checks those
    # MACs with the ZAZ1 keys. A Response comes from the meter its Command went to and
    # repeats its counter.
    wrong = pem_point("90b3d51f30030000-ds.pem")
    signed = unsigned = 0
    for name, cra, apdu, mac in rtds_messages():
        f = envelope.parse_apdu(memoryview(apdu))
        assert f[0] == cra, name
        orig = bytes(f[2]).hex()
        if cra == 2:
            try:
                cmd = rtds_hex(name.replace("_RESPONSE_", "_COMMAND_"))
            except OSError:
                cmd = None
            if cmd is not None:
                o, n = gbcsmac.parse_header(cmd)
                c = envelope.parse_apdu(memoryview(cmd)[o:o + n])
                assert orig == bytes(c[3]).hex() and f[1] == c[1], name
        if f[7] < 0:
            assert mac is not None, name + ": neither signed nor MAC'd"
            assert f[6] + 1 == len(apdu) and apdu[f[6]] == 0, name
            unsigned += 1
            continue
        pub = pem_point(orig + "-ds.pem")
        msg, sig = apdu[1:f[6]], apdu[f[7]:f[7] + 64]
        assert p256.verify(pub, msg, sig), name
        assert not p256.verify(pub, msg[:-1], sig), name
        assert not p256.verify(pub, apdu[:f[6]], sig), name
        assert not p256.verify(wrong, msg, sig), name
        signed += 1
    print("RTDS messages: %d signed and verified, %d unsigned (MAC'd)" % (signed, unsigned))


def test_rtds_private_keys_match_certificates():
    for eui in ("90b3d51f30010000", "90b3d51f30000002"):
        for use in ("ds", "ka"):
            assert p256.pubkey(pkcs8_scalar(eui + "-" + use + ".key")) == \
                pem_point(eui + "-" + use + ".pem")
