# The meter application: board settings, the meter state and its store, the status
# LED, and what each frame does. GBCS Commands are the only remote way to change the
# meter; diagnostics are the local port's test facility (off where a board says so).
import gc
import json
import sys

import envelope
import link
import meter
import p256
import service
import store
import stream
from envelope import Reject

VERSION = "0.2.0"
# Factory identities when device.json gives none: the NOTES.md test meters.
DEFAULT_ID = {"esme": "00db1234567890a0", "gsme": "00db1234567890a1"}
PROFILES = ("smets2",)


def _read_json(name, default):
    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def _copy(st):
    # A working copy for one Command or diagnostic: committed whole, or dropped.
    return meter.copy(st)


class Led:
    """The board's status LED, toggled per handled frame; nothing where there is none."""

    def __init__(self, pin):
        self.pin = None
        if pin is None:
            return
        try:
            from machine import Pin
            self.pin = Pin(pin, Pin.OUT)
        except (ImportError, ValueError, TypeError):
            self.pin = None

    def toggle(self):
        if self.pin is not None:
            self.pin.value(not self.pin.value())


class Meter:
    def __init__(self, cfg, factory):
        self.cfg = cfg
        self.led = Led(cfg.get("led"))
        self.last_error = None
        self.sec = envelope.Security()
        gc.collect()
        p256.set_window(comb_window(cfg.get("ec_window", 4), gc.mem_free() + gc.mem_alloc()))
        root = cfg.get("root", ".")
        self.store = store.Store(root)
        st = self.store.load()
        if st is None:
            device = factory.get("device", "gsme")
            st = meter.new_state(device, factory.get("id") or DEFAULT_ID[device])
            st["profile"] = factory.get("profile", "smets2")
            self.store.commit(st)
        self.st = st

    def commit(self, work):
        self.store.commit(work)
        self.st = work

    def supports(self, row):
        # A meter from before SECMP0002 does not know the reset use cases.
        return row[5] is None or self.st.get("profile") != "smets2-pre"

    # -- GBCS ---------------------------------------------------------------------
    def gbcs(self, data):
        self.led.toggle()
        st = self.st
        try:
            row, who, counter, content = self.sec.check(st, data, self.supports)
            work = _copy(st)
            try:
                answer = meter.execute(work, row[1], content)
            except meter.FormatError as e:
                raise Reject(envelope.A_FORMAT, "content: %s" % e)
        except Reject as e:
            return self._refuse(e)
        work["counters"][who] = counter  # committed with the Command's effects
        self.sec.bad_run = 0
        self.commit(work)
        return [(link.T_RESPONSE, self.sec.response(work, who, counter, row[0], answer))]

    def _refuse(self, rej):
        self.last_error = rej.args[1] if len(rej.args) > 1 else None
        work = _copy(self.st)
        codes = [rej.args[0]]
        self.sec.bad_run += 1
        if self.sec.bad_run >= envelope.RUN_LIMIT:
            self.sec.bad_run = 0
            codes.append(envelope.A_RUN)
        out = [(link.T_ALERT, self.sec.critical_alert(work, c)) for c in codes]
        self.commit(work)  # the alert counter moved; nothing else did
        return out

    def _alerts(self, work, codes):
        if "keys" not in work:
            return []
        return [(link.T_ALERT, self.sec.non_critical_alert(work, c)) for c in codes]

    # -- diagnostics ----------------------------------------------------------------
    def ping(self):
        gc.collect()
        st = self.st
        return {"ok": True, "fw": VERSION, "board": self.cfg.get("name", "unknown"),
                "device": st["device"], "id": st["id"], "profile": st.get("profile"),
                "provisioned": "keys" in st, "heap_free": gc.mem_free(),
                "platform": sys.platform}

    def diag(self, op, req):
        self.led.toggle()
        if op == "ping":
            return self.ping(), ()
        if not self.cfg.get("diagnostics", True):
            return {"ok": False, "error": "diagnostics are switched off on this board"}, ()
        fn = getattr(self, "d_" + op, None)
        if fn is None:
            return {"ok": False, "error": "unknown diagnostic: %s" % op}, ()
        work = _copy(self.st)
        try:
            reply, extra = fn(work, req)
        except (ValueError, TypeError, KeyError) as e:
            return {"ok": False, "error": str(e) or repr(e)}, ()
        if reply.pop("_commit", True):
            self.commit(work)
        reply["ok"] = True
        return reply, extra

    def d_lasterror(self, work, req):
        return {"error": self.last_error, "_commit": False}, ()

    def d_heap(self, work, req):
        gc.collect()
        return {"free": gc.mem_free(), "alloc": gc.mem_alloc(), "_commit": False}, ()

    def d_registers(self, work, req):
        r = meter.registers(work)
        r["profile"] = work.get("profile")
        r["_commit"] = False
        return r, ()

    def d_set(self, work, req):
        meter.set_state(work, req["fields"])
        return {}, ()

    def d_advance(self, work, req):
        codes = meter.advance(work, req["seconds"])
        return {"alerts_raised": ["%04X" % c for c in codes]}, self._alerts(work, codes)

    def d_topup(self, work, req):
        codes = meter.topup(work, req["amount"])
        return {"alerts_raised": ["%04X" % c for c in codes]}, self._alerts(work, codes)

    def d_fault(self, work, req):
        meter.inject_fault(work, req["at"], req["status"])
        return {}, ()

    def d_provision(self, work, req):
        """Identity, trust anchors and (by default, new) key pairs. The key pairs are
        made here on the meter, so the private keys never leave it."""
        device = req.get("device", work["device"])
        mid = req.get("id", work["id"])
        fresh = meter.new_state(device, mid)  # validates device and id
        anchors = {}
        for who, a in req["anchors"].items():
            who = who.lower()
            if len(bytes.fromhex(who)) != 8 or a["role"] not in (2, 3, 4):
                raise ValueError("anchor %s: bad system title or role" % who)
            for k in ("ds", "ka"):
                if k in a and not p256.check_point(bytes.fromhex(a[k])):
                    raise ValueError("anchor %s: %s key is not a P-256 point" % (who, k))
            anchors[who] = {k: a[k] for k in ("role", "ds", "ka") if k in a}
        if device != work["device"] or mid != work["id"]:
            # A different meter: start from factory state, but never lower a counter.
            counters = work["counters"]
            ctr = work["alert_ctr"]
            work.clear()
            work.update(fresh)
            work["counters"] = counters
            work["alert_ctr"] = ctr
        if "profile" in req:
            if req["profile"] not in PROFILES:
                raise ValueError("unknown profile %s" % req["profile"])
            work["profile"] = req["profile"]
        work.setdefault("profile", "smets2")
        work["anchors"] = anchors
        if req.get("new_keys", True) or "keys" not in work:
            ds, ds_pub = p256.keypair()
            ka, ka_pub = p256.keypair()
            work["keys"] = {"ds": ds.hex(), "ka": ka.hex()}
            work["pub"] = {"ds": ds_pub.hex(), "ka": ka_pub.hex()}
        self.sec.forget()
        return {"id": work["id"], "device": work["device"], "ds": work["pub"]["ds"],
                "ka": work["pub"]["ka"]}, ()


def comb_window(wanted, heap):
    """The largest comb window up to `wanted` whose two tables (generator and the
    Supplier's key: about 200 * 2**w bytes with the building) take at most 1/16 of
    the heap, so a 64K board gets window 4 and the unix port's 2M heap window 8."""
    w = wanted
    while w > 2 and 200 * (1 << w) * 16 > heap:
        w -= 1
    return w


def boot():
    cfg = _read_json("board.json", {"name": "unknown"})
    factory = _read_json("device.json", {})
    port = stream.open_port(cfg)
    service.serve(port, Meter(cfg, factory))
