"""Service Request XML as a User writes it (`sr:Request`, CV 4), for the sending verbs,
the demo and tests; gbmeter.dcc.duis reads it back.

    reset_debt_xml(originator, target, counter, register) -> str
    activate_emergency_credit_xml(originator, target, counter) -> str
    update_debt_xml(originator, target, counter, device, time1, time2, payment,
                    per_payment, recovery1, recovery2) -> str
    read_prepayment_registers_xml(originator, target, counter) -> str   (4.3, CV 1)
    update_payment_mode_xml(originator, target, counter, mode, suspend_debt_disabled,
                            suspend_debt_emergency, disablement_threshold) -> str   (1.6)
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


def _request_xml(originator, target, counter, ref, variant, build_body, command_variant=4):
    ET.register_namespace("sr", NS)
    root = ET.Element(_q("Request"), {"schemaVersion": SCHEMA_VERSION})
    h = _sub(root, "Header")
    _sub(h, "RequestID", request_id(originator, target, counter))
    _sub(h, "CommandVariant", command_variant)
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


def read_prepayment_registers_xml(originator, target, counter):
    """A Read Instantaneous Prepay Values request (4.3: ECS19 / GCS14), non-critical:
    CommandVariant 1."""
    return _request_xml(originator, target, counter, "4.3", "4.3",
                        lambda b: _sub(b, "ReadInstantaneousPrepayValues"), command_variant=1)


def update_payment_mode_xml(originator, target, counter, mode, suspend_debt_disabled=False,
                            suspend_debt_emergency=False, disablement_threshold=0):
    """An Update Payment Mode request (1.6: ECS02 / GCS02 to credit, ECS03 / GCS03 to
    prepayment, with its suspend-debt flags and disablement threshold)."""
    if mode not in ("credit", "prepayment"):
        raise ValueError("mode must be credit or prepayment")

    def body(b):
        u = _sub(b, "UpdatePaymentMode")
        if mode == "credit":
            _sub(u, "Credit")
            return
        p = _sub(u, "Prepayment")
        _sub(p, "SuspendDebtDisabled", "true" if suspend_debt_disabled else "false")
        _sub(p, "SuspendDebtEmergency", "true" if suspend_debt_emergency else "false")
        _sub(p, "DisablementThreshold", disablement_threshold)
    return _request_xml(originator, target, counter, "1.6", "1.6", body)
