# NIST P-256 for the meter: ECDSA with SHA-256 (RFC 6979 nonces) and ECDH, in plain
# Python integers so the same file runs on MicroPython and CPython (the host uses it to
# cross-check).  Not constant-time: this is a test stub, not a production meter.
#
# Speed comes from fixed-base comb tables (Lim-Lee, one comb of `window` teeth): the
# generator's table is built lazily once, and table(pub) builds one for a key trusted at
# provisioning (the Supplier's signing key).  A verify against two tables of window w
# costs ceil(256/w) doublings and two mixed additions per column, all in Jacobian
# coordinates, plus one inversion mod n; the x check is done projectively (no inversion
# mod p).  Table points are affine (batch-normalised with one inversion) and packed
# 64 bytes each into one bytearray, which is about a third of the heap that lists of
# int objects would need.
#
# Measured on the unix port (64-bit, this repo's bench/bench_crypto.py; a 32-bit board
# needs a little less heap).  "kept" is the heap one table holds (gc.mem_alloc() after
# minus before, after gc.collect()); "build" is the extra heap needed while building it
# (smallest -X heapsize that works, less the ~14.5K of importing p256.mpy); verify is the
# median with the generator and the key both at that window:
#   window  points  kept bytes  build bytes  verify ms
#      1       1         416          ~0       5.7
#      2       3         544        1800       3.7
#      3       7         800        2700       2.8
#      4      15        1312        3700       2.2
#      5      31        2336        5800       1.8
#      6      63        4384       10000       1.55
#      7     127        8480       18500       1.34
#      8     255       16672       35000       1.17
# The generator's table costs the same again.  In a 64K heap, sign + verify + ECDH + MAC
# run with windows up to 7 from .mpy (5 from source); 4 leaves room for the meter.
# At window 4: sign 1.55 ms, building a table 2.5 ms, verify against a key without a
# table 4.1 ms (width-5 NAF, 256 doublings), ECDH 3.4 ms.
# CPython (window 8): verify 0.40 ms, 0.56x the ecdsa package's 0.72 ms with precompute.
#
# A board picks its window with set_window() before the first use (the 64K-heap runs
# use small windows); WINDOW is the default.
import hashlib
import os
import sys

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

# Curve y^2 = x^3 - 3x + b over GF(p), generator G of prime order n, cofactor 1.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

_NAF_W = const(5)  # width of the NAF for keys without a table: 8 odd multiples
_MAX_WINDOW = const(8)

# CPython has plenty of heap and the host verifies a lot: it gets the largest window.
WINDOW = 8 if sys.implementation.name == "cpython" else 4

_gtab = None  # the generator's comb table, built on first use


def _inv(a, m):
    # Extended Euclid: on the unix port it takes ~90 us where pow(a, m-2, m) takes ~400.
    x0, x1, r0, r1 = 0, 1, m, a % m
    while r1:
        q, r = divmod(r0, r1)
        r0, r1 = r1, r
        x0, x1 = x1, x0 - q * x1
    return x0 % m


if pow(3, -1, 7) == 5:  # CPython >= 3.8; MicroPython returns a wrong answer here
    def _inv(a, m):  # noqa: F811
        return pow(a, -1, m)


def _b2i(b):
    return int.from_bytes(b, "big")


def _i2b(i):
    return i.to_bytes(32, "big")


# --- point arithmetic, Jacobian (X, Y, Z) <-> affine (X/Z^2, Y/Z^3); Z == 0 is infinity


def _dbl(X, Y, Z):
    # dbl-2001-b for a = -3: 3M + 5S.  No point of order 2 on P-256, so Y is never 0.
    if not Z:
        return X, Y, 0
    p = _P
    d = Z * Z % p
    g = Y * Y % p
    be = X * g % p
    al = 3 * (X - d) * (X + d) % p
    x3 = (al * al - 8 * be) % p
    return x3, (al * (4 * be - x3) - 8 * g * g) % p, 2 * Y * Z % p


def _madd(X, Y, Z, x, y):
    # Jacobian + affine: 8M + 3S.  Falls back to doubling when both are the same point.
    if not Z:
        return x, y, 1
    p = _P
    zz = Z * Z % p
    h = (x * zz - X) % p
    r = (y * zz % p * Z - Y) % p
    if not h:
        if r:
            return 1, 1, 0
        return _dbl(X, Y, Z)
    hh = h * h % p
    hhh = h * hh % p
    v = X * hh % p
    x3 = (r * r - hhh - 2 * v) % p
    return x3, (r * (v - x3) - Y * hhh) % p, Z * h % p


def _affine(X, Y, Z):
    zi = _inv(Z, _P)
    zi2 = zi * zi % _P
    return X * zi2 % _P, Y * zi2 % _P * zi % _P


def _put(jac, i, X, Y, Z):
    o = 96 * i
    jac[o:o + 32] = _i2b(X)
    jac[o + 32:o + 64] = _i2b(Y)
    jac[o + 64:o + 96] = _i2b(Z)


def _pack(jac, n, out, first, pre):
    # The first n Jacobian points packed 96 bytes each in jac, to affine with one
    # inversion (Montgomery's trick), packed 64 bytes each into out at entries first,
    # first+1, ...  pre is scratch of 32 * n bytes.  Points live in bytearrays rather than
    # lists of ints: a third of the heap, and no scattered ints fragmenting it.
    p = _P
    acc = 1
    for i in range(n):
        pre[32 * i:32 * i + 32] = _i2b(acc)
        acc = acc * _b2i(jac[96 * i + 64:96 * i + 96]) % p
    inv = _inv(acc, p)
    for i in range(n - 1, -1, -1):
        o = 96 * i
        zi = inv * _b2i(pre[32 * i:32 * i + 32]) % p
        inv = inv * _b2i(jac[o + 64:o + 96]) % p
        zi2 = zi * zi % p
        x = _b2i(jac[o:o + 32]) * zi2 % p
        y = _b2i(jac[o + 32:o + 64]) * zi2 % p * zi % p
        o = 64 * (first + i)
        out[o:o + 32] = _i2b(x)
        out[o + 32:o + 64] = _i2b(y)


def _entry(tab, i):
    o = i << 6
    return _b2i(tab[o:o + 32]), _b2i(tab[o + 32:o + 64])


def _on_curve(x, y):
    return 0 <= x < _P and 0 <= y < _P and (y * y - (x * x - 3) * x - _B) % _P == 0


def _point(pub):
    # 64-byte x||y or 65-byte 04||x||y to validated integers; ValueError otherwise.
    n = len(pub)
    if n == 65 and pub[0] == 4:
        o = 1
    elif n == 64:
        o = 0
    else:
        raise ValueError("public key must be 64 bytes x||y or 65 bytes 04||x||y")
    x = _b2i(pub[o:o + 32])
    y = _b2i(pub[o + 32:o + 64])
    if not _on_curve(x, y):
        raise ValueError("public key is not a point on P-256")
    return x, y


def _scalar(priv):
    if len(priv) != 32:
        raise ValueError("private key must be 32 bytes")
    d = _b2i(priv)
    if not 0 < d < _N:
        raise ValueError("private key out of range 1..n-1")
    return d


def check_point(pub):
    """True if pub (64 or 65 bytes) is a point on P-256."""
    try:
        _point(pub)
        return True
    except (ValueError, TypeError, IndexError):
        return False


# --- scalar recodings: one signed table index per column, column j is doubled j times


def _comb_cols(k, w, d):
    # Bit t*d + j of k goes to bit t of column j's index.
    cols = bytearray(d)
    kb = _i2b(k)
    j = 0
    tb = 1
    for i in range(31, -1, -1):
        byte = kb[i]
        for _ in range(8):
            if byte & 1:
                cols[j] |= tb
            byte >>= 1
            j += 1
            if j == d:
                j = 0
                tb <<= 1
    return cols


def _naf_cols(k):
    # Width-5 NAF: odd digits -15..15; digit m is table entry (|m|+1)/2, negative if m < 0.
    cols = []
    full = 1 << _NAF_W
    half = full >> 1
    while k:
        if k & 1:
            m = k & (full - 1)
            if m >= half:
                m -= full
            k -= m
            cols.append((m + 1) >> 1 if m > 0 else -((1 - m) >> 1))
        else:
            cols.append(0)
        k >>= 1
    return cols


def _naf_table(x, y):
    # m*P for odd m 1..15, affine and packed like a comb table (entry (m+1)/2).
    n = 1 << (_NAF_W - 2)
    out = bytearray(64 * (n + 1))
    jac = bytearray(96 * n)
    x2, y2 = _affine(*_dbl(x, y, 1))
    X, Y, Z = x, y, 1
    _put(jac, 0, X, Y, Z)
    for i in range(1, n):
        X, Y, Z = _madd(X, Y, Z, x2, y2)
        _put(jac, i, X, Y, Z)
    _pack(jac, n, out, 1, bytearray(32 * n))
    return memoryview(out)


def _mul(sides):
    # The sum over columns j of 2^j * tab[cols[j]] over the (cols, tab) sides, Jacobian.
    # The sides share the doublings (Shamir's trick); a negative index adds the negated
    # point.
    X, Y, Z = 1, 1, 0
    top = 0
    for cols, _ in sides:
        top = max(top, len(cols))
    for j in range(top - 1, -1, -1):
        X, Y, Z = _dbl(X, Y, Z)
        for cols, tab in sides:
            if j < len(cols):
                i = cols[j]
                if i > 0:
                    x, y = _entry(tab, i)
                    X, Y, Z = _madd(X, Y, Z, x, y)
                elif i:
                    x, y = _entry(tab, -i)
                    X, Y, Z = _madd(X, Y, Z, x, _P - y)
    return X, Y, Z


# --- comb tables


class Table:
    """Comb table of one point for fixed-base multiplication: 2^window - 1 affine points
    (64 bytes each).  Build it with table(pub)."""

    def __init__(self, x, y, window):
        if not 1 <= window <= _MAX_WINDOW:
            raise ValueError("window must be 1..%d" % _MAX_WINDOW)
        self.window = window
        self.columns = d = (256 + window - 1) // window
        self.x = x
        self.y = y
        # Entry i is the sum of the teeth 2^(t*d) * P for the bits t of i.  Entries
        # 2^t .. 2^(t+1) - 1 are tooth t plus each entry below 2^t: built in Jacobian,
        # then made affine together, so only one such group is ever in Jacobian form.
        out = bytearray(64 << window)  # first, while the heap is in one piece
        half = 1 << (window - 1)
        jac = bytearray(96 * half)
        pre = bytearray(32 * half)
        out[64:96] = _i2b(x)
        out[96:128] = _i2b(y)
        for t in range(1, window):
            X, Y, Z = _entry(out, 1 << (t - 1)) + (1,)
            for _ in range(d):
                X, Y, Z = _dbl(X, Y, Z)
            _put(jac, 0, X, Y, Z)
            for i in range(1, 1 << t):
                ex, ey = _entry(out, i)
                _put(jac, i, *_madd(X, Y, Z, ex, ey))
            _pack(jac, 1 << t, out, 1 << t, pre)
        self.pts = memoryview(out)

    def pub(self):
        """The point as 64 bytes x||y."""
        return _i2b(self.x) + _i2b(self.y)

    def _cols(self, k):
        return _comb_cols(k, self.window, self.columns)


def table(pub, window=None):
    """Comb table for a trusted public key (64/65 bytes); window defaults to WINDOW.
    Raises ValueError if the key is not on the curve."""
    x, y = _point(pub)
    return Table(x, y, WINDOW if window is None else window)


def set_window(window):
    """The comb window for the generator and for table() by default (a board calls this
    before the first sign or verify; see the heap figures at the top)."""
    global WINDOW, _gtab
    if not 1 <= window <= _MAX_WINDOW:
        raise ValueError("window must be 1..%d" % _MAX_WINDOW)
    WINDOW = window
    if _gtab is not None and _gtab.window != window:
        _gtab = None


def _gen():
    global _gtab
    if _gtab is None:
        _gtab = Table(_GX, _GY, WINDOW)
    return _gtab


def _mul_point(k, key):
    # k * key where key is a Table or validated affine (x, y); Jacobian.
    if isinstance(key, Table):
        return _mul(((key._cols(k), key.pts),))
    return _mul(((_naf_cols(k), _naf_table(key[0], key[1])),))


# --- keys, ECDSA, ECDH


def pubkey(priv):
    """The 64-byte public key x||y of a 32-byte private key."""
    g = _gen()
    X, Y, Z = _mul(((g._cols(_scalar(priv)), g.pts),))
    x, y = _affine(X, Y, Z)
    return _i2b(x) + _i2b(y)


def keypair(rand=None):
    """A fresh (private 32 bytes, public 64 bytes); rand(n) gives n random bytes."""
    rand = rand or os.urandom
    while True:
        priv = rand(32)
        d = _b2i(priv)
        if 0 < d < _N:  # reject and draw again rather than bias by reducing mod n
            return bytes(priv), pubkey(priv)


def _hmac(key, data):
    # HMAC-SHA256 with a 32-byte key (MicroPython has no hmac module).
    k = bytes(b ^ 0x36 for b in key) + b"\x36" * 32
    inner = hashlib.sha256(k)
    for part in data:
        inner.update(part)
    k = bytes(b ^ 0x5C for b in key) + b"\x5c" * 32
    outer = hashlib.sha256(k)
    outer.update(inner.digest())
    return outer.digest()


def _nonces(x, h1):
    # RFC 6979 section 3.2 for qlen = hlen = 256: candidate k values, in order.
    xo = _i2b(x)
    ho = _i2b(_b2i(h1) % _N)
    v = b"\x01" * 32
    k = b"\x00" * 32
    k = _hmac(k, (v, b"\x00", xo, ho))
    v = _hmac(k, (v,))
    k = _hmac(k, (v, b"\x01", xo, ho))
    v = _hmac(k, (v,))
    while True:
        v = _hmac(k, (v,))
        t = _b2i(v)
        if 0 < t < _N:
            yield t
        k = _hmac(k, (v, b"\x00"))
        v = _hmac(k, (v,))


def sign(priv, msg):
    """ECDSA signature r||s (64 bytes) over SHA-256(msg), deterministic (RFC 6979)."""
    d = _scalar(priv)
    h = hashlib.sha256(msg).digest()
    e = _b2i(h)
    g = _gen()
    for k in _nonces(d, h):
        X, Y, Z = _mul(((g._cols(k), g.pts),))
        r = _affine(X, Y, Z)[0] % _N
        if not r:
            continue
        s = _inv(k, _N) * (e + r * d) % _N
        if s:
            return _i2b(r) + _i2b(s)


def verify(key, msg, sig):
    """True if sig (r||s, 64 bytes) is a valid signature of msg by key: a 64/65-byte public
    key or a Table of it.  False for anything invalid, never raises on bad input."""
    try:
        if len(sig) != 64:
            return False
        r = _b2i(sig[:32])
        s = _b2i(sig[32:])
        if not (0 < r < _N and 0 < s < _N):
            return False
        if not isinstance(key, Table):
            key = _point(key)
        e = _b2i(hashlib.sha256(msg).digest())
        w = _inv(s, _N)
        u1 = e * w % _N
        u2 = r * w % _N
        g = _gen()
        if isinstance(key, Table):
            X, Y, Z = _mul(((g._cols(u1), g.pts), (key._cols(u2), key.pts)))
        else:
            X, Y, Z = _mul(((g._cols(u1), g.pts),
                           (_naf_cols(u2), _naf_table(key[0], key[1]))))
        if not Z:
            return False
        # x(R) mod n == r, checked as X == r * Z^2 (mod p) for x = r and x = r + n.
        zz = Z * Z % _P
        return X == r * zz % _P or (r + _N < _P and X == (r + _N) * zz % _P)
    except (ValueError, TypeError, IndexError):
        return False


def ecdh(priv, pub):
    """Shared secret Z: the x coordinate (32 bytes) of priv * pub, where pub is a 64/65-byte
    public key or a Table.  Raises ValueError for an invalid key."""
    d = _scalar(priv)
    if not isinstance(pub, Table):
        pub = _point(pub)
    X, Y, Z = _mul_point(d, pub)
    return _i2b(_affine(X, Y, Z)[0])
