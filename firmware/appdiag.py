# The local port's diagnostics: ping, and the test set-up ones: read the registers,
# set preconditions, move the clock, top up, inject a fault (provisioning, the
# heaviest, is provision.py). app.Meter.diag loads this module for one call and drops
# it again, so a board serving Commands holds none of it.
# Each d_* takes (the app.Meter, a working copy of the state, the request) and returns
# (reply, extra frames); the working copy is committed whole unless the reply says
# "_commit": False, and a ValueError / TypeError / KeyError changes nothing.
import gc
import os
import sys

import link
import meter

VERSION = "0.2.0"


def d_ping(m, work, req):
    """Who this board is: firmware, board, device, identity, profile, free heap."""
    gc.collect()
    st = m.st
    return {"_commit": False, "fw": VERSION, "board": m.cfg.get("name", "unknown"),
            "device": st["device"], "id": st["id"], "profile": st["profile"],
            "settings": st["settings"], "provisioned": "keys" in st,
            "heap_free": gc.mem_free(), "platform": sys.platform,
            # can it make its own key pairs; does it take a seed (provision.py)
            "entropy": bool(m.cfg.get("entropy", True) and hasattr(os, "urandom")),
            "test_board": bool(m.cfg.get("test_board"))}, ()


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
