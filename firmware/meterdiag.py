# The meter outside GBCS: its factory state and what the local port's diagnostics do
# to it (clock, top-ups, test preconditions, injected faults).
# The state and the rules are described in meter.py. None of this runs for a GBCS
# Command, so it is kept out of meter's code: meter loads this module when one of
# these names is asked for and drops it again, and a board running Commands holds
# none of it in its heap.
import sys

from meter import (FAULTS, MAX_AMOUNT, MAX_CLOCK, MIN_AMOUNT, PCT_FULL, RECOVERY, REGISTERS,
                   money)

ALERT_DEBT_COLLECTED = (0x81A7, 0x81A8, 0x81A9)
PERIODS = (3600, 86400)   # by freq: hourly, daily
FAULT_MAX_AT = 255


def new_state(device, meter_id_hex, profile="smets2", overrides=None):
    """A factory-fresh meter of a device profile (profiles.py, with overrides of its
    settings): credit mode, all registers and balances zero, an emergency credit of
    5.00 GBP offered below a balance of 1.00 GBP."""
    try:
        import profiles
        settings = profiles.settings(profile, overrides)
    finally:
        sys.modules.pop("profiles", None)
    if device not in ("esme", "gsme"):
        raise ValueError("device must be esme or gsme")
    mid = meter_id_hex.lower()
    if len(mid) != 16 or any(c not in "0123456789abcdef" for c in mid):
        raise ValueError("meter id must be 16 hex digits")
    return {
        "device": device, "id": mid, "profile": profile, "settings": settings,
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


def inject_fault(st, at, status):
    """Make component / specification `at` (1-based) of the next Command fail with
    status "hardware", "failure" or "other"."""
    if type(at) is not int or not 1 <= at <= FAULT_MAX_AT:
        raise ValueError("at must be a component number 1..%d" % FAULT_MAX_AT)
    if status not in FAULTS:
        raise ValueError("status must be hardware, failure or other")
    st["fault"] = {"at": at, "status": status}


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
    amount = money(st, amount)
    if amount == 0:
        raise ValueError("this meter takes whole pence: amount must be at least 1000")
    rest = amount
    alerts = []
    if st["mode"] == "prepayment":
        debt = st["payment"]
        share = money(st, amount * st["payment_recovery"]["pct"] // PCT_FULL)
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


# money fields: a whole_pence meter holds these in whole pence, set how they may be
_MONEY = ("time1", "time2", "payment", "balance", "ec_balance", "ec_limit", "ec_threshold",
          "acc_debt", "time1_rate", "time2_rate")


def set_state(st, fields):
    """Set test preconditions from {field: value}; all fields are checked first and a
    ValueError names the first bad one, with nothing changed. A whole_pence meter
    stores money fields truncated to whole pence, as it would hold them."""
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
        if k in _MONEY:
            v = money(st, v)
        if k[:5] in ("time1", "time2") and "_" in k:
            st[k[:5] + "_recovery"][k[6:]] = v
        elif k == "payment_pct":
            st["payment_recovery"]["pct"] = v
        else:
            st[k] = v
