# The local port's test preconditions: set state fields, inject a fault. Loaded by
# meter (set_state, inject_fault) for one diagnostic and dropped again, like
# meterdiag; kept apart from it so the most used diagnostic loads the least code.
from meter import FAULTS, MAX_AMOUNT, MAX_CLOCK, MIN_AMOUNT, PCT_FULL, money

FAULT_MAX_AT = 255


def inject_fault(st, at, status):
    """Make component / specification `at` (1-based) of the next Command fail with
    status "hardware", "failure" or "other"."""
    if type(at) is not int or not 1 <= at <= FAULT_MAX_AT:
        raise ValueError("at must be a component number 1..%d" % FAULT_MAX_AT)
    if status not in FAULTS:
        raise ValueError("status must be hardware, failure or other")
    st["fault"] = {"at": at, "status": status}


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
    "friendly_credit": (0, 0xFF), "friendly_calendar": (0, MAX_CLOCK),
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
