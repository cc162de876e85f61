"""The firmware's p256.py, gbcsmac.py and aes.py under CPython, cross-checked against
`cryptography` (OpenSSL) and `ecdsa` on many run-time keys and messages."""

import hashlib
import os
import random
import sys

import ecdsa
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from gbmeter import paths

if str(paths.FIRMWARE) not in sys.path:
    sys.path.append(str(paths.FIRMWARE))

import aes  # noqa: E402
import gbcsmac  # noqa: E402
import p256  # noqa: E402

N = ecdsa.NIST256p.order
ROUNDS = 40


def test_modules_come_from_firmware():
    for mod in (p256, gbcsmac, aes):
        assert os.path.dirname(mod.__file__) == str(paths.FIRMWARE)
    assert gbcsmac._aes is aes.aes  # CPython has no cryptolib: the fallback is in use


@pytest.fixture
def rng():
    return random.Random(0x6B6D)


def _keys(rng):
    d = rng.randrange(1, N)
    priv = d.to_bytes(32, "big")
    sk = ec.derive_private_key(d, ec.SECP256R1())
    nums = sk.public_key().public_numbers()
    return priv, sk, nums.x.to_bytes(32, "big") + nums.y.to_bytes(32, "big")


def _raw(der):
    r, s = utils.decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def test_pubkey_matches_openssl(rng):
    for _ in range(ROUNDS):
        priv, _, pub = _keys(rng)
        assert p256.pubkey(priv) == pub
    for d in (1, 2, 3, N - 1, N - 2):
        pub = ec.derive_private_key(d, ec.SECP256R1()).public_key().public_numbers()
        assert p256.pubkey(d.to_bytes(32, "big")) == \
            pub.x.to_bytes(32, "big") + pub.y.to_bytes(32, "big")


def test_sign_is_rfc6979_and_openssl_accepts(rng):
    for i in range(ROUNDS):
        priv, sk, pub = _keys(rng)
        msg = rng.randbytes(i * 7)
        sig = p256.sign(priv, msg)
        ref = ecdsa.SigningKey.from_string(priv, curve=ecdsa.NIST256p, hashfunc=hashlib.sha256)
        assert sig == ref.sign_deterministic(msg, hashfunc=hashlib.sha256,
                                             sigencode=ecdsa.util.sigencode_string)
        r, s = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big")
        sk.public_key().verify(utils.encode_dss_signature(r, s), msg, ec.ECDSA(hashes.SHA256()))


def test_verify_openssl_signatures_every_window(rng):
    for i in range(ROUNDS):
        _, sk, pub = _keys(rng)
        msg = rng.randbytes(rng.randrange(0, 300))
        sig = _raw(sk.sign(msg, ec.ECDSA(hashes.SHA256())))  # random nonce
        w = 1 + i % 8
        for key in (pub, b"\x04" + pub, p256.table(pub, w)):
            assert p256.verify(key, msg, sig)
            assert not p256.verify(key, msg + b"!", sig)
            bad = bytearray(sig)
            bad[rng.randrange(64)] ^= 1 << rng.randrange(8)
            assert not p256.verify(key, msg, bytes(bad))


def test_verify_never_raises_on_garbage(rng):
    _, sk, pub = _keys(rng)
    msg = b"m"
    sig = _raw(sk.sign(msg, ec.ECDSA(hashes.SHA256())))
    good_keys = [pub, b"\x04" + pub, bytearray(pub), memoryview(pub)]
    good_sigs = [sig, bytearray(sig), memoryview(sig)]
    bad_keys = [rng.randbytes(64), rng.randbytes(65), b"\x04" + rng.randbytes(64), b"", None,
                object(), 3.5, "x" * 64, pub[:63], pub + b"\x00", b"\x02" + pub]
    bad_sigs = [rng.randbytes(64), rng.randbytes(63), b"", None, b"\xff" * 64, bytes(64),
                "s" * 64, [1] * 64, 7, sig[:32] + bytes(32), sig + b"\x00"]
    for key in good_keys + bad_keys:
        for s in good_sigs + bad_sigs:
            want = any(key is k for k in good_keys) and any(s is g for g in good_sigs)
            assert p256.verify(key, msg, s) is want


def test_ecdh_matches_openssl(rng):
    for i in range(ROUNDS):
        a, ska, pa = _keys(rng)
        _, skb, pb = _keys(rng)
        z = ska.exchange(ec.ECDH(), skb.public_key())
        assert p256.ecdh(a, pb) == z
        assert p256.ecdh(a, p256.table(pb, 1 + i % 8)) == z


def test_point_arithmetic_edge_cases():
    g = (p256._GX, p256._GY)
    # Adding a point to itself doubles; adding its negation gives infinity (Z = 0).
    assert p256._affine(*p256._madd(g[0], g[1], 1, *g)) == p256._affine(*p256._dbl(g[0], g[1], 1))
    assert p256._madd(g[0], g[1], 1, g[0], p256._P - g[1])[2] == 0
    two = p256.pubkey((2).to_bytes(32, "big"))
    assert p256._affine(*p256._dbl(g[0], g[1], 1)) == (
        int.from_bytes(two[:32], "big"), int.from_bytes(two[32:], "big"))
    # A zero scalar on one side of the joint multiplication contributes nothing.
    gt = p256._gen()
    x, y, z = p256._mul(((gt._cols(0), gt.pts), (gt._cols(5), gt.pts)))
    assert p256._affine(x, y, z) == p256._affine(*p256._mul(((gt._cols(5), gt.pts),)))
    # The comb recoding puts bit t*d + j of k into bit t of column j, for every window
    # (window 1 is the plain double-and-add used for keys without a table).
    tabs = [p256.Table(p256._GX, p256._GY, w) for w in range(1, 9)]
    for k in (1, 2, 0x1F, 1 << 255, N - 1):
        for w in range(1, 9):
            d = (256 + w - 1) // w
            cols = tabs[w - 1]._cols(k)
            assert len(cols) == d
            assert sum(((c >> t) & 1) << (t * d + j)
                       for j, c in enumerate(cols) for t in range(w)) == k


def test_aes_matches_openssl(rng):
    for _ in range(ROUNDS):
        key = rng.randbytes(16)
        data = rng.randbytes(16 * rng.randrange(1, 4))
        enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        assert aes.aes(key, 1).encrypt(data) == enc.update(data) + enc.finalize()


def _apdu(rng, cra, n):
    content = rng.randbytes(n)
    length = bytes((n,)) if n < 0x80 else bytes((0x81, n)) if n < 0x100 else \
        bytes((0x82, n >> 8, n & 0xFF))
    return (b"\xdf\x09" + bytes((cra,)) + rng.randbytes(8) + b"\x08" + rng.randbytes(8)
            + b"\x08" + rng.randbytes(8) + b"\x00\x02\x00\x6e" + length + content
            + b"\x40" + rng.randbytes(64))


def test_mac_matches_openssl_gcm(rng):
    for i in range(ROUNDS):
        acb, ska, _ = _keys(rng)
        _, skm, meter_pub = _keys(rng)
        z = skm.exchange(ec.ECDH(), ska.public_key())
        assert p256.ecdh(acb, meter_pub) == z
        cra = 1 + i % 3
        # Content lengths around block boundaries and the DER length forms.
        apdu = _apdu(rng, cra, (0, 1, 9, 10, 26, 127, 128, 255, 256, 400)[i % 10])
        counter = int.from_bytes(apdu[3:11], "big")
        orig, recip = apdu[12:20], apdu[21:29]
        key = hashlib.sha256(b"\x00\x00\x00\x01" + z + b"\x60\x85\x74\x06\x08\x03\x00" + orig
                             + b"\x09" + bytes((cra,)) + apdu[3:11] + recip).digest()[:16]
        assert gbcsmac.mac_key(z, orig, cra, counter, recip) == key
        want = AESGCM(key).encrypt(orig + bytes(4), b"", b"\x11" + bytes(5) + apdu)[:12]
        assert gbcsmac.tag(key, orig, apdu) == want
        cmd = gbcsmac.wrap(z, apdu)
        off, n = gbcsmac.parse_header(cmd)
        assert cmd[off:off + n] == apdu and cmd[-12:] == want
        assert cmd == b"\xdd" + bytes(6) + cmd[7:off - 5] + b"\x11" + bytes(4) + apdu + want


def test_rtds_reference_keys_under_cpython():
    shared = paths.shared()
    if shared is None:
        pytest.skip("../shared is absent: reference data not available")
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    keys = shared / "gbcs" / "keys"
    rtds = shared / "gbcs" / "rtds"

    def point(name):
        pub = x509.load_pem_x509_certificate((keys / name).read_bytes()).public_key()
        return pub.public_bytes(serialization.Encoding.X962,
                                serialization.PublicFormat.UncompressedPoint)

    acb = serialization.load_pem_private_key((keys / "90b3d51f30000002-ka.key").read_bytes(), None)
    acb_priv = acb.private_numbers().private_value.to_bytes(32, "big")
    supplier = p256.table(point("90b3d51f30010000-ds.pem"))
    # every COMMAND: its ACB MAC; the critical ones (with a PRECOMMAND beside them):
    # the Supplier's signature too
    cmds = sorted(rtds.glob("*/*_COMMAND_GBCS.HEX"))
    assert cmds
    for path in cmds:
        cmd = bytes.fromhex(path.read_text().strip())
        pre_path = path.with_name(path.name.replace("_COMMAND", "_PRECOMMAND"))
        if pre_path.exists():
            pre = bytes.fromhex(pre_path.read_text().strip())
            assert p256.verify(supplier, pre[1:], cmd[-76:-12]), path.name
        off, n = gbcsmac.parse_header(cmd)
        apdu = cmd[off:off + n]
        z = p256.ecdh(acb_priv, point(apdu[21:29].hex() + "-ka.pem"))
        assert gbcsmac.wrap(z, apdu) == cmd, path.name
