"""Service Request XML as a User writes it (`sr:Request`, CV 4), for the sending verbs,
the demo and tests; gbmeter.dcc.duis reads it back.

    reset_debt_xml(originator, target, counter, register) -> str
    activate_emergency_credit_xml(originator, target, counter) -> str
    update_debt_xml(originator, target, counter, device, time1, time2, payment,
                    per_payment, recovery1, recovery2) -> str
"""

import xml.etree.ElementTree as ET

from gbmeter.dcc.duis import (
    DEVICES, NS, REGISTERS, RESET_DEBT_REGISTER, _q, register_name, request_id)


SCHEMA_VERSION = "5.4"      # the DUIS schema the requests follow (required by its XSD)


def _sub(parent, name, text=None):
    el = ET.SubElement(parent, _q(name))
    if text is not None:
        el.text = str(text)
    return el


def _request_xml(originator, target, counter, ref, variant, build_body):
    ET.register_namespace("sr", NS)
    root = ET.Element(_q("Request"), {"schemaVersion": SCHEMA_VERSION})
    h = _sub(root, "Header")
    _sub(h, "RequestID", request_id(originator, target, counter))
    _sub(h, "CommandVariant", 4)
    _sub(h, "ServiceReference", ref)
    _sub(h, "ServiceReferenceVariant", variant)
    build_body(_sub(root, "Body"))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def reset_debt_xml(originator, target, counter, register):
    """A Reset Debt Register request (register: time1, time2 or payment)."""
    cfg = RESET_DEBT_REGISTER
    if register not in REGISTERS:
        raise ValueError(f"register must be one of {', '.join(REGISTERS)}")

    def body(b):
        _sub(_sub(b, cfg["body"]), cfg["register"], register_name(register))
    return _request_xml(originator, target, counter, cfg["service_reference"],
                        cfg["service_reference_variant"], body)


def activate_emergency_credit_xml(originator, target, counter):
    """An Activate Emergency Credit request (2.5: ECS09 / GCS06)."""
    return _request_xml(originator, target, counter, "2.5", "2.5",
                        lambda b: _sub(b, "ActivateEmergencyCredit"))


def update_debt_xml(originator, target, counter, device, time1, time2, payment, per_payment,
                    recovery1, recovery2):
    """An Update Debt request; recovery1/2 = {rate, period, price_scale (ESME)}."""
    if device not in DEVICES:
        raise ValueError("device must be esme or gsme")
    prefix = "Elec" if device == "esme" else "Gas"

    def body(b):
        u = _sub(b, "UpdateDebt")
        _sub(u, "TimeDebtRegister1", time1)
        _sub(u, "TimeDebtRegister2", time2)
        _sub(u, "PaymentDebtRegister", payment)
        _sub(u, "DebtRecoveryPerPayment", per_payment)
        for i, rec in enumerate((recovery1, recovery2), 1):
            r = _sub(u, f"{prefix}DebtRecovery{i}")
            _sub(r, "DebtRecoveryRate", rec["rate"])
            if device == "esme":
                _sub(r, "DebtRecoveryRatePriceScale", rec.get("price_scale", 0))
            _sub(r, "DebtRecoveryRatePeriod", rec.get("period", "DAILY"))
    return _request_xml(originator, target, counter, "2.3", "2.3", body)
