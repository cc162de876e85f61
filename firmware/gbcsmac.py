# The GBCS MAC (../shared/gbcs/NOTES.md 2.2): the 12-byte AES-128-GCM tag over an empty
# plaintext that the ACB puts after a Command, and that a meter puts after what it MACs
# itself (non-critical alerts).  The key comes from the ECDH secret Z and the
# General-Signing APDU's originator, CRA flag, originator counter and recipient.
#
#   DD 00 00 00 00 00 00 | length L | 11 00 00 00 00 | General-Signing APDU | MAC (12)
#
# AES runs on cryptolib when the port has it, else on the pure-Python aes.py; GHASH is
# done here with 4-bit tables (16 multiples of H), about 50 us a block on the unix port.
import hashlib
import struct

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

try:
    from cryptolib import aes as _aes
except ImportError:
    from aes import aes as _aes

MAC_LEN = const(12)
_HEADER_TAG = const(0xDD)       # General-Ciphering
_SECURITY_CONTROL = const(0x11)  # authentication only, no encryption
_APDU_TAG = const(0xDF)          # General-Signing
_FIELDS_LEN = const(29)          # DF 09 | CRA | counter (8) | 08 originator | 08 recipient

# KDF other-info: the algorithm id of the GBCS MAC key derivation.
_KDF_COUNTER = b"\x00\x00\x00\x01"
_KDF_ALG = b"\x60\x85\x74\x06\x08\x03\x00"
# AAD = security control byte and a zero invocation field, then the APDU.
_AAD_PREFIX = b"\x11\x00\x00\x00\x00\x00"

# GF(2^128) as GCM numbers it: the first bit of a block is the x^0 coefficient, so with
# the block read as a big-endian int, multiplying by x is a right shift and x^128 folds
# back in as E1 || 0^120.
_R = 0xE1 << 120


def _mulx(v):
    return (v >> 1) ^ _R if v & 1 else v >> 1


def _make_r4():
    # What the 4 bits shifted out by "multiply by x^4" fold back in as.
    out = []
    for rem in range(16):
        v = rem
        for _ in range(4):
            v = _mulx(v)
        out.append(v)
    return tuple(out)


_R4 = _make_r4()


def _ghash(h, aad, ct=b""):
    # GHASH_H(aad, ct): each zero-padded to whole blocks, then the length block.  The MAC
    # has no ciphertext; ct is there so a full GCM test vector can check this.
    # m[i] = i * H for a 4-bit i whose top bit is x^0.
    m = [0] * 16
    m[8] = h
    m[4] = _mulx(h)
    m[2] = _mulx(m[4])
    m[1] = _mulx(m[2])
    for i in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15):
        m[i] = m[i & 8] ^ m[i & 4] ^ m[i & 2] ^ m[i & 1]
    y = 0
    for data in (aad, ct):
        mv = memoryview(data)
        for o in range(0, len(mv), 16):
            blk = mv[o:o + 16]
            y = _gmul(y ^ (int.from_bytes(blk, "big") << (8 * (16 - len(blk)))), m)
    y = _gmul(y ^ ((8 * len(aad)) << 64) ^ (8 * len(ct)), m)
    return y.to_bytes(16, "big")


def _gmul(y, m):
    # y * H by Horner over y's 32 nibbles, last nibble first: z = z * x^4 + nibble * H.
    r4 = _R4
    b = y.to_bytes(16, "big")
    z = 0
    for i in range(15, -1, -1):
        c = b[i]
        z = (z >> 4) ^ r4[z & 15] ^ m[c & 15]
        z = (z >> 4) ^ r4[z & 15] ^ m[c >> 4]
    return z


def _gcm_tag(key, iv, aad):
    # The full 16-byte GCM tag of an empty plaintext with a 12-byte IV.
    if len(key) != 16:
        raise ValueError("MAC key must be 16 bytes")
    if len(iv) != 12:
        raise ValueError("IV must be 12 bytes")
    # E(0^128) is the hash key H; E(IV || 00000001) masks the hash.
    blocks = _aes(bytes(key), 1).encrypt(bytes(16) + bytes(iv) + b"\x00\x00\x00\x01")
    s = _ghash(int.from_bytes(blocks[:16], "big"), aad)
    return bytes(a ^ b for a, b in zip(blocks[16:], s))


def mac_key(z, originator, cra, counter, recipient):
    """The 16-byte MAC key: SHA-256 KDF of the ECDH secret z (32 bytes) and the APDU's
    originator (8 bytes), CRA flag, originator counter (int) and recipient (8 bytes)."""
    if len(z) != 32:
        raise ValueError("shared secret Z must be 32 bytes")
    if len(originator) != 8 or len(recipient) != 8:
        raise ValueError("originator and recipient must be 8-byte system titles")
    if not 0 <= cra <= 0xFF or not 0 <= counter < 1 << 64:
        raise ValueError("CRA flag or originator counter out of range")
    h = hashlib.sha256(_KDF_COUNTER)
    h.update(z)
    h.update(_KDF_ALG)
    h.update(originator)
    h.update(struct.pack(">BBQ", 9, cra, counter))
    h.update(recipient)
    return h.digest()[:16]


def tag(key, originator, apdu):
    """The 12-byte MAC of a General-Signing APDU: GCM tag, IV = originator || 00000000,
    AAD = 11 00 00 00 00 00 || apdu."""
    if len(originator) != 8:
        raise ValueError("originator must be an 8-byte system title")
    aad = bytearray(len(_AAD_PREFIX) + len(apdu))
    aad[0:len(_AAD_PREFIX)] = _AAD_PREFIX
    aad[len(_AAD_PREFIX):] = apdu
    return _gcm_tag(key, bytes(originator) + b"\x00\x00\x00\x00", aad)[:MAC_LEN]


def _fields(apdu):
    # (CRA flag, originator counter, originator, recipient) of a General-Signing APDU,
    # read in place.
    mv = memoryview(apdu)
    if len(mv) < _FIELDS_LEN or mv[0] != _APDU_TAG or mv[1] != 0x09:
        raise ValueError("not a General-Signing APDU")
    cra, counter, olen = struct.unpack_from(">BQB", mv, 2)
    if olen != 8 or mv[20] != 8:
        raise ValueError("General-Signing APDU: system titles must be 8 bytes")
    return cra, counter, mv[12:20], mv[21:29]


def _length(n):
    # DER-style length: one byte below 0x80, else 81 nn or 82 nn nn.
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return struct.pack(">BH", 0x82, n)
    raise ValueError("APDU too long for a MAC header")


def wrap(z, apdu):
    """The APDU in a MAC header with its MAC: what the ACB sends to a meter (z = ECDH of
    the ACB and meter KA keys) or a meter sends as a non-critical alert."""
    cra, counter, originator, recipient = _fields(apdu)
    key = mac_key(z, originator, cra, counter, recipient)
    mac = tag(key, originator, apdu)
    return (b"\xdd\x00\x00\x00\x00\x00\x00" + _length(5 + len(apdu) + MAC_LEN)
            + b"\x11\x00\x00\x00\x00" + bytes(apdu) + mac)


def parse_header(data):
    """(offset, length) of the General-Signing APDU inside MAC-headed data; the MAC is
    the 12 bytes after it, which end the data.  ValueError if the header is malformed."""
    mv = memoryview(data)
    n = len(mv)
    if n < 8:
        raise ValueError("MAC header: too short")
    tag_, zero4, zero2, first = struct.unpack_from(">BIHB", mv, 0)
    if tag_ != _HEADER_TAG or zero4 or zero2:
        raise ValueError("MAC header: must start DD 00 00 00 00 00 00")
    if first < 0x80:
        length, o = first, 8
    elif first == 0x81 and n > 8:
        length, o = mv[8], 9
        if length < 0x80:
            raise ValueError("MAC header: length not in shortest form")
    elif first == 0x82 and n > 9:
        length, o = struct.unpack_from(">H", mv, 8)[0], 10
        if length < 0x100:
            raise ValueError("MAC header: length not in shortest form")
    else:
        raise ValueError("MAC header: bad length")
    if o + length != n:
        raise ValueError("MAC header: length %d does not match the %d bytes after it"
                         % (length, n - o))
    if length <= 5 + MAC_LEN:
        raise ValueError("MAC header: no APDU")
    sc, zero4 = struct.unpack_from(">BI", mv, o)
    if sc != _SECURITY_CONTROL or zero4:
        raise ValueError("MAC header: security header must be 11 00 00 00 00")
    return o + 5, length - 5 - MAC_LEN
