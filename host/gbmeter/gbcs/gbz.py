"""GSME content: GBZ components carrying ZCL frames, and the Prepayment cluster's
payloads (NOTES 3). ZCL fields are little-endian; the GBZ framing is big-endian."""

import struct as _struct

from construct import (
    Const, Construct, GreedyBytes, GreedyRange, IfThenElse, Int8ub, Int16ub, Int16ul, Int32sl,
    Int32ul, Prefixed, this)
from construct.core import stream_read, stream_write

from gbmeter.gbcs.fields import DecodeError, _build, _parse_exact, items, plain, table

CLUSTER_PRICE = 0x0700
CLUSTER_PREPAYMENT = 0x0705
ZCL_CMD_READ_ATTRIBUTES = 0x00               # general, client to server
ZCL_CMD_READ_ATTRIBUTES_RESPONSE = 0x01      # general, server to client
ZCL_CMD_SELECT_EMERGENCY_CREDIT = 0x00
ZCL_CMD_CHANGE_DEBT = 0x02
ZCL_CMD_CREDIT_ADJUSTMENT = 0x05
ZCL_CMD_CHANGE_PAYMENT_MODE = 0x06           # client to server
ZCL_CMD_CHANGE_PAYMENT_MODE_RESPONSE = 0x02  # server to client
ZCL_CMD_DEFAULT_RESPONSE = 0x0B
ZCL_FC_COMMAND = 0x01   # cluster-specific, client to server
ZCL_FC_RESPONSE = 0x08  # general (profile-wide), server to client
ZCL_FC_SERVER = 0x08    # direction bit: server to client
ZCL_FC_TYPE = 0x03      # frame type bits: 00 general, 01 cluster-specific
ZCL_FC_GENERAL = 0x00   # general (profile-wide), client to server: Read Attributes
GBZ_CONTROL_LAST = 0x01        # component control: the last component
GBZ_CONTROL_ENCRYPTED = 0x02   # component control: its ZCL payload is encrypted (NOTES 7)

ZCL_STATUS = {
    0x00: "SUCCESS", 0x01: "FAILURE", 0x7E: "NOT_AUTHORIZED", 0x80: "MALFORMED_COMMAND",
    0x81: "UNSUP_CLUSTER_COMMAND", 0x85: "INVALID_FIELD", 0x87: "INVALID_VALUE",
    0x86: "UNSUPPORTED_ATTRIBUTE", 0xC0: "HARDWARE_FAILURE",
}

# ZCL data types of attribute values: type -> (name, struct format, size)
ZCL_TYPES = {
    0x08: ("data8", "<B", 1), 0x09: ("data16", "<H", 2), 0x0B: ("data32", "<I", 4),
    0x10: ("boolean", "<B", 1), 0x18: ("bitmap8", "<B", 1), 0x19: ("bitmap16", "<H", 2),
    0x1B: ("bitmap32", "<I", 4), 0x20: ("uint8", "<B", 1), 0x21: ("uint16", "<H", 2),
    0x22: ("uint24", None, 3), 0x23: ("uint32", "<I", 4), 0x25: ("uint48", None, 6),
    0x28: ("int8", "<b", 1), 0x29: ("int16", "<h", 2), 0x2A: ("int24", None, 3),
    0x2B: ("int32", "<i", 4), 0x30: ("enum8", "<B", 1), 0x31: ("enum16", "<H", 2),
    0xE2: ("utc_time", "<I", 4),
}

# The attributes GCS14 reads (NOTES 3 and 7), by cluster
ZCL_ATTRIBUTES = {
    (CLUSTER_PRICE, 0x0616): "currency",
    (CLUSTER_PRICE, 0x0617): "price_trailing_digit_and_price_tier",
    (CLUSTER_PREPAYMENT, 0x0001): "credit_remaining",
    (CLUSTER_PREPAYMENT, 0x0002): "emergency_credit_remaining",
    (CLUSTER_PREPAYMENT, 0x0005): "accumulated_debt",
    (CLUSTER_PREPAYMENT, 0x0211): "debt_amount_1",
    (CLUSTER_PREPAYMENT, 0x0221): "debt_amount_2",
    (CLUSTER_PREPAYMENT, 0x0231): "debt_amount_3",
}

# debt amount type (NOTES 3): register and whether the amount is absolute
DEBT_AMOUNT_TYPES = {
    0: "time debt 1 absolute", 1: "time debt 1 incremental",
    2: "time debt 2 absolute", 3: "time debt 2 incremental",
    4: "payment debt absolute", 5: "payment debt incremental",
}

GBZ_PROFILE = b"\x01\x09"


# --- 3. GBZ (ZigBee) content -----------------------------------------------------

ZCL_FRAME = table(
    "frame_control" / Int8ub,       # 01 command (client to server), 08 response
    "sequence_number" / Int8ub,
    "command_id" / Int8ub,
    "payload" / GreedyBytes,        # little-endian fields, see the tables below
)

# A component whose control byte has bit 02 (NOTES 7): an additional header, the ZCL
# header, then the payload encrypted (gbmeter.gbcs.crypto.unseal opens it)
ENCRYPTED_ZCL_FRAME = table(
    "additional_header_control" / Int8ub,           # 00
    "additional_header_frame_counter" / Int8ub,     # 00
    "frame_control" / Int8ub,
    "sequence_number" / Int8ub,
    "command_id" / Int8ub,
    "ciphered" / Prefixed(Int16ub, GreedyBytes),    # 31 00000000 | ciphertext | tag
)

GBZ_COMPONENT = table(
    "control" / Int8ub,             # 01 on the last component, 00 on the others; +02 encrypted
    "cluster_id" / Int16ub,
    "frame" / Prefixed(Int16ub, IfThenElse(this.control & GBZ_CONTROL_ENCRYPTED,
                                           ENCRYPTED_ZCL_FRAME, ZCL_FRAME)),
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

# Prepayment cluster 0705, Change Payment Mode (command 06, client to server)
CHANGE_PAYMENT_MODE = table(
    "provider_id" / Int32ul,
    "issuer_event_id" / Int32ul,
    "implementation_date_time" / Int32ul,           # UTC seconds since 2000-01-01; 0 now
    "proposed_payment_control_configuration" / Int16ul,   # bitmap16
    "cut_off_value" / Int32sl,
)

# Prepayment cluster 0705, Change Payment Mode Response (command 02, server to client)
CHANGE_PAYMENT_MODE_RESPONSE = table(
    "friendly_credit" / Int8ub,                     # bitmap8
    "friendly_credit_calendar_id" / Int32ul,
    "emergency_credit_limit" / Int32ul,
    "emergency_credit_threshold" / Int32ul,
)

class _AttributeRecords(Construct):
    """Read Attributes Response records: attribute id (u16), status, and when the
    status is SUCCESS the data type and its value (little-endian)."""

    def _parse(self, stream, context, path):
        out = []
        while True:
            start = stream.tell()
            head = stream.read(3)
            if not head:
                return out
            if len(head) < 3:
                raise DecodeError(start, f"records[{len(out)}]", "message is cut short here")
            attr, status = _struct.unpack("<HB", head)
            rec = {"attribute": attr, "status": status,
                   "status_name": ZCL_STATUS.get(status, "unknown")}
            if status == 0:
                t = stream_read(stream, 1, path)[0]
                if t not in ZCL_TYPES:
                    raise DecodeError(start + 3, f"records[{len(out)}].type",
                                      f"ZCL data type {t:02X} is not one gbmeter reads")
                name, fmt, size = ZCL_TYPES[t]
                raw = stream_read(stream, size, path)
                value = (_struct.unpack(fmt, raw)[0] if fmt else
                         int.from_bytes(raw, "little", signed=name.startswith("int")))
                rec.update(type=t, type_name=name, value=value)
            out.append(rec)

    def _build(self, obj, stream, context, path):
        for rec in obj:
            data = _struct.pack("<HB", rec["attribute"], rec["status"])
            if rec["status"] == 0:
                name, fmt, size = ZCL_TYPES[rec["type"]]
                data += bytes([rec["type"]]) + (
                    _struct.pack(fmt, rec["value"]) if fmt else
                    int(rec["value"]).to_bytes(size, "little", signed=name.startswith("int")))
            stream_write(stream, data, len(data), path)
        return obj


# General Read Attributes (command 00): the attribute ids asked for
READ_ATTRIBUTES = table(
    "attributes" / GreedyRange(Int16ul),
)

# General Read Attributes Response (command 01): one record per attribute, in order
READ_ATTRIBUTES_RESPONSE = table(
    "records" / _AttributeRecords(),
)

# (frame type and direction bits of the frame control, cluster or None for any
# cluster, command id): a command id means different commands in each direction
# (Prepayment 02 is Change Debt to the meter and Change Payment Mode Response from it)
ZCL_PAYLOADS = {
    (ZCL_FC_COMMAND, CLUSTER_PREPAYMENT, ZCL_CMD_CHANGE_DEBT): ("change_debt", CHANGE_DEBT),
    (ZCL_FC_COMMAND, CLUSTER_PREPAYMENT, ZCL_CMD_CREDIT_ADJUSTMENT):
        ("credit_adjustment", CREDIT_ADJUSTMENT),
    (ZCL_FC_COMMAND, CLUSTER_PREPAYMENT, ZCL_CMD_SELECT_EMERGENCY_CREDIT):
        ("select_available_emergency_credit", SELECT_EMERGENCY_CREDIT),
    (ZCL_FC_COMMAND, CLUSTER_PREPAYMENT, ZCL_CMD_CHANGE_PAYMENT_MODE):
        ("change_payment_mode", CHANGE_PAYMENT_MODE),
    (ZCL_FC_COMMAND | ZCL_FC_SERVER, CLUSTER_PREPAYMENT, ZCL_CMD_CHANGE_PAYMENT_MODE_RESPONSE):
        ("change_payment_mode_response", CHANGE_PAYMENT_MODE_RESPONSE),
    # general commands, any cluster: in one direction, then either
    (ZCL_FC_GENERAL, None, ZCL_CMD_READ_ATTRIBUTES): ("read_attributes", READ_ATTRIBUTES),
    (ZCL_FC_SERVER, None, ZCL_CMD_READ_ATTRIBUTES_RESPONSE):
        ("read_attributes_response", READ_ATTRIBUTES_RESPONSE),
    (None, None, ZCL_CMD_DEFAULT_RESPONSE): ("default_response", DEFAULT_RESPONSE),
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


def change_payment_mode(provider_id, issuer_event_id, implementation_date_time,
                        proposed_payment_control_configuration, cut_off_value=0):
    return _build(CHANGE_PAYMENT_MODE, dict(
        provider_id=provider_id, issuer_event_id=issuer_event_id,
        implementation_date_time=implementation_date_time,
        proposed_payment_control_configuration=proposed_payment_control_configuration,
        cut_off_value=cut_off_value), "Change Payment Mode")


def change_payment_mode_response(friendly_credit, friendly_credit_calendar_id,
                                 emergency_credit_limit, emergency_credit_threshold):
    return _build(CHANGE_PAYMENT_MODE_RESPONSE, dict(
        friendly_credit=friendly_credit, friendly_credit_calendar_id=friendly_credit_calendar_id,
        emergency_credit_limit=emergency_credit_limit,
        emergency_credit_threshold=emergency_credit_threshold), "Change Payment Mode Response")


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
    way = frame_control & (ZCL_FC_TYPE | ZCL_FC_SERVER)
    known = (ZCL_PAYLOADS.get((way, cluster_id, command_id))
             or ZCL_PAYLOADS.get((way, None, command_id))
             or (not frame_control & ZCL_FC_TYPE and ZCL_PAYLOADS.get((None, None, command_id))))
    if not known:
        return None, None
    name, con = known
    return name, plain(_parse_exact(con, payload, base, name))


def parse_gbz(content, base=0):
    """Decode GBZ content: components with their ZCL frames; known payloads decoded,
    others left as `payload_raw`; an encrypted component (control bit 02, NOTES 7)
    keeps its sealed payload as `ciphered` (and `ciphered_offset`), which
    gbmeter.gbcs.protected opens. Raises DecodeError when the framing is broken."""
    gbz = _parse_exact(GBZ, content, base, "gbz")
    comps = []
    pos = base + 3
    for i, c in enumerate(gbz.components):
        f = c.frame
        comp = {"control": c.control, "cluster_id": c.cluster_id,
                "frame_control": f.frame_control, "sequence_number": f.sequence_number,
                "command_id": f.command_id}
        if c.control & GBZ_CONTROL_ENCRYPTED:
            comp["encrypted"] = True
            comp["additional_header"] = {"control": f.additional_header_control,
                                         "frame_counter": f.additional_header_frame_counter}
            way = f.frame_control & (ZCL_FC_TYPE | ZCL_FC_SERVER)
            known = (ZCL_PAYLOADS.get((way, c.cluster_id, f.command_id))
                     or ZCL_PAYLOADS.get((way, None, f.command_id)))
            if known:
                comp["command"] = known[0]
            comp["ciphered"] = f.ciphered
            comp["ciphered_offset"] = pos + 5 + 2 + 3 + 2
            comps.append(comp)
            pos += 5 + 2 + 3 + 2 + len(f.ciphered)
            continue
        payload_at = pos + 5 + 3
        name, fields = parse_zcl_payload(f.frame_control, c.cluster_id, f.command_id,
                                         f.payload, payload_at)
        if name:
            comp["command"] = name
            comp[name] = fields
            _name_fields(name, c.cluster_id, fields)
        else:
            comp["payload_raw"] = f.payload
        comps.append(comp)
        pos += 5 + 3 + len(f.payload)
    return {"components": comps}


def _name_fields(name, cluster_id, fields):
    # Names for the numbers of a decoded ZCL payload, in place.
    if name == "default_response":
        fields["status_name"] = ZCL_STATUS.get(fields["status"], "unknown")
    if name == "change_debt":
        fields["debt_amount_type_name"] = DEBT_AMOUNT_TYPES.get(
            fields["debt_amount_type"], "unknown")
    if name == "read_attributes_response":
        for rec in fields["records"]:
            attr = ZCL_ATTRIBUTES.get((cluster_id, rec["attribute"]))
            if attr:
                rec["name"] = attr


def parse_attribute_records(cluster_id, payload, base=0):
    """The records of a Read Attributes Response payload (e.g. decrypted), named."""
    fields = plain(_parse_exact(READ_ATTRIBUTES_RESPONSE, payload, base,
                                "read_attributes_response"))
    _name_fields("read_attributes_response", cluster_id, fields)
    return fields["records"]


def attribute_records(records):
    """A Read Attributes Response payload from records ({attribute, status, type,
    value}), e.g. what a meter encrypts."""
    return _build(READ_ATTRIBUTES_RESPONSE, dict(records=records), "Read Attributes Response")


def read_attributes(attributes):
    """A Read Attributes payload: the attribute ids (u16 little-endian)."""
    return _build(READ_ATTRIBUTES, dict(attributes=list(attributes)), "Read Attributes")
