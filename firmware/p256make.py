# The P-256 code a board needs only now and then, loaded by p256 for one call and
# dropped after it (see there): making key pairs (provisioning) and filling comb tables
# of window 2 and more (the generator's at start, a trusted key's on its first use).
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
    """A fresh (private 32 bytes, public 64 bytes); rand(n) gives n random bytes."""
    rand = rand or os.urandom
    while True:
        priv = rand(32)
        d = int.from_bytes(priv, "big")
        if 0 < d < p256._N:  # reject and draw again rather than bias by reducing mod n
            return bytes(priv), pubkey(priv)
