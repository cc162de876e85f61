# AES-128 encryption (FIPS-197), ECB only: the fallback for ports built without
# cryptolib.  GCM needs only the forward cipher, so there is no decryption.  Same call
# shape as cryptolib: aes(key, 1).encrypt(data) for data a multiple of 16 bytes.
# Slow (about 0.1 ms a block on the unix port) but small: tables are computed at import.
try:
    from micropython import const
except ImportError:
    const = int  # CPython: not a function of ours, which a board would load as code

MODE_ECB = const(1)
_ROUNDS = const(10)


def _xtime(a):
    # Multiply by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1.
    a <<= 1
    return a ^ 0x11B if a & 0x100 else a


def _make_sbox():
    # Powers of the generator 3 give log/antilog tables; the S-box is the affine map
    # of the multiplicative inverse (0 maps to 0 before the affine map).
    exp = bytearray(256)
    log = bytearray(256)
    a = 1
    for i in range(255):
        exp[i] = a
        log[a] = i
        a ^= _xtime(a)
    box = bytearray(256)
    for v in range(256):
        q = exp[(255 - log[v]) % 255] if v else 0
        s = q
        for _ in range(4):
            q = ((q << 1) | (q >> 7)) & 0xFF
            s ^= q
        box[v] = s ^ 0x63
    return bytes(box)


_SBOX = _make_sbox()


def _expand(key):
    # 11 round keys of 16 bytes, one after another.
    box = _SBOX
    w = bytearray(16 * (_ROUNDS + 1))
    w[0:16] = key
    rcon = 1
    for i in range(16, len(w), 4):
        t0, t1, t2, t3 = w[i - 4], w[i - 3], w[i - 2], w[i - 1]
        if i % 16 == 0:
            t0, t1, t2, t3 = box[t1] ^ rcon, box[t2], box[t3], box[t0]
            rcon = _xtime(rcon)
        w[i] = w[i - 16] ^ t0
        w[i + 1] = w[i - 15] ^ t1
        w[i + 2] = w[i - 14] ^ t2
        w[i + 3] = w[i - 13] ^ t3
    return bytes(w)


def _block(rk, src, o, out):
    # One 16-byte block; the state is column-major, as the bytes arrive.
    box = _SBOX
    s = bytearray(16)
    for i in range(16):
        s[i] = src[o + i] ^ rk[i]
    for r in range(1, _ROUNDS + 1):
        # SubBytes and ShiftRows together: row i of column c comes from column c + i.
        t = bytearray(16)
        for c in range(4):
            for i in range(4):
                t[4 * c + i] = box[s[4 * ((c + i) % 4) + i]]
        if r != _ROUNDS:
            for c in range(0, 16, 4):
                a0, a1, a2, a3 = t[c], t[c + 1], t[c + 2], t[c + 3]
                x = a0 ^ a1 ^ a2 ^ a3
                t[c] = a0 ^ x ^ _xtime(a0 ^ a1)
                t[c + 1] = a1 ^ x ^ _xtime(a1 ^ a2)
                t[c + 2] = a2 ^ x ^ _xtime(a2 ^ a3)
                t[c + 3] = a3 ^ x ^ _xtime(a3 ^ a0)
        k = 16 * r
        for i in range(16):
            s[i] = t[i] ^ rk[k + i]
    out[o:o + 16] = s


class aes:
    """aes(key16, 1): AES-128 in ECB mode, encryption only."""

    def __init__(self, key, mode=MODE_ECB):
        if mode != MODE_ECB:
            raise ValueError("only ECB mode (1)")
        if len(key) != 16:
            raise ValueError("key must be 16 bytes (AES-128)")
        self._rk = _expand(key)

    def encrypt(self, data):
        """data (a multiple of 16 bytes) encrypted block by block."""
        n = len(data)
        if n % 16:
            raise ValueError("data must be a multiple of 16 bytes")
        out = bytearray(n)
        for o in range(0, n, 16):
            _block(self._rk, data, o, out)
        return bytes(out)
