# The GSME side of SR 1.6 and 4.3 (NOTES.md section 7): payment mode and the
# prepayment registers read. Loaded for one Command (meter.execute) with gbz.py,
# like gsme.py.
#
# GCS02 / GCS03 Set GSME Payment Mode to Credit / Prepayment (NOTES.md section 7): one
# GBZ component, Prepayment cluster Change Payment Mode (command 06), little-endian:
#   provider id u32 | issuer event id u32 | implementation date-time u32 (UTC seconds
#   since 2000-01-01; 0 = now) | proposed payment control configuration bitmap16 |
#   cut off value i32
# Bit 1 of the configuration (Prepayment Enabled) is the mode asked for: clear for
# GCS02, set for GCS03. The meter keeps the payment mode; the other bits and the cut
# off value are checked and acknowledged but not modelled (no supply contactor here).
# Only immediate changes: an implementation time after the meter clock (a future-dated
# change) is refused as content this meter does not support.
# The answer is Change Payment Mode Response (command 02, frame control 19): friendly
# credit (bitmap8), friendly credit calendar id (u32), emergency credit limit and
# threshold (u32; a threshold below zero is reported as 0) from the meter's state; a
# failure answers a Default Response with its status (RTDS GCS02 / GCS03 ERROR).
#
# GCS14 Read GSME Prepayment Registers (NOTES.md section 7): GBZ Read Attributes
# (profile-wide, frame control 00, command 00) on the Price cluster 0700 and the
# Prepayment cluster 0705, each at most once, attribute ids little-endian. Each
# component answers a Read Attributes Response (frame control 08, command 01) with
# (attribute, status, type, value) in the order asked; an attribute this meter does not
# have answers UNSUPPORTED_ATTRIBUTE (86) alone. The Prepayment cluster's answer is
# personal data: its component carries control bit 02 (encrypted), an additional
# header (control 00, frame counter 00), the ZCL header, a two-byte ciphered length and
# the payload sealed for the Supplier (seal.py). The Price cluster's trailing
# digits (5) and currency (826, GBP) are the meter's money units, fixed.
# An injected fault fails its component with a Default Response, and the rest are not
# executed (command FF, FAILURE), as in the other GSME use cases.
import struct
from micropython import const

import gbz
import meter

_CMD_CHANGE_PAYMENT_MODE = const(0x06)
_CMD_RESPONSE = const(0x02)
_FC_CLUSTER_RESPONSE = const(0x19)   # cluster-specific, server to client, no default response
_PREPAYMENT_ENABLED = const(0x0002)

# What is wrong with content that is not this use case: texts in errtext.MODE.
_E_MODE = const(1)
_E_DATE = const(2)
_E_ONE = const(3)
_E_LENGTH = const(4)


def _mode(st, name, content):
    # GCS02 / GCS03 on GBZ content -> the GBZ Response content.
    comps = gbz.components(content)
    c = comps[0]
    if len(comps) != 1 or c[1] != gbz.CLUSTER_PREPAYMENT or c[3] != _CMD_CHANGE_PAYMENT_MODE:
        raise meter.bad("MODE", _E_ONE, name)
    if len(c[4]) != 18:
        raise meter.bad("MODE", _E_LENGTH, len(c[4]))
    _, _, when, config, _ = struct.unpack_from("<IIIHi", c[4], 0)
    prepay = name == "GCS03"
    if bool(config & _PREPAYMENT_ENABLED) != prepay:
        raise meter.bad("MODE", _E_MODE, name)
    if when > st["clock"]:
        raise meter.bad("MODE", _E_DATE)
    fault = meter.take_fault(st, 0)
    if fault and fault[0] == 1:
        return gbz.default_responses(comps, [(c[3], fault[1])])
    st["mode"] = "prepayment" if prepay else "credit"
    out = bytearray(b"\x01\x09\x01") + struct.pack(
        ">BHHBBB", c[0], c[1], 16, _FC_CLUSTER_RESPONSE, c[2], _CMD_RESPONSE)
    out += struct.pack("<BIII", st.get("friendly_credit", 0), st.get("friendly_calendar", 0),
                       st["ec_limit"], max(st["ec_threshold"], 0))
    return bytes(out)


_CLUSTER_PRICE = const(0x0700)
_CMD_READ_RESPONSE = const(0x01)
_DEFAULT_RESPONSE = const(0x0B)
_UNSUPPORTED = const(0x86)
_CTRL_ENCRYPTED = const(0x02)
_MAX_ATTRIBUTES = const(16)

# attribute -> (ZCL type, value): the value a constant or a state key (int32 / uint32)
_PRICE = {0x0617: (0x18, 0x50),    # price trailing digit (5), bitmap8
          0x0616: (0x21, 826)}     # currency, uint16
_PREPAYMENT = {0x0001: (0x2B, "balance"),      # credit remaining
               0x0002: (0x2B, "ec_balance"),   # emergency credit remaining
               0x0005: (0x2B, "acc_debt"),     # accumulated debt
               0x0211: (0x23, "time1"),        # debt amount 1
               0x0221: (0x23, "time2"),        # debt amount 2
               0x0231: (0x23, "payment")}      # debt amount 3
_FORMAT = {0x18: "<B", 0x21: "<H", 0x2B: "<i", 0x23: "<I"}

_E_NOT_READ = const(0)   # errtext.READ


def _answer(st, table, p):
    # The Read Attributes Response payload for the attribute ids in payload p.
    out = bytearray()
    for i in range(0, len(p), 2):
        a = p[i] | p[i + 1] << 8
        t = table.get(a)
        if t is None:
            out += struct.pack("<HB", a, _UNSUPPORTED)
        else:
            v = t[1]
            out += struct.pack("<HBB", a, 0, t[0]) + struct.pack(
                _FORMAT[t[0]], st[v] if type(v) is str else v)
    return out


def _read(st, name, content, ctx):
    # GCS14 on GBZ content -> the GBZ Response content.
    comps = gbz.components(content, gbz.FC_PROFILE)
    seen = []
    for c in comps:
        n = len(c[4])
        if c[3] != 0 or c[1] not in (_CLUSTER_PRICE, gbz.CLUSTER_PREPAYMENT) or c[1] in seen \
                or n & 1 or not 0 < n <= 2 * _MAX_ATTRIBUTES:
            raise meter.bad("READ", _E_NOT_READ, name)
        seen.append(c[1])
    fault = meter.take_fault(st, 0)
    out = bytearray(b"\x01\x09")
    out.append(len(comps))
    status = gbz.SUCCESS
    for i in range(len(comps)):
        ctrl, cluster, seq, _, p = comps[i]
        if status != gbz.SUCCESS or fault and fault[0] == i + 1:
            # this one fails (the fault's status) or is not executed (FF, FAILURE)
            answered = gbz.NOT_EXECUTED_CMD if status != gbz.SUCCESS else 0
            status = fault[1] if status == gbz.SUCCESS else gbz.FAILURE
            out += struct.pack(">BHHBBBBB", ctrl, cluster, 5, gbz.FC_RESPONSE, seq,
                               _DEFAULT_RESPONSE, answered, status)
            continue
        if cluster == _CLUSTER_PRICE:
            body = _answer(st, _PRICE, p)
            out += struct.pack(">BHHBBB", ctrl, cluster, 3 + len(body), gbz.FC_RESPONSE, seq,
                               _CMD_READ_RESPONSE) + body
        else:
            body = ctx[2].seal(st, ctx[1], ctx[0], _answer(st, _PREPAYMENT, p))
            out += struct.pack(">BHHBBBBBH", ctrl | _CTRL_ENCRYPTED, cluster, 7 + len(body), 0,
                               0, gbz.FC_RESPONSE, seq, _CMD_READ_RESPONSE, len(body)) + body
    return bytes(out)


def execute(st, name, content, ctx=None):
    """Run GCS02, GCS03 or GCS14 on GBZ content; return the GBZ Response content.
    GCS14 needs ctx = (originator counter, originator hex, envelope.Security)."""
    if name == "GCS14":
        return _read(st, name, content, ctx)
    return _mode(st, name, content)
