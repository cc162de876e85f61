# NIST P-256 for the meter: ECDSA with SHA-256 (RFC 6979 nonces) and ECDH, in plain
# Python integers so the same file runs on MicroPython and CPython (the host uses it to
# cross-check).  Not constant-time: this is a test stub, not a production meter.
#
# Speed comes from fixed-base comb tables (Lim-Lee, one comb of `window` teeth): the
# generator's table is built once (by set_window at start, else on first use), and
# table(pub) builds one for a key trusted at provisioning (the Supplier's signing key).
# A key used once (ECDH with the ACB's key, verify against raw bytes) goes through a
# window-1 "table", the point alone: plain double-and-add, a few hundred bytes.  A
# verify against two tables of window w costs ceil(256/w) doublings and two mixed
# additions per column, all in Jacobian coordinates, plus one inversion mod n; the x
# check is done projectively (no inversion mod p).  Table points are affine
# (batch-normalised with one inversion) and packed 64 bytes each into one bytearray,
# which is about a third of the heap that lists of int objects would need.
#
# Measured on the unix port (64-bit, this repo's bench/bench_crypto.py; a 32-bit board
# needs a little less heap).  "kept" is the heap one table holds (gc.mem_alloc() after
# minus before, after gc.collect()); "build" is the extra heap needed while building it
# (smallest -X heapsize that works, less that of importing p256.mpy alone, ~9.7K, less
# "kept"): the table is the build's only lasting allocation; the rest is p256make.py's
# code (~1.1K, see below) and big-int temporaries; verify is the median with the
# generator and the key both at that window:
#   window  points  kept bytes  build bytes  verify ms
#      1       1         256         ~200      5.7
#      2       3         384         3000      3.7
#      3       7         640         3400      2.8
#      4      15        1152         3300      2.2
#      5      31        2176         3400      1.9
#      6      63        4224         3600      1.6
#      7     127        8320         3600      1.4
#      8     255       16512         3700      1.2
# The generator's table costs the same again.  At window 4: sign 1.4 ms, building a
# table 2.4 ms, verify against a key without a table 4.8 ms (plain double-and-add for
# that key), ECDH 4.0 ms.
# CPython (window 8): verify 0.40 ms, 0.55x the ecdsa package's 0.72 ms with precompute.
#
# A board picks its window with set_window() before the first use (the 64K-heap runs
# use small windows); WINDOW is the default.
#
# What a board needs only now and then is in p256make.py: building comb tables
# (table, set_window), checking a key (check_point), ECDH, making key pairs (keypair,
# pubkey). p256.<name> finds them there (__getattr__ below); on a board the module is
# loaded for the call and dropped again, so between Commands the heap holds none of
# its code.
import hashlib
import sys

import onecall

try:
    from micropython import const
except ImportError:
    const = int  # CPython: not a function of ours, which a board would load as code

# Curve y^2 = x^3 - 3x + b over GF(p), generator G of prime order n, cofactor 1.
_P = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
_B = 0x5AC635D8AA3A93E7B3EBBD55769886BC651D06B0CC53B0F63BCE3C3E27D2604B
_GX = 0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296
_GY = 0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5

# Public: p256make reads it too, and an underscore const() name is gone from the
# compiled module.
MAX_WINDOW = const(8)

# CPython has plenty of heap and the host verifies a lot: it gets the largest window.
_CPYTHON = sys.implementation.name == "cpython"
WINDOW = 8 if _CPYTHON else 4

_gtab = None  # the generator's comb table (set_window, or the first use)


def _inv(a, m):
    # Extended Euclid: on the unix port it takes ~90 us where pow(a, m-2, m) takes ~400.
    # CPython's pow(a, -1, m) is faster still (MicroPython's gets it wrong); a test
    # here rather than a second definition, which a board would load for nothing.
    if _CPYTHON:
        return pow(a, -1, m)
    x0, x1, r0, r1 = 0, 1, m, a % m
    while r1:
        q, r = divmod(r0, r1)
        r0, r1 = r1, r
        x0, x1 = x1, x0 - q * x1
    return x0 % m


# --- point arithmetic, Jacobian (X, Y, Z) <-> affine (X/Z^2, Y/Z^3); Z == 0 is infinity
# Each function is heap on a board (its code is loaded into RAM), so there are few of
# them: byte <-> int conversions and table look-ups are written out where they are used.


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


def _mul(sides):
    # The sum over columns j of 2^j * tab[cols[j]] over the (cols, tab) sides, Jacobian;
    # entry i of a table is the 64 bytes x||y at 64 * i.  The sides share the doublings
    # (Shamir's trick).
    X, Y, Z = 1, 1, 0
    top = 0
    for cols, _ in sides:
        top = max(top, len(cols))
    for j in range(top - 1, -1, -1):
        X, Y, Z = _dbl(X, Y, Z)
        for cols, tab in sides:
            if j < len(cols) and cols[j]:
                o = cols[j] << 6
                X, Y, Z = _madd(X, Y, Z, int.from_bytes(tab[o:o + 32], "big"),
                                int.from_bytes(tab[o + 32:o + 64], "big"))
    return X, Y, Z


# --- comb tables


class Table:
    """Comb table of one point for fixed-base multiplication: 2^window - 1 affine points
    (64 bytes each).  Build it with table(pub)."""

    def __init__(self, x, y, window):
        if not 1 <= window <= MAX_WINDOW:
            raise ValueError("window must be 1..%d" % MAX_WINDOW)
        self.window = window
        self.columns = d = (256 + window - 1) // window
        out = bytearray(64 << window)  # entry 1 is the point: no x and y kept besides
        out[64:96] = x.to_bytes(32, "big")
        out[96:128] = y.to_bytes(32, "big")
        self.pts = memoryview(out)  # entries 2 and up: p256make.fill

    def pub(self):
        """The point as 64 bytes x||y."""
        return bytes(self.pts[64:128])

    def _cols(self, k):
        # One table index per column, column j doubled j times: bit t*d + j of k
        # goes to bit t of column j's index.
        d = self.columns
        cols = bytearray(d)
        j = 0
        tb = 1
        for byte in k.to_bytes(32, "little"):
            for _ in range(8):
                if byte & 1:
                    cols[j] |= tb
                byte >>= 1
                j += 1
                if j == d:
                    j = 0
                    tb <<= 1
        return cols


def _scalar(priv):
    if len(priv) != 32:
        raise ValueError("private key must be 32 bytes")
    d = int.from_bytes(priv, "big")
    if not 0 < d < _N:
        raise ValueError("private key out of range 1..n-1")
    return d


def _gen():
    # The generator's table; set_window builds it if a board has not yet.
    if _gtab is None:
        _make().set_window(WINDOW)
    return _gtab


# --- keys, ECDSA, ECDH


def _hmac(key, *data):
    # HMAC-SHA256 with a 32-byte key (MicroPython has no hmac module).
    inner = hashlib.sha256(bytes(b ^ 0x36 for b in key) + b"\x36" * 32)
    for part in data:
        inner.update(part)
    outer = hashlib.sha256(bytes(b ^ 0x5C for b in key) + b"\x5c" * 32)
    outer.update(inner.digest())
    return outer.digest()


def sign(priv, msg):
    """ECDSA signature r||s (64 bytes) over SHA-256(msg), deterministic (RFC 6979)."""
    d = _scalar(priv)
    h = hashlib.sha256(msg).digest()
    e = int.from_bytes(h, "big")
    g = _gen()
    # RFC 6979 section 3.2 for qlen = hlen = 256: candidate nonces k in turn.
    xo = priv
    ho = (e % _N).to_bytes(32, "big")
    v = b"\x01" * 32
    k = _hmac(b"\x00" * 32, v, b"\x00", xo, ho)
    v = _hmac(k, v)
    k = _hmac(k, v, b"\x01", xo, ho)
    v = _hmac(k, v)
    while True:
        v = _hmac(k, v)
        t = int.from_bytes(v, "big")
        if 0 < t < _N:
            r = _affine(*_mul(((g._cols(t), g.pts),)))[0] % _N
            s = _inv(t, _N) * (e + r * d) % _N
            if r and s:
                return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        k = _hmac(k, v, b"\x00")
        v = _hmac(k, v)


def verify(key, msg, sig):
    """True if sig (r||s, 64 bytes) is a valid signature of msg by key: a 64/65-byte public
    key or a Table of it.  False for anything invalid, never raises on bad input."""
    try:
        if len(sig) != 64:
            return False
        r = int.from_bytes(sig[:32], "big")
        s = int.from_bytes(sig[32:], "big")
        if not (0 < r < _N and 0 < s < _N):
            return False
        if not isinstance(key, Table):
            key = _make().table(key, 1)
        e = int.from_bytes(hashlib.sha256(msg).digest(), "big")
        w = _inv(s, _N)
        g = _gen()
        X, Y, Z = _mul(((g._cols(e * w % _N), g.pts), (key._cols(r * w % _N), key.pts)))
        if not Z:
            return False
        # x(R) mod n == r, checked as X == r * Z^2 (mod p) for x = r and x = r + n.
        zz = Z * Z % _P
        return X == r * zz % _P or (r + _N < _P and X == (r + _N) * zz % _P)
    except (ValueError, TypeError, IndexError):
        return False


def _make():
    # p256make.py, for one call on a board (onecall; the host keeps it loaded).
    return onecall.load("p256make")


def __getattr__(name):
    # table, check_point, set_window, ecdh, keypair, pubkey: in p256make.py
    return getattr(_make(), name)
