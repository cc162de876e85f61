# GSME handlers: Prepayment cluster Commands carried in GBZ content.
#   GCS04  Manage Debt: Change Debt components, absolute or incremental per register
#   GCS04a Reset Debt Register: one Change Debt, amount 0, absolute (NOTES.md sec. 5)
#   GCS40b Adjust Meter Balance: one Credit Adjustment
#   GCS06  Activate Emergency Credit: one Select Available Emergency Credit
# Every component answers a ZCL Default Response; once one fails, the rest are not
# executed and answer command FF, status FAILURE (RTDS GCS04 ERROR).
import gbz
import meter
from gbz import FormatError

_COMMAND = {"GCS04": gbz.CMD_CHANGE_DEBT, "GCS04a": gbz.CMD_CHANGE_DEBT,
            "GCS40b": gbz.CMD_CREDIT_ADJUSTMENT, "GCS06": gbz.CMD_SELECT_EC}


def _plan(name, comps):
    # Decode and check every component against the use case; nothing runs yet.
    want = _COMMAND[name]
    if name != "GCS04" and len(comps) != 1:
        raise FormatError("%s takes exactly one component" % name)
    ops = []
    for c in comps:
        if c[1] != gbz.CLUSTER_PREPAYMENT or c[3] != want:
            raise FormatError("component %04x/%02x is not %s" % (c[1], c[3], name))
        if want == gbz.CMD_CHANGE_DEBT:
            d = gbz.change_debt(c[4])
            reg = d[3] >> 1
            if d[2] != (reg == 2):
                raise FormatError("recovery method does not match the debt register")
            if d[3] & 1 == 0 and d[1] < 0:
                raise FormatError("absolute debt amount below zero")
            if name == "GCS04a" and (d[1] or d[3] & 1 or any(d[4:])):
                raise FormatError("a reset takes amount 0, absolute type, recovery fields 0")
            ops.append((_reset if name == "GCS04a" else _change_debt, d))
        elif want == gbz.CMD_CREDIT_ADJUSTMENT:
            ops.append((_credit_adjustment, gbz.credit_adjustment(c[4])))
        else:
            ops.append((_select_ec, gbz.select_emergency_credit(c[4])))
    return ops


def _change_debt(st, d):
    _, amount, _, atype, start, coll, freq, rec, pct = d
    reg = atype >> 1
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


def _reset(st, d):
    # Recovery settings stay as they are; success iff the register is zero after.
    reg = d[3] >> 1
    meter.set_debt(st, reg, 0)
    return gbz.SUCCESS if st[meter.REGISTERS[reg]] == 0 else gbz.FAILURE


def _credit_adjustment(st, d):
    value = d[3] + (st["balance"] if d[2] == 0 else 0)
    if not meter.MIN_AMOUNT <= value <= meter.MAX_AMOUNT:
        return gbz.INVALID_VALUE
    st["balance"] = value
    return gbz.SUCCESS


def _select_ec(st, d):
    return gbz.SUCCESS if meter.activate_emergency_credit(st) else gbz.FAILURE


def execute(st, name, content):
    """Run GSME use case name on GBZ content; return the GBZ Response content."""
    comps = gbz.components(content)
    ops = _plan(name, comps)
    fault = meter.take_fault(st, 0)
    answers = []
    failed = False
    for i in range(len(ops)):
        if failed:
            answers.append((gbz.NOT_EXECUTED_CMD, gbz.FAILURE))
            continue
        if fault and fault[0] == i + 1:
            status = fault[1]
        else:
            fn, d = ops[i]
            status = fn(st, d)
        answers.append((comps[i][3], status))
        failed = status != gbz.SUCCESS
    return gbz.default_responses(comps, answers)
