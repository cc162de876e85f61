# The meter outside GBCS: its factory state, what the local port's diagnostics do to
# it over time (clock, top-ups) and the register read-out; test preconditions and
# injected faults are in meterset.py, so setting a field does not load this code.
# The state and the rules are described in meter.py. None of this runs for a GBCS
# Command, so it is kept out of meter's code: meter loads this module when one of
# these names is asked for and drops it again, and a board running Commands holds
# none of it in its heap.
import onecall
from meter import (MAX_AMOUNT, MAX_CLOCK, PCT_FULL, PERIODS, RECOVERY, REGISTERS, is_title,
                   money)

ALERT_DEBT_COLLECTED = (0x81A7, 0x81A8, 0x81A9)


def new_state(device, meter_id_hex, profile="smets2", overrides=None):
    """A factory-fresh meter of a device profile (profiles.py, with overrides of its
    settings): credit mode, all registers and balances zero, an emergency credit of
    5.00 GBP offered below a balance of 1.00 GBP."""
    settings = onecall.load("profiles").settings(profile, overrides)
    if device not in ("esme", "gsme"):
        raise ValueError("device must be esme or gsme")
    mid = meter_id_hex.lower()
    if not is_title(mid):
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


_SHOWN = ("device", "id", "profile", "settings", "time1", "time2", "payment", "balance",
          "ec_balance", "ec_limit", "ec_threshold", "ec_active", "acc_debt", "mode",
          "clock", "alert_ctr", "fault")


def registers(st):
    """Everything a test may read, as a fresh dict (JSON-ready)."""
    out = {k: st[k] for k in _SHOWN}
    # absent until the set diagnostic sets them (meter.py): 0
    out["friendly_credit"] = st.get("friendly_credit", 0)
    out["friendly_calendar"] = st.get("friendly_calendar", 0)
    for k in RECOVERY:
        out[k] = dict(st[k])
    out["counters"] = dict(st["counters"])
    return out
