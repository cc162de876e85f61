# The meter application: the meter state and its store, the security caches, the
# status LED, and what each frame does (appboot.py reads the board's settings and
# makes it at boot). GBCS Commands are the only remote way to change the meter;
# diagnostics are the local port's test facility (off where a board says so).
import envelope
import link
import meter
import onecall
import service
import usecases
from envelope import Reject


class Meter:
    """The meter a board serves: its state, the store that keeps it and the RAM-only
    security caches. appboot.py makes it at boot; appdiag.py and provision.py hold
    its diagnostics."""

    def __init__(self, cfg, store, st, led=None):
        self.cfg = cfg
        self.led = led      # a machine.Pin, or None where the board has no LED
        self.last_error = None
        self.sec = envelope.Security()
        self.store = store
        # Alert counter values up to the reservation may have gone out uncommitted
        # (alerts.py): a meter starting from a stored state never uses them again.
        if st.get("alert_resv", 0) > st["alert_ctr"]:
            st["alert_ctr"] = st["alert_resv"]
        self.st = st

    def blink(self):
        # The status LED changes with every frame handled.
        if self.led is not None:
            self.led.value(not self.led.value())

    def commit(self, work):
        self.store.commit(work)
        self.st = work

    def supports(self, row):
        # A meter from before SECMP0002 does not know the reset use cases.
        return usecases.known(row, self.st["settings"]["releases"])

    # -- GBCS ---------------------------------------------------------------------
    def gbcs(self, data):
        self.blink()
        st = self.st
        try:
            row, who, counter, content = self.sec.check(st, data, self.supports)
            work = meter.copy(st)
            try:
                # a read seals its personal data for the originator with sec.seal
                answer = meter.execute(work, row[1], content, (counter, who, self.sec))
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
        work = meter.copy(self.st)
        codes = [rej.args[0]]
        self.sec.bad_run += 1
        if self.sec.bad_run >= envelope.RUN_LIMIT:
            self.sec.bad_run = 0
            codes.append(envelope.A_RUN)
        out = [(link.T_ALERT, self.sec.critical_alert(work, c)) for c in codes]
        # Only the alert counter moved: the state is written only when its reservation
        # moved on (once per alerts.RESERVE values), and then before the alerts leave.
        if work.get("alert_resv") != self.st.get("alert_resv"):
            self.commit(work)
        else:
            self.st = work
        return out

    # -- diagnostics ----------------------------------------------------------------
    def diag(self, op, req):
        """(reply, extra frames) for diagnostic op. The d_<op> functions are in
        appdiag.py, provisioning in provision.py: loaded for the call and dropped
        after it, so a board serving Commands holds none of their code. Each gets a
        working copy, committed whole unless its reply says "_commit": False; a
        ValueError, TypeError or KeyError changes nothing."""
        self.blink()
        if op != "ping" and not self.cfg.get("diagnostics", True):
            return {"ok": False, "error": "diagnostics are switched off on this board"}, ()
        fn = getattr(onecall.load("provision" if op == "provision" else "appdiag"),
                     "d_" + op, None)
        if fn is None:
            return {"ok": False, "error": "unknown diagnostic: %s" % op}, ()
        work = meter.copy(self.st)
        try:
            reply, extra = fn(self, work, req)
        except (ValueError, TypeError, KeyError) as e:
            reply, extra = {"ok": False, "error": str(e) or repr(e)}, ()
        else:
            if reply.pop("_commit", True):
                self.commit(work)
            reply["ok"] = True
        finally:
            fn = None  # the module's code goes before the caches below are made
        # New anchors (provisioning) get their caches now, between frames; after a
        # refused provisioning, the anchors the meter kept get theirs back.
        self.sec.warm(self.st)
        return reply, extra


def boot():
    # appboot.py reads the board's settings and makes the meter; it is dropped before
    # the first frame, so its code holds no heap while the board serves.
    port, m = onecall.load("appboot").start()
    service.serve(port, m)
