"""The DCC's transform: a ServiceRequest -> PRECOMMAND (the unsigned General-Signing
APDU of NOTES 2.1), encoded with gbmeter.gbcs.codec.

Facts read off the RTDS PRECOMMANDs (../shared/gbcs/rtds) and kept here:
- header: CRA 01, the request's counter, originator and target, date-time absent,
  the use case's message code (firmware/usecases.py);
- ZCL issuer event id (Change Debt, Credit Adjustment) = the DCC's clock in UTC
  seconds since 2000-01-01, the same in every component (2015-01-01T00:00:00Z ->
  473385600, on the wire 80 4A 37 1C); recovery start / collection times and the
  Credit Adjustment start time are 0 ("now"); Select Emergency Credit carries issue
  time 0; the GCS04 payment debt component carries frequency 01 (daily), which
  DUIS does not give;
- DLMS invoke id = 20 00 00 00 | counter's low 24 bits: the long-invoke-id-and-
  priority whose processing-option bit says "break on error" (NOTES 4: nothing after
  a failed action is executed) and whose invoke id follows the counter.
- SR 1.6 / 4.3 (NOTES 7): the reads are fixed requests (ECS19 get_protected_attributes
  with protection parameters naming the counter, originator and target; GCS14 Read
  Attributes of Price 0617, 0616 and Prepayment 0005, 0002, 0001, 0231, 0211, 0221).
  The payment modes carry what RTDS shows: ECS02 / ECS03 the account mode, the
  credit-charge configuration and "now" (0000000000000000008000FF) as the activation
  time, ECS03 also the disablement threshold and its date-time; GCS02 / GCS03 the
  payment control configuration 0C94 (credit) or 0897 (prepayment) and the cut off
  value (FFFFFFFF for credit, the disablement threshold for prepayment). RTDS shows
  one set of SuspendDebtDisabled / SuspendDebtEmergency per device (ESME true/true,
  GSME false/false) and the excerpt has nothing that says how the others are encoded:
  those two are what the DCC builds here, and any other is refused as not supported
  (PREPAYMENT_SUSPEND_DEBT).
"""

import datetime

from gbmeter.gbcs import codec
from gbmeter.errors import UserError

INVOKE_BREAK_ON_ERROR = 0x20000000
INVOKE_ID_MASK = 0x00FFFFFF

# NOTES 4: Charge objects (class 113) per debt register, Credit objects (class 112)
CHARGE_OBIS = {"time1": "0-0:19.20.1.255", "time2": "0-0:19.20.2.255",
               "payment": "0-0:19.20.3.255"}
CREDIT_METER_BALANCE = "0-0:19.10.0.255"
CREDIT_EMERGENCY = "0-0:19.10.1.255"
CREDIT_ACCUMULATED_DEBT = "0-0:19.10.2.255"
CHARGE_UNIT_CHARGE_PASSIVE = 6
CHARGE_PERIOD = 8
CHARGE_PROPORTION = 13
CHARGE_ACTIVATE_PASSIVE = 2
CHARGE_UPDATE_TOTAL = 4
CHARGE_SET_TOTAL = 5
CREDIT_SET_AMOUNT = 2
CREDIT_INVOKE = 3

# NOTES 7: SR 1.6 / 4.3 objects
ACCOUNT_OBIS = "0-1:19.0.0.255"
ACCOUNT_MODE_AND_STATUS = 2
ACCOUNT_CREDIT_CHARGE_CONFIGURATION = 11
ACCOUNT_ACTIVATION_TIME = 13
ACCOUNT_MODE = {"credit": 1, "prepayment": 2}
ACCOUNT_STATUS_ACTIVE = 1
THRESHOLD_OBIS = "0-0:94.44.128.22"     # class 9000
THRESHOLD_VALUE = 4
THRESHOLD_DATE_TIME = 6
NOW_DATE_TIME = bytes.fromhex("0000000000000000008000FF")   # "now": an immediate change
DATA_PROTECTION_OBIS = "0-0:43.2.1.255"
GET_PROTECTED_ATTRIBUTES = 1
PREPAYMENT_VALUES_OBIS = "0-0:94.44.34.30"   # Data (class 1), attribute 2
PROTECTION_AUTHENTICATED_ENCRYPTED = 2
KEY_INFO_AGREED_KEY = 2
TRANSACTION_ID_PREFIX = b"\x04"
COLLECT_ALL = {"bits": 3, "value": b"\xe0"}      # collection_configuration 111
COLLECT_NOT_FRIENDLY = {"bits": 3, "value": b"\xc0"}   # 110
# (credit e, charge e, collection bits) of 0-0:19.10.e.255 / 0-0:19.20.e.255, as RTDS
CREDIT_CHARGES = {
    "credit": ((0, 0, COLLECT_ALL), (0, 4, COLLECT_ALL)),
    "prepayment": ((0, 0, COLLECT_ALL), (0, 4, COLLECT_ALL), (0, 1, COLLECT_NOT_FRIENDLY),
                   (0, 2, COLLECT_NOT_FRIENDLY), (0, 3, COLLECT_ALL), (1, 3, COLLECT_ALL),
                   (1, 0, COLLECT_ALL), (1, 4, COLLECT_ALL), (1, 1, COLLECT_NOT_FRIENDLY),
                   (1, 2, COLLECT_NOT_FRIENDLY), (2, 4, COLLECT_ALL), (2, 1, COLLECT_ALL),
                   (2, 2, COLLECT_ALL)),
}
# ZCL Payment Control Configuration per mode, and the cut off value in credit mode
PAYMENT_CONTROL_CONFIGURATION = {"credit": 0x0C94, "prepayment": 0x0897}
CREDIT_CUT_OFF_VALUE = -1
# the (SuspendDebtDisabled, SuspendDebtEmergency) the DCC builds, per device (RTDS)
PREPAYMENT_SUSPEND_DEBT = {"esme": (True, True), "gsme": (False, False)}
GCS14_READS = ((0x0700, (0x0617, 0x0616)),
               (0x0705, (0x0005, 0x0002, 0x0001, 0x0231, 0x0211, 0x0221)))

# NOTES 3: Change Debt per register
RECOVERY_METHOD = {"time1": 0, "time2": 0, "payment": 1}    # 0 time-based, 1 payment
AMOUNT_TYPE_ABSOLUTE = {"time1": 0, "time2": 2, "payment": 4}   # +1: incremental
ZCL_FREQUENCY = {"HOURLY": 0, "DAILY": 1}
PAYMENT_DEBT_FREQUENCY = ZCL_FREQUENCY["DAILY"]             # GCS04, as in RTDS
PERIOD_SECONDS = {"HOURLY": 3600, "DAILY": 86400}           # DLMS Charge period
CREDIT_ADJUSTMENT_ABSOLUTE = 1

UTC = datetime.timezone.utc
GBCS_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=UTC)


def parse_now(text=None):
    """An aware UTC datetime from ISO 8601 text (a time without offset is UTC);
    None -> the current time."""
    if text is None:
        return datetime.datetime.now(UTC).replace(microsecond=0)
    if isinstance(text, datetime.datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    try:
        t = datetime.datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise UserError(f"--now: {text!r} is not an ISO 8601 time such as "
                        "2015-01-01T00:00:00Z") from None
    t = t if t.tzinfo else t.replace(tzinfo=UTC)
    return t.astimezone(UTC)


def gbcs_seconds(now):
    """UTC seconds since 2000-01-01 (what the meters count in)."""
    s = int((parse_now(now) - GBCS_EPOCH).total_seconds())
    if not 0 <= s <= 0xFFFFFFFF:
        raise UserError(f"--now: {parse_now(now).isoformat()} is outside 2000..2136, "
                        "which GBCS times cannot hold")
    return s


def iso(now):
    return parse_now(now).strftime("%Y-%m-%dT%H:%M:%SZ")


def invoke_id(counter):
    return INVOKE_BREAK_ON_ERROR | (counter & INVOKE_ID_MASK)


# --- ESME: DLMS Access-Request ---------------------------------------------------------

def _unit_charge(rate, price_scale):
    """Charge unit_charge_passive: scaling {commodity 0, price}, no commodity
    reference, a one-entry charge table {index "", charge_per_unit}."""
    return codec.axdr("structure", [
        codec.axdr("structure", [codec.axdr("integer", 0), codec.axdr("integer", price_scale)]),
        codec.axdr("structure", [codec.axdr("long-unsigned", 0),
                                 codec.axdr("octet-string", bytes(6)),
                                 codec.axdr("integer", 0)]),
        codec.axdr("array", [codec.axdr("structure", [codec.axdr("octet-string", b""),
                                                      codec.axdr("long", rate)])]),
    ])


def _access_request(req, specs_and_data):
    specs = [s for s, _ in specs_and_data]
    data = [d for _, d in specs_and_data]
    return codec.build_access_request(invoke_id(req.counter), specs, data)


def _charge(kind, register, member):
    return (kind, codec.CLASS_CHARGE, CHARGE_OBIS[register], member)


def _credit(kind, obis_text, member):
    return (kind, codec.CLASS_CREDIT, obis_text, member)


def _ecs07(req, t):
    """Manage Debt: the order of the RTDS Command (passive rates, proportion,
    periods, activate the rates, then add the three amounts)."""
    f = req.fields
    r1, r2 = f["recovery1"], f["recovery2"]
    return _access_request(req, [
        (_charge("set", "time1", CHARGE_UNIT_CHARGE_PASSIVE),
         _unit_charge(r1["rate"], r1["price_scale"])),
        (_charge("set", "time2", CHARGE_UNIT_CHARGE_PASSIVE),
         _unit_charge(r2["rate"], r2["price_scale"])),
        (_charge("set", "payment", CHARGE_PROPORTION),
         codec.axdr("long-unsigned", f["per_payment"])),
        (_charge("set", "time1", CHARGE_PERIOD),
         codec.axdr("double-long-unsigned", PERIOD_SECONDS[r1["period"]])),
        (_charge("set", "time2", CHARGE_PERIOD),
         codec.axdr("double-long-unsigned", PERIOD_SECONDS[r2["period"]])),
        (_charge("action", "time1", CHARGE_ACTIVATE_PASSIVE), codec.axdr("integer", 0)),
        (_charge("action", "time2", CHARGE_ACTIVATE_PASSIVE), codec.axdr("integer", 0)),
        (_charge("action", "payment", CHARGE_UPDATE_TOTAL),
         codec.axdr("double-long", f["payment"])),
        (_charge("action", "time1", CHARGE_UPDATE_TOTAL), codec.axdr("double-long", f["time1"])),
        (_charge("action", "time2", CHARGE_UPDATE_TOTAL), codec.axdr("double-long", f["time2"])),
    ])


def _ecs07a(req, t):
    """Reset Debt Register (NOTES 5): set_total_amount_remaining 0 on one Charge."""
    return _access_request(req, [
        (_charge("action", req.fields["register"], CHARGE_SET_TOTAL), codec.axdr("double-long", 0)),
    ])


def _ecs04b(req, t):
    """Reset Meter Balance: meter balance, emergency credit and accumulated debt set
    to 0."""
    return _access_request(req, [
        (_credit("action", o, CREDIT_SET_AMOUNT), codec.axdr("double-long", 0))
        for o in (CREDIT_METER_BALANCE, CREDIT_EMERGENCY, CREDIT_ACCUMULATED_DEBT)
    ])


def _ecs09(req, t):
    return _access_request(req, [
        (_credit("action", CREDIT_EMERGENCY, CREDIT_INVOKE), codec.axdr("integer", 0)),
    ])


# --- GSME: GBZ / ZCL Prepayment ------------------------------------------------------------

def _change_debt(t, register, amount, absolute, rate=0, frequency=0, per_payment=0):
    return (codec.CLUSTER_PREPAYMENT, codec.ZCL_CMD_CHANGE_DEBT, codec.change_debt(
        issuer_event_id=t, debt_amount=amount, debt_recovery_method=RECOVERY_METHOD[register],
        debt_amount_type=AMOUNT_TYPE_ABSOLUTE[register] + (0 if absolute else 1),
        recovery_frequency=frequency, recovery_amount=rate,
        recovery_balance_percentage=per_payment))


def _gcs04(req, t):
    """Manage Debt: one incremental Change Debt per register. DUIS gives the payment
    debt no period; the DCC puts daily (01) there, as the RTDS Command shows."""
    f = req.fields
    r1, r2 = f["recovery1"], f["recovery2"]
    return codec.build_gbz([
        _change_debt(t, "time1", f["time1"], False, r1["rate"], ZCL_FREQUENCY[r1["period"]]),
        _change_debt(t, "time2", f["time2"], False, r2["rate"], ZCL_FREQUENCY[r2["period"]]),
        _change_debt(t, "payment", f["payment"], False, frequency=PAYMENT_DEBT_FREQUENCY,
                     per_payment=f["per_payment"]),
    ])


def _gcs04a(req, t):
    """Reset Debt Register (NOTES 5): absolute type of that register, amount 0, the
    register's recovery method, other recovery fields 0."""
    return codec.build_gbz([_change_debt(t, req.fields["register"], 0, True)])


def _gcs40b(req, t):
    return codec.build_gbz([(codec.CLUSTER_PREPAYMENT, codec.ZCL_CMD_CREDIT_ADJUSTMENT,
                             codec.credit_adjustment(t, 0, CREDIT_ADJUSTMENT_ABSOLUTE, 0))])


def _gcs06(req, t):
    return codec.build_gbz([(codec.CLUSTER_PREPAYMENT, codec.ZCL_CMD_SELECT_EMERGENCY_CREDIT,
                             codec.select_emergency_credit(0, 0))])


# --- SR 1.6 payment mode, SR 4.3 the prepayment registers read (NOTES 7) ----------------

def _suspend_debt(req):
    """Refuse a prepayment request whose suspend-debt flags the DCC cannot encode."""
    f = req.fields
    want = PREPAYMENT_SUSPEND_DEBT[req.device]
    got = (f["suspend_debt_disabled"], f["suspend_debt_emergency"])
    if got != want:
        words = lambda v: "/".join("true" if x else "false" for x in v)   # noqa: E731
        raise UserError(f"{req.use_case}: SuspendDebtDisabled/SuspendDebtEmergency "
                        f"{words(got)} is not supported: the DCC here builds the "
                        f"{req.device.upper()}'s as RTDS shows them, {words(want)}")


def _ecs02_03(req, t):
    """Set ESME Payment Mode: account mode and status, (prepayment) the disablement
    threshold, the credit-charge configuration, (prepayment) the threshold's
    date-time, the activation time "now"."""
    mode = req.fields["mode"]
    acct = lambda member: ("set", codec.CLASS_ACCOUNT, ACCOUNT_OBIS, member)   # noqa: E731
    thr = lambda member: ("set", codec.CLASS_GBCS_9000, THRESHOLD_OBIS, member)   # noqa: E731
    config = codec.axdr("array", [codec.axdr("structure", [
        codec.axdr("octet-string", codec.obis(f"0-0:19.10.{c}.255")),
        codec.axdr("octet-string", codec.obis(f"0-0:19.20.{h}.255")),
        codec.axdr("bit-string", bits)]) for c, h, bits in CREDIT_CHARGES[mode]])
    now = codec.axdr("octet-string", NOW_DATE_TIME)
    items = [(acct(ACCOUNT_MODE_AND_STATUS), codec.axdr("structure", [
        codec.axdr("enum", ACCOUNT_MODE[mode]), codec.axdr("enum", ACCOUNT_STATUS_ACTIVE)]))]
    if mode == "prepayment":
        _suspend_debt(req)
        items.append((thr(THRESHOLD_VALUE),
                      codec.axdr("double-long", req.fields["disablement_threshold"])))
    items.append((acct(ACCOUNT_CREDIT_CHARGE_CONFIGURATION), config))
    if mode == "prepayment":
        items.append((thr(THRESHOLD_DATE_TIME), now))
    items.append((acct(ACCOUNT_ACTIVATION_TIME), now))
    return _access_request(req, items)


def _gcs02_03(req, t):
    """Set GSME Payment Mode: one Change Payment Mode, immediate (implementation time
    0), issuer event id from the clock."""
    mode = req.fields["mode"]
    if mode == "prepayment":
        _suspend_debt(req)
        cut_off = req.fields["disablement_threshold"]
    else:
        cut_off = CREDIT_CUT_OFF_VALUE
    return codec.build_gbz([(codec.CLUSTER_PREPAYMENT, codec.ZCL_CMD_CHANGE_PAYMENT_MODE,
                             codec.change_payment_mode(0, t, 0, PAYMENT_CONTROL_CONFIGURATION[mode],
                                                       cut_off))])


def protection_parameters(counter, originator, recipient):
    """get_protected_attributes' protection parameters of a message from originator to
    recipient: authenticated and encrypted, transaction id 04 || counter, no
    date-time, an agreed key (ECDH, key parameters 02)."""
    return codec.axdr("array", [codec.axdr("structure", [
        codec.axdr("enum", PROTECTION_AUTHENTICATED_ENCRYPTED),
        codec.axdr("structure", [
            codec.axdr("octet-string", TRANSACTION_ID_PREFIX + int(counter).to_bytes(8, "big")),
            codec.axdr("octet-string", bytes(originator)),
            codec.axdr("octet-string", bytes(recipient)),
            codec.axdr("octet-string", b""),
            codec.axdr("structure", [codec.axdr("enum", KEY_INFO_AGREED_KEY),
                                     codec.axdr("structure", [codec.axdr("octet-string", b"\x02"),
                                                              codec.axdr("octet-string", b"")])]),
        ])])])


def _ecs19(req, t):
    """Read ESME Prepayment Registers: get_protected_attributes of the prepayment
    values object, its Response authenticated and encrypted for the originator."""
    objects = codec.axdr("array", [codec.axdr("structure", [
        codec.axdr("long-unsigned", codec.CLASS_DATA),
        codec.axdr("octet-string", codec.obis(PREPAYMENT_VALUES_OBIS)),
        codec.axdr("integer", 2), codec.axdr("long-unsigned", 0),
        codec.axdr("structure", [codec.axdr("enum", 0), codec.axdr("null")])])])
    return _access_request(req, [
        (("action", codec.CLASS_DATA_PROTECTION, DATA_PROTECTION_OBIS, GET_PROTECTED_ATTRIBUTES),
         codec.axdr("structure", [objects, protection_parameters(
             req.counter, req.originator, req.target)])),
    ])


def _gcs14(req, t):
    """Read GSME Prepayment Registers: Read Attributes on Price and Prepayment."""
    return codec.build_gbz([(cluster, codec.ZCL_CMD_READ_ATTRIBUTES, codec.read_attributes(a))
                            for cluster, a in GCS14_READS], frame_control=codec.ZCL_FC_GENERAL)


CONTENT = {
    "ECS07": _ecs07, "ECS07a": _ecs07a, "ECS04b": _ecs04b, "ECS09": _ecs09,
    "GCS04": _gcs04, "GCS04a": _gcs04a, "GCS40b": _gcs40b, "GCS06": _gcs06,
    "ECS02": _ecs02_03, "ECS03": _ecs02_03, "GCS02": _gcs02_03, "GCS03": _gcs02_03,
    "ECS19": _ecs19, "GCS14": _gcs14,
}


def content(request, now=None, seconds=None):
    """The Command content for the request at time `now` (datetime, ISO text or
    None for the current time), or at `seconds` since 2000-01-01 when given."""
    build = CONTENT.get(request.use_case)
    if build is None:
        raise UserError(f"the DCC has no transform for use case {request.use_case}")
    t = gbcs_seconds(now) if seconds is None else seconds
    try:
        return build(request, t)
    except ValueError as e:
        raise UserError(f"{request.use_case}: {e}") from None


def transform(request, now=None):
    """The PRECOMMAND the DCC builds from a ServiceRequest."""
    return codec.build_apdu(codec.CRA_COMMAND, request.counter, request.originator,
                            request.target, request.message_code, content(request, now))
