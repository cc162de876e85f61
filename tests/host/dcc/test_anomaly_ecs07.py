"""Anomaly detection holds ECS07 (ESME Manage Debt) to the value limits GCS04 has
(issue 12 item 11): `manage-debt --time1 2147483647` on an ESME was released."""

import json

import pytest

from gbmeter import dcc
from gbmeter.dcc import duis, srxml
from gbmeter.dcc.precommand import invoke_id
from gbmeter.gbcs import codec

SUP = bytes.fromhex("0211223344556677")
METER = bytes.fromhex("0a0b0c0d0e0f1011")
NOW = "2021-03-04T05:06:07Z"


def ecs07(time1=0, time2=0, payment=0, per_payment=0, rate1=(0, 0), rate2=(0, 0),
          period1="DAILY"):
    """The DCC's ECS07 PRECOMMAND for an Update Debt request; rates are (rate, price
    scale) as DUIS gives them."""
    xml = srxml.update_debt_xml(SUP, METER, 77, "esme", time1, time2, payment, per_payment,
                                {"rate": rate1[0], "price_scale": rate1[1], "period": period1},
                                {"rate": rate2[0], "price_scale": rate2[1], "period": "DAILY"})
    return dcc.transform(duis.parse_request(xml, device="esme"), NOW)


@pytest.fixture
def check(tmp_path):
    d = tmp_path / "dcc"
    d.mkdir()
    (d / "adt.json").write_text(json.dumps({"gcs04_limits": {
        "max_debt_amount": 5000, "max_recovery_amount": 300, "max_recovery_balance_percentage": 5000}}))
    return lambda pre: dcc.Dcc(d).check(pre, NOW, dry_run=True)


def test_ecs07_within_the_limits_is_released(check):
    v = check(ecs07(time1=5000, time2=-5000, payment=1, per_payment=5000, rate1=(3, -3),
                    rate2=(300, -5)))
    assert v.release and v.use_case == "ECS07" and v.inspection == "passed", v.reasons


@pytest.mark.parametrize("fields, words", [
    ({"time1": 5001}, "specification 9 (time debt 1 charge update_total_amount_remaining): "
                      "debt amount 5001 is beyond the limit +/-5000"),
    ({"time2": -5001}, "specification 10 (time debt 2 charge"),
    ({"payment": 2147483647}, "debt amount 2147483647"),
    ({"per_payment": 5001}, "recovery balance percentage 5001 is beyond the limit 5000"),
    ({"rate1": (301, -5)}, "specification 1 (time debt 1 charge unit_charge_passive): "
                           "recovery amount 301 is outside 0..300"),
    ({"rate2": (4, -3)}, "recovery amount 400 is outside"),     # scaled: 4 * 10**2
    ({"rate1": (-1, -5)}, "recovery amount -1 is outside"),
])
def test_ecs07_beyond_a_limit_is_quarantined(check, fields, words):
    v = check(ecs07(**fields))
    assert not v.release and v.check == "inspection"
    assert words in "; ".join(v.reasons), v.reasons


def test_ecs07_period_must_be_hourly_or_daily(check):
    charge = "0-0:19.20.1.255"
    content = codec.build_access_request(invoke_id(77), [
        ("set", codec.CLASS_CHARGE, charge, 8)], [codec.axdr("double-long-unsigned", 7200)])
    pre = codec.build_apdu(codec.CRA_COMMAND, 77, SUP, METER,
                           codec.load_usecases().by_name("ECS07")[0], content)
    v = check(pre)
    assert not v.release and "period 7200 s is neither hourly (3600) nor daily" in v.reasons[0]


def test_esme_and_gsme_share_the_default_limits(tmp_path):
    big = 2147483647
    d = dcc.Dcc(tmp_path / "dcc")
    v = d.check(ecs07(time1=big), NOW, dry_run=True)
    assert not v.release and f"debt amount {big} is beyond the limit +/-100000000" in v.reasons[0]
    xml = srxml.update_debt_xml(SUP, METER, 78, "gsme", big, 0, 0, 0,
                                {"rate": 0, "period": "DAILY"}, {"rate": 0, "period": "DAILY"})
    g = d.check(dcc.transform(duis.parse_request(xml, device="gsme"), NOW), NOW, dry_run=True)
    assert not g.release and f"debt amount {big} is beyond the limit +/-100000000" in g.reasons[0]
