# The local port's diagnostics: ping, and the test set-up ones: read the registers,
# set preconditions, move the clock, top up, inject a fault, provision. app.Meter.diag
# loads this module for one call and drops it again, so a board serving Commands
# holds none of it.
# Each d_* takes (the app.Meter, a working copy of the state, the request) and returns
# (reply, extra frames); the working copy is committed whole unless the reply says
# "_commit": False, and a ValueError / TypeError / KeyError changes nothing.
import gc
import sys

import link
import meter
import onecall
import p256

VERSION = "0.2.0"


def run(m, op, req):
    """The reply to diagnostic op (with req, the request) and its extra frames."""
    if op == "ping":
        return ping(m), ()
    if not m.cfg.get("diagnostics", True):
        return {"ok": False, "error": "diagnostics are switched off on this board"}, ()
    fn = globals().get("d_" + op)
    if fn is None:
        return {"ok": False, "error": "unknown diagnostic: %s" % op}, ()
    work = meter.copy(m.st)
    try:
        reply, extra = fn(m, work, req)
    except (ValueError, TypeError, KeyError) as e:
        return {"ok": False, "error": str(e) or repr(e)}, ()
    if reply.pop("_commit", True):
        m.commit(work)
        m.sec.warm(work)  # new anchors (provisioning): their caches, now
    reply["ok"] = True
    return reply, extra


def ping(m):
    """Who this board is: firmware, board, device, identity, profile, free heap."""
    gc.collect()
    st = m.st
    return {"ok": True, "fw": VERSION, "board": m.cfg.get("name", "unknown"),
            "device": st["device"], "id": st["id"], "profile": st["profile"],
            "settings": st["settings"], "provisioned": "keys" in st,
            "heap_free": gc.mem_free(), "platform": sys.platform}


def _alerts(m, work, codes):
    # Non-critical alerts for codes (a provisioned meter only: they are MAC'd).
    if "keys" not in work:
        return []
    return [(link.T_ALERT, m.sec.non_critical_alert(work, c)) for c in codes]


def d_lasterror(m, work, req):
    return {"error": m.last_error, "_commit": False}, ()


def d_heap(m, work, req):
    gc.collect()
    return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "_commit": False}, ()


def _codes(codes):
    return {"alerts_raised": ["%04X" % c for c in codes]}


def d_registers(m, work, req):
    r = meter.registers(work)
    r["_commit"] = False
    return r, ()


def d_set(m, work, req):
    meter.set_state(work, req["fields"])
    return {}, ()


def d_advance(m, work, req):
    codes = meter.advance(work, req["seconds"])
    return _codes(codes), _alerts(m, work, codes)


def d_topup(m, work, req):
    codes = meter.topup(work, req["amount"])
    return _codes(codes), _alerts(m, work, codes)


def d_fault(m, work, req):
    meter.inject_fault(work, req["at"], req["status"])
    return {}, ()


def _anchors(req):
    anchors = {}
    for who, a in req["anchors"].items():
        who = who.lower()
        if len(bytes.fromhex(who)) != 8 or a["role"] not in (2, 3, 4):
            raise ValueError("anchor %s: bad system title or role" % who)
        for k in ("ds", "ka"):
            if k in a and not p256.check_point(bytes.fromhex(a[k])):
                raise ValueError("anchor %s: %s key is not a P-256 point" % (who, k))
        anchors[who] = {k: a[k] for k in ("role", "ds", "ka") if k in a}
    return anchors


def d_provision(m, work, req):
    """Identity, device profile, trust anchors and (by default, new) key pairs. The key
    pairs are made here on the meter, so the private keys never leave it. The profile
    is the one asked for, else the meter's own; `settings` overrides its settings
    (a new profile starts from that profile's)."""
    # The Supplier's comb table and the ECDH cache go first: they are rebuilt for the
    # new anchors anyway, and this is the heaviest diagnostic.
    m.sec.forget()
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
    if device != work["device"] or mid != work["id"]:
        # A different meter: start from factory state, but never lower a counter.
        fresh = meter.new_state(device, mid, profile, overrides)  # checks device and id
        fresh["counters"] = work["counters"]
        fresh["alert_ctr"] = work["alert_ctr"]
        work.clear()
        work.update(fresh)
    work["profile"] = profile
    work["settings"] = settings
    work["anchors"] = anchors
    if req.get("new_keys", True) or "keys" not in work:
        gc.collect()  # key generation needs the room the checks above used
        ds, ds_pub = p256.keypair()
        ka, ka_pub = p256.keypair()
        work["keys"] = {"ds": ds.hex(), "ka": ka.hex()}
        work["pub"] = {"ds": ds_pub.hex(), "ka": ka_pub.hex()}
    return {"id": work["id"], "device": work["device"], "profile": profile,
            "settings": settings, "ds": work["pub"]["ds"], "ka": work["pub"]["ka"]}, ()
