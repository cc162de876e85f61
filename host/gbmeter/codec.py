"""GBCS wire formats on the host: MAC header, General-Signing APDU, GBZ / ZCL
Prepayment and DLMS COSEM (A-XDR) content.

The layouts are `construct` structs written to read like the tables of
../shared/gbcs/NOTES.md (sections 2-4). Every field is wrapped so that a message
that is cut short or malformed raises `DecodeError` naming the field and the
byte offset where it starts, counted from the start of the whole message.

Public API (used by the DCC-side helpers as well as `gbmeter parse`):

    build_apdu(cra, counter, originator, recipient, message_code, content,
               signature=None, date_time=None) -> bytes
    parse_apdu(data) -> dict
    build_message(apdu, mac) -> bytes            (MAC header + APDU + MAC)
    parse_message(data) -> dict                  (with or without MAC header)
    build_gbz(components, frame_control=0x01) -> bytes
    parse_gbz(content) -> dict
    change_debt(...), credit_adjustment(...), select_emergency_credit(...),
    default_response(...) -> ZCL payload bytes
    axdr(type_name, value) -> bytes, axdr_encode(node), axdr_decode(data)
    build_access_request(invoke_id, specs, data) -> bytes
    build_access_response(invoke_id, data, results) -> bytes
    decode_content(message_code, content) -> dict
    load_usecases() -> the firmware's usecases module
"""

import datetime
import struct as _struct

from construct import (
    Bytes, Const, ConstError, Construct, ConstructError, Enum, GreedyBytes, Int8ub, Int32ub,
    Int16ub, Int16ul, Int32sl, Int32ul, Int64ub, Prefixed, PrefixedArray, Renamed, Struct,
    Subconstruct,
)
from construct.core import BytesIOWithOffsets, stream_read, stream_write

# --- protocol numbers --------------------------------------------------------

CRA_COMMAND = 0x01
CRA_RESPONSE = 0x02
CRA_ALERT = 0x03
CRA_NAMES = {CRA_COMMAND: "command", CRA_RESPONSE: "response", CRA_ALERT: "alert"}

MSG_ALERT_CRITICAL = 0x1000
MSG_ALERT_NON_CRITICAL = 0x1001

SIGNATURE_LEN = 64
MAC_LEN = 12

CLUSTER_PREPAYMENT = 0x0705
ZCL_CMD_SELECT_EMERGENCY_CREDIT = 0x00
ZCL_CMD_CHANGE_DEBT = 0x02
ZCL_CMD_CREDIT_ADJUSTMENT = 0x05
ZCL_CMD_DEFAULT_RESPONSE = 0x0B
ZCL_FC_COMMAND = 0x01   # cluster-specific, client to server
ZCL_FC_RESPONSE = 0x08  # general (profile-wide), server to client

ZCL_STATUS = {
    0x00: "SUCCESS", 0x01: "FAILURE", 0x7E: "NOT_AUTHORIZED", 0x80: "MALFORMED_COMMAND",
    0x81: "UNSUP_CLUSTER_COMMAND", 0x85: "INVALID_FIELD", 0x87: "INVALID_VALUE",
    0xC0: "HARDWARE_FAILURE",
}

# debt amount type (NOTES 3): register and whether the amount is absolute
DEBT_AMOUNT_TYPES = {
    0: "time debt 1 absolute", 1: "time debt 1 incremental",
    2: "time debt 2 absolute", 3: "time debt 2 incremental",
    4: "payment debt absolute", 5: "payment debt incremental",
}

GBZ_PROFILE = b"\x01\x09"

TAG_GENERAL_SIGNING = 0xDF
TAG_GENERAL_CIPHERING = 0xDD
TAG_ACCESS_REQUEST = 0xD9
TAG_ACCESS_RESPONSE = 0xDA
TAG_DATA_NOTIFICATION = 0x0F

# DLMS COSEM objects of NOTES 4
CLASS_CREDIT = 112
CLASS_CHARGE = 113
OBIS_NAMES = {
    bytes([0, 0, 19, 20, 1, 255]): "time debt 1 charge",
    bytes([0, 0, 19, 20, 2, 255]): "time debt 2 charge",
    bytes([0, 0, 19, 20, 3, 255]): "payment debt charge",
    bytes([0, 0, 19, 10, 0, 255]): "meter balance credit",
    bytes([0, 0, 19, 10, 1, 255]): "emergency credit balance",
    bytes([0, 0, 19, 10, 2, 255]): "accumulated debt register",
}
CHARGE_ATTRIBUTES = {2: "total_amount_paid", 6: "unit_charge_passive", 8: "period",
                     12: "total_amount_remaining", 13: "proportion"}
CHARGE_METHODS = {1: "update_unit_charge", 2: "activate_passive_unit_charge", 3: "collect",
                  4: "update_total_amount_remaining", 5: "set_total_amount_remaining"}
CREDIT_METHODS = {2: "set_amount_to_value", 3: "invoke_credit"}
ACTION_RESULTS = {0x00: "success", 0x01: "hardware-fault", 0xFA: "other-reason"}
DATA_ACCESS_RESULTS = {0x00: "success", 0x01: "hardware-fault", 0xFA: "other-reason"}


class DecodeError(ValueError):
    """A message that does not follow the format: names the field and the byte offset
    (from the start of the whole message) where that field starts."""

    def __init__(self, offset, field, reason):
        self.offset = offset
        self.fields = [field] if field else []
        self.reason = reason
        super().__init__()

    @property
    def field(self):
        return "".join(f if f.startswith("[") or i == 0 else "." + f
                       for i, f in enumerate(self.fields))

    def __str__(self):
        where = f"{self.field} " if self.fields else ""
        return f"{where}at byte {self.offset}: {self.reason}"


# --- construct building blocks -------------------------------------------------

def _reason(e):
    """Plain words for a construct error (its own text carries a path header)."""
    text = str(e).splitlines()[-1] if str(e) else type(e).__name__
    if "stream read less than specified amount" in text:
        return "message is cut short here"
    return text


class _Located(Subconstruct):
    """Turns any parse failure of the field it wraps into a DecodeError that names
    the field and where it starts; nested fields add their names to the path."""

    def __init__(self, subcon, name):
        super().__init__(subcon)
        self.fieldname = name[:-len("_fixed")] if name.endswith("_fixed") else name

    def _parse(self, stream, context, path):
        start = stream.tell()
        try:
            return self.subcon._parsereport(stream, context, path)
        except DecodeError as e:
            e.fields.insert(0, self.fieldname)
            raise
        except ConstError:
            raise DecodeError(start, self.fieldname,
                              f"expected {self.subcon.value.hex(' ').upper()}") from None
        except ConstructError as e:
            raise DecodeError(start, self.fieldname, _reason(e)) from None


class _Item(Subconstruct):
    """An array element: adds its index to the path of a DecodeError."""

    def _parse(self, stream, context, path):
        try:
            return self.subcon._parsereport(stream, context, path)
        except DecodeError as e:
            e.fields.insert(0, f"[{context.get('_index')}]")
            raise


def items(countfield, subcon):
    """A count, then that many elements (GBZ components, DLMS sequences)."""
    return PrefixedArray(countfield, _Item(subcon))


def table(*fields):
    """A Struct whose named fields report their own offset and name on failure."""
    wrapped = []
    for f in fields:
        if isinstance(f, Renamed) and f.name:
            f = Renamed(_Located(f.subcon, f.name), newname=f.name)
        wrapped.append(f)
    return Struct(*wrapped)


class DerLength(Construct):
    """DER-style length: below 0x80 one byte, else 81 nn or 82 nn nn (NOTES 2.1).
    A-XDR quantities (array counts, octet-string lengths) use the same form."""

    def _parse(self, stream, context, path):
        first = stream_read(stream, 1, path)[0]
        if first < 0x80:
            return first
        if first == 0x81:
            return stream_read(stream, 1, path)[0]
        if first == 0x82:
            return int.from_bytes(stream_read(stream, 2, path), "big")
        raise DecodeError(stream.tell() - 1, None,
                          f"length byte {first:02X} is neither below 80, 81 nn nor 82 nn nn")

    def _build(self, obj, stream, context, path):
        enc = der_length(obj)
        stream_write(stream, enc, len(enc), path)
        return obj

    def _sizeof(self, context, path):
        raise ConstructError("DER length has a variable size", path=path)


def der_length(n):
    if n < 0:
        raise ValueError("length must not be negative")
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    if n < 0x10000:
        return b"\x82" + n.to_bytes(2, "big")
    raise ValueError(f"length {n} does not fit 82 nn nn")


def _build(con, obj, what):
    """con.build(obj), with construct's errors as ValueError in plain words."""
    try:
        return con.build(obj)
    except ConstructError as e:
        raise ValueError(f"cannot build {what}: {_reason(e)}") from None


def _stream(data, base=0):
    return BytesIOWithOffsets(bytes(data), None, base)


def _parse_exact(con, data, base=0, what="message"):
    """Parse `data` with `con` and insist every byte is used."""
    stream = _stream(data, base)
    try:
        obj = con.parse_stream(stream)
    except DecodeError:
        raise
    except ConstructError as e:
        raise DecodeError(stream.tell(), what, _reason(e)) from None
    end = stream.tell()
    if end != base + len(data):
        raise DecodeError(end, what, f"{base + len(data) - end} unexpected bytes after the end")
    return obj


def plain(obj):
    """A parsed Container as a plain dict/list tree, without construct's private keys
    and without fixed framing bytes (named `*_fixed` or `tag`)."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()
                if not k.startswith("_") and not k.endswith("_fixed") and k != "tag"}
    if isinstance(obj, list):
        return [plain(v) for v in obj]
    if isinstance(obj, str) and type(obj) is not str:   # construct EnumIntegerString
        return str(obj)
    return obj


# --- 2.2 MAC header (General-Ciphering, authentication only) -------------------

MAC_HEADER = table(
    "tag" / Const(bytes([TAG_GENERAL_CIPHERING])),
    # transaction id, originator and recipient system titles, date-time,
    # other-information and key-info: all empty in GBCS
    "ciphering_fields_fixed" / Const(bytes(6)),
    "length" / DerLength(),                       # 5 + len(APDU) + 12
    "security_control_fixed" / Const(b"\x11"),    # authentication only
    "invocation_counter_fixed" / Const(bytes(4)),
)

# --- 2.1 General-Signing APDU -------------------------------------------------

GENERAL_SIGNING = table(
    "tag" / Const(bytes([TAG_GENERAL_SIGNING])),
    "transaction_id_length_fixed" / Const(b"\x09"),
    "cra" / Int8ub,                               # 01 command, 02 response, 03 alert
    "counter" / Int64ub,                          # originator counter
    "originator_length_fixed" / Const(b"\x08"),
    "originator" / Bytes(8),
    "recipient_length_fixed" / Const(b"\x08"),
    "recipient" / Bytes(8),
    "date_time" / Prefixed(Int8ub, GreedyBytes),  # 00 absent, or 0C + 12 bytes
    "other_info_length_fixed" / Const(b"\x02"),
    "message_code" / Int16ub,
    "content" / Prefixed(DerLength(), GreedyBytes),
)

SIGNATURE = table(
    "signature" / Prefixed(Int8ub, GreedyBytes),  # 00, or 40 + r||s
)


def _check8(name, value):
    value = bytes(value)
    if len(value) != 8:
        raise ValueError(f"{name} must be 8 bytes (a system title), got {len(value)}")
    return value


def build_apdu(cra, counter, originator, recipient, message_code, content,
               signature=None, date_time=None):
    """A General-Signing APDU. signature None: a PRECOMMAND (ends after the content);
    b"": signature length 00 (a MAC'd alert); 64 bytes: 40 + r||s."""
    if isinstance(cra, str):
        cra = {v: k for k, v in CRA_NAMES.items()}[cra]
    date_time = b"" if date_time is None else bytes(date_time)
    if len(date_time) not in (0, 12):
        raise ValueError("date_time must be 12 bytes (COSEM date-time) or absent")
    apdu = _build(GENERAL_SIGNING, dict(
        cra=cra, counter=counter, originator=_check8("originator", originator),
        recipient=_check8("recipient", recipient), date_time=date_time,
        message_code=message_code, content=bytes(content)), "the General-Signing APDU")
    if signature is None:
        return apdu
    signature = bytes(signature)
    if len(signature) not in (0, SIGNATURE_LEN):
        raise ValueError(f"signature must be {SIGNATURE_LEN} bytes (r||s) or empty")
    return apdu + _build(SIGNATURE, dict(signature=signature), "the signature")


def parse_apdu(data, base=0):
    """Decode a General-Signing APDU (PRECOMMAND, Signed Pre-Command, Response or
    Alert). `base` is where it starts in an enclosing message, for error offsets."""
    data = bytes(data)
    if not data:
        raise DecodeError(base, "general_signing", "message is empty")
    stream = _stream(data, base)
    try:
        head = GENERAL_SIGNING.parse_stream(stream)
    except ConstructError as e:  # pragma: no cover - _Located converts them
        raise DecodeError(stream.tell(), "general_signing", _reason(e)) from None
    end_of_content = stream.tell() - base
    signature = None
    signature_length = None
    rest = data[end_of_content:]
    if rest:
        sig = _parse_exact(SIGNATURE, rest, base + end_of_content, "signature")
        signature_length = len(sig.signature)
        if signature_length not in (0, SIGNATURE_LEN):
            raise DecodeError(base + end_of_content, "signature",
                              f"signature length {signature_length} is neither 00 nor 40")
        signature = sig.signature or None
    content_len = len(head.content)
    return {
        "cra": head.cra,
        "counter": head.counter,
        "originator": head.originator,
        "recipient": head.recipient,
        "date_time": head.date_time or None,
        "message_code": head.message_code,
        "content": head.content,
        "content_offset": base + end_of_content - content_len,
        "signature": signature,
        "signature_length": signature_length,   # None: PRECOMMAND (no length byte)
        "signed_part": data[1:end_of_content],
        "precommand": data[:end_of_content],
    }


def build_message(apdu, mac):
    """MAC header + APDU + 12-byte MAC (what the ACB sends and what a meter sends
    for a non-critical alert)."""
    mac = bytes(mac)
    if len(mac) != MAC_LEN:
        raise ValueError(f"MAC must be {MAC_LEN} bytes")
    header = _build(MAC_HEADER, dict(length=5 + len(apdu) + MAC_LEN), "the MAC header")
    return header + bytes(apdu) + mac


def parse_message(data):
    """Decode a COMMAND (MAC header + APDU + MAC), a MAC'd alert, or a bare APDU.
    Returns parse_apdu's fields plus `apdu` (bytes), `mac` (bytes or None) and
    `mac_header` (dict or None)."""
    data = bytes(data)
    if not data:
        raise DecodeError(0, "message", "message is empty")
    if data[0] != TAG_GENERAL_CIPHERING:
        if data[0] != TAG_GENERAL_SIGNING:
            raise DecodeError(0, "tag", f"starts with {data[0]:02X}, expected DD (MAC header)"
                                        " or DF (General-Signing)")
        out = parse_apdu(data)
        out.update(apdu=data, mac=None, mac_header=None)
        return out
    stream = _stream(data)
    header = MAC_HEADER.parse_stream(stream)
    start = stream.tell()
    if header.length != len(data) - (start - 5):
        # L counts the 5 security bytes, the APDU and the MAC
        raise DecodeError(7, "mac_header.length",
                          f"says {header.length} bytes follow but {len(data) - start + 5} do"
                          + (" (message cut short)" if header.length > len(data) - start + 5
                             else ""))
    if header.length < 5 + MAC_LEN:
        raise DecodeError(7, "mac_header.length", f"{header.length} is too short for a MAC")
    apdu = data[start:len(data) - MAC_LEN]
    out = parse_apdu(apdu, base=start)
    out.update(apdu=apdu, mac=data[-MAC_LEN:], mac_header={"length": header.length},
               mac_offset=len(data) - MAC_LEN)
    return out


# --- 3. GBZ (ZigBee) content -----------------------------------------------------

ZCL_FRAME = table(
    "frame_control" / Int8ub,       # 01 command (client to server), 08 response
    "sequence_number" / Int8ub,
    "command_id" / Int8ub,
    "payload" / GreedyBytes,        # little-endian fields, see the tables below
)

GBZ_COMPONENT = table(
    "control" / Int8ub,             # 01 on the last component, 00 on the others
    "cluster_id" / Int16ub,
    "frame" / Prefixed(Int16ub, ZCL_FRAME),
)

GBZ = table(
    "profile_fixed" / Const(GBZ_PROFILE),
    "components" / items(Int8ub, GBZ_COMPONENT),   # component count
)

# Prepayment cluster 0705, Change Debt (command 02)
CHANGE_DEBT = table(
    "issuer_event_id" / Int32ul,
    "debt_label" / Prefixed(Int8ub, GreedyBytes),   # 00 = empty
    "debt_amount" / Int32sl,
    "debt_recovery_method" / Int8ub,                # 0 time-based, 1 payment-based
    "debt_amount_type" / Int8ub,                    # DEBT_AMOUNT_TYPES
    "recovery_start_time" / Int32ul,                # UTC seconds since 2000-01-01
    "recovery_collection_time" / Int16ul,           # minutes after midnight
    "recovery_frequency" / Int8ub,                  # 0 hourly, 1 daily
    "recovery_amount" / Int32sl,
    "recovery_balance_percentage" / Int16ul,
)

# Prepayment cluster 0705, Credit Adjustment (command 05)
CREDIT_ADJUSTMENT = table(
    "issuer_event_id" / Int32ul,
    "start_time" / Int32ul,
    "credit_adjustment_type" / Int8ub,              # 01 absolute
    "credit_adjustment_value" / Int32sl,
)

# Prepayment cluster 0705, Select Available Emergency Credit (command 00)
SELECT_EMERGENCY_CREDIT = table(
    "command_issue_date_time" / Int32ul,
    "originating_device" / Int8ub,
)

# ZCL Default Response (general command 0B)
DEFAULT_RESPONSE = table(
    "command_id" / Int8ub,                          # the command answered (FF: none)
    "status" / Int8ub,                              # ZCL_STATUS
)

# (frame type bits of the frame control, cluster or None for any, command id)
ZCL_PAYLOADS = {
    (1, CLUSTER_PREPAYMENT, ZCL_CMD_CHANGE_DEBT): ("change_debt", CHANGE_DEBT),
    (1, CLUSTER_PREPAYMENT, ZCL_CMD_CREDIT_ADJUSTMENT): ("credit_adjustment", CREDIT_ADJUSTMENT),
    (1, CLUSTER_PREPAYMENT, ZCL_CMD_SELECT_EMERGENCY_CREDIT):
        ("select_available_emergency_credit", SELECT_EMERGENCY_CREDIT),
    (0, None, ZCL_CMD_DEFAULT_RESPONSE): ("default_response", DEFAULT_RESPONSE),
}


def change_debt(issuer_event_id, debt_amount, debt_recovery_method, debt_amount_type,
                recovery_start_time=0, recovery_collection_time=0, recovery_frequency=0,
                recovery_amount=0, recovery_balance_percentage=0, debt_label=b""):
    """Change Debt payload (little-endian, NOTES 3)."""
    return _build(CHANGE_DEBT, dict(
        issuer_event_id=issuer_event_id, debt_label=bytes(debt_label), debt_amount=debt_amount,
        debt_recovery_method=debt_recovery_method, debt_amount_type=debt_amount_type,
        recovery_start_time=recovery_start_time,
        recovery_collection_time=recovery_collection_time,
        recovery_frequency=recovery_frequency, recovery_amount=recovery_amount,
        recovery_balance_percentage=recovery_balance_percentage), "Change Debt")


def credit_adjustment(issuer_event_id, start_time, credit_adjustment_type,
                      credit_adjustment_value):
    return _build(CREDIT_ADJUSTMENT, dict(
        issuer_event_id=issuer_event_id, start_time=start_time,
        credit_adjustment_type=credit_adjustment_type,
        credit_adjustment_value=credit_adjustment_value), "Credit Adjustment")


def select_emergency_credit(command_issue_date_time=0, originating_device=0):
    return _build(SELECT_EMERGENCY_CREDIT, dict(
        command_issue_date_time=command_issue_date_time,
        originating_device=originating_device), "Select Emergency Credit")


def default_response(command_id, status):
    return _build(DEFAULT_RESPONSE, dict(command_id=command_id, status=status),
                  "Default Response")


def build_gbz(components, frame_control=ZCL_FC_COMMAND):
    """GBZ content from (cluster_id, command_id, payload) tuples; a 4th item overrides
    the sequence number (responses repeat the Command's). Control 01 marks the last
    component; sequence numbers 0, 1, 2... by component."""
    comps = []
    for i, comp in enumerate(components):
        cluster_id, command_id, payload = comp[:3]
        seq = comp[3] if len(comp) > 3 else i
        comps.append(dict(
            control=1 if i == len(components) - 1 else 0, cluster_id=cluster_id,
            frame=dict(frame_control=frame_control, sequence_number=seq,
                       command_id=command_id, payload=bytes(payload))))
    if not 0 < len(comps) < 256:
        raise ValueError("a GBZ payload has 1 to 255 components")
    return _build(GBZ, dict(components=comps), "the GBZ payload")


def parse_zcl_payload(frame_control, cluster_id, command_id, payload, base=0):
    """(name, fields dict) for a known ZCL command, or (None, None)."""
    key = (frame_control & 0x03, cluster_id, command_id)
    known = ZCL_PAYLOADS.get(key) or ZCL_PAYLOADS.get((key[0], None, command_id))
    if not known:
        return None, None
    name, con = known
    return name, plain(_parse_exact(con, payload, base, name))


def parse_gbz(content, base=0):
    """Decode GBZ content: components with their ZCL frames; known payloads decoded,
    others left as `payload_raw`. Raises DecodeError when the framing is broken."""
    gbz = _parse_exact(GBZ, content, base, "gbz")
    comps = []
    pos = base + 3
    for i, c in enumerate(gbz.components):
        f = c.frame
        payload_at = pos + 5 + 3
        comp = {"control": c.control, "cluster_id": c.cluster_id,
                "frame_control": f.frame_control, "sequence_number": f.sequence_number,
                "command_id": f.command_id}
        name, fields = parse_zcl_payload(f.frame_control, c.cluster_id, f.command_id,
                                         f.payload, payload_at)
        if name:
            comp["command"] = name
            comp[name] = fields
            if name == "default_response":
                fields["status_name"] = ZCL_STATUS.get(fields["status"], "unknown")
            if name == "change_debt":
                fields["debt_amount_type_name"] = DEBT_AMOUNT_TYPES.get(
                    fields["debt_amount_type"], "unknown")
        else:
            comp["payload_raw"] = f.payload
        comps.append(comp)
        pos += 5 + 3 + len(f.payload)
    return {"components": comps}


# --- 4. DLMS COSEM: A-XDR data -----------------------------------------------------

AXDR_TYPES = {
    # tag: (name, kind, struct format or None)
    0x00: ("null-data", "null", None),
    0x01: ("array", "list", None),
    0x02: ("structure", "list", None),
    0x03: ("boolean", "int", ">?"),
    0x05: ("double-long", "int", ">i"),
    0x06: ("double-long-unsigned", "int", ">I"),
    0x09: ("octet-string", "bytes", None),
    0x0A: ("visible-string", "bytes", None),
    0x0F: ("integer", "int", ">b"),
    0x10: ("long", "int", ">h"),
    0x11: ("unsigned", "int", ">B"),
    0x12: ("long-unsigned", "int", ">H"),
    0x14: ("long64", "int", ">q"),
    0x15: ("long64-unsigned", "int", ">Q"),
    0x16: ("enum", "int", ">B"),
}
AXDR_TAGS = {v[0]: k for k, v in AXDR_TYPES.items()}


def _axdr_tag(name):
    key = name.replace("_", "-")
    if key == "null":
        key = "null-data"
    if key not in AXDR_TAGS:
        raise ValueError(f"unknown A-XDR type {name!r}; known: {', '.join(AXDR_TAGS)}")
    return AXDR_TAGS[key]


def axdr(type_name, value=None):
    """Encode one A-XDR value: axdr("double-long", 0), axdr("octet-string", b"..."),
    axdr("structure", [axdr(...), ...]) (items may also be {"type", "value"} nodes)."""
    tag = _axdr_tag(type_name)
    name, kind, fmt = AXDR_TYPES[tag]
    if kind == "null":
        return b"\x00"
    if kind == "list":
        items = [axdr_encode(v) for v in value]
        return bytes([tag]) + der_length(len(items)) + b"".join(items)
    if kind == "bytes":
        value = value.encode() if isinstance(value, str) else bytes(value)
        return bytes([tag]) + der_length(len(value)) + value
    try:
        return bytes([tag]) + _struct.pack(fmt, value)
    except _struct.error:
        raise ValueError(f"{value!r} does not fit A-XDR {name}") from None


def axdr_encode(node):
    """Encode a decoded node {"type": name, "value": ...}; bytes pass through as
    already-encoded A-XDR."""
    if isinstance(node, (bytes, bytearray, memoryview)):
        return bytes(node)
    return axdr(node["type"], node.get("value"))


def _axdr_read(stream, depth=0):
    start = stream.tell()
    try:
        tag = stream_read(stream, 1, "")[0]
    except ConstructError:
        raise DecodeError(start, "a-xdr", "message is cut short here") from None
    if tag not in AXDR_TYPES:
        raise DecodeError(start, "a-xdr", f"unknown A-XDR tag {tag:02X}")
    name, kind, fmt = AXDR_TYPES[tag]
    try:
        if kind == "null":
            return {"type": name, "value": None}
        if kind == "list":
            if depth > 16:
                raise DecodeError(start, "a-xdr", "nested too deep")
            count = DerLength()._parse(stream, None, "")
            return {"type": name, "value": [_axdr_read(stream, depth + 1) for _ in range(count)]}
        if kind == "bytes":
            n = DerLength()._parse(stream, None, "")
            return {"type": name, "value": stream_read(stream, n, "")}
        size = _struct.calcsize(fmt)
        return {"type": name, "value": _struct.unpack(fmt, stream_read(stream, size, ""))[0]}
    except DecodeError as e:
        if not e.fields:
            e.fields.append(name)
        raise
    except ConstructError:
        raise DecodeError(start, name, "message is cut short here") from None


def axdr_decode(data, base=0):
    """Decode exactly one A-XDR value into a {"type", "value"} tree."""
    return _parse_exact(AXDR(), data, base, "a-xdr")


class AXDR(Construct):
    """One A-XDR Data value as a tagged tree; builds from a tree or raw bytes."""

    def _parse(self, stream, context, path):
        return _axdr_read(stream)

    def _build(self, obj, stream, context, path):
        enc = axdr_encode(obj)
        stream_write(stream, enc, len(enc), path)
        return obj


# --- 4. DLMS COSEM: Access-Request / Access-Response / Data-Notification -----------

SPEC_KIND = Enum(Int8ub, get=1, set=2, action=3)

ACCESS_REQUEST_SPEC = table(
    "kind" / SPEC_KIND,                 # 01 get / 02 set / 03 action
    "class_id" / Int16ub,
    "obis" / Bytes(6),
    "attribute_or_method" / Int8ub,
)

ACCESS_REQUEST = table(
    "tag" / Const(bytes([TAG_ACCESS_REQUEST])),
    "invoke_id" / Int32ub,              # low bytes follow the originator counter
    "date_time" / Prefixed(Int8ub, GreedyBytes),   # 00: absent
    "specs" / items(DerLength(), ACCESS_REQUEST_SPEC),
    "data" / items(DerLength(), AXDR()),
)

ACCESS_RESPONSE_RESULT = table(
    "kind" / SPEC_KIND,
    "result" / Int8ub,                  # ACTION_RESULTS / DATA_ACCESS_RESULTS
)

ACCESS_RESPONSE = table(
    "tag" / Const(bytes([TAG_ACCESS_RESPONSE])),
    "invoke_id" / Int32ub,              # repeats the Command's
    "date_time" / Prefixed(Int8ub, GreedyBytes),
    "access_request_specification_fixed" / Const(b"\x00"),   # not repeated
    "data" / items(DerLength(), AXDR()),
    "results" / items(DerLength(), ACCESS_RESPONSE_RESULT),
)

DATA_NOTIFICATION = table(
    "tag" / Const(bytes([TAG_DATA_NOTIFICATION])),
    "invoke_id" / Int32ub,
    "date_time" / Prefixed(Int8ub, GreedyBytes),
    "notification_body" / AXDR(),
)

# 2.3 critical alert content
CRITICAL_ALERT = table(
    "profile_fixed" / Const(GBZ_PROFILE),
    "zero_fixed" / Const(b"\x00"),
    "alert_code" / Int16ub,
    "date_time" / Int32ub,              # UTC seconds since 2000-01-01
)

_KINDS = {"get": 1, "set": 2, "action": 3}


def obis(text):
    """'0-0:19.20.1.255' -> 6 bytes."""
    a, rest = text.split("-", 1)
    b, rest = rest.split(":", 1)
    parts = [int(a), int(b)] + [int(x) for x in rest.split(".")]
    if len(parts) != 6:
        raise ValueError(f"OBIS code {text!r} needs six groups")
    return bytes(parts)


def obis_text(code):
    c = bytes(code)
    return f"{c[0]}-{c[1]}:{c[2]}.{c[3]}.{c[4]}.{c[5]}"


def build_access_request(invoke_id, specs, data, date_time=b""):
    """Access-Request from (kind, class_id, obis6, attribute_or_method) specs and one
    encoded A-XDR value (bytes) or node per spec."""
    if len(specs) != len(data):
        raise ValueError(f"{len(specs)} specifications but {len(data)} data values")
    items = []
    for kind, class_id, code, attr in specs:
        code = obis(code) if isinstance(code, str) else bytes(code)
        if len(code) != 6:
            raise ValueError("an OBIS code is 6 bytes")
        items.append(dict(kind=_KINDS.get(kind, kind), class_id=class_id, obis=code,
                          attribute_or_method=attr))
    return _build(ACCESS_REQUEST, dict(invoke_id=invoke_id, date_time=bytes(date_time),
                                     specs=items, data=list(data)), "the Access-Request")


def build_access_response(invoke_id, data, results, date_time=b""):
    """Access-Response: data (encoded A-XDR or nodes), results as (kind, result)."""
    return _build(ACCESS_RESPONSE, dict(
        invoke_id=invoke_id, date_time=bytes(date_time), data=list(data),
        results=[dict(kind=_KINDS.get(k, k), result=r) for k, r in results]), "the Access-Response")


def _name_spec(spec):
    out = dict(spec)
    out["obis"] = obis_text(spec["obis"])
    name = OBIS_NAMES.get(bytes(spec["obis"]))
    if name:
        out["object"] = name
    n = spec["attribute_or_method"]
    if spec["class_id"] == CLASS_CHARGE:
        out["member"] = (CHARGE_METHODS if spec["kind"] == "action" else CHARGE_ATTRIBUTES).get(n)
    elif spec["class_id"] == CLASS_CREDIT and spec["kind"] == "action":
        out["member"] = CREDIT_METHODS.get(n)
    if out.get("member") is None:
        out.pop("member", None)
    return out


def parse_access_request(content, base=0):
    req = plain(_parse_exact(ACCESS_REQUEST, content, base, "access_request"))
    req["specs"] = [_name_spec(s) for s in req["specs"]]
    return req


def parse_access_response(content, base=0):
    resp = plain(_parse_exact(ACCESS_RESPONSE, content, base, "access_response"))
    for r in resp["results"]:
        names = ACTION_RESULTS if r["kind"] == "action" else DATA_ACCESS_RESULTS
        r["result_name"] = names.get(r["result"], "unknown")
    return resp


def parse_data_notification(content, base=0):
    out = plain(_parse_exact(DATA_NOTIFICATION, content, base, "data_notification"))
    body = out["notification_body"]
    # GBCS non-critical alert: structure { long-unsigned alert code, octet-string time }
    if (body["type"] == "structure" and body["value"]
            and body["value"][0]["type"] == "long-unsigned"):
        out["alert_code"] = f"{body['value'][0]['value']:04X}"
    return out


def parse_critical_alert(content, base=0):
    out = plain(_parse_exact(CRITICAL_ALERT, content, base, "alert"))
    out["alert_code"] = f"{out['alert_code']:04X}"
    out["date_time_utc"] = gbcs_time_text(out["date_time"])
    return out


GBCS_EPOCH = 946684800   # 2000-01-01T00:00:00Z in Unix seconds


def gbcs_time_text(seconds):
    """UTC seconds since 2000-01-01 as ISO 8601."""
    t = datetime.datetime.fromtimestamp(GBCS_EPOCH + seconds, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_content(message_code, content, base=0):
    """The content decoded by what it starts with (GBZ, Access-Request,
    Access-Response, Data-Notification, critical alert). Never guesses: a format it
    does not know comes back as {"format": "unknown", "raw": bytes}; a known format
    that does not parse raises DecodeError."""
    content = bytes(content)
    if message_code == MSG_ALERT_CRITICAL and content[:3] == GBZ_PROFILE + b"\x00":
        return {"format": "gbcs-critical-alert", **parse_critical_alert(content, base)}
    if content[:2] == GBZ_PROFILE:
        return {"format": "gbz", **parse_gbz(content, base)}
    first = content[0] if content else None
    if first == TAG_ACCESS_REQUEST:
        return {"format": "dlms-access-request", **parse_access_request(content, base)}
    if first == TAG_ACCESS_RESPONSE:
        return {"format": "dlms-access-response", **parse_access_response(content, base)}
    if first == TAG_DATA_NOTIFICATION:
        return {"format": "dlms-data-notification", **parse_data_notification(content, base)}
    return {"format": "unknown", "raw": content}


# --- the firmware's use-case table -------------------------------------------------

def load_usecases():
    """firmware/usecases.py, imported from the checkout: the one use-case table."""
    from gbmeter import paths
    return paths.firmware_table("usecases")


def use_case_name(message_code):
    row = load_usecases().find(message_code)
    if row:
        return row[1]
    uc = load_usecases()
    if message_code == uc.ALERT_CRITICAL:
        return "critical alert"
    if message_code == uc.ALERT_NON_CRITICAL:
        return "non-critical alert"
    return None


def to_json(obj):
    """A decoded tree with bytes as upper-case hex, ready for json.dumps."""
    if isinstance(obj, dict):
        return {str(k): to_json(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [to_json(v) for v in obj]
    if isinstance(obj, (bytes, bytearray, memoryview)):
        return bytes(obj).hex().upper()
    if isinstance(obj, str) and type(obj) is not str:
        return str(obj)
    return obj


class HexError(DecodeError):
    """Input that is not hex text; offset counts characters of the input."""

    def __str__(self):
        return f"not hex: {self.reason}"


def parse_hex(text):
    """Bytes from hex text (whitespace and a leading 0x ignored). Raises DecodeError
    naming the character offset of the first non-hex character."""
    s = text.rstrip()
    skip = len(s) - len(s.lstrip())
    if s[skip:skip + 2].lower() == "0x":
        skip += 2
    clean = []
    for i, ch in enumerate(s):
        if i < skip:
            continue
        if ch in " \t\r\n":
            continue
        if ch not in "0123456789abcdefABCDEF":
            raise HexError(i, "hex", f"{ch!r} at character {i} is not a hex digit")
        clean.append(ch)
    if not clean:
        raise HexError(0, "hex", "no hex digits in the input")
    if len(clean) % 2:
        raise HexError(len(clean) // 2, "hex", f"odd number of hex digits ({len(clean)}): "
                                               f"byte {len(clean) // 2} is cut in half")
    return bytes.fromhex("".join(clean))
