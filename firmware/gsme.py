# GSME handlers: Prepayment cluster Commands carried in GBZ content.
#   GCS04  Manage Debt: Change Debt components, absolute or incremental per register
#   GCS04a Reset Debt Register: one Change Debt, amount 0, absolute (NOTES.md sec. 5)
#   GCS40b Reset Prepayment Mode Meter Balance on the GSME: one Credit Adjustment
#   GCS06  Activate Emergency Credit: one Select Available Emergency Credit
# Money values pass through meter.money (whole pence on a whole_pence profile).
# Every component answers a ZCL Default Response; once one fails, the rest are not
# executed and answer command FF, status FAILURE (RTDS GCS04 ERROR).
# This module is loaded for one Command at a time (meter.execute), so it is kept to
# two functions: its code is heap while it runs.
from micropython import const

import gbz
import meter

# What is wrong with content that is not this use case: texts in errtext.GSME.
_E_ONE_COMPONENT = const(0)
_E_NOT_COMPONENT = const(1)
_E_METHOD = const(2)
_E_NEGATIVE = const(3)
_E_RESET = const(4)

_COMMAND = {"GCS04": gbz.CMD_CHANGE_DEBT, "GCS04a": gbz.CMD_CHANGE_DEBT,
            "GCS40b": gbz.CMD_CREDIT_ADJUSTMENT, "GCS06": gbz.CMD_SELECT_EC}


def _change_debt(st, reset, d):
    # A Change Debt component: the register and its recovery settings, or for a reset
    # the register alone (success iff it is zero afterwards).
    _, amount, _, atype, start, coll, freq, rec, pct = d
    reg = atype >> 1
    if reset:
        meter.set_debt(st, reg, 0)
        return gbz.SUCCESS if st[meter.REGISTERS[reg]] == 0 else gbz.FAILURE
    amount = meter.money(st, amount)
    rec = meter.money(st, rec)
    if atype & 1:
        amount += st[meter.REGISTERS[reg]]
    if not meter.set_debt(st, reg, amount):
        return gbz.INVALID_VALUE
    r = st[meter.RECOVERY[reg]]
    if reg == 2:
        r["pct"] = pct
    else:
        r["rate"] = rec
        r["freq"] = freq
        r["start"] = start
        r["coll"] = coll
    return gbz.SUCCESS


def execute(st, name, content, ctx=None):
    """Run GSME use case name on GBZ content; return the GBZ Response content."""
    comps = gbz.components(content)
    want = _COMMAND[name]
    if name != "GCS04" and len(comps) != 1:
        raise meter.bad("GSME", _E_ONE_COMPONENT, name)
    # Decode and check every component against the use case; nothing runs yet.
    ops = []
    for c in comps:
        if c[1] != gbz.CLUSTER_PREPAYMENT or c[3] != want:
            raise meter.bad("GSME", _E_NOT_COMPONENT, c[1], c[3], name)
        if want == gbz.CMD_CHANGE_DEBT:
            d = gbz.change_debt(c[4])
            if d[2] != (d[3] >> 1 == 2):
                raise meter.bad("GSME", _E_METHOD)
            if d[3] & 1 == 0 and d[1] < 0:
                raise meter.bad("GSME", _E_NEGATIVE)
            if name == "GCS04a" and (d[1] or d[3] & 1 or any(d[4:])):
                raise meter.bad("GSME", _E_RESET)
        elif want == gbz.CMD_CREDIT_ADJUSTMENT:
            d = gbz.credit_adjustment(c[4])
        else:
            d = gbz.select_emergency_credit(c[4])
        ops.append(d)
    fault = meter.take_fault(st, 0)
    answers = []
    status = gbz.SUCCESS
    for i in range(len(ops)):
        if status != gbz.SUCCESS:
            answers.append((gbz.NOT_EXECUTED_CMD, gbz.FAILURE))
            continue
        d = ops[i]
        if fault and fault[0] == i + 1:
            status = fault[1]
        elif want == gbz.CMD_CHANGE_DEBT:
            status = _change_debt(st, name == "GCS04a", d)
        elif want == gbz.CMD_CREDIT_ADJUSTMENT:
            value = meter.money(st, d[3]) + (st["balance"] if d[2] == 0 else 0)
            if d[2] and st["settings"]["balance_adjust"] == "incremental-only":
                status = gbz.FAILURE   # an absolute adjustment, on a meter without them
            elif meter.MIN_AMOUNT <= value <= meter.MAX_AMOUNT:
                st["balance"] = value
            else:
                status = gbz.INVALID_VALUE
        elif not meter.activate_emergency_credit(st):
            status = gbz.FAILURE
        answers.append((comps[i][3], status))
    return gbz.default_responses(comps, answers)
