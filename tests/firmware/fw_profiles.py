# Device profiles: the table, and what each setting changes in the handlers (the same
# Commands on meters of different profiles, read back).
import meter
import profiles
import usecases
from fwtest import raises
from fw_vectors import (GSME_ID, access_request, access_response, charge, dl, ecs04b,
                        ecs07, ecs09, fresh, gcs04, gcs06, gcs40b, unit_charge, zcl_answers)

ZCL_OK, ZCL_FAIL = 0x00, 0x01
DLMS_FAIL = 0xFA


NAMES = ("smets2", "smets2-pre", "smets1-secure")


def test_table_and_settings():
    assert tuple(p[0] for p in profiles.PROFILES) == NAMES
    s2 = profiles.settings("smets2")
    assert s2 == {"releases": ["SECMP0002"], "whole_pence": False, "ec_zero_limit": "activate",
                  "ec_amount": "limit", "balance_adjust": "as-sent"}
    pre = profiles.settings("smets2-pre")
    assert pre["releases"] == [] and {k: pre[k] for k in pre if k != "releases"} == \
        {k: s2[k] for k in s2 if k != "releases"}
    s1 = profiles.settings("smets1-secure")
    assert s1["whole_pence"] is True and s1["ec_zero_limit"] == "fail"
    assert s1["releases"] == ["SECMP0002"]
    # fresh dicts: changing one meter's settings changes no other's, nor the table
    s1["releases"].append("X")
    assert profiles.settings("smets1-secure")["releases"] == ["SECMP0002"]
    # every setting a profile names is in SETTINGS, with its clause
    names = [s[0] for s in profiles.SETTINGS]
    for p in profiles.PROFILES:
        assert all(k in names for k in p[1]), p[0]
    assert all(s[1] for s in profiles.SETTINGS)


def test_overrides_checked():
    s = profiles.settings("smets1-secure", {"ec_amount": "limit-less-debt"})
    assert s["ec_amount"] == "limit-less-debt" and s["whole_pence"] is True
    raises(ValueError, profiles.settings, "smets3")
    raises(ValueError, profiles.settings, "smets2", {"colour": "red"})
    raises(ValueError, profiles.settings, "smets2", {"ec_amount": "all"})
    raises(ValueError, profiles.settings, "smets2", {"whole_pence": 1})   # not a bool
    raises(ValueError, profiles.settings, "smets2", {"releases": []})    # the profile's
    raises(ValueError, meter.new_state, "gsme", GSME_ID, "smets9")


def test_releases_by_profile():
    reset_rows = [r for r in usecases.USE_CASES if r[5] == "SECMP0002"]
    assert sorted(r[1] for r in reset_rows) == ["ECS07a", "GCS04a"]
    for name in NAMES:
        assert ("SECMP0002" in profiles.settings(name)["releases"]) == (name != "smets2-pre")


def test_new_state_carries_profile():
    st = fresh("esme", "smets1-secure")
    assert st["profile"] == "smets1-secure" and st["settings"]["whole_pence"] is True
    r = meter.registers(st)
    assert r["profile"] == "smets1-secure" and r["settings"]["ec_zero_limit"] == "fail"


def test_whole_pence_update_debt_gsme():
    content = gcs04([dict(atype=1, amount=123456), dict(atype=3, amount=-2999),
                     dict(atype=5, amount=999, pct=500)])
    ok = zcl_answers([(0, 2, 0), (1, 2, 0), (2, 2, 0)])
    s2 = fresh("gsme", time2=10000)
    s1 = fresh("gsme", "smets1-secure", time2=10000)
    assert meter.execute(s2, "GCS04", content) == ok
    assert meter.execute(s1, "GCS04", content) == ok
    assert (s2["time1"], s2["time2"], s2["payment"]) == (123456, 7001, 999)
    # truncated towards zero before applying: -2999 takes 2000 off, 999 adds nothing
    assert (s1["time1"], s1["time2"], s1["payment"]) == (123000, 8000, 0)
    assert meter.registers(s1)["time1"] == 123000


def test_whole_pence_recovery_rate_and_absolute_debt_gsme():
    content = gcs04([dict(atype=0, amount=55555, start=1, coll=60, freq=1, rec=1999)])
    s1 = fresh("gsme", "smets1-secure")
    assert meter.execute(s1, "GCS04", content) == zcl_answers([(0, 2, 0)])
    assert s1["time1"] == 55000 and s1["time1_recovery"]["rate"] == 1000


def test_whole_pence_update_debt_esme():
    # RTDS-shaped Manage Debt with amounts that are not whole pence; the price scale
    # -4 makes the unit charge 1234 a recovery rate of 12340 units per period
    content = ecs07(td1=123456, td2=1999, pd=-500, rate1=1234)
    content = content.replace(unit_charge(1234), unit_charge(1234, -4))
    s2 = fresh("esme", payment=10000)
    s1 = fresh("esme", "smets1-secure", payment=10000)
    ok = access_response([(2, 0)] * 5 + [(3, 0)] * 5)
    assert meter.execute(s2, "ECS07", content) == ok
    assert meter.execute(s1, "ECS07", content) == ok
    assert (s2["time1"], s2["time2"], s2["payment"]) == (123456, 1999, 9500)
    assert (s1["time1"], s1["time2"], s1["payment"]) == (123000, 1000, 10000)
    assert s2["time1_recovery"]["rate"] == 12340 and s1["time1_recovery"]["rate"] == 12000


def test_whole_pence_balances():
    s1 = fresh("gsme", "smets1-secure", balance=5000)
    assert meter.execute(s1, "GCS40b", gcs40b(-1500, atype=0)) == zcl_answers([(0, 5, 0)])
    assert s1["balance"] == 4000
    assert meter.execute(s1, "GCS40b", gcs40b(70999)) == zcl_answers([(0, 5, 0)])
    assert s1["balance"] == 70000
    e1 = fresh("esme", "smets1-secure")
    assert meter.execute(e1, "ECS04b", ecs04b((12345, 6789, 1001))) == \
        access_response([(3, 0)] * 3)
    assert (e1["balance"], e1["ec_balance"], e1["acc_debt"]) == (12000, 6000, 1000)


def test_whole_pence_diagnostics():
    s1 = fresh("gsme", "smets1-secure", balance=123456, ec_limit=99999, time1_rate=1500)
    assert (s1["balance"], s1["ec_limit"], s1["time1_recovery"]["rate"]) == (123000, 99000, 1000)
    s1 = fresh("gsme", "smets1-secure", mode="prepayment", payment=100000, payment_pct=3333)
    meter.topup(s1, 10999)      # 10000 accepted; 33.33 % of it is 3333, so 3000 to debt
    assert s1["payment"] == 97000 and s1["balance"] == 7000
    raises(ValueError, meter.topup, s1, 999)
    assert s1["balance"] == 7000
    s2 = fresh("gsme", balance=123456)
    assert s2["balance"] == 123456


def test_zero_emergency_credit_limit():
    for device in ("gsme", "esme"):
        name, content = ("GCS06", gcs06()) if device == "gsme" else ("ECS09", ecs09())
        ok = zcl_answers([(0, 0, ZCL_OK)]) if device == "gsme" else access_response([(3, 0)])
        bad = zcl_answers([(0, 0, ZCL_FAIL)]) if device == "gsme" else \
            access_response([(3, DLMS_FAIL)])
        s2 = fresh(device, mode="prepayment", ec_limit=0)
        assert meter.execute(s2, name, content) == ok
        assert s2["ec_active"] and s2["ec_balance"] == 0
        s1 = fresh(device, "smets1-secure", mode="prepayment", ec_limit=0)
        assert meter.execute(s1, name, content) == bad
        assert not s1["ec_active"] and s1["ec_balance"] == 0
        s1 = fresh(device, "smets1-secure", mode="prepayment", ec_limit=2000)
        assert meter.execute(s1, name, content) == ok and s1["ec_balance"] == 2000


def test_emergency_credit_amount_setting():
    st = fresh("gsme", "smets1-secure", {"ec_amount": "limit-less-debt"}, mode="prepayment",
               ec_limit=500000, acc_debt=120000)
    assert meter.execute(st, "GCS06", gcs06()) == zcl_answers([(0, 0, 0)])
    assert st["ec_balance"] == 380000 and st["acc_debt"] == 0
    st = fresh("esme", "smets2", {"ec_amount": "limit-less-debt"}, mode="prepayment",
               ec_limit=100000, acc_debt=150000)
    assert meter.execute(st, "ECS09", ecs09()) == access_response([(3, 0)])
    assert st["ec_balance"] == 0 and st["acc_debt"] == 50000
    st = fresh("esme", mode="prepayment", acc_debt=150000)
    assert meter.execute(st, "ECS09", ecs09()) == access_response([(3, 0)])
    assert st["ec_balance"] == 500000 and st["acc_debt"] == 150000


def test_balance_adjust_incremental_only():
    inc = {"balance_adjust": "incremental-only"}
    st = fresh("gsme", "smets1-secure", inc, balance=5000)
    assert meter.execute(st, "GCS40b", gcs40b(1000)) == zcl_answers([(0, 5, ZCL_FAIL)])
    assert st["balance"] == 5000
    assert meter.execute(st, "GCS40b", gcs40b(1000, atype=0)) == zcl_answers([(0, 5, 0)])
    assert st["balance"] == 6000
    st = fresh("esme", "smets2", inc, balance=5000)
    assert meter.execute(st, "ECS04b", ecs04b((0,))) == access_response([(3, DLMS_FAIL)])
    assert st["balance"] == 5000
    assert meter.execute(fresh("esme", balance=5), "ECS04b", ecs04b((0,))) == \
        access_response([(3, 0)])


def test_reset_is_the_same_on_every_profile():
    # the handlers do not ask the profile whether a reset is known: the envelope does
    # (supports(), tested with the app), so a pre-release state executes it the same
    for profile in NAMES:
        st = fresh("esme", profile, time2=4321)
        c = access_request([(3, 113, charge(2), 5, dl(0))])
        assert meter.execute(st, "ECS07a", c) == access_response([(3, 0)])
        assert st["time2"] == 0
