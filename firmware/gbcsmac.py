# The GBCS MAC (../shared/gbcs/NOTES.md 2.2): the 12-byte AES-128-GCM tag over an empty
# plaintext that the ACB puts after a Command, and that a meter puts after what it MACs
# itself (non-critical alerts).  The key comes from the ECDH secret Z and the
# General-Signing APDU's originator, CRA flag, originator counter and recipient.
# seal.py encrypts the personal data of a read's Response with the same key derivation
# (04 in place of the CRA flag, NOTES.md 7) and this module's GHASH.
#
#   DD 00 00 00 00 00 00 | length L | 11 00 00 00 00 | General-Signing APDU | MAC (12)
#
# AES runs on cryptolib when the port has it, else on the pure-Python aes.py; GHASH is
# done here with 4-bit tables (16 multiples of H), about 13 us a block on the unix port.
import hashlib
import struct

try:
    from micropython import const
except ImportError:
    const = int  # CPython: not a function of ours, which a board would load as code

try:
    from cryptolib import aes as _aes
except ImportError:
    from aes import aes as _aes

_MAC_LEN = const(12)
_HEADER_TAG = const(0xDD)       # General-Ciphering
_SECURITY_CONTROL = const(0x11)  # authentication only, no encryption
_APDU_TAG = const(0xDF)          # General-Signing

# KDF other-info: the algorithm id of the GBCS MAC key derivation.
_KDF_ALG = b"\x60\x85\x74\x06\x08\x03\x00"

# GF(2^128) as GCM numbers it: the first bit of a block is the x^0 coefficient, so with
# the block read as a big-endian int, multiplying by x is a right shift and x^128 folds
# back in as E1 || 0^120.  _R4[r] is what the 4 bits r shifted out by "multiply by x^4"
# fold back in as: a multiple of E1 || 0^120 that only touches the top 16 bits, so it is
# kept as those bits and shifted into place when used (16 big ints held for the whole
# run would cost about 1K of heap, for 1 us a block).
_R = 0xE1 << 120
_R4 = (0x0000, 0x1C20, 0x3840, 0x2460, 0x7080, 0x6CA0, 0x48C0, 0x54E0,
       0xE100, 0xFD20, 0xD940, 0xC560, 0x9180, 0x8DA0, 0xA9C0, 0xB5E0)


def _ghash(h, aad, ct=b""):
    # GHASH_H(aad, ct): each zero-padded to whole blocks, then the length block.  The MAC
    # has no ciphertext; ct is there so a full GCM test vector can check this.
    # m[i] = i * H for a 4-bit i whose top bit is x^0; m[4], m[2], m[1] are H * x^k.
    m = [0] * 16
    m[8] = h
    for i in (4, 2, 1):
        h = (h >> 1) ^ _R if h & 1 else h >> 1
        m[i] = h
    for i in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15):
        m[i] = m[i & 8] ^ m[i & 4] ^ m[i & 2] ^ m[i & 1]
    r4 = _R4
    y = 0
    n = len(aad) + 15 >> 4
    last = n + (len(ct) + 15 >> 4)
    for k in range(last + 1):
        # the blocks of aad, then of ct, then the lengths
        if k < n:
            blk = aad[16 * k:16 * k + 16]
        elif k < last:
            blk = ct[16 * (k - n):16 * (k - n) + 16]
        else:
            blk = ((8 * len(aad)) << 64 | 8 * len(ct)).to_bytes(16, "big")
        y ^= int.from_bytes(blk, "big") << (8 * (16 - len(blk)))
        # y * H by Horner over y's 32 nibbles, last first: z = z * x^4 + nibble * H.
        b = y.to_bytes(16, "big")
        y = 0
        for i in range(15, -1, -1):
            c = b[i]
            y = (y >> 4) ^ (r4[y & 15] << 112) ^ m[c & 15]
            y = (y >> 4) ^ (r4[y & 15] << 112) ^ m[c >> 4]
    return y.to_bytes(16, "big")


def _gcm_tag(key, iv, aad):
    # The full 16-byte GCM tag of an empty plaintext with a 12-byte IV.
    if len(key) != 16 or len(iv) != 12:
        raise ValueError("GCM key must be 16 bytes, IV 12")
    # E(0^128) is the hash key H; E(IV || 00000001) masks the hash.
    blocks = _aes(bytes(key), 1).encrypt(bytes(16) + bytes(iv) + b"\x00\x00\x00\x01")
    s = _ghash(int.from_bytes(blocks[:16], "big"), aad)
    return bytes(a ^ b for a, b in zip(blocks[16:], s))


def mac_key(z, originator, cra, counter, recipient):
    """The 16-byte MAC key: SHA-256 KDF of the ECDH secret z (32 bytes) and the APDU's
    originator (8 bytes), CRA flag, originator counter (int) and recipient (8 bytes)."""
    if len(z) != 32 or len(originator) != 8 or len(recipient) != 8 \
            or not 0 <= cra <= 0xFF or not 0 <= counter < 1 << 64:
        raise ValueError("MAC key: Z is 32 bytes, system titles 8, CRA and counter in range")
    h = hashlib.sha256(b"\x00\x00\x00\x01")
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
    aad = bytearray(6 + len(apdu))
    aad[0] = _SECURITY_CONTROL  # and a zero invocation field
    aad[6:] = apdu
    return _gcm_tag(key, bytes(originator) + bytes(4), aad)[:_MAC_LEN]


def wrap(z, apdu):
    """The APDU in a MAC header with its MAC: what the ACB sends to a meter (z = ECDH of
    the ACB and meter KA keys) or a meter sends as a non-critical alert."""
    # CRA flag, originator counter, originator and recipient, read in place.
    mv = memoryview(apdu)
    if len(mv) < 29 or mv[0] != _APDU_TAG or mv[1] != 0x09 or mv[11] != 8 or mv[20] != 8:
        raise ValueError("not a General-Signing APDU with 8-byte system titles")
    cra, counter = struct.unpack_from(">BQ", mv, 2)
    mac = tag(mac_key(z, mv[12:20], cra, counter, mv[21:29]), mv[12:20], apdu)
    return (b"\xdd\x00\x00\x00\x00\x00\x00" + der_len(5 + len(mv) + _MAC_LEN)
            + b"\x11\x00\x00\x00\x00" + bytes(apdu) + mac)


def der_len(n):
    """A GBCS length, DER style: one byte below 0x80, else 81 nn or 82 nn nn (the one
    encoder for MAC headers and General-Signing content lengths)."""
    if n > 0xFFFF:
        raise ValueError("length %d does not fit in 82 nn nn" % n)
    return struct.pack(">BH", 0x82, n) if n > 0xFF else bytes((0x81, n) if n > 0x7F else (n,))


def der_len_at(b, pos, end):
    """The length at b[pos] in any form der_len writes (shortest or not), b ending at
    end -> (length, offset after it): the one reader for MAC headers, General-Signing
    content lengths and A-XDR lengths.  ValueError if it is cut off by end or starts
    with 80 or 83..FF."""
    if pos < end:
        v = b[pos]
        if v < 0x80:
            return v, pos + 1
        if v == 0x81 and pos + 2 <= end:
            return b[pos + 1], pos + 2
        if v == 0x82 and pos + 3 <= end:
            return (b[pos + 1] << 8) | b[pos + 2], pos + 3
    raise ValueError("bad length")


def parse_header(data):
    """(offset, length) of the General-Signing APDU inside MAC-headed data; the MAC is
    the 12 bytes after it, which end the data.  ValueError if the header is malformed."""
    mv = memoryview(data)
    n = len(mv)
    if n >= 8 and mv[0] == _HEADER_TAG and not any(mv[1:7]):
        length, o = der_len_at(mv, 7, n)
        # and in its shortest form, the one der_len writes: 81 nn only for nn >= 80,
        # 82 nnnn only for nnnn >= 100
        if o - 7 == len(der_len(length)) and o + length == n and length > 5 + _MAC_LEN \
                and mv[o] == _SECURITY_CONTROL and not any(mv[o + 1:o + 5]):
            return o + 5, length - 5 - _MAC_LEN
    raise ValueError("malformed MAC header")
