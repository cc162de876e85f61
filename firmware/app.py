# The meter application: board settings, the meter state and its store, the status
# LED, and what each frame does. GBCS Commands are the only remote way to change the
# meter; diagnostics are the local port's test facility (off where a board says so).
import gc
import json
import sys

import envelope
import link
import meter
import onecall
import p256
import service
import store
import stream
from envelope import Reject

VERSION = "0.2.0"
# Factory identities when device.json gives none: the NOTES.md test meters.
DEFAULT_ID = {"esme": "00db1234567890a0", "gsme": "00db1234567890a1"}


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
            # Factory-fresh: the device and profile device.json gives.
            device = factory.get("device", "gsme")
            st = meter.new_state(device, factory.get("id") or DEFAULT_ID[device],
                                 factory.get("profile", "smets2"), factory.get("settings"))
            self.store.commit(st)
        elif "settings" not in st:
            # Stored before profiles had settings: its profile's.
            st["profile"] = st.get("profile") or "smets2"
            st["settings"] = meter.new_state(st["device"], st["id"], st["profile"])["settings"]
            self.store.commit(st)
        self.st = st

    def commit(self, work):
        self.store.commit(work)
        self.st = work

    def supports(self, row):
        # The use case's release (usecases.py `since`) must be one its profile knows:
        # a meter from before SECMP0002 does not know the reset use cases.
        return row[5] is None or row[5] in self.st["settings"]["releases"]

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
                "device": st["device"], "id": st["id"], "profile": st["profile"],
                "settings": st["settings"],
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
            # The test set-up diagnostics: loaded for the call and dropped after it,
            # so a board serving Commands holds none of their code.
            fn = getattr(onecall.load("appdiag"), "d_" + op, None)
            if fn is None:
                return {"ok": False, "error": "unknown diagnostic: %s" % op}, ()
            fn = _bound(fn, self)
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


def _bound(fn, m):
    return lambda work, req: fn(m, work, req)


def comb_window(wanted, heap):
    """The largest comb window up to `wanted` whose two tables (generator and the
    Supplier's key: about 200 * 2**w bytes with the building) take at most 1/32 of
    the heap, so a 64K board gets window 3 (verify about 2.8 ms on the unix port), a
    128K board window 4 and the unix port's 2M heap window 8."""
    w = wanted
    while w > 2 and 200 * (1 << w) * 32 > heap:
        w -= 1
    return w


def boot():
    cfg = _read_json("board.json", {"name": "unknown"})
    factory = _read_json("device.json", {})
    port = stream.open_port(cfg)
    service.serve(port, Meter(cfg, factory))
