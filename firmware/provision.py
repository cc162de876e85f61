# The provision diagnostic: identity, device profile, trust anchors and the meter's own
# key pairs. The heaviest diagnostic (two key pairs made, every anchor's keys
# checked, the profile table read), so it is a module of its own: app.Meter.diag loads
# it for the call with none of the other diagnostics' code beside it.
# Same shape as appdiag.py's d_* functions.
import gc
import hashlib
import os

import meter
import onecall
import p256
import usecases


def _anchors(req):
    anchors = {}
    for who, a in req["anchors"].items():
        who = who.lower()
        if not meter.is_title(who) or a["role"] not in usecases.ROLE_NAMES:
            raise ValueError("anchor %s: bad system title or role" % who)
        for k in ("ds", "ka"):
            if k in a and not p256.check_point(bytes.fromhex(a[k])):
                raise ValueError("anchor %s: %s key is not a P-256 point" % (who, k))
        anchors[who] = {k: a[k] for k in ("role", "ds", "ka") if k in a}
    return anchors


def _seeded(seed):
    # rand(n) from a seed: HMAC-SHA256 blocks keyed by SHA-256(seed), so the same
    # seed makes the same key pairs.
    key = hashlib.sha256(seed).digest()
    n = [0]

    def rand(k):
        out = b""
        while len(out) < k:
            n[0] += 1
            out += p256._hmac(key, b"gbmeter key pair", n[0].to_bytes(4, "big"))
        return out[:k]
    return rand


def _entropy(cfg, req):
    """rand(n) for the key pairs: the board's own os.urandom; on a board that
    board.json marks as a test board, a seed (hex, 32 bytes or more) sent with the
    provisioning, which a test board without an entropy source ("entropy": false)
    needs. Anything else is a ValueError saying why, before anything changes."""
    seed = req.get("seed")
    if seed is not None:
        if not cfg.get("test_board"):
            raise ValueError("seed: only a test board takes key material from provisioning; "
                             "this board makes its key pairs from its own entropy source")
        try:
            seed = bytes.fromhex(seed)
        except (TypeError, ValueError):
            seed = b""
        if len(seed) < 32:
            raise ValueError("seed: give at least 32 bytes, in hex")
        return _seeded(seed)
    rand = getattr(os, "urandom", None) if cfg.get("entropy", True) else None
    if rand is None:
        raise ValueError("this board has no entropy source, so it cannot make its own key pairs"
                         + ("; provision it with a seed (a test board)" if cfg.get("test_board")
                            else ""))
    return rand


def d_provision(m, work, req):
    """Identity, device profile, trust anchors and (by default, new) key pairs. The key
    pairs are made here on the meter, so the private keys never leave it. The profile
    is the one asked for, else the meter's own; `settings` overrides its settings
    (a new profile starts from that profile's)."""
    device = req.get("device", work["device"])
    mid = req.get("id", work["id"])
    profile = req.get("profile", work["profile"])
    overrides = req.get("settings")
    profiles = onecall.load("profiles")
    if overrides is None and profile == work["profile"]:
        # keep what an earlier provisioning overrode
        base = profiles.settings(profile)
        cur = work["settings"]
        overrides = {k: cur[k] for k in cur if k != "releases" and cur[k] != base.get(k)}
    settings = profiles.settings(profile, overrides)   # checks profile and settings
    profiles = None  # the module's last reference: its code is free for the key pairs
    anchors = _anchors(req)
    make = req.get("new_keys", True) or "keys" not in work
    if not make and "seed" in req:
        raise ValueError("seed: given, but the meter keeps its key pairs")
    rand = _entropy(m.cfg, req) if make else None
    if str(mid).lower() in anchors:
        raise ValueError("id: a trust anchor's")
    if device != work["device"] or mid != work["id"]:
        # A different meter: start from factory state, but never lower a counter; a
        # provisioned meter is wiped only when asked to be.
        fresh = meter.new_state(device, mid, profile, overrides)  # checks device and id
        if "keys" in work and not req.get("factory_reset"):
            raise ValueError("factory_reset: not asked for")
        fresh["counters"] = work["counters"]
        fresh["alert_ctr"] = work["alert_ctr"]
        work.clear()
        work.update(fresh)
    work["profile"] = profile
    work["settings"] = settings
    work["anchors"] = anchors
    # a party no longer trusted keeps no counter
    work["counters"] = {w: n for w, n in work["counters"].items() if w in anchors}
    # Everything is checked. The comb tables and ECDH secrets go now, before the key
    # pairs (the heaviest part of the heaviest diagnostic); app.Meter.diag makes
    # them again for whichever anchors the meter ends up with.
    m.sec.forget()
    if make:
        gc.collect()  # key generation needs the room the checks above used
        ds, ds_pub = p256.keypair(rand)
        ka, ka_pub = p256.keypair(rand)
        work["keys"] = {"ds": ds.hex(), "ka": ka.hex()}
        work["pub"] = {"ds": ds_pub.hex(), "ka": ka_pub.hex()}
    return {"id": work["id"], "device": work["device"], "profile": profile,
            "settings": settings, "ds": work["pub"]["ds"], "ka": work["pub"]["ka"]}, ()
