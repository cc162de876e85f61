"""The DCC's side of SR 1.6 (Update Payment Mode) and 4.3 (Read Instantaneous Prepay
Values): reading the requests, the transform's content, and what it refuses. That
the ../shared requests transform into the RTDS PRECOMMANDs (and the critical ones
correlate with the RTDS Commands) is test_dcc's every-request tests; these are the
cases RTDS does not show."""

import pytest

from gbmeter import dcc
from gbmeter.dcc import duis, srxml
from gbmeter.dcc import precommand as tf
from gbmeter.errors import UserError
from gbmeter.gbcs import codec

SUP = bytes.fromhex("90b3d51f30010000")
ESME = bytes.fromhex("00db1234567890a0")
GSME = bytes.fromhex("00db1234567890a1")
NOW = "2015-01-01T00:00:00Z"


def mode_xml(target, mode, disabled=False, emergency=False, threshold=0, counter=1000):
    return srxml.update_payment_mode_xml(SUP, target, counter, mode, disabled, emergency,
                                         threshold)


def test_update_payment_mode_read_per_device_and_mode():
    for target, device in ((ESME, "esme"), (GSME, "gsme")):
        for mode in ("credit", "prepayment"):
            flags = tf.PREPAYMENT_SUSPEND_DEBT[device]
            r = duis.parse_request(mode_xml(target, mode, *flags, threshold=1234))
            want = {("esme", "credit"): "ECS02", ("esme", "prepayment"): "ECS03",
                    ("gsme", "credit"): "GCS02", ("gsme", "prepayment"): "GCS03"}
            assert (r.device, r.use_case, r.fields["mode"]) == (device, want[device, mode], mode)
            assert r.message_code == codec.load_usecases().by_name(r.use_case)[0]
            if mode == "prepayment":
                assert r.fields["disablement_threshold"] == 1234
                assert (r.fields["suspend_debt_disabled"],
                        r.fields["suspend_debt_emergency"]) == flags


def test_payment_mode_content():
    # ESME prepayment: the threshold goes into class 9000 attribute 4
    r = duis.parse_request(mode_xml(ESME, "prepayment", True, True, 987654))
    req = codec.parse_access_request(tf.content(r, NOW))
    assert [(s["class_id"], s["attribute_or_method"]) for s in req["specs"]] == \
        [(111, 2), (9000, 4), (111, 11), (9000, 6), (111, 13)]
    assert req["data"][0]["value"][0]["value"] == 2            # account mode prepayment
    assert req["data"][1] == {"type": "double-long", "value": 987654}
    r = duis.parse_request(mode_xml(ESME, "credit"))
    req = codec.parse_access_request(tf.content(r, NOW))
    assert [(s["class_id"], s["attribute_or_method"]) for s in req["specs"]] == \
        [(111, 2), (111, 11), (111, 13)]
    assert req["data"][0]["value"][0]["value"] == 1            # credit
    assert req["data"][2]["value"] == tf.NOW_DATE_TIME
    # GSME: Prepayment Enabled (bit 1) in the configuration, the cut off value
    for mode, threshold, config, cut in (("credit", 0, 0x0C94, -1), ("prepayment", 77, 0x0897, 77)):
        r = duis.parse_request(mode_xml(GSME, mode, threshold=threshold))
        comp = codec.parse_gbz(tf.content(r, NOW))["components"][0]
        cpm = comp["change_payment_mode"]
        assert (cpm["proposed_payment_control_configuration"], cpm["cut_off_value"]) == (config, cut)
        assert bool(config & 2) == (mode == "prepayment")
        assert cpm["issuer_event_id"] == dcc.gbcs_seconds(NOW)
        assert cpm["implementation_date_time"] == 0


def test_suspend_debt_flags_rtds_does_not_show_are_refused():
    for target, flags in ((ESME, (False, False)), (ESME, (True, False)), (GSME, (True, True))):
        r = duis.parse_request(mode_xml(target, "prepayment", *flags))
        with pytest.raises(UserError, match="is not supported"):
            tf.content(r, NOW)


@pytest.mark.parametrize("body, words", [
    ("<sr:UpdatePaymentMode/>", "expected one of sr:Credit, sr:Prepayment"),
    ("<sr:UpdatePaymentMode><sr:Credit/><sr:Prepayment/></sr:UpdatePaymentMode>",
     "expected one of"),
    ("<sr:UpdatePaymentMode><sr:Credit>x</sr:Credit></sr:UpdatePaymentMode>", "unexpected text"),
    ("<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled>"
     "</sr:Prepayment></sr:UpdatePaymentMode>", "missing field sr:SuspendDebtEmergency"),
    ("<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>yes</sr:SuspendDebtDisabled>"
     "<sr:SuspendDebtEmergency>true</sr:SuspendDebtEmergency><sr:DisablementThreshold>0"
     "</sr:DisablementThreshold></sr:Prepayment></sr:UpdatePaymentMode>", "not true or false"),
    ("<sr:UpdatePaymentMode><sr:Prepayment><sr:SuspendDebtDisabled>true</sr:SuspendDebtDisabled>"
     "<sr:SuspendDebtEmergency>true</sr:SuspendDebtEmergency><sr:DisablementThreshold>2147483648"
     "</sr:DisablementThreshold></sr:Prepayment></sr:UpdatePaymentMode>", "out of range"),
    ("<sr:UpdatePaymentMode><sr:ExecutionDateTime>2030-01-01T00:00:00Z</sr:ExecutionDateTime>"
     "<sr:Credit/></sr:UpdatePaymentMode>", "future-dated requests are not supported"),
    ("<sr:ReadInstantaneousPrepayValues><sr:ExecutionDateTime>2030-01-01T00:00:00Z"
     "</sr:ExecutionDateTime></sr:ReadInstantaneousPrepayValues>", "future-dated"),
    ("<sr:ReadInstantaneousPrepayValues><sr:Credit/></sr:ReadInstantaneousPrepayValues>",
     "unexpected field sr:Credit"),
])
def test_bad_requests_named(body, words):
    ref = "4.3" if "ReadInstantaneous" in body else "1.6"
    x = srxml.read_prepayment_registers_xml(SUP, GSME, 1000).replace(
        "<sr:ReadInstantaneousPrepayValues />", body).replace(">4.3<", f">{ref}<")
    with pytest.raises(UserError, match=words):
        duis.parse_request(x)


def test_reads_are_non_critical_and_name_their_parties():
    # ECS19's protection parameters carry the counter, the originator and the target;
    # GCS14 reads Price and Prepayment with frame control 00
    r = duis.parse_request(srxml.read_prepayment_registers_xml(SUP, ESME, 4242))
    assert (r.use_case, r.command_variant) == ("ECS19", 1)
    assert not codec.load_usecases().by_name("ECS19")[3]
    req = codec.parse_access_request(tf.content(r, NOW))
    assert req["invoke_id"] == 0x20000000 | 4242
    params = req["data"][0]["value"][1]["value"][0]["value"][1]["value"]
    assert [p["value"] for p in params[:3]] == [b"\x04" + (4242).to_bytes(8, "big"), SUP, ESME]
    r = duis.parse_request(srxml.read_prepayment_registers_xml(SUP, GSME, 7))
    assert r.use_case == "GCS14"
    comps = codec.parse_gbz(tf.content(r, NOW))["components"]
    assert [(c["cluster_id"], c["frame_control"], c["read_attributes"]["attributes"])
            for c in comps] == [(0x0700, 0, [0x0617, 0x0616]),
                                (0x0705, 0, [0x0005, 0x0002, 0x0001, 0x0231, 0x0211, 0x0221])]
    # the third ZAZ1 test meter (RTDS GCS14's) is a GSME of the default inventory
    r = duis.parse_request(srxml.read_prepayment_registers_xml(
        SUP, bytes.fromhex("00db1234567890a3"), 1))
    assert r.device == "gsme"
