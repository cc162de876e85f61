"""DUIS-style Service Requests: read `sr:Request` XML into a neutral ServiceRequest.

(About 500 lines on purpose: the table of supported Service Requests, `_services()`,
and one reader per body sit together, so that adding a Service Request is one row and
one reader in one file; writing requests is gbmeter.dcc.srxml's.)

A request looks like the ones behind the RTDS Commands (../shared/gbcs/duis):

    <sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway">
      <sr:Header>
        <sr:RequestID>90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:1000</sr:RequestID>
        <sr:CommandVariant>4</sr:CommandVariant>                  (optional)
        <sr:ServiceReference>2.3</sr:ServiceReference>
        <sr:ServiceReferenceVariant>2.3</sr:ServiceReferenceVariant>
      </sr:Header>
      <sr:Body><sr:UpdateDebt>...</sr:UpdateDebt></sr:Body>
      <ds:Signature>...</ds:Signature>                             (optional, ignored)
    </sr:Request>

The RequestID is `originator:target:counter`: the User's system title, the target
device's, and the User's counter for this request (a decimal integer).

Services read here (SERVICES below): Update Debt 2.3 (ECS07 / GCS04), Update Meter
Balance 1.5 with ResetMeterBalance (ECS04b in credit mode / GCS40b in prepayment
mode, the RTDS pairs), Activate Emergency Credit 2.5 (ECS09 / GCS06), Update Payment
Mode 1.6 (ECS02 / GCS02 to credit, ECS03 / GCS03 to prepayment), Read Instantaneous
Prepay Values 4.3 (ECS19 / GCS14, non-critical: CommandVariant 1) and the
provisional Reset Debt Register of NOTES section 5 (ECS07a / GCS04a), whose names
are in RESET_DEBT_REGISTER: the one place to change them. Future-dated requests
(ExecutionDateTime) are not supported.

ESME or GSME: DUIS uses one ServiceReferenceVariant for both devices and the DCC
looks the target up in its Smart Metering Inventory. Here the device is, in order:
the `device` argument (`--device esme|gsme`); the body where it names the fuel
(ElecDebtRecovery* / GasDebtRecovery*); the `inventory` mapping (system title ->
"esme"/"gsme"), whose default holds the two ZAZ1 test meters of NOTES 1. Sources
that disagree are an error, and so is a target none of them knows.

Every problem raises gbmeter.errors.UserError naming the field; nothing is sent.

Public API:
    parse_request(xml, device=None, inventory=None, source=None) -> ServiceRequest
    read_request(path_or_dash, device=None, inventory=None) -> ServiceRequest
    request_id(originator, target, counter) -> "90-B3-...:00-DB-...:1000"

Writing requests as a User does is gbmeter.dcc.srxml's.
"""

import re
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from gbmeter.gbcs import codec
from gbmeter.errors import UserError

# --- the provisional Reset Debt Register request (NOTES 5): change it here only ----

RESET_DEBT_REGISTER = {
    "service_reference": "2.3",
    "service_reference_variant": "2.3.1",
    "body": "ResetDebtRegister",          # the element inside sr:Body
    "register": "DebtRegister",           # its one child: which register
    # DebtRegister value -> register (the names of DUIS Update Debt)
    "registers": {"TimeDebtRegister1": "time1", "TimeDebtRegister2": "time2",
                  "PaymentDebtRegister": "payment"},
    "use_cases": {"esme": "ECS07a", "gsme": "GCS04a"},
}

NS = "http://www.dccinterface.co.uk/ServiceUserGateway"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"

# The test meters of NOTES 1 (public ZAZ1 test PKI): the DCC's inventory default.
# 00db1234567890a3 is the third, the GSME of RTDS GCS14 (its certificates are in
# ../shared/gbcs/keys).
DEFAULT_INVENTORY = {"00db1234567890a0": "esme", "00db1234567890a1": "gsme",
                     "00db1234567890a3": "gsme"}

DEVICES = ("esme", "gsme")
REGISTERS = ("time1", "time2", "payment")   # as in firmware/meter.py
REGISTER_TEXT = {"time1": "time debt 1", "time2": "time debt 2", "payment": "payment debt"}
PERIODS = ("HOURLY", "DAILY")               # DUIS DebtRecoveryRatePeriod

INT32 = (-0x80000000, 0x7FFFFFFF)
UINT16 = (0, 0xFFFF)
INT16 = (-0x8000, 0x7FFF)
INT8 = (-0x80, 0x7F)
MAX_COUNTER = 0xFFFFFFFFFFFFFFFF            # 8-byte originator counter

REQUEST_ID = re.compile(r"^\s*([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}):"
                        r"([0-9A-Fa-f]{2}(?:-[0-9A-Fa-f]{2}){7}):(.*?)\s*$")
HEADER_FIELDS = ("RequestID", "CommandVariant", "ServiceReference", "ServiceReferenceVariant")


def register_name(register):
    """time1 -> the DUIS name (TimeDebtRegister1)."""
    for name, reg in RESET_DEBT_REGISTER["registers"].items():
        if reg == register:
            return name
    return register


@dataclass(frozen=True)
class ServiceRequest:
    """What the DCC needs from a Service Request, free of XML.

    fields, by service:
      update_debt: time1, time2, payment (incremental amounts), per_payment
          (DebtRecoveryPerPayment), recovery1 / recovery2 = {rate, period
          ("HOURLY"/"DAILY"), price_scale (ESME only, else None)}
      reset_debt_register: register ("time1", "time2" or "payment")
      update_meter_balance: mode ("credit" or "prepayment"), action ("reset")
      activate_emergency_credit: none
      update_payment_mode: mode ("credit" or "prepayment"); for prepayment also
          suspend_debt_disabled, suspend_debt_emergency (booleans) and
          disablement_threshold
      read_prepayment_registers: none
    """
    originator: bytes
    target: bytes
    counter: int
    service_reference: str
    service_reference_variant: str
    service: str
    device: str
    use_case: str
    message_code: int
    fields: dict = field(default_factory=dict)
    command_variant: int = None
    source: str = None

    @property
    def request_id(self):
        return request_id(self.originator, self.target, self.counter)

    def summary(self):
        return {
            "request_id": self.request_id,
            "originator": self.originator.hex().upper(),
            "target": self.target.hex().upper(),
            "counter": self.counter,
            "service_reference": self.service_reference,
            "service_reference_variant": self.service_reference_variant,
            "command_variant": self.command_variant,
            "service": self.service,
            "device": self.device,
            "use_case": self.use_case,
            "message_code": f"{self.message_code:04X}",
            "fields": self.fields,
        }


def _eui_text(title):
    return "-".join(f"{b:02X}" for b in bytes(title))


def request_id(originator, target, counter):
    return f"{_eui_text(originator)}:{_eui_text(target)}:{counter}"


# --- reading elements --------------------------------------------------------------

def _q(name):
    return f"{{{NS}}}{name}"


def _local(el):
    """'sr:Name' for our namespace, else the tag as written ({ns}name)."""
    if el.tag.startswith(f"{{{NS}}}"):
        return el.tag[len(NS) + 2:]
    return None


def _label(tag):
    if tag.startswith(f"{{{NS}}}"):
        return "sr:" + tag[len(NS) + 2:]
    if tag.startswith(f"{{{DS_NS}}}"):
        return "ds:" + tag[len(DS_NS) + 2:]
    return tag


def _children(el, path, allowed):
    """{name: element} of el's children; every child must be an sr: element in
    `allowed` and appear once."""
    out = {}
    for c in el:
        if not isinstance(c.tag, str):      # comments, processing instructions
            continue
        name = _local(c)
        if name is None or name not in allowed:
            raise UserError(f"{path}: unexpected field {_label(c.tag)} (expected "
                            f"{', '.join('sr:' + a for a in allowed) or 'no fields'})")
        if name in out:
            raise UserError(f"{path}/sr:{name}: appears more than once")
        out[name] = c
    _no_text(el, path, allow_text=False)
    return out


def _no_text(el, path, allow_text=False):
    if not allow_text and el.text and el.text.strip():
        raise UserError(f"{path}: unexpected text {el.text.strip()!r}")
    for c in el:
        if c.tail and c.tail.strip():
            raise UserError(f"{path}: unexpected text {c.tail.strip()!r}")


def _require(found, path, *names):
    for n in names:
        if n not in found:
            raise UserError(f"{path}: missing field sr:{n}")


def _text(el, path):
    if len([c for c in el if isinstance(c.tag, str)]):
        raise UserError(f"{path}: expected a value, found elements")
    text = (el.text or "").strip()
    if not text:
        raise UserError(f"{path}: empty value")
    return text


def _int(el, path, bounds):
    text = _text(el, path)
    if not re.fullmatch(r"[+-]?\d+", text):
        raise UserError(f"{path}: {text!r} is not a whole number")
    value = int(text)
    lo, hi = bounds
    if not lo <= value <= hi:
        raise UserError(f"{path}: {value} is out of range {lo}..{hi}")
    return value


def _choice(el, path, options):
    text = _text(el, path)
    if text not in options:
        raise UserError(f"{path}: {text!r} is not one of {', '.join(options)}")
    return text


def _empty(el, path):
    _children(el, path, ())


# --- the services ------------------------------------------------------------------

def _update_debt(body, path):
    """Update Debt (2.3): three incremental amounts, the payment-based recovery share
    and two time-based recovery settings, Elec* (ESME) or Gas* (GSME)."""
    common = ("TimeDebtRegister1", "TimeDebtRegister2", "PaymentDebtRegister",
              "DebtRecoveryPerPayment")
    elec = ("ElecDebtRecovery1", "ElecDebtRecovery2")
    gas = ("GasDebtRecovery1", "GasDebtRecovery2")
    found = _children(body, path, common + elec + gas)
    has_elec = [n for n in elec if n in found]
    has_gas = [n for n in gas if n in found]
    if has_elec and has_gas:
        raise UserError(f"{path}: both sr:{has_elec[0]} (ESME) and sr:{has_gas[0]} (GSME)")
    device = "esme" if has_elec else "gsme" if has_gas else None
    recs = elec if device == "esme" else gas
    _require(found, path, *common)
    if device is None:
        raise UserError(f"{path}: missing field sr:ElecDebtRecovery1 (ESME) or "
                        "sr:GasDebtRecovery1 (GSME)")
    _require(found, path, *recs)
    fields = {
        "time1": _int(found["TimeDebtRegister1"], f"{path}/sr:TimeDebtRegister1", INT32),
        "time2": _int(found["TimeDebtRegister2"], f"{path}/sr:TimeDebtRegister2", INT32),
        "payment": _int(found["PaymentDebtRegister"], f"{path}/sr:PaymentDebtRegister", INT32),
        "per_payment": _int(found["DebtRecoveryPerPayment"],
                            f"{path}/sr:DebtRecoveryPerPayment", UINT16),
    }
    for i, name in enumerate(recs, 1):
        rpath = f"{path}/sr:{name}"
        if device == "esme":
            # DLMS Charge: charge_per_unit is a long, the price scale an integer
            rf = _children(found[name], rpath, ("DebtRecoveryRate", "DebtRecoveryRatePriceScale",
                                                "DebtRecoveryRatePeriod"))
            _require(rf, rpath, "DebtRecoveryRate", "DebtRecoveryRatePriceScale",
                     "DebtRecoveryRatePeriod")
            rate = _int(rf["DebtRecoveryRate"], f"{rpath}/sr:DebtRecoveryRate", INT16)
            scale = _int(rf["DebtRecoveryRatePriceScale"],
                         f"{rpath}/sr:DebtRecoveryRatePriceScale", INT8)
        else:
            rf = _children(found[name], rpath, ("DebtRecoveryRate", "DebtRecoveryRatePeriod"))
            _require(rf, rpath, "DebtRecoveryRate", "DebtRecoveryRatePeriod")
            rate = _int(rf["DebtRecoveryRate"], f"{rpath}/sr:DebtRecoveryRate", INT32)
            scale = None
        period = _choice(rf["DebtRecoveryRatePeriod"], f"{rpath}/sr:DebtRecoveryRatePeriod",
                         PERIODS)
        fields[f"recovery{i}"] = {"rate": rate, "period": period, "price_scale": scale}
    return fields, device


def _reset_debt_register(body, path):
    cfg = RESET_DEBT_REGISTER
    child = cfg["register"]
    regs = [c for c in body if isinstance(c.tag, str) and _local(c) == child]
    if len(regs) > 1:
        raise UserError(f"{path}/sr:{child}: {len(regs)} registers in one request; a reset "
                        "names exactly one")
    found = _children(body, path, (child,))
    _require(found, path, child)
    value = _choice(found[child], f"{path}/sr:{child}", tuple(cfg["registers"]))
    return {"register": cfg["registers"][value]}, None


def _update_meter_balance(body, path):
    """Only ResetMeterBalance, in the modes the RTDS pairs use: CreditMode for the
    ESME (ECS04b), PrepaymentMode for the GSME (GCS40b)."""
    found = _children(body, path, ("CreditMode", "PrepaymentMode"))
    if len(found) != 1:
        raise UserError(f"{path}: expected one of sr:CreditMode, sr:PrepaymentMode")
    (mode_name, mode_el), = found.items()
    mpath = f"{path}/sr:{mode_name}"
    inner = _children(mode_el, mpath, ("ResetMeterBalance", "AdjustMeterBalance"))
    if "AdjustMeterBalance" in inner:
        raise UserError(f"{mpath}/sr:AdjustMeterBalance: not supported (only "
                        "sr:ResetMeterBalance)")
    _require(inner, mpath, "ResetMeterBalance")
    _empty(inner["ResetMeterBalance"], f"{mpath}/sr:ResetMeterBalance")
    mode = "credit" if mode_name == "CreditMode" else "prepayment"
    return {"mode": mode, "action": "reset"}, None


def _activate_emergency_credit(body, path):
    _empty(body, path)
    return {}, None


def _bool(el, path):
    text = _text(el, path)
    if text not in ("true", "false", "1", "0"):
        raise UserError(f"{path}: {text!r} is not true or false")
    return text in ("true", "1")


def _not_future_dated(found, path):
    if "ExecutionDateTime" in found:
        raise UserError(f"{path}/sr:ExecutionDateTime: future-dated requests are not "
                        "supported (the meters here act on Commands at once)")


def _update_payment_mode(body, path):
    """Update Payment Mode (1.6): sr:Credit, or sr:Prepayment with the suspend-debt
    flags and the disablement threshold."""
    found = _children(body, path, ("ExecutionDateTime", "Credit", "Prepayment"))
    _not_future_dated(found, path)
    if len(found) != 1:
        raise UserError(f"{path}: expected one of sr:Credit, sr:Prepayment")
    (name, el), = found.items()
    mpath = f"{path}/sr:{name}"
    if name == "Credit":
        _empty(el, mpath)
        return {"mode": "credit"}, None
    f = _children(el, mpath, ("SuspendDebtDisabled", "SuspendDebtEmergency",
                              "DisablementThreshold"))
    _require(f, mpath, "SuspendDebtDisabled", "SuspendDebtEmergency", "DisablementThreshold")
    return {"mode": "prepayment",
            "suspend_debt_disabled": _bool(f["SuspendDebtDisabled"],
                                           f"{mpath}/sr:SuspendDebtDisabled"),
            "suspend_debt_emergency": _bool(f["SuspendDebtEmergency"],
                                            f"{mpath}/sr:SuspendDebtEmergency"),
            "disablement_threshold": _int(f["DisablementThreshold"],
                                          f"{mpath}/sr:DisablementThreshold", INT32)}, None


def _read_prepayment_registers(body, path):
    """Read Instantaneous Prepay Values (4.3): no fields but the optional
    ExecutionDateTime, which is not supported."""
    _not_future_dated(_children(body, path, ("ExecutionDateTime",)), path)
    return {}, None


def _services():
    """(ServiceReference, ServiceReferenceVariant) -> (service, body element, reader,
    {device: use case})."""
    r = RESET_DEBT_REGISTER
    return {
        ("2.3", "2.3"): ("update_debt", "UpdateDebt", _update_debt,
                         {"esme": "ECS07", "gsme": "GCS04"}),
        (r["service_reference"], r["service_reference_variant"]):
            ("reset_debt_register", r["body"], _reset_debt_register, r["use_cases"]),
        ("1.5", "1.5"): ("update_meter_balance", "UpdateMeterBalance", _update_meter_balance,
                         {"esme": "ECS04b", "gsme": "GCS40b"}),
        ("2.5", "2.5"): ("activate_emergency_credit", "ActivateEmergencyCredit",
                         _activate_emergency_credit, {"esme": "ECS09", "gsme": "GCS06"}),
        # the use case follows the mode asked for
        ("1.6", "1.6"): ("update_payment_mode", "UpdatePaymentMode", _update_payment_mode,
                         {"esme": {"credit": "ECS02", "prepayment": "ECS03"},
                          "gsme": {"credit": "GCS02", "prepayment": "GCS03"}}),
        ("4.3", "4.3"): ("read_prepayment_registers", "ReadInstantaneousPrepayValues",
                         _read_prepayment_registers, {"esme": "ECS19", "gsme": "GCS14"}),
    }


# the mode each device's ResetMeterBalance runs in (the RTDS pairs)
METER_BALANCE_MODE = {"esme": "credit", "gsme": "prepayment"}


def _parse_request_id(el):
    path = "sr:Header/sr:RequestID"
    text = _text(el, path)
    m = REQUEST_ID.match(text)
    if not m:
        raise UserError(f"{path}: {text!r} is not originator:target:counter (e.g. "
                        "90-B3-D5-1F-30-01-00-00:00-DB-12-34-56-78-90-A1:1000)")
    orig, target, counter = m.groups()
    if not re.fullmatch(r"\d+", counter):
        raise UserError(f"{path}: counter {counter!r} is not a number")
    counter = int(counter)
    if counter > MAX_COUNTER:
        raise UserError(f"{path}: counter {counter} does not fit 8 bytes")
    return (bytes.fromhex(orig.replace("-", "")), bytes.fromhex(target.replace("-", "")),
            counter)


def _resolve_device(device, body_device, target, inventory):
    if device is not None and device not in DEVICES:
        raise UserError(f"device {device!r} is neither esme nor gsme")
    inv = DEFAULT_INVENTORY if inventory is None else inventory
    listed = inv.get(target.hex())
    sources = [(d, what) for d, what in ((device, "--device"), (body_device, "the body"),
                                         (listed, "the inventory")) if d is not None]
    if not sources:
        raise UserError(f"sr:RequestID: cannot tell whether target {_eui_text(target)} is an "
                        "ESME or a GSME; give --device esme|gsme or list it in the DCC "
                        "inventory")
    first, what = sources[0]
    for other, other_what in sources[1:]:
        if other != first:
            raise UserError(f"device: {what} says {first.upper()} but {other_what} says "
                            f"{other.upper()} for target {_eui_text(target)}")
    return first


def parse_request(xml, device=None, inventory=None, source=None):
    """A ServiceRequest from DUIS XML text or bytes (see the module docstring)."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError as e:
        line, col = getattr(e, "position", (0, 0))
        raise UserError(f"malformed XML at line {line}, column {col + 1}: "
                        f"{str(e).split(':')[0]}") from None
    if root.tag != _q("Request"):
        raise UserError(f"root element is {_label(root.tag)}, expected sr:Request "
                        f"(namespace {NS})")
    header = body = None
    for c in root:
        if not isinstance(c.tag, str):
            continue
        if c.tag == _q("Header") and header is None:
            header = c
        elif c.tag == _q("Body") and body is None:
            body = c
        elif c.tag == f"{{{DS_NS}}}Signature":
            continue        # the User's XML signature: not checked here
        else:
            raise UserError(f"sr:Request: unexpected field {_label(c.tag)}")
    if header is None:
        raise UserError("sr:Request: missing field sr:Header")
    if body is None:
        raise UserError("sr:Request: missing field sr:Body")
    h = _children(header, "sr:Header", HEADER_FIELDS)
    _require(h, "sr:Header", "RequestID", "ServiceReference", "ServiceReferenceVariant")
    originator, target, counter = _parse_request_id(h["RequestID"])
    ref = _text(h["ServiceReference"], "sr:Header/sr:ServiceReference")
    variant = _text(h["ServiceReferenceVariant"], "sr:Header/sr:ServiceReferenceVariant")
    command_variant = None
    if "CommandVariant" in h:
        command_variant = _int(h["CommandVariant"], "sr:Header/sr:CommandVariant", (1, 99))
    services = _services()
    if (ref, variant) not in services:
        known = ", ".join(f"{r}/{v} ({s[1]})" for (r, v), s in services.items())
        raise UserError(f"sr:Header/sr:ServiceReference: Service Request {ref} variant "
                        f"{variant} is not supported by gbmeter (supported: {known})")
    service, element, reader, use_cases = services[(ref, variant)]
    items = _children(body, "sr:Body", (element,))
    _require(items, "sr:Body", element)
    fields, body_device = reader(items[element], f"sr:Body/sr:{element}")
    dev = _resolve_device(device, body_device, target, inventory)
    if service == "update_meter_balance" and fields["mode"] != METER_BALANCE_MODE[dev]:
        want = "sr:CreditMode" if METER_BALANCE_MODE[dev] == "credit" else "sr:PrepaymentMode"
        raise UserError(f"sr:Body/sr:{element}: ResetMeterBalance on the {dev.upper()} is "
                        f"supported in {want} only")
    use_case = use_cases[dev]
    if isinstance(use_case, dict):
        use_case = use_case[fields["mode"]]
    row = codec.load_usecases().by_name(use_case)
    if row is None:
        raise UserError(f"use case {use_case} is not in firmware/usecases.py")
    return ServiceRequest(
        originator=originator, target=target, counter=counter, service_reference=ref,
        service_reference_variant=variant, service=service, device=dev, use_case=use_case,
        message_code=row[0], fields=fields, command_variant=command_variant, source=source)


def read_request(path, device=None, inventory=None):
    """parse_request on a file (or - for stdin)."""
    if str(path) == "-":
        return parse_request(sys.stdin.buffer.read(), device, inventory, "-")
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {p}: {e.strerror}") from None
    return parse_request(data, device, inventory, str(p))
