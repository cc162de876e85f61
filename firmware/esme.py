# ESME handlers: DLMS Access-Request sets and actions on the Charge and Credit
# objects, as RTDS uses them (NOTES.md section 4):
#   ECS07  Manage Debt: set Charge attributes 6 unit_charge_passive (time debts),
#          8 period (time debts), 13 proportion (payment debt); actions method 2
#          activate_passive_unit_charge (time debts), 4 update_total_amount_remaining
#   ECS07a Reset Debt Register: one action, Charge method 5, double-long 0
#   ECS04b Reset Meter Balance: Credit method 2 set_amount_to_value
#   ECS09  Activate Emergency Credit: one action, emergency Credit method 3
# Money values pass through meter.money (whole pence on a whole_pence profile).
# Sets answer a data-access-result, actions an action-result, both with null data;
# once one fails the rest are not executed and answer other-reason (RTDS ERROR).
import struct
from micropython import const

import dlms
import meter

_CLASS_CREDIT = const(112)
_CLASS_CHARGE = const(113)
_OBIS_CREDIT = const(0x0000130A)   # 0-0:19.10.e.255, e 0 meter balance, 1 emergency, 2 acc. debt
_OBIS_CHARGE = const(0x00001314)   # 0-0:19.20.e.255, e 1 time debt 1, 2 time debt 2, 3 payment

_CREDIT_KEYS = ("balance", "ec_balance", "acc_debt")

# What is wrong with content that is not this use case: texts in errtext.ESME.
_E_OBJECT = const(0)
_E_RATE = const(1)
_E_ONE_ACTION = const(2)
_E_PERIOD = const(3)
_E_PROPORTION = const(4)
_E_ACTIVATE = const(5)
_E_RESET = const(6)
_E_CREDIT = const(7)
_E_INVOKE = const(8)
_E_NOT_PART = const(9)


def _object(spec):
    # (class id, OBIS) -> ("charge", register 0..2) or ("credit", 0..2); else FormatError
    ab_cd, ef = struct.unpack_from(">IH", spec[2], 0)
    e = ef >> 8
    if ef & 0xFF == 0xFF:
        if spec[1] == _CLASS_CHARGE and ab_cd == _OBIS_CHARGE and 1 <= e <= 3:
            return 0, e - 1
        if spec[1] == _CLASS_CREDIT and ab_cd == _OBIS_CREDIT and e <= 2:
            return 1, e
    raise meter.bad("ESME", _E_OBJECT, spec[1])


def _rate(v):
    # unit_charge -> recovery amount per period in 0.00001 GBP
    _, price_scale, per_unit = dlms.unit_charge(v)
    exp = price_scale + 5
    if per_unit < 0 or exp < 0 or exp > 9:
        raise meter.bad("ESME", _E_RATE)
    rate = per_unit * 10 ** exp
    if rate > meter.MAX_AMOUNT:
        raise meter.bad("ESME", _E_RATE)
    return rate


# What a checked specification does (the first item of a planned operation).
_PASSIVE = const(0)      # set unit_charge_passive: recovery rate waiting to be activated
_PERIOD_SET = const(1)   # set period: recovery frequency
_PROPORTION = const(2)   # set proportion: payment recovery percentage
_ACTIVATE = const(3)     # activate_passive_unit_charge: the waiting rate applies
_UPDATE = const(4)       # update_total_amount_remaining: add to the debt register
_RESET = const(5)        # a reset: the debt register to zero
_CREDIT = const(6)       # Credit set_amount_to_value
_INVOKE = const(7)       # emergency Credit invoke_credit


def _plan(name, specs, data):
    # Decode and check every specification against the use case; nothing runs yet.
    if name in ("ECS07a", "ECS09") and len(specs) != 1:
        raise meter.bad("ESME", _E_ONE_ACTION, name)
    ops = []
    for i in range(len(specs)):
        s = specs[i]
        v = data[i]
        kind, sid = s[0], s[3]
        obj, idx = _object(s)
        op = None
        if name == "ECS07" and obj == 0:
            if kind == dlms.SET:
                if sid == 6 and idx < 2:
                    op = (_PASSIVE, idx, _rate(v))
                elif sid == 8 and idx < 2:
                    p = dlms.value(v, dlms.DOUBLE_LONG_UNSIGNED)
                    if p not in meter.PERIODS:   # Charge period (s) by freq
                        raise meter.bad("ESME", _E_PERIOD)
                    op = (_PERIOD_SET, idx, meter.PERIODS.index(p))
                elif sid == 13 and idx == 2:
                    p = dlms.value(v, dlms.LONG_UNSIGNED)
                    if p > meter.PCT_FULL:
                        raise meter.bad("ESME", _E_PROPORTION)
                    op = (_PROPORTION, idx, p)
            elif kind == dlms.ACTION:
                if sid == 2 and idx < 2:
                    if dlms.value(v, dlms.INTEGER) != 0:
                        raise meter.bad("ESME", _E_ACTIVATE)
                    op = (_ACTIVATE, idx, 0)
                elif sid == 4:
                    op = (_UPDATE, idx, dlms.value(v, dlms.DOUBLE_LONG))
        elif name == "ECS07a" and obj == 0 and kind == dlms.ACTION and sid == 5:
            if dlms.value(v, dlms.DOUBLE_LONG) != 0:
                raise meter.bad("ESME", _E_RESET)
            op = (_RESET, idx, 0)
        elif name == "ECS04b" and obj == 1 and kind == dlms.ACTION and sid == 2:
            x = dlms.value(v, dlms.DOUBLE_LONG)
            if idx and x < 0:
                raise meter.bad("ESME", _E_CREDIT)
            op = (_CREDIT, idx, x)
        elif name == "ECS09" and obj == 1 and idx == 1 and kind == dlms.ACTION and sid == 3:
            if dlms.value(v, dlms.INTEGER) != 0:
                raise meter.bad("ESME", _E_INVOKE)
            op = (_INVOKE, idx, 0)
        if op is None:
            raise meter.bad("ESME", _E_NOT_PART, i + 1, name)
        ops.append(op)
    return ops


def _run(st, op, idx, x):
    # One planned operation on debt register / credit idx; True if it succeeded.
    if op == _UPDATE:
        return meter.set_debt(st, idx, st[meter.REGISTERS[idx]] + meter.money(st, x))
    if op == _RESET:
        # Recovery settings stay as they are; success iff the register is zero after.
        meter.set_debt(st, idx, 0)
        return st[meter.REGISTERS[idx]] == 0
    if op == _CREDIT:
        # set_amount_to_value is absolute: not on a meter taking increments only
        if st["settings"]["balance_adjust"] == "incremental-only":
            return False
        st[_CREDIT_KEYS[idx]] = meter.money(st, x)
    elif op == _INVOKE:
        return meter.activate_emergency_credit(st)
    elif op == _ACTIVATE:
        r = st[meter.RECOVERY[idx]]
        r["rate"] = r["passive"]
    else:
        if op == _PASSIVE:
            x = meter.money(st, x)
        st[meter.RECOVERY[idx]][("passive", "freq", "pct")[op]] = x
    return True


def execute(st, name, content, ctx=None):
    """Run ESME use case name on DLMS content; return the Access-Response content."""
    invoke, specs, data = dlms.request(content)
    ops = _plan(name, specs, data)
    fault = meter.take_fault(st, 1)
    n = len(ops)
    kinds = bytearray(n)
    results = bytearray(n)
    r = dlms.SUCCESS
    for i in range(n):
        kinds[i] = specs[i][0]
        if r != dlms.SUCCESS:
            r = dlms.OTHER_REASON
        elif fault and fault[0] == i + 1:
            r = fault[1]
        else:
            r = dlms.SUCCESS if _run(st, *ops[i]) else dlms.OTHER_REASON
        results[i] = r
    return dlms.response(invoke, kinds, results)
