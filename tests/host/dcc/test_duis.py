"""gbmeter.dcc.duis: DUIS-style Service Requests -> ServiceRequest. Own requests are
written here as XML text; the DUIS files behind the RTDS Commands are read from
../shared at run time (skipped when absent)."""

import pytest
import rtdsref

from gbmeter.dcc import duis, srxml
from gbmeter import paths
from gbmeter.errors import UserError

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (DUIS requests behind RTDS) is absent")

SUPPLIER = "90-B3-D5-1F-30-01-00-00"
ESME = "00-DB-12-34-56-78-90-A0"     # NOTES 1 test meters (the default inventory)
GSME = "00-DB-12-34-56-78-90-A1"
OTHER = "02-11-22-33-44-55-66-77"    # a meter no inventory knows


def xml(body, ref="2.3", variant="2.3.1", rid=f"{SUPPLIER}:{GSME}:1000", header_extra="",
        root_extra=""):
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"
            xmlns:ds="http://www.w3.org/2000/09/xmldsig#">
  <sr:Header>
    <sr:RequestID>{rid}</sr:RequestID>
    <sr:CommandVariant>4</sr:CommandVariant>
    <sr:ServiceReference>{ref}</sr:ServiceReference>
    <sr:ServiceReferenceVariant>{variant}</sr:ServiceReferenceVariant>{header_extra}
  </sr:Header>
  <sr:Body>{body}</sr:Body>{root_extra}
</sr:Request>"""


def reset_body(*registers):
    inner = "".join(f"<sr:DebtRegister>{r}</sr:DebtRegister>" for r in registers)
    return f"<sr:ResetDebtRegister>{inner}</sr:ResetDebtRegister>"


GAS_UPDATE = """<sr:UpdateDebt>
  <sr:TimeDebtRegister1>1200</sr:TimeDebtRegister1>
  <sr:TimeDebtRegister2>-300</sr:TimeDebtRegister2>
  <sr:PaymentDebtRegister>4500</sr:PaymentDebtRegister>
  <sr:DebtRecoveryPerPayment>2500</sr:DebtRecoveryPerPayment>
  <sr:GasDebtRecovery1><sr:DebtRecoveryRate>70</sr:DebtRecoveryRate>
    <sr:DebtRecoveryRatePeriod>HOURLY</sr:DebtRecoveryRatePeriod></sr:GasDebtRecovery1>
  <sr:GasDebtRecovery2><sr:DebtRecoveryRate>90</sr:DebtRecoveryRate>
    <sr:DebtRecoveryRatePeriod>DAILY</sr:DebtRecoveryRatePeriod></sr:GasDebtRecovery2>
</sr:UpdateDebt>"""

ELEC_UPDATE = """<sr:UpdateDebt>
  <sr:TimeDebtRegister1>10</sr:TimeDebtRegister1>
  <sr:TimeDebtRegister2>20</sr:TimeDebtRegister2>
  <sr:PaymentDebtRegister>30</sr:PaymentDebtRegister>
  <sr:DebtRecoveryPerPayment>40</sr:DebtRecoveryPerPayment>
  <sr:ElecDebtRecovery1><sr:DebtRecoveryRate>5</sr:DebtRecoveryRate>
    <sr:DebtRecoveryRatePriceScale>-2</sr:DebtRecoveryRatePriceScale>
    <sr:DebtRecoveryRatePeriod>DAILY</sr:DebtRecoveryRatePeriod></sr:ElecDebtRecovery1>
  <sr:ElecDebtRecovery2><sr:DebtRecoveryRate>6</sr:DebtRecoveryRate>
    <sr:DebtRecoveryRatePriceScale>0</sr:DebtRecoveryRatePriceScale>
    <sr:DebtRecoveryRatePeriod>HOURLY</sr:DebtRecoveryRatePeriod></sr:ElecDebtRecovery2>
</sr:UpdateDebt>"""


def bad(text, *words, **kw):
    with pytest.raises(UserError) as e:
        duis.parse_request(text, **kw)
    msg = str(e.value)
    for w in words:
        assert w in msg, msg
    return msg


# --- reading -----------------------------------------------------------------------

@pytest.mark.parametrize("name,register", [("TimeDebtRegister1", "time1"),
                                           ("TimeDebtRegister2", "time2"),
                                           ("PaymentDebtRegister", "payment")])
@pytest.mark.parametrize("target,device,use_case,code", [(ESME, "esme", "ECS07a", 0x0F00),
                                                         (GSME, "gsme", "GCS04a", 0x0F01)])
def test_reset_request(name, register, target, device, use_case, code):
    r = duis.parse_request(xml(reset_body(name), rid=f"{SUPPLIER}:{target}:4097"))
    assert r.service == "reset_debt_register"
    assert r.fields == {"register": register}
    assert (r.device, r.use_case, r.message_code) == (device, use_case, code)
    assert r.originator == bytes.fromhex("90b3d51f30010000")
    assert r.target == bytes.fromhex(target.replace("-", ""))
    assert r.counter == 4097 and r.command_variant == 4
    assert r.request_id == f"{SUPPLIER}:{target}:4097"


def test_update_debt_gas_fields():
    r = duis.parse_request(xml(GAS_UPDATE, variant="2.3"))
    assert (r.service, r.device, r.use_case, r.message_code) == (
        "update_debt", "gsme", "GCS04", 0x006E)
    assert r.fields == {
        "time1": 1200, "time2": -300, "payment": 4500, "per_payment": 2500,
        "recovery1": {"rate": 70, "period": "HOURLY", "price_scale": None},
        "recovery2": {"rate": 90, "period": "DAILY", "price_scale": None}}


def test_update_debt_elec_fields_and_device_from_body():
    # the target is in no inventory: the Elec* elements make it an ESME
    r = duis.parse_request(xml(ELEC_UPDATE, variant="2.3", rid=f"{SUPPLIER}:{OTHER}:7"))
    assert (r.device, r.use_case) == ("esme", "ECS07")
    assert r.fields["recovery1"] == {"rate": 5, "period": "DAILY", "price_scale": -2}
    assert r.fields["recovery2"] == {"rate": 6, "period": "HOURLY", "price_scale": 0}


def test_meter_balance_and_emergency_credit():
    credit = ("<sr:UpdateMeterBalance><sr:CreditMode><sr:ResetMeterBalance/></sr:CreditMode>"
              "</sr:UpdateMeterBalance>")
    prepay = credit.replace("CreditMode", "PrepaymentMode")
    r = duis.parse_request(xml(credit, "1.5", "1.5", rid=f"{SUPPLIER}:{ESME}:1"))
    assert (r.use_case, r.fields) == ("ECS04b", {"mode": "credit", "action": "reset"})
    r = duis.parse_request(xml(prepay, "1.5", "1.5", rid=f"{SUPPLIER}:{GSME}:1"))
    assert (r.use_case, r.fields) == ("GCS40b", {"mode": "prepayment", "action": "reset"})
    for target, uc in ((ESME, "ECS09"), (GSME, "GCS06")):
        r = duis.parse_request(xml("<sr:ActivateEmergencyCredit/>", "2.5", "2.5",
                                   rid=f"{SUPPLIER}:{target}:1"))
        assert r.use_case == uc and r.fields == {}
    bad(xml(credit, "1.5", "1.5", rid=f"{SUPPLIER}:{GSME}:1"), "PrepaymentMode only")


def test_device_sources():
    body = reset_body("TimeDebtRegister1")
    other = f"{SUPPLIER}:{OTHER}:1"
    bad(xml(body, rid=other), "cannot tell", "--device")
    assert duis.parse_request(xml(body, rid=other), device="esme").use_case == "ECS07a"
    assert duis.parse_request(xml(body, rid=other),
                              inventory={OTHER.replace("-", "").lower(): "gsme"}
                              ).use_case == "GCS04a"
    # --device against the inventory, and the body against the inventory
    bad(xml(body), "device", "--device says ESME", "inventory says GSME", device="esme")
    bad(xml(GAS_UPDATE, variant="2.3", rid=f"{SUPPLIER}:{ESME}:1"), "GSME", "ESME")
    bad(xml(body), "neither esme nor gsme", device="water")


def test_signature_element_ignored_and_comments_allowed():
    sig = "<ds:Signature><ds:SignatureValue>ZGVmYXVsdA==</ds:SignatureValue></ds:Signature>"
    body = "<!-- a comment --><sr:ResetDebtRegister><sr:DebtRegister> PaymentDebtRegister " \
           "</sr:DebtRegister></sr:ResetDebtRegister>"
    r = duis.parse_request(xml(body, root_extra=sig))
    assert r.fields == {"register": "payment"}


def test_writers_round_trip():
    orig, tgt = bytes.fromhex("0211223344556677"), bytes.fromhex("0a0b0c0d0e0f1011")
    for reg in duis.REGISTERS:
        r = duis.parse_request(srxml.reset_debt_xml(orig, tgt, 99, reg), device="gsme")
        assert (r.fields, r.originator, r.target, r.counter) == ({"register": reg}, orig, tgt, 99)
    text = srxml.update_debt_xml(orig, tgt, 5, "esme", 1, 2, 3, 4,
                                {"rate": 7, "period": "HOURLY", "price_scale": -1},
                                {"rate": 8, "period": "DAILY", "price_scale": 0})
    r = duis.parse_request(text)
    assert r.use_case == "ECS07" and r.fields["recovery1"]["price_scale"] == -1
    assert r.fields["time1"] == 1 and r.fields["per_payment"] == 4


@needs_shared
def test_rtds_duis_requests_read():
    """Every DUIS request in ../shared: one the project supports reads into its use case
    (device from the inventory or body); any other gets a plain "not supported" error
    naming its Service Reference, never a traceback or a guess."""
    files = rtdsref.duis_requests()
    assert files
    supported = 0
    for f in files:
        ref = next(x for x in f.name.split("_")[:2] if x[0].isdigit())    # 2.3, 8.2
        try:
            r = duis.read_request(f)
        except UserError as e:
            assert "is not supported by gbmeter" in str(e) and ref in str(e), (f.name, str(e))
            continue
        uc = f.name.split("_")[0]
        assert r.use_case == uc, f.name
        assert r.originator.hex() == "90b3d51f30010000"
        assert r.device == ("esme" if uc.startswith("E") else "gsme")
        supported += 1
    assert supported
    r = duis.read_request(SHARED / "gbcs" / "duis" / "ECS07_2.3_SUCCESS_REQUEST_DUIS.XML")
    assert r.counter == 1001 and r.fields["time1"] == 30000
    assert r.fields["recovery1"] == {"rate": 3, "period": "DAILY", "price_scale": -1}


def test_read_inventory_is_not_a_device_service_request():
    """8.2 Read Inventory (CV 8, a non-device service) builds no GBCS Command."""
    x = ('<sr:Request xmlns:sr="http://www.dccinterface.co.uk/ServiceUserGateway"><sr:Header>'
         "<sr:RequestID>90-B3-D5-1F-30-01-00-00:90-B3-D5-1F-30-00-00-02:1000</sr:RequestID>"
         "<sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>8.2</sr:ServiceReference>"
         "<sr:ServiceReferenceVariant>8.2</sr:ServiceReferenceVariant></sr:Header><sr:Body>"
         "<sr:ReadInventory><sr:DeviceID>00-DB-12-34-56-78-90-A2</sr:DeviceID></sr:ReadInventory>"
         "</sr:Body></sr:Request>")
    with pytest.raises(UserError, match="8.2 variant 8.2 is not supported by gbmeter"):
        duis.parse_request(x)


# --- bad input ------------------------------------------------------------------------

def test_malformed_xml():
    msg = bad(xml(reset_body("TimeDebtRegister1")).replace("</sr:Body>", "</sr:Bdy>"),
              "malformed XML", "line")
    assert "column" in msg
    bad("", "malformed XML")
    bad("<a/>", "root element", "sr:Request")


def test_unknown_service_reference():
    bad(xml(reset_body("TimeDebtRegister1"), ref="9.9", variant="9.9"),
        "ServiceReference", "9.9", "is not supported by gbmeter")
    bad(xml(reset_body("TimeDebtRegister1"), variant="2.3.7"), "2.3.7")


def test_body_does_not_match_service():
    bad(xml(reset_body("TimeDebtRegister1"), variant="2.3"), "sr:Body",
        "unexpected field sr:ResetDebtRegister")


def test_missing_fields():
    bad(xml("<sr:ResetDebtRegister/>"), "missing field sr:DebtRegister")
    bad(xml(GAS_UPDATE.replace("<sr:PaymentDebtRegister>4500</sr:PaymentDebtRegister>", ""),
            variant="2.3"), "missing field sr:PaymentDebtRegister")
    bad(xml(ELEC_UPDATE.replace(
        "<sr:DebtRecoveryRatePriceScale>0</sr:DebtRecoveryRatePriceScale>", ""), variant="2.3",
        rid=f"{SUPPLIER}:{ESME}:1"), "ElecDebtRecovery2", "missing field "
        "sr:DebtRecoveryRatePriceScale")
    bad(xml("", variant="2.3"), "missing field sr:UpdateDebt")
    text = xml(reset_body("TimeDebtRegister1")).replace(
        "<sr:ServiceReference>2.3</sr:ServiceReference>", "")
    bad(text, "sr:Header", "missing field sr:ServiceReference")
    bad(xml(reset_body("TimeDebtRegister1")).replace("</sr:Body>", "</sr:Body>").replace(
        "<sr:Body>", "<sr:Nobody>").replace("</sr:Body>", "</sr:Nobody>"),
        "unexpected field sr:Nobody")


def test_extra_fields():
    bad(xml("<sr:ResetDebtRegister><sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>"
            "<sr:Amount>5</sr:Amount></sr:ResetDebtRegister>"), "unexpected field sr:Amount")
    bad(xml(reset_body("TimeDebtRegister1"), header_extra="<sr:Priority>1</sr:Priority>"),
        "sr:Header", "unexpected field sr:Priority")
    bad(xml(GAS_UPDATE.replace("</sr:GasDebtRecovery1>", "<sr:DebtRecoveryRatePriceScale>0"
                               "</sr:DebtRecoveryRatePriceScale></sr:GasDebtRecovery1>"),
            variant="2.3"), "GasDebtRecovery1", "unexpected field sr:DebtRecoveryRatePriceScale")
    mixed = GAS_UPDATE.replace("GasDebtRecovery2", "ElecDebtRecovery2")
    bad(xml(mixed, variant="2.3"), "both")
    bad(xml("<sr:ActivateEmergencyCredit>x</sr:ActivateEmergencyCredit>", "2.5", "2.5"),
        "unexpected text")
    bad(xml(reset_body("TimeDebtRegister1") + reset_body("TimeDebtRegister2")),
        "more than once")


def test_two_registers_in_one_reset():
    bad(xml(reset_body("TimeDebtRegister1", "TimeDebtRegister2")),
        "sr:DebtRegister", "2 registers", "exactly one")


def test_bad_values():
    bad(xml(reset_body("TimeDebtRegister3")), "sr:DebtRegister", "TimeDebtRegister3",
        "not one of")
    bad(xml(GAS_UPDATE.replace(">1200<", ">12.5<"), variant="2.3"),
        "sr:TimeDebtRegister1", "not a whole number")
    bad(xml(GAS_UPDATE.replace(">1200<", ">2147483648<"), variant="2.3"),
        "sr:TimeDebtRegister1", "out of range")
    bad(xml(GAS_UPDATE.replace(">HOURLY<", ">WEEKLY<"), variant="2.3"),
        "DebtRecoveryRatePeriod", "WEEKLY")
    bad(xml(GAS_UPDATE.replace(">2500<", ">70000<"), variant="2.3"),
        "DebtRecoveryPerPayment", "out of range")
    bad(xml(ELEC_UPDATE.replace(">5<", ">40000<"), variant="2.3", rid=f"{SUPPLIER}:{ESME}:1"),
        "ElecDebtRecovery1/sr:DebtRecoveryRate", "out of range")
    bad(xml("<sr:UpdateMeterBalance><sr:CreditMode><sr:AdjustMeterBalance/></sr:CreditMode>"
            "</sr:UpdateMeterBalance>", "1.5", "1.5", rid=f"{SUPPLIER}:{ESME}:1"),
        "AdjustMeterBalance", "not supported")


@pytest.mark.parametrize("rid,words", [
    (f"{SUPPLIER}:{GSME}:abc", ("counter 'abc' is not a number",)),
    (f"{SUPPLIER}:{GSME}:-5", ("counter '-5' is not a number",)),
    (f"{SUPPLIER}:{GSME}:", ("counter '' is not a number",)),
    (f"{SUPPLIER}:{GSME}:{2 ** 64}", ("does not fit 8 bytes",)),
    (f"90B3D51F30010000:{GSME}:1", ("originator:target:counter",)),
    (f"{SUPPLIER}:{GSME}", ("originator:target:counter",)),
])
def test_bad_request_id(rid, words):
    bad(xml(reset_body("TimeDebtRegister1"), rid=rid), "sr:RequestID", *words)


def test_read_request_file_errors(tmp_path):
    with pytest.raises(UserError, match="cannot read"):
        duis.read_request(tmp_path / "missing.xml")
    f = tmp_path / "r.xml"
    f.write_text(xml(reset_body("PaymentDebtRegister")))
    assert duis.read_request(f).source == str(f)


def test_reset_names_live_in_one_table(monkeypatch):
    """Changing the provisional names in RESET_DEBT_REGISTER changes what is read."""
    cfg = dict(duis.RESET_DEBT_REGISTER, service_reference_variant="2.3.9",
               body="ClearDebt", register="Register")
    monkeypatch.setattr(duis, "RESET_DEBT_REGISTER", cfg)
    text = xml("<sr:ClearDebt><sr:Register>TimeDebtRegister2</sr:Register></sr:ClearDebt>",
               variant="2.3.9")
    assert duis.parse_request(text).fields == {"register": "time2"}
    bad(xml(reset_body("TimeDebtRegister2")), "2.3.1")
