# The meter model: debt registers, balances, payment mode and clock of one ESME or
# GSME, and the entry point that runs a GBCS use case's content against them.
#
# The whole meter is one plain dict (the "state"), so the store can commit it
# atomically as one record. Keys (money in units of 0.00001 GBP, 1000 = one penny):
#
#   device          "esme" or "gsme"
#   id              the meter's EUI-64, 16 lowercase hex digits
#   time1, time2    Time Debt Register 1 / 2 (0 .. 2**31-1)
#   payment         Payment Debt Register (0 .. 2**31-1)
#   time1_recovery, time2_recovery
#                   time-based recovery settings of that register:
#                   rate     amount recovered per period
#                   freq     0 hourly, 1 daily (ZCL debt recovery frequency)
#                   start    recovery start time, UTC seconds since 2000-01-01
#                   coll     collection time, minutes after midnight (daily) or
#                            minutes after the hour (hourly)
#                   passive  ESME only: unit_charge_passive rate, copied to rate by
#                            Charge method 2 (activate_passive_unit_charge)
#   payment_recovery
#                   pct      share of each top-up taken by the payment debt, in
#                            0.01 % (10000 = 100 %); DUIS DebtRecoveryPerPayment,
#                            ZCL recovery balance percentage and DLMS Charge
#                            proportion all pass straight through in this unit
#   balance         meter balance (signed)
#   ec_balance      emergency credit balance (what is left of it)
#   ec_limit        emergency credit limit: the amount activation makes available
#   ec_threshold    emergency credit is available when balance <= this
#   ec_active       emergency credit in use
#   acc_debt        accumulated debt: time-based recovery the meter balance could not
#                   cover; the next top-ups pay it first
#   friendly_credit ZCL friendly credit (bitmap8, bit 0 enabled) and
#   friendly_calendar
#                   its calendar id: what GCS02 / GCS03 report (not modelled).
#                   Absent until the set diagnostic sets them, meaning 0: a state
#                   stored before SR 1.6 has none, and a new one is no bigger.
#   mode            "credit" or "prepayment": set by ECS02 / ECS03 / GCS02 / GCS03
#                   (immediately; future-dated changes are refused as content)
#   clock           device clock, UTC seconds since 2000-01-01. By design it moves
#                   only through advance() (the advance / set diagnostics), never on
#                   its own, so every test is deterministic.
#   counters        {remote party system title hex: last accepted originator counter}
#   alert_ctr       the meter's own originator counter for Alerts
#   fault           pending injected fault {"at": n, "status": s} or None
#   profile         the device profile's name (profiles.py), for reports
#   settings        that profile's named settings, with any overrides: what the
#                   rules below consult (whole_pence, ec_zero_limit, ec_amount,
#                   balance_adjust, releases)
#
# Any other key (the security layer keeps its keys and trust anchors here) is
# preserved untouched.
#
# Interpretation choices, in one place (see also ../shared/gbcs/NOTES.md section 5):
#   - a reset (ECS07a / GCS04a) succeeds iff the register is zero afterwards, in
#     both payment modes, and leaves the recovery settings alone;
#   - emergency credit (ECS09 / GCS06) succeeds iff it is active afterwards: it is
#     activated in prepayment mode when balance <= ec_threshold (with ec_limit 0 only
#     where the setting ec_zero_limit is "activate"), and activating it makes ec_limit
#     available as ec_balance (setting ec_amount "limit-less-debt": the accumulated
#     debt is paid out of it first);
#   - on a whole_pence meter every money value a Command or diagnostic gives is
#     truncated towards zero to whole pence first (money());
#   - the reads (ECS19 / GCS14) change nothing but the originator counter (and a
#     pending fault, which they consume like any Command);
#   - time-based recovery happens only in prepayment mode, at each collection instant
#     (start time reached, every hour at coll minutes past, or every day at coll
#     minutes after midnight), taking min(rate, register) from the meter balance;
#     what the balance cannot cover moves to the accumulated debt;
#   - a top-up in prepayment mode gives pct of itself to the payment debt, then pays
#     the accumulated debt, then repays used emergency credit (ending it when fully
#     repaid), and the rest goes to the meter balance; in credit mode all of it goes
#     to the balance;
#   - a debt reaching zero by recovery raises Debt Collection Completed
#     (81A7 / 81A8 / 81A9); a Command zeroing a debt does not;
#   - an injected fault makes component / specification `at` of the next Command
#     fail with its status; everything after it is not executed. A Command with
#     fewer parts still consumes it. Statuses per protocol: FAULTS below.
from micropython import const

import onecall
import usecases

MAX_AMOUNT = 0x7FFFFFFF   # registers and balances are int32 on the wire
MIN_AMOUNT = -0x80000000
MAX_CLOCK = 0xFFFFFFFF
PCT_FULL = 10000          # 100.00 %

REGISTERS = ("time1", "time2", "payment")
RECOVERY = ("time1_recovery", "time2_recovery", "payment_recovery")
PERIODS = (3600, 86400)   # recovery period (s) by freq: hourly, daily

# fault status -> (ZCL status, DLMS result). ZCL has no "other reason": FAILURE.
FAULTS = {"hardware": (0xC0, 0x01), "failure": (0x01, 0x02), "other": (0x01, 0xFA)}


# The use cases of esme.py / gsme.py, then from _PAY on those of esmepay.py /
# gsmepay.py (SR 1.6 payment mode, SR 4.3 the prepayment registers read). One tuple,
# no new global: a board holds meter's globals for good.
_HANDLED = ("GCS04", "GCS04a", "GCS40b", "GCS06", "ECS07", "ECS07a", "ECS04b", "ECS09",
            "ECS02", "ECS03", "ECS19", "GCS02", "GCS03", "GCS14")
_PAY = const(8)


def execute(st, name, content, ctx=None):
    """Run use case `name` on its General-Signing content (GBZ or DLMS bytes),
    mutating st, and return the Response content. Raises FormatError with st
    unchanged when the content is malformed or not that use case's; a pending fault
    is consumed. The caller commits st or throws it away. ctx is what a read needs
    from the envelope, and must be given for one: (originator counter, originator
    hex, the envelope.Security whose seal() encrypts personal data for it)."""
    row = usecases.by_name(name)
    if row is None or name not in _HANDLED:
        raise ValueError("no handler for use case %s" % name)
    if row[2] != st["device"]:
        raise FormatError("%s is not a %s use case" % (name, st["device"]))
    # The handler and its codec are loaded for this Command and dropped after it
    # (loading them again takes about 0.1 ms on the unix port, far less than the
    # Command's signatures). The SR 1.6 and 4.3 ones have modules of their own, so
    # that each module's code in the heap is only what its use cases need.
    pay = _HANDLED.index(name) >= _PAY
    if row[2] == "gsme":
        handler = onecall.load("gsmepay", ("gbz",)) if pay else onecall.load("gsme", ("gbz",))
    else:
        handler = onecall.load("esmepay", ("dlms",)) if pay else onecall.load("esme", ("dlms",))
    return handler.execute(st, name, content, ctx)


def take_fault(st, proto):
    """Consume the pending fault: (at, status code for proto 0 ZCL / 1 DLMS) or None."""
    f = st.get("fault")
    st["fault"] = None
    if not f:
        return None
    return f["at"], FAULTS[f["status"]][proto]


# -- operations the handlers share ----------------------------------------------------

def set_debt(st, reg, value):
    """Set debt register reg (0 time1, 1 time2, 2 payment); False when out of range."""
    if not 0 <= value <= MAX_AMOUNT:
        return False
    st[REGISTERS[reg]] = value
    return True


def activate_emergency_credit(st):
    """Activate emergency credit if it is on offer; True iff active afterwards."""
    s = st["settings"]
    limit = st["ec_limit"]
    if not st["ec_active"] and st["mode"] == "prepayment" \
            and st["balance"] <= st["ec_threshold"] \
            and (limit > 0 or s["ec_zero_limit"] == "activate"):
        st["ec_active"] = True
        paid = 0
        if s["ec_amount"] == "limit-less-debt":
            paid = min(st["acc_debt"], limit)
            st["acc_debt"] -= paid
        st["ec_balance"] = limit - paid
    return st["ec_active"]


def is_title(text):
    """Whether text is a system title (EUI-64) as the state keeps them: 16 lowercase
    hex digits (bytes.fromhex alone would let spaces through)."""
    return len(text) == 16 and all(c in "0123456789abcdef" for c in text)


def money(st, v):
    """A money value as the meter accepts it: on a whole_pence meter (S1SR 18.16,
    18.27) truncated towards zero to whole pence, 1000 units."""
    if st["settings"]["whole_pence"]:
        return v // 1000 * 1000 if v >= 0 else -(-v // 1000 * 1000)
    return v


# -- working copies, the diagnostics --------------------------------------------------

# Parts of the state that nothing changes in place (provisioning puts new ones in):
# a working copy shares them, which spares a Command a copy of the trust anchors.
_SHARED = ("anchors", "keys", "pub", "settings")


def copy(v, top=True):
    """A copy of a state (dicts and lists of numbers, strings, booleans and None) for
    a Command or diagnostic to work on: deep, except the _SHARED parts, which are
    only ever replaced whole. Cheaper than a JSON round trip: no text is built, and
    the strings (the keys in hex) are shared, not copied."""
    if type(v) is list:
        return [copy(x, False) for x in v]
    if type(v) is not dict:
        return v
    v = dict(v)
    for k in v:
        x = v[k]
        if (type(x) is dict or type(x) is list) and not (top and k in _SHARED):
            v[k] = copy(x, False)
    return v


def __getattr__(name):
    # set_state, inject_fault: meterset; new_state, advance, topup, registers:
    # meterdiag. Loaded for the call and then dropped, so their code holds no heap
    # between diagnostics.
    m = "meterset" if name in ("set_state", "inject_fault") else "meterdiag"
    return getattr(onecall.load(m), name)


def bad(table, i, *args):
    """The FormatError with text i of errtext.py's `table`, formatted with args:
    the texts are loaded only when there is an error to name."""
    return FormatError(onecall.load("errtext").text(table, i, args))


class FormatError(Exception):
    """Content that is malformed or does not match the use case; raised before any
    state change."""
