# The P-256 code a board needs only now and then, loaded by p256 for one call and
# dropped after it (see there): comb tables (the generator's at start, a trusted key's
# at provisioning) and checking keys, ECDH (once per ACB, cached), making key pairs.
import os

import p256


def fill(out, window, d):
    """Entries 2 .. 2^window - 1 of the comb table `out` (64 bytes each, entry 1 the
    point itself), `d` columns."""
    _dbl, _madd, _inv, p = p256._dbl, p256._madd, p256._inv, p256._P
    # Entry i is the sum of the teeth 2^(t*d) * P for the bits t of i.  Entries
    # n .. 2n - 1 (n = 2^t) are tooth t plus each entry below n, made affine
    # together with one inversion (Montgomery's trick).  The only allocation is
    # the table itself, so a fragmented heap needs just that one piece: while a
    # group is built, each of its entries holds the point's Z and the product of
    # the Zs before it, and the point is added up again to get X and Y (one more
    # addition per point, about 11 us on the unix port).
    for t in range(1, window):
        n = 1 << t
        o = 32 << t  # entry n / 2: tooth t - 1
        tx, ty, tz = (int.from_bytes(out[o:o + 32], "big"),
                      int.from_bytes(out[o + 32:o + 64], "big"), 1)
        for _ in range(d):
            tx, ty, tz = _dbl(tx, ty, tz)
        acc = 1
        for back in (0, 1):
            if back:
                inv = _inv(acc, p)
            for i in (range(n - 1, -1, -1) if back else range(n)):
                X, Y, Z = tx, ty, tz
                if i:
                    o = i << 6
                    X, Y, Z = _madd(X, Y, Z, int.from_bytes(out[o:o + 32], "big"),
                                    int.from_bytes(out[o + 32:o + 64], "big"))
                o = (n + i) << 6
                if back:
                    zi = inv * int.from_bytes(out[o + 32:o + 64], "big") % p
                    inv = inv * Z % p
                    zz = zi * zi % p
                    out[o:o + 32] = (X * zz % p).to_bytes(32, "big")
                    out[o + 32:o + 64] = (Y * zz % p * zi % p).to_bytes(32, "big")
                else:
                    out[o:o + 32] = Z.to_bytes(32, "big")
                    out[o + 32:o + 64] = acc.to_bytes(32, "big")
                    acc = acc * Z % p


def pubkey(priv):
    """The 64-byte public key x||y of a 32-byte private key."""
    g = p256._gen()
    x, y = p256._affine(*p256._mul(((g._cols(p256._scalar(priv)), g.pts),)))
    return x.to_bytes(32, "big") + y.to_bytes(32, "big")


def keypair(rand=None):
    """A fresh (private 32 bytes, public 64 bytes); rand(n) gives n random bytes,
    os.urandom by default (a ValueError that says so where the port has none)."""
    rand = rand or getattr(os, "urandom", None)
    if rand is None:
        raise ValueError("this board has no entropy source (no os.urandom): it cannot make key pairs")
    while True:
        priv = rand(32)
        d = int.from_bytes(priv, "big")
        if 0 < d < p256._N:  # reject and draw again rather than bias by reducing mod n
            return bytes(priv), pubkey(priv)


def table(pub, window=None):
    """Comb table for a trusted public key (64/65 bytes); window defaults to WINDOW.
    Raises ValueError if the key is not on the curve."""
    # Window 1 is for a key used once: the "table" is the point alone and its columns
    # are the scalar's bits, so the multiplication is plain double-and-add (256
    # doublings, an addition per set bit) in a few hundred bytes.
    n = len(pub)
    if n == 65 and pub[0] == 4:
        o = 1
    elif n == 64:
        o = 0
    else:
        raise ValueError("public key must be 64 bytes x||y or 65 bytes 04||x||y")
    x = int.from_bytes(pub[o:o + 32], "big")
    y = int.from_bytes(pub[o + 32:o + 64], "big")
    p = p256._P
    if not (x < p and y < p and (y * y - (x * x - 3) * x - p256._B) % p == 0):
        raise ValueError("public key is not a point on P-256")
    return _table(x, y, p256.WINDOW if window is None else window)


def _table(x, y, window):
    # The p256.Table of point (x, y), filled.
    t = p256.Table(x, y, window)  # ValueError for a window out of range
    if window > 1:
        fill(t.pts, window, t.columns)
    return t


def check_point(pub):
    """True if pub (64 or 65 bytes) is a point on P-256."""
    try:
        table(pub, 1)
        return True
    except (ValueError, TypeError, IndexError):
        return False


def set_window(window):
    """The comb window for the generator and for table() by default.  A board calls this
    once at start, before the first sign or verify (heap figures: top of p256.py):
    the generator's table is built here, while the heap still has room in one piece."""
    # Checked before the old table is let go: a bad window must leave it in place.
    if not 1 <= window <= p256.MAX_WINDOW:
        raise ValueError("window must be 1..%d" % p256.MAX_WINDOW)
    if p256._gtab is None or p256._gtab.window != window:
        p256._gtab = None  # the old table goes before the new one is built
        p256._gtab = _table(p256._GX, p256._GY, window)
    p256.WINDOW = window


def ecdh(priv, pub):
    """Shared secret Z: the x coordinate (32 bytes) of priv * pub, where pub is a 64/65-byte
    public key or a Table.  Raises ValueError for an invalid key."""
    d = p256._scalar(priv)
    if not isinstance(pub, p256.Table):
        pub = table(pub, 1)
    return p256._affine(*p256._mul(((pub._cols(d), pub.pts),)))[0].to_bytes(32, "big")
