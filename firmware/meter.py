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
#   mode            "credit" or "prepayment"
#   clock           device clock, UTC seconds since 2000-01-01. By design it moves
#                   only through advance() (the advance / set diagnostics), never on
#                   its own, so every test is deterministic.
#   counters        {remote party system title hex: last accepted originator counter}
#   alert_ctr       the meter's own originator counter for Alerts
#   fault           pending injected fault {"at": n, "status": s} or None
#
# Any other key (the security layer keeps keys, anchors and its profile here) is
# preserved untouched.
#
# Interpretation choices, in one place (see also ../shared/gbcs/NOTES.md section 5):
#   - a reset (ECS07a / GCS04a) succeeds iff the register is zero afterwards, in
#     both payment modes, and leaves the recovery settings alone;
#   - emergency credit (ECS09 / GCS06) succeeds iff it is active afterwards: it is
#     activated in prepayment mode when ec_limit > 0 and balance <= ec_threshold,
#     and activating it makes ec_limit available as ec_balance;
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
import usecases

MAX_AMOUNT = 0x7FFFFFFF   # registers and balances are int32 on the wire
MIN_AMOUNT = -0x80000000
MAX_CLOCK = 0xFFFFFFFF
PCT_FULL = 10000          # 100.00 %

REGISTERS = ("time1", "time2", "payment")
RECOVERY = ("time1_recovery", "time2_recovery", "payment_recovery")
ALERT_DEBT_COLLECTED = (0x81A7, 0x81A8, 0x81A9)
PERIODS = (3600, 86400)   # by freq: hourly, daily

# fault status -> (ZCL status, DLMS result). ZCL has no "other reason": FAILURE.
FAULTS = {"hardware": (0xC0, 0x01), "failure": (0x01, 0x02), "other": (0x01, 0xFA)}
FAULT_MAX_AT = 255


def new_state(device, meter_id_hex):
    """A factory-fresh meter: credit mode, all registers and balances zero, an
    emergency credit of 5.00 GBP offered below a balance of 1.00 GBP."""
    if device not in ("esme", "gsme"):
        raise ValueError("device must be esme or gsme")
    mid = meter_id_hex.lower()
    if len(mid) != 16 or any(c not in "0123456789abcdef" for c in mid):
        raise ValueError("meter id must be 16 hex digits")
    return {
        "device": device, "id": mid,
        "time1": 0, "time2": 0, "payment": 0,
        "time1_recovery": _time_recovery(), "time2_recovery": _time_recovery(),
        "payment_recovery": {"pct": 0},
        "balance": 0, "ec_balance": 0, "ec_limit": 500000, "ec_threshold": 100000,
        "ec_active": False, "acc_debt": 0,
        "mode": "credit", "clock": 0,
        "counters": {}, "alert_ctr": 0, "fault": None,
    }


def _time_recovery():
    return {"rate": 0, "freq": 1, "start": 0, "coll": 0, "passive": 0}


def execute(st, name, content):
    """Run use case `name` on its General-Signing content (GBZ or DLMS bytes),
    mutating st, and return the Response content. Raises FormatError with st
    unchanged when the content is malformed or not that use case's; a pending fault
    is consumed. The caller commits st or throws it away."""
    row = usecases.by_name(name)
    if row is None or name not in _HANDLED:
        raise ValueError("no handler for use case %s" % name)
    if row[2] != st["device"]:
        raise FormatError("%s is not a %s use case" % (name, st["device"]))
    if row[2] == "gsme":
        import gsme as handler
    else:
        import esme as handler
    return handler.execute(st, name, content)


_HANDLED = ("GCS04", "GCS04a", "GCS40b", "GCS06", "ECS07", "ECS07a", "ECS04b", "ECS09")


def take_fault(st, proto):
    """Consume the pending fault: (at, status code for proto 0 ZCL / 1 DLMS) or None."""
    f = st.get("fault")
    st["fault"] = None
    if not f:
        return None
    return f["at"], FAULTS[f["status"]][proto]


def inject_fault(st, at, status):
    """Make component / specification `at` (1-based) of the next Command fail with
    status "hardware", "failure" or "other"."""
    if type(at) is not int or not 1 <= at <= FAULT_MAX_AT:
        raise ValueError("at must be a component number 1..%d" % FAULT_MAX_AT)
    if status not in FAULTS:
        raise ValueError("status must be hardware, failure or other")
    st["fault"] = {"at": at, "status": status}


# -- operations the handlers share ----------------------------------------------------

def set_debt(st, reg, value):
    """Set debt register reg (0 time1, 1 time2, 2 payment); False when out of range."""
    if not 0 <= value <= MAX_AMOUNT:
        return False
    st[REGISTERS[reg]] = value
    return True


def activate_emergency_credit(st):
    """Activate emergency credit if it is on offer; True iff active afterwards."""
    if not st["ec_active"] and st["mode"] == "prepayment" and st["ec_limit"] > 0 \
            and st["balance"] <= st["ec_threshold"]:
        st["ec_active"] = True
        st["ec_balance"] = st["ec_limit"]
    return st["ec_active"]


# -- local diagnostics -----------------------------------------------------------------

def _collect(st, reg, amount):
    # Recover `amount` of debt register reg from the meter balance.
    st[REGISTERS[reg]] -= amount
    avail = st["balance"] if st["balance"] > 0 else 0
    take = amount if amount < avail else avail
    st["balance"] -= take
    st["acc_debt"] = min(st["acc_debt"] + amount - take, MAX_AMOUNT)


def _instants(old, new, rec):
    # Number of collection instants t with old < t <= new and t >= start.
    period = PERIODS[rec["freq"]]
    offset = (rec["coll"] * 60) % period
    lo = old if old >= rec["start"] else rec["start"] - 1
    if new <= lo:
        return 0
    return (new - offset) // period - (lo - offset) // period


def advance(st, seconds):
    """Move the clock on; in prepayment mode recover the time-based debts due.
    Returns the alert codes raised (Debt Collection Completed)."""
    if type(seconds) is not int or seconds < 0 or st["clock"] + seconds > MAX_CLOCK:
        raise ValueError("seconds must be a whole number keeping the clock within 32 bits")
    old = st["clock"]
    new = old + seconds
    st["clock"] = new
    alerts = []
    if st["mode"] != "prepayment":
        return alerts
    for reg in (0, 1):
        rec = st[RECOVERY[reg]]
        debt = st[REGISTERS[reg]]
        if debt <= 0 or rec["rate"] <= 0:
            continue
        due = _instants(old, new, rec) * rec["rate"]
        if due <= 0:
            continue
        _collect(st, reg, due if due < debt else debt)
        if st[REGISTERS[reg]] == 0:
            alerts.append(ALERT_DEBT_COLLECTED[reg])
    return alerts


def topup(st, amount):
    """Apply a top-up (see the header for where it goes). Returns the alert codes
    raised."""
    if type(amount) is not int or not 0 < amount <= MAX_AMOUNT:
        raise ValueError("amount must be 1..%d (0.00001 GBP)" % MAX_AMOUNT)
    rest = amount
    alerts = []
    if st["mode"] == "prepayment":
        debt = st["payment"]
        share = amount * st["payment_recovery"]["pct"] // PCT_FULL
        share = share if share < debt else debt
        acc = min(rest - share, st["acc_debt"])
        ec = ec_used = 0
        if st["ec_active"]:
            ec_used = max(st["ec_limit"] - st["ec_balance"], 0)
            ec = min(rest - share - acc, ec_used)
        if st["balance"] + rest - share - acc - ec > MAX_AMOUNT:
            raise ValueError("the meter balance would overflow")
        if share:
            st["payment"] = debt - share
            if st["payment"] == 0:
                alerts.append(ALERT_DEBT_COLLECTED[2])
        st["acc_debt"] -= acc
        if st["ec_active"]:
            if ec == ec_used:
                st["ec_active"] = False
                st["ec_balance"] = 0
            else:
                st["ec_balance"] += ec
        rest -= share + acc + ec
    elif st["balance"] + rest > MAX_AMOUNT:
        raise ValueError("the meter balance would overflow")
    st["balance"] += rest
    return alerts


# field -> (low, high) for set_state; None means a special type
_SETTABLE = {
    "time1": (0, MAX_AMOUNT), "time2": (0, MAX_AMOUNT), "payment": (0, MAX_AMOUNT),
    "balance": (MIN_AMOUNT, MAX_AMOUNT), "ec_balance": (0, MAX_AMOUNT),
    "ec_limit": (0, MAX_AMOUNT), "ec_threshold": (MIN_AMOUNT, MAX_AMOUNT),
    "acc_debt": (0, MAX_AMOUNT), "clock": (0, MAX_CLOCK),
    "time1_rate": (0, MAX_AMOUNT), "time1_freq": (0, 1), "time1_start": (0, MAX_CLOCK),
    "time1_coll": (0, 1439),
    "time2_rate": (0, MAX_AMOUNT), "time2_freq": (0, 1), "time2_start": (0, MAX_CLOCK),
    "time2_coll": (0, 1439),
    "payment_pct": (0, PCT_FULL),
    "mode": None, "ec_active": None,
}


def set_state(st, fields):
    """Set test preconditions from {field: value}; all fields are checked first and a
    ValueError names the first bad one, with nothing changed."""
    for k, v in fields.items():
        rng = _SETTABLE.get(k)
        if k not in _SETTABLE:
            raise ValueError("unknown field %s (settable: %s)" % (k, ", ".join(sorted(_SETTABLE))))
        if k == "mode":
            if v not in ("credit", "prepayment"):
                raise ValueError("mode must be credit or prepayment")
        elif k == "ec_active":
            if type(v) is not bool:
                raise ValueError("ec_active must be true or false")
        elif type(v) is not int or not rng[0] <= v <= rng[1]:
            raise ValueError("%s must be a whole number %d..%d" % (k, rng[0], rng[1]))
    for k, v in fields.items():
        if k[:5] in ("time1", "time2") and "_" in k:
            st[k[:5] + "_recovery"][k[6:]] = v
        elif k == "payment_pct":
            st["payment_recovery"]["pct"] = v
        else:
            st[k] = v


_SHOWN = ("device", "id", "time1", "time2", "payment", "balance", "ec_balance",
          "ec_limit", "ec_threshold", "ec_active", "acc_debt", "mode", "clock",
          "alert_ctr", "fault")


def registers(st):
    """Everything a test may read, as a fresh dict (JSON-ready)."""
    out = {k: st[k] for k in _SHOWN}
    for k in RECOVERY:
        out[k] = dict(st[k])
    out["counters"] = dict(st["counters"])
    return out


class FormatError(Exception):
    """Content that is malformed or does not match the use case; raised before any
    state change."""
