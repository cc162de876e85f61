# The personal data of a read's Response, encrypted (../shared/gbcs/NOTES.md 7):
# AES-128-GCM with a 12-byte tag; the key is the MAC's (gbcsmac.mac_key) with 04 in
# place of the CRA flag; IV = originator || 00000000; AAD = the security control byte
# 31 of the header 31 00 00 00 00 that precedes the ciphertext. For a Response the
# originator is the meter, the recipient the party it answers, the counter the
# Command's. AES is gbcsmac's (cryptolib, else aes.py), and so is GHASH.
# Only a read needs it, so it is a module loaded for the call (envelope.Security.seal)
# and dropped after it: a board at rest holds none of its code.
import struct

from micropython import const

import gbcsmac

_SEALED = const(0x31)   # security control: this part is encrypted
_TAG_LEN = const(12)


def seal(z, originator, counter, recipient, plain):
    """31 00 00 00 00 | ciphertext | tag of `plain` (bytes) for this Z (32 bytes, the
    meter's and the recipient's KA keys), originator and recipient (8 bytes each)
    and originator counter."""
    key = gbcsmac.mac_key(z, originator, 4, counter, recipient)
    n = len(plain)
    nb = (n + 15) >> 4
    # One pass of AES over 0^128 (the hash key H), J0 = IV || 1 (masks the tag) and
    # IV || 2, 3, ... (the keystream).
    blocks = bytearray(16 * (nb + 2))
    for i in range(1, nb + 2):
        o = 16 * i
        blocks[o:o + 8] = originator
        struct.pack_into(">I", blocks, o + 12, i)
    e = gbcsmac._aes(bytes(key), 1).encrypt(blocks)
    blocks = None
    out = bytearray(5 + n + _TAG_LEN)
    out[0] = _SEALED
    for i in range(n):
        out[5 + i] = plain[i] ^ e[32 + i]
    s = gbcsmac._ghash(int.from_bytes(e[:16], "big"), b"\x31", bytes(out[5:5 + n]))
    for i in range(_TAG_LEN):
        out[5 + n + i] = e[16 + i] ^ s[i]
    return bytes(out)
