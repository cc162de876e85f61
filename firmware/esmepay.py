# The ESME side of SR 1.6 and 4.3 (NOTES.md section 7): payment mode and the
# prepayment registers read. Loaded for one Command (meter.execute) with dlms.py,
# like esme.py.
#
# ECS02 / ECS03 Set ESME Payment Mode to Credit / Prepayment (NOTES.md section 7): DLMS
# sets on Account (class 111) 0-1:19.0.0.255 attribute 2 account_mode_and_status
# (account mode 1 credit, 2 prepayment), 11 credit_charge_configuration and 13
# account_activation_time; ECS03 also sets the disablement threshold (class 9000
# 0-0:94.44.128.22 attribute 4) and its date-time (attribute 6).
# The meter keeps the payment mode; the other values are checked and acknowledged but
# not modelled (this stub has no supply contactor to disable and collects every debt
# whatever the credit-charge configuration says). Only immediate changes: a set
# date-time (activation time) must be "now" (date fields zero, as RTDS sends); a
# future-dated change is refused as content this meter does not support.
# Sets answer a data-access-result; once one fails the rest are not executed and
# answer other-reason (RTDS ECS02 / ECS03 ERROR).
#
# ECS19 Read ESME Prepayment Registers (NOTES.md section 7): one DLMS action on Data
# Protection (class 30) 0-0:43.2.1.255, method 1 get_protected_attributes, asking for
# the prepayment values object (Data, 0-0:94.44.34.30, attribute 2) authenticated and
# encrypted. The Response echoes the protection parameters with originator and
# recipient swapped, then the values as an octet string sealed for the Supplier
# (seal.py): a structure of six double-longs in the order of the MMC's
# ReadInstantaneousPrepayValuesRsp.
import struct
from micropython import const

import dlms
import gbcsmac
import meter

_CLASS_ACCOUNT = const(111)
_CLASS_GBCS = const(9000)
_OBIS_ACCOUNT = b"\x00\x01\x13\x00\x00\xff"     # 0-1:19.0.0.255
_OBIS_THRESHOLD = b"\x00\x00\x5e\x2c\x80\x16"   # 0-0:94.44.128.22

# What is wrong with content that is not this use case: texts in errtext.MODE.
_E_NOT_PART = const(0)
_E_MODE = const(1)
_E_DATE = const(2)

# (class, attribute) -> what its value must be: 0 mode, 1 configuration, 2 date-time,
# 3 threshold
_ATTRS = {(_CLASS_ACCOUNT, 2): 0, (_CLASS_ACCOUNT, 11): 1, (_CLASS_ACCOUNT, 13): 2,
          (_CLASS_GBCS, 4): 3, (_CLASS_GBCS, 6): 2}


def _check(name, s, v):
    # What spec s with value v does: True for the account mode, False for a value that
    # is only acknowledged; FormatError if it is not part of this use case.
    want = _ATTRS.get((s[1], s[3]))
    obis = _OBIS_ACCOUNT if s[1] == _CLASS_ACCOUNT else _OBIS_THRESHOLD
    if s[0] != dlms.SET or want is None or bytes(s[2]) != obis \
            or (s[1] == _CLASS_GBCS and name != "ECS03"):
        raise meter.bad("MODE", _E_NOT_PART, s[1], s[3], name)
    if want == 0:
        # structure {account_mode enum, account_status enum}
        if len(v) != 6 or bytes(v[:3]) != b"\x02\x02\x16" or v[4] != 0x16 \
                or v[3] != (2 if name == "ECS03" else 1):
            raise meter.bad("MODE", _E_MODE, name)
        return True
    if want == 1:
        # array of structure {credit reference, charge reference, collection bits}
        if v[0] != 0x01:
            raise meter.bad("MODE", _E_NOT_PART, s[1], s[3], name)
    elif want == 2:
        if len(v) != 14 or v[0] != dlms.OCTET_STRING or v[1] != 12:
            raise meter.bad("MODE", _E_NOT_PART, s[1], s[3], name)
        if any(v[2:6]):   # year, month, day: a date is a future-dated change
            raise meter.bad("MODE", _E_DATE)
    else:
        dlms.value(v, dlms.DOUBLE_LONG)
    return False


def _mode(st, name, content):
    # ECS02 / ECS03 on DLMS content -> the Access-Response content.
    invoke, specs, data = dlms.request(content)
    ops = []
    for i in range(len(specs)):
        ops.append(_check(name, specs[i], data[i]))
    if ops.count(True) != 1:
        raise meter.bad("MODE", _E_MODE, name)
    fault = meter.take_fault(st, 1)
    n = len(ops)
    kinds = bytearray(n)
    results = bytearray(n)
    r = dlms.SUCCESS
    for i in range(n):
        kinds[i] = dlms.SET
        if r != dlms.SUCCESS:
            r = dlms.OTHER_REASON
        elif fault and fault[0] == i + 1:
            r = fault[1]
        elif ops[i]:
            st["mode"] = "prepayment" if name == "ECS03" else "credit"
        results[i] = r
    return dlms.response(invoke, kinds, results)


_CLASS_DATA_PROTECTION = const(30)
_METHOD_GET_PROTECTED = const(1)
_OBIS = b"\x00\x00\x2b\x02\x01\xff"            # 0-0:43.2.1.255

# get_protected_attributes' object list: Data 0-0:94.44.34.30, attribute 2, data index
# 0, no restriction; then the protection parameters, authenticated and encrypted (2).
_OBJECTS = b"\x02\x02\x01\x01\x02\x05\x12\x00\x01\x09\x06\x00\x00\x5e\x2c\x22\x1e" \
           b"\x0f\x02\x12\x00\x00\x02\x02\x16\x00\x00"
_PROTECTION = b"\x01\x01\x02\x02\x16\x02\x02\x05\x09\x09\x04"
# after the transaction id, originator and recipient: no date-time; key info: agreed
# key (2), key parameters 02, no ciphered key
_KEY_INFO = b"\x09\x00\x02\x02\x16\x02\x02\x02\x09\x01\x02\x09\x00"

# the values, in the MMC's order, as state keys
_VALUES = ("ec_balance", "acc_debt", "payment", "time1", "time2", "balance")

_E_NOT_READ = const(0)   # errtext.READ


def _params(counter, a, b):
    # The protection parameters of a message from a to b for this counter: the
    # transaction id is 04 || the Command's originator counter.
    return _PROTECTION + struct.pack(">Q", counter) + b"\x09\x08" + a + b"\x09\x08" + b \
        + _KEY_INFO


def _read(st, name, content, ctx):
    # ECS19 on DLMS content -> the Access-Response content.
    counter, who, sec = ctx
    me = bytes.fromhex(st["id"])
    you = bytes.fromhex(who)
    invoke, specs, data = dlms.request(content)
    s = specs[0]   # dlms.request gives at least one
    if len(specs) != 1 or s[0] != dlms.ACTION or s[1] != _CLASS_DATA_PROTECTION \
            or bytes(s[2]) != _OBIS or s[3] != _METHOD_GET_PROTECTED \
            or bytes(data[0]) != _OBJECTS + _params(counter, you, me):
        raise meter.bad("READ", _E_NOT_READ, name)
    fault = meter.take_fault(st, 1)
    if fault and fault[0] == 1:
        # the action fails: no data, nothing sealed
        return dlms.response(invoke, b"\x03", bytes((fault[1],)))
    plain = bytearray(b"\x02\x01\x02\x06")
    for k in _VALUES:
        plain += struct.pack(">Bi", dlms.DOUBLE_LONG, st[k])
    sealed = sec.seal(st, who, counter, plain)
    return b"\xda" + bytes(invoke) + b"\x00\x00\x01\x02\x02" + _params(counter, me, you) \
        + b"\x09" + gbcsmac.der_len(len(sealed)) + sealed + b"\x01\x03\x00"


def execute(st, name, content, ctx=None):
    """Run ECS02, ECS03 or ECS19 on DLMS content; return the Access-Response content.
    ECS19 needs ctx = (originator counter, originator hex, envelope.Security)."""
    if name == "ECS19":
        return _read(st, name, content, ctx)
    return _mode(st, name, content)
