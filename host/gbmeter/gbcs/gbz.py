"""GSME content: GBZ components carrying ZCL frames, and the Prepayment cluster's
payloads (NOTES 3). ZCL fields are little-endian; the GBZ framing is big-endian."""

from construct import Const, GreedyBytes, Int8ub, Int16ub, Int16ul, Int32sl, Int32ul, Prefixed

from gbmeter.gbcs.fields import _build, _parse_exact, items, plain, table

CLUSTER_PREPAYMENT = 0x0705
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
    # general commands, either direction, any cluster
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
    known = (ZCL_PAYLOADS.get((frame_control & (ZCL_FC_TYPE | ZCL_FC_SERVER), cluster_id, command_id))
             or ZCL_PAYLOADS.get((frame_control & ZCL_FC_TYPE, None, command_id)))
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
