"""ESME content: DLMS COSEM (NOTES 4): A-XDR data, Access-Request, Access-Response
and Data-Notification, with the COSEM objects this project uses named."""

import struct as _struct

from construct import Bytes, Const, Construct, ConstructError, Enum, GreedyBytes, Int8ub, Int16ub, Int32ub, Prefixed
from construct.core import stream_read, stream_write

from gbmeter.gbcs.fields import (
    DecodeError, DerLength, _build, _parse_exact, der_length, items, plain, table)

TAG_ACCESS_REQUEST = 0xD9
TAG_ACCESS_RESPONSE = 0xDA
TAG_DATA_NOTIFICATION = 0x0F

# DLMS COSEM objects of NOTES 4
CLASS_DATA = 1
CLASS_DATA_PROTECTION = 30
CLASS_ACCOUNT = 111
CLASS_CREDIT = 112
CLASS_CHARGE = 113
CLASS_GBCS_9000 = 9000   # GBCS-specific: the disablement threshold and its date-time
OBIS_NAMES = {
    bytes([0, 0, 19, 20, 1, 255]): "time debt 1 charge",
    bytes([0, 0, 19, 20, 2, 255]): "time debt 2 charge",
    bytes([0, 0, 19, 20, 3, 255]): "payment debt charge",
    bytes([0, 0, 19, 10, 0, 255]): "meter balance credit",
    bytes([0, 0, 19, 10, 1, 255]): "emergency credit balance",
    bytes([0, 0, 19, 10, 2, 255]): "accumulated debt register",
    bytes([0, 1, 19, 0, 0, 255]): "account",
    bytes([0, 0, 43, 2, 1, 255]): "data protection",
    bytes([0, 0, 94, 44, 34, 30]): "prepayment registers",
    bytes([0, 0, 94, 44, 128, 22]): "disablement threshold",
}
ACCOUNT_ATTRIBUTES = {2: "account_mode_and_status", 11: "credit_charge_configuration",
                      13: "account_activation_time"}
ACCOUNT_MODES = {1: "credit", 2: "prepayment"}
GBCS_9000_ATTRIBUTES = {4: "disablement_threshold", 6: "disablement_threshold_date_time"}
DATA_PROTECTION_METHODS = {1: "get_protected_attributes"}
CHARGE_ATTRIBUTES = {2: "total_amount_paid", 6: "unit_charge_passive", 8: "period",
                     12: "total_amount_remaining", 13: "proportion"}
CHARGE_METHODS = {1: "update_unit_charge", 2: "activate_passive_unit_charge", 3: "collect",
                  4: "update_total_amount_remaining", 5: "set_total_amount_remaining"}
CREDIT_METHODS = {2: "set_amount_to_value", 3: "invoke_credit"}
ACTION_RESULTS = {0x00: "success", 0x01: "hardware-fault", 0xFA: "other-reason"}
DATA_ACCESS_RESULTS = {0x00: "success", 0x01: "hardware-fault", 0xFA: "other-reason"}


# --- 4. DLMS COSEM: A-XDR data -----------------------------------------------------

AXDR_TYPES = {
    # tag: (name, kind, struct format or None)
    0x00: ("null-data", "null", None),
    0x01: ("array", "list", None),
    0x02: ("structure", "list", None),
    0x03: ("boolean", "int", ">?"),
    0x04: ("bit-string", "bits", None),     # length in bits, then the bits in whole bytes
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
    0x19: ("date-time", "fixed", 12),
    0x1A: ("date", "fixed", 5),
    0x1B: ("time", "fixed", 4),
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
    if kind == "bits":     # {"bits": n, "value": bytes} or bytes (whole bytes)
        bits, value = ((value["bits"], bytes(value["value"])) if isinstance(value, dict)
                       else (len(value) * 8, bytes(value)))
        if len(value) != (bits + 7) // 8:
            raise ValueError(f"a bit-string of {bits} bits takes {(bits + 7) // 8} bytes")
        return bytes([tag]) + der_length(bits) + value
    if kind == "fixed":
        value = bytes(value)
        if len(value) != fmt:
            raise ValueError(f"A-XDR {name} is {fmt} bytes, got {len(value)}")
        return bytes([tag]) + value
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
        if kind == "bits":
            n = DerLength()._parse(stream, None, "")
            return {"type": name, "value": {"bits": n, "value": stream_read(stream, (n + 7) // 8, "")}}
        if kind == "fixed":
            return {"type": name, "value": stream_read(stream, fmt, "")}
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
    elif spec["class_id"] == CLASS_ACCOUNT and spec["kind"] != "action":
        out["member"] = ACCOUNT_ATTRIBUTES.get(n)
    elif spec["class_id"] == CLASS_GBCS_9000 and spec["kind"] != "action":
        out["member"] = GBCS_9000_ATTRIBUTES.get(n)
    elif spec["class_id"] == CLASS_DATA_PROTECTION and spec["kind"] == "action":
        out["member"] = DATA_PROTECTION_METHODS.get(n)
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
