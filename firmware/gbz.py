# GBZ (GBCS ZigBee) content: components carrying ZCL frames, NOTES.md section 3.
#
#   01 09 | component count | components
#   component: control (1) | cluster id (2, big-endian) | length (2) | ZCL frame
#   ZCL frame: frame control | sequence number | command id | payload (little-endian)
#
# Parsing returns memoryview slices of the caller's buffer (no copies); anything that
# lies (lengths, counts, flags, trailing bytes, values out of range) is a FormatError.
import struct
from micropython import const

import meter
from meter import FormatError

_PROFILE_HI = const(0x01)
_PROFILE_LO = const(0x09)
_MAX_COMPONENTS = const(8)
_CTRL_LAST = const(0x01)        # control byte of the last component; others carry 00
_FC_COMMAND = const(0x01)       # cluster-specific, client to server
FC_PROFILE = const(0x00)        # profile-wide (Read Attributes), client to server
FC_RESPONSE = const(0x08)       # profile-wide command, server to client
_CMD_DEFAULT_RESPONSE = const(0x0B)

CLUSTER_PREPAYMENT = const(0x0705)
CMD_SELECT_EC = const(0x00)
CMD_CHANGE_DEBT = const(0x02)
CMD_CREDIT_ADJUSTMENT = const(0x05)

# ZCL status codes
SUCCESS = const(0x00)
FAILURE = const(0x01)
INVALID_VALUE = const(0x87)
_HARDWARE_FAILURE = const(0xC0)
NOT_EXECUTED_CMD = const(0xFF)  # answered command id of components not executed

_MAX_COLL_MINUTES = const(1439)
_MAX_PERCENT = const(10000)     # 100.00 %

# What is wrong with malformed content: texts in errtext.GBZ, loaded only to raise
# (meter.bad).
_E_NOT_GBZ = const(0)
_E_COUNT = const(1)
_E_TRUNCATED = const(2)
_E_CONTROL = const(3)
_E_LENGTH = const(4)
_E_FRAME_CONTROL = const(5)
_E_TRAILING = const(6)
_E_DEBT_TRUNCATED = const(7)
_E_DEBT_LABEL = const(8)
_E_DEBT_RANGE = const(9)
_E_ADJUST_LENGTH = const(10)
_E_ADJUST_TYPE = const(11)
_E_EC_LENGTH = const(12)
_E_EC_DEVICE = const(13)


def components(content, fc=_FC_COMMAND):
    """Split GBZ content into a list of (control, cluster, seq, command, payload),
    payload a memoryview of the ZCL payload; every ZCL frame control must be fc
    (cluster-specific commands by default, FC_PROFILE for Read Attributes)."""
    b = memoryview(content)
    n = len(b)
    if n < 3 or b[0] != _PROFILE_HI or b[1] != _PROFILE_LO:
        raise meter.bad("GBZ", _E_NOT_GBZ)
    count = b[2]
    if not 0 < count <= _MAX_COMPONENTS:
        raise meter.bad("GBZ", _E_COUNT, count)
    out = []
    pos = 3
    for i in range(count):
        if pos + 5 > n:
            raise meter.bad("GBZ", _E_TRUNCATED, i + 1)
        ctrl, cluster, length = struct.unpack_from(">BHH", b, pos)
        if ctrl != (_CTRL_LAST if i == count - 1 else 0):
            raise meter.bad("GBZ", _E_CONTROL, i + 1, ctrl)
        pos += 5
        end = pos + length
        if length < 3 or end > n:
            raise meter.bad("GBZ", _E_LENGTH, i + 1, length)
        if b[pos] != fc:
            raise meter.bad("GBZ", _E_FRAME_CONTROL, i + 1, b[pos])
        out.append((ctrl, cluster, b[pos + 1], b[pos + 2], b[pos + 3:end]))
        pos = end
    if pos != n:
        raise meter.bad("GBZ", _E_TRAILING, n - pos)
    return out


def change_debt(p):
    """Prepayment Change Debt payload -> (issuer event id, amount, recovery method,
    amount type, start time, collection time, frequency, recovery amount,
    percentage)."""
    if len(p) < 5:
        raise meter.bad("GBZ", _E_DEBT_TRUNCATED)
    label = p[4]
    if len(p) != 5 + label + 19:
        raise meter.bad("GBZ", _E_DEBT_LABEL)
    issuer = struct.unpack_from("<I", p, 0)[0]
    amount, method, atype, start, coll, freq, rec, pct = \
        struct.unpack_from("<iBBIHBiH", p, 5 + label)
    if method > 1 or atype > 5 or freq > 1 or coll > _MAX_COLL_MINUTES \
            or rec < 0 or pct > _MAX_PERCENT:
        raise meter.bad("GBZ", _E_DEBT_RANGE)
    return issuer, amount, method, atype, start, coll, freq, rec, pct


def credit_adjustment(p):
    """Prepayment Credit Adjustment payload -> (issuer event id, start time, type
    (0 incremental, 1 absolute), value)."""
    if len(p) != 13:
        raise meter.bad("GBZ", _E_ADJUST_LENGTH, len(p))
    v = struct.unpack_from("<IIBi", p, 0)
    if v[2] > 1:
        raise meter.bad("GBZ", _E_ADJUST_TYPE, v[2])
    return v


def select_emergency_credit(p):
    """Select Available Emergency Credit payload -> (command issue time,
    originating device (0 ESI, 1 meter, 2 IHD))."""
    if len(p) != 5:
        raise meter.bad("GBZ", _E_EC_LENGTH, len(p))
    v = struct.unpack_from("<IB", p, 0)
    if v[1] > 2:
        raise meter.bad("GBZ", _E_EC_DEVICE, v[1])
    return v


def default_responses(comps, answers):
    """GBZ Response content: one ZCL Default Response per component of comps (as
    returned by components()), answers a list of (command id answered, status)."""
    n = len(comps)
    out = bytearray(3 + 10 * n)
    out[0] = _PROFILE_HI
    out[1] = _PROFILE_LO
    out[2] = n
    pos = 3
    for i in range(n):
        c = comps[i]
        a = answers[i]
        struct.pack_into(">BHHBBBBB", out, pos, c[0], c[1], 5, FC_RESPONSE, c[2],
                         _CMD_DEFAULT_RESPONSE, a[0], a[1])
        pos += 10
    return bytes(out)
