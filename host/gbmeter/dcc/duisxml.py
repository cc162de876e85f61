"""DUIS messages the DCC sends, and the header of those it receives
(../shared/gbcs/NOTES.md section 8, DUIS 5.4 `sr:Response`).

Every Response built here is unsigned lxml; gbmeter.dcc.xmlsig.sign signs it.

    Header / read_header(root)              a request's header, checked
    response_id(request_id)                 the first two parts swapped
    ack(request, code)                      I99, or an error code, for a request
    precommand(request, payload)            I0 + ResponseMessage/PreCommand (CV 4)
    service_response(header, payload)       I0 + ResponseMessage/GBCSPayload (the meter's)
    error_response(header, code)            an error code sent asynchronously (E20 / E21)
    device_alert(response_id, code, payload)  DeviceAlertMessage
    quarantined(response_id, choice, request_id, ref)  DCCAlertMessage AD1
    inventory(header, devices)              ResponseMessage/DSPInventory (8.2)
"""

import datetime
import re
from dataclasses import dataclass

from lxml import etree

from gbmeter.dcc.duis import NS, REQUEST_ID
from gbmeter.dcc.xmlsig import XmlError

SCHEMA_VERSION = "5.4"
GBCS_VERSION = "4.0"        # PreCommand/GBCSVersion: the GBCS version of the PRECOMMAND
DCC_EUI = "90-B3-D5-1F-30-00-00-02"   # the DCC (ACB) of the ZAZ1 test PKI, NOTES 1

# QuarantinedRequest choices (DUIS DCCAlert AD1), by what quarantined the request
AD1_CHOICES = ("ADUserThresholdBreach", "ADDCCThresholdBreach", "ADAttributeLimitsBreach")


def _q(name):
    return f"{{{NS}}}{name}"


def _sub(parent, name, text=None):
    el = etree.SubElement(parent, _q(name))
    if text is not None:
        el.text = str(text)
    return el


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def date_time(when=None):
    """ResponseDateTime: UTC with milliseconds, 2022-07-22T09:37:56.134Z."""
    t = when or utc_now()
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def eui(title):
    """8 bytes or 16 hex digits -> 90-B3-D5-1F-30-01-00-00."""
    h = title.hex() if isinstance(title, (bytes, bytearray)) else str(title).replace("-", "")
    return "-".join(h[i:i + 2] for i in range(0, 16, 2)).upper()


def response_id(request_id):
    a, b, c = request_id.split(":")
    return f"{b}:{a}:{c}"


@dataclass
class Header:
    request_id: str
    originator: str         # 16 lowercase hex digits
    target: str
    counter: int
    command_variant: int
    service_reference: str
    service_reference_variant: str
    body: str               # the local name of the sr:Body child

    @property
    def response_id(self):
        return response_id(self.request_id)


def _text(el, name):
    v = el.findtext(_q(name))
    return v.strip() if v is not None else None


def read_header(root):
    """The Header of an sr:Request (XmlError "malformed" when it is not one)."""
    if root.tag != _q("Request"):
        raise XmlError("malformed", f"the root element is {root.tag}, not sr:Request")
    h = root.find(_q("Header"))
    body = root.find(_q("Body"))
    if h is None or body is None:
        raise XmlError("malformed", "sr:Request needs sr:Header and sr:Body")
    rid, cv = _text(h, "RequestID"), _text(h, "CommandVariant")
    ref, srv = _text(h, "ServiceReference"), _text(h, "ServiceReferenceVariant")
    for name, value in (("RequestID", rid), ("CommandVariant", cv), ("ServiceReference", ref),
                        ("ServiceReferenceVariant", srv)):
        if not value:
            raise XmlError("malformed", f"sr:Header/sr:{name} is missing")
    m = REQUEST_ID.match(rid)
    if not m or not re.fullmatch(r"\d{1,20}", m.group(3)) or int(m.group(3)) >= 1 << 64:
        raise XmlError("malformed", f"sr:RequestID {rid!r} is not originator:target:counter")
    if not re.fullmatch(r"[1-9]", cv):
        raise XmlError("malformed", f"sr:CommandVariant {cv!r} is not 1..9")
    kids = [c for c in body if isinstance(c.tag, str)]
    if len(kids) != 1 or not kids[0].tag.startswith(f"{{{NS}}}"):
        raise XmlError("malformed", "sr:Body must hold exactly one sr: element")
    orig, target = (m.group(i).replace("-", "").lower() for i in (1, 2))
    rid = f"{eui(orig)}:{eui(target)}:{int(m.group(3))}"
    return Header(rid, orig, target, int(m.group(3)), int(cv), ref, srv,
                  etree.QName(kids[0]).localname)


# --- building ------------------------------------------------------------------------------

def response(code, request_id=None, resp_id=None, when=None):
    """(root, body) of an sr:Response with its Header filled in."""
    root = etree.Element(_q("Response"), nsmap={"sr": NS})
    root.set("schemaVersion", SCHEMA_VERSION)
    h = _sub(root, "Header")
    if request_id:
        _sub(h, "RequestID", request_id)
    if resp_id:
        _sub(h, "ResponseID", resp_id)
    _sub(h, "ResponseCode", code)
    _sub(h, "ResponseDateTime", date_time(when))
    return root, _sub(root, "Body")


def _message(body, ref, srv):
    m = _sub(body, "ResponseMessage")
    _sub(m, "ServiceReference", ref)
    _sub(m, "ServiceReferenceVariant", srv)
    return m


def ack(header, code="I99"):
    """The synchronous answer to a request: I99 (accepted) or an error code."""
    root, body = response(code, header.request_id, header.response_id)
    _message(body, header.service_reference, header.service_reference_variant)
    return root


def precommand(header, payload, gbcs_version=GBCS_VERSION):
    """CV 4's I0: the PRECOMMAND for the User to sign."""
    import base64
    root, body = response("I0", header.request_id, header.response_id)
    pc = _sub(_message(body, header.service_reference, header.service_reference_variant),
              "PreCommand")
    _sub(pc, "GBCSVersion", gbcs_version)
    _sub(pc, "GBCSPayload", base64.b64encode(payload).decode())
    return root


def service_response(request_id, ref, srv, payload):
    """The device's Response, as the meter sent it, for a request."""
    import base64
    root, body = response("I0", request_id, response_id(request_id))
    _sub(_message(body, ref, srv), "GBCSPayload", base64.b64encode(payload).decode())
    return root


def error_response(request_id, ref, srv, code):
    """An error the DCC finds after the synchronous reply (E20, E21)."""
    root, body = response(code, request_id, response_id(request_id))
    _message(body, ref, srv)
    return root


def device_alert(resp_id, alert_code, payload):
    import base64
    root, body = response("I0", None, resp_id)
    m = _sub(body, "DeviceAlertMessage")
    _sub(m, "AlertCode", f"{alert_code:04X}")
    _sub(m, "GBCSPayload", base64.b64encode(payload).decode())
    return root


def quarantined(resp_id, choice, request_id, quarantine_ref):
    """DCC Alert AD1: a Signed Pre-Command quarantined by anomaly detection."""
    if choice not in AD1_CHOICES:
        raise ValueError(f"QuarantinedRequest choice {choice!r}")
    root, body = response("I0", None, resp_id)
    m = _sub(body, "DCCAlertMessage")
    _sub(m, "DCCAlertCode", "AD1")
    breach = _sub(_sub(_sub(m, "DCCAlert"), "QuarantinedRequest"), choice)
    _sub(breach, "RequestID", request_id)
    _sub(breach, "QuarantineEventRef", int(quarantine_ref))
    return root


DEVICE_TYPES = {"esme": "ESME", "gsme": "GSME"}


def inventory(header, devices):
    """8.2 Read Inventory's I0. devices: dicts with id, device, profile, firmware."""
    root, body = response("I0", header.request_id, header.response_id)
    inv = _sub(_message(body, header.service_reference, header.service_reference_variant),
               "DSPInventory")
    for d in devices:
        dev = _sub(inv, "Device")
        _sub(dev, "DeviceID", eui(d["id"]))
        _sub(dev, "DeviceType", DEVICE_TYPES[d["device"]])
        _sub(dev, "DeviceStatus", "Commissioned")
        _sub(dev, "DeviceManufacturer", d.get("manufacturer", "gbmeter"))
        _sub(dev, "DeviceModel", d.get("model", d.get("profile") or "gbmeter"))
        if d.get("firmware"):
            _sub(dev, "DeviceFirmwareVersion", d["firmware"])
    return root
