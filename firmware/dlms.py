# DLMS COSEM content of ESME Commands: Access-Request and Access-Response with the
# A-XDR types GBCS uses, NOTES.md section 4.
#
#   Access-Request:  D9 | invoke id (4) | date-time 00 | n | specs | n | data
#   spec:            01 get / 02 set / 03 action | class id (2) | OBIS (6) | id (1)
#   Access-Response: DA | invoke id (4) | 00 | 00 | n | data | n | (kind, result)
#
# Parsing returns memoryview slices of the caller's buffer (no copies); anything that
# lies (lengths, counts, unknown tags, trailing bytes) is a FormatError.
import struct
from micropython import const

import gbcsmac
import meter
from meter import FormatError

_ACCESS_REQUEST = const(0xD9)
_ACCESS_RESPONSE = const(0xDA)
_MAX_SPECS = const(32)
_MAX_DEPTH = const(6)     # ECS19 protection parameters nest six deep

_GET = const(1)
SET = const(2)
ACTION = const(3)

# A-XDR tags
_NULL = const(0x00)
_ARRAY = const(0x01)
_STRUCTURE = const(0x02)
_BOOLEAN = const(0x03)
_BIT_STRING = const(0x04)
DOUBLE_LONG = const(0x05)
DOUBLE_LONG_UNSIGNED = const(0x06)
OCTET_STRING = const(0x09)
INTEGER = const(0x0F)
_LONG = const(0x10)
_UNSIGNED = const(0x11)
LONG_UNSIGNED = const(0x12)
_ENUM = const(0x16)

# What is wrong with malformed content: texts in errtext.DLMS, loaded only to raise
# (meter.bad).
_E_LENGTH_TRUNCATED = const(0)
_E_LENGTH_ENCODING = const(1)
_E_DATA_TRUNCATED = const(2)
_E_DEPTH = const(3)
_E_TAG = const(4)
_E_NOT_REQUEST = const(5)
_E_DATE_TIME = const(6)
_E_COUNT = const(7)
_E_SPEC_TRUNCATED = const(8)
_E_KIND = const(9)
_E_DATA_COUNT = const(10)
_E_TRAILING = const(11)
_E_EXPECTED = const(12)
_E_CHARGE_TAG = const(13)
_E_CHARGE_SHAPE = const(14)
_E_CHARGE_LENGTH = const(15)


# fixed-size tags: tag -> struct format of the value
_FIXED = {_BOOLEAN: ">B", DOUBLE_LONG: ">i", DOUBLE_LONG_UNSIGNED: ">I", INTEGER: ">b",
          _LONG: ">h", _UNSIGNED: ">B", LONG_UNSIGNED: ">H", _ENUM: ">B"}

# results (data-access-result and action-result share these numbers)
SUCCESS = const(0x00)
_HARDWARE_FAULT = const(0x01)
_TEMPORARY_FAILURE = const(0x02)
OTHER_REASON = const(0xFA)


def _length(b, pos, end):
    # A-XDR / DER-style length (gbcsmac's reader). No byte left is "truncated"; a
    # first byte 80 or 83..FF, or 81 / 82 cut short, is "bad length encoding".
    if pos >= end:
        raise meter.bad("DLMS", _E_LENGTH_TRUNCATED)
    try:
        return gbcsmac.der_len_at(b, pos, end)
    except ValueError:
        raise meter.bad("DLMS", _E_LENGTH_ENCODING)


def skip(b, pos, end, depth=0):
    """End offset of the A-XDR element at b[pos]; FormatError if it does not fit."""
    if pos >= end:
        raise meter.bad("DLMS", _E_DATA_TRUNCATED)
    tag = b[pos]
    pos += 1
    if tag == _NULL:
        return pos
    if tag == _ARRAY or tag == _STRUCTURE:
        count, pos = _length(b, pos, end)
        if depth >= _MAX_DEPTH or count > end - pos:
            raise meter.bad("DLMS", _E_DEPTH)
        for _ in range(count):
            pos = skip(b, pos, end, depth + 1)
        return pos
    if tag == OCTET_STRING:
        ln, pos = _length(b, pos, end)
    elif tag == _BIT_STRING:
        ln, pos = _length(b, pos, end)   # a count of bits
        ln = (ln + 7) >> 3
    else:
        fmt = _FIXED.get(tag)
        if fmt is None:
            raise meter.bad("DLMS", _E_TAG, tag)
        ln = struct.calcsize(fmt)
    if pos + ln > end:
        raise meter.bad("DLMS", _E_DATA_TRUNCATED)
    return pos + ln


def request(content):
    """Parse an Access-Request -> (invoke id memoryview (4), specs, data): specs a
    list of (kind, class id, OBIS memoryview (6), attribute or method id), data a
    list of memoryviews, one A-XDR element per spec."""
    b = memoryview(content)
    n = len(b)
    if n < 7 or b[0] != _ACCESS_REQUEST:
        raise meter.bad("DLMS", _E_NOT_REQUEST)
    if b[5] != _NULL:
        raise meter.bad("DLMS", _E_DATE_TIME)
    count, pos = _length(b, 6, n)
    if not 0 < count <= _MAX_SPECS:
        raise meter.bad("DLMS", _E_COUNT, count)
    specs = []
    for i in range(count):
        if pos + 10 > n:
            raise meter.bad("DLMS", _E_SPEC_TRUNCATED, i + 1)
        kind = b[pos]
        if kind < _GET or kind > ACTION:
            raise meter.bad("DLMS", _E_KIND, i + 1, kind)
        specs.append((kind, struct.unpack_from(">H", b, pos + 1)[0], b[pos + 3:pos + 9],
                      b[pos + 9]))
        pos += 10
    ndata, pos = _length(b, pos, n)
    if ndata != count:
        raise meter.bad("DLMS", _E_DATA_COUNT, ndata, count)
    data = []
    for _ in range(count):
        end = skip(b, pos, n)
        data.append(b[pos:end])
        pos = end
    if pos != n:
        raise meter.bad("DLMS", _E_TRAILING, n - pos)
    return b[1:5], specs, data


def value(v, tag):
    """The number in a one-element memoryview v, which must carry this fixed tag."""
    if v[0] != tag:
        raise meter.bad("DLMS", _E_EXPECTED, tag, v[0])
    return struct.unpack_from(_FIXED[tag], v, 1)[0]


# The shape of unit_charge, one A-XDR element at a time: structures and arrays with
# their element count, then the leaves (octet-strings of any length, numbers whose
# values are kept).
_UNIT_CHARGE = bytes((
    _STRUCTURE, 3,
    _STRUCTURE, 2, INTEGER, INTEGER,                 # scale, price scale
    _STRUCTURE, 3, LONG_UNSIGNED, OCTET_STRING, INTEGER,  # commodity: class, name, index
    _ARRAY, 1, _STRUCTURE, 2, OCTET_STRING, _LONG,  # one charge table entry: index, charge
))


def unit_charge(v):
    """Charge unit_charge with one charge table entry -> (commodity scale, price
    scale, charge per unit). v was checked by skip(), so only the shape is left."""
    got = []
    pos = 0
    shape = _UNIT_CHARGE
    i = 0
    while i < len(shape):
        tag = shape[i]
        if v[pos] != tag:
            raise meter.bad("DLMS", _E_CHARGE_TAG, tag, v[pos])
        if tag == _STRUCTURE or tag == _ARRAY:
            i += 1
            if v[pos + 1] != shape[i]:
                raise meter.bad("DLMS", _E_CHARGE_SHAPE)
            pos += 2
        elif tag == OCTET_STRING:
            ln, pos = _length(v, pos + 1, len(v))
            pos += ln
        else:
            fmt = _FIXED[tag]
            got.append(struct.unpack_from(fmt, v, pos + 1)[0])
            pos += 1 + struct.calcsize(fmt)
        i += 1
    if pos != len(v):
        raise meter.bad("DLMS", _E_CHARGE_LENGTH)
    return got[0], got[1], got[4]


def response(invoke, kinds, results):
    """Access-Response content: invoke id echoed, null data per spec, and for spec i
    (kinds[i], results[i])."""
    n = len(kinds)
    out = bytearray(9 + 3 * n)
    out[0] = _ACCESS_RESPONSE
    out[1:5] = invoke
    # out[5] date-time absent, out[6] access-request-specification absent: both 00
    out[7] = n
    # out[8:8+n] null data: already 00
    pos = 8 + n
    out[pos] = n
    pos += 1
    for i in range(n):
        out[pos] = kinds[i]
        out[pos + 1] = results[i]
        pos += 2
    return bytes(out)
