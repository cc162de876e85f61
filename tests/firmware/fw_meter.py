# The meter model: resets, Manage Debt semantics, emergency credit, debt recovery,
# top-ups, fault injection and the set-state diagnostic.
import meter
from fwtest import raises
from fw_vectors import (access_request, access_response, change_debt, charge, credit, dl,
                        dlu, ecs04b, ecs07, ecs07a, ecs09, fresh, gbz, gcs04, gcs04a, gcs06,
                        gcs40b, integer, lu, snapshot, unit_charge, zcl_answers)

REGS = ("time1", "time2", "payment")
DAY = 86400
HOUR = 3600


def reset(st, reg):
    if st["device"] == "gsme":
        return meter.execute(st, "GCS04a", gcs04a(reg))
    return meter.execute(st, "ECS07a", ecs07a(reg))


def reset_ok(device, reg):
    if device == "gsme":
        return zcl_answers([(0, 2, 0)])
    return access_response([(3, 0)])


def test_new_state_keys():
    st = meter.new_state("esme", "00DB1234567890A0")
    assert st["id"] == "00db1234567890a0" and st["device"] == "esme"
    for k in REGS + ("balance", "ec_balance", "acc_debt", "clock", "alert_ctr"):
        assert st[k] == 0, k
    assert st["mode"] == "credit" and st["counters"] == {} and st["fault"] is None
    raises(ValueError, meter.new_state, "water", "00db1234567890a0")
    raises(ValueError, meter.new_state, "esme", "00db12345678")
    raises(ValueError, meter.new_state, "esme", "00db1234567890ag")


def test_all_six_resets_both_modes_nonzero_and_zero():
    n = 0
    for device in ("gsme", "esme"):
        for reg in range(3):
            for mode in ("credit", "prepayment"):
                for start in (123456, 0):
                    st = fresh(device, mode=mode, time1=111, time2=222, payment=333,
                               time1_rate=5, time2_rate=6, payment_pct=700, balance=9)
                    st[REGS[reg]] = start
                    before = snapshot(st)
                    assert reset(st, reg) == reset_ok(device, reg), (device, reg, mode)
                    before[REGS[reg]] = 0
                    assert snapshot(st) == before, (device, reg, mode, start)
                    n += 1
    print("resets tried: %d" % n)
    assert n == 24


def _rejected(st, name, content):
    meter.inject_fault(st, 1, "other")
    before = snapshot(st)
    raises(meter.FormatError, meter.execute, st, name, content)
    assert snapshot(st) == before   # nothing changed, the fault is still pending


def test_gcs04a_rejects_with_nothing_changed():
    st = fresh("gsme", time1=10, time2=20, payment=30)
    cd = change_debt
    bad = (
        gbz([(0x0705, 0, 2, cd(0, 0)), (0x0705, 1, 2, cd(2, 0))]),   # two registers
        gbz([(0x0705, 0, 2, cd(0, 0)), (0x0705, 1, 2, cd(0, 0))]),   # two components
        gbz([(0x0705, 0, 2, cd(0, 5))]),                             # non-zero amount
        gbz([(0x0705, 0, 2, cd(4, -1))]),
        gbz([(0x0705, 0, 2, cd(1, 0))]),                             # incremental
        gbz([(0x0705, 0, 2, cd(3, 0))]),
        gbz([(0x0705, 0, 2, cd(5, 0))]),
        gbz([(0x0705, 0, 2, cd(0, 0, method=1))]),                   # wrong method
        gbz([(0x0705, 0, 2, cd(4, 0, method=0))]),
        gbz([(0x0705, 0, 2, cd(0, 0, rec=1))]),                      # recovery fields
        gbz([(0x0705, 0, 2, cd(0, 0, freq=0, start=1))]),
        gbz([(0x0705, 0, 2, cd(4, 0, pct=100))]),
        gbz([(0x0705, 0, 5, cd(0, 0))]),                             # not Change Debt
        gbz([(0x0700, 0, 2, cd(0, 0))]),                             # not Prepayment
    )
    for content in bad:
        _rejected(st, "GCS04a", content)
    assert (st["time1"], st["time2"], st["payment"]) == (10, 20, 30)


def test_ecs07a_rejects_with_nothing_changed():
    st = fresh("esme", time1=10, time2=20, payment=30)
    bad = (
        access_request([(3, 113, charge(1), 5, dl(0)), (3, 113, charge(2), 5, dl(0))]),
        access_request([(3, 113, charge(1), 5, dl(7))]),
        access_request([(3, 113, charge(1), 4, dl(0))]),
        access_request([(3, 113, charge(1), 5, dlu(0))]),
        access_request([(3, 113, charge(4), 5, dl(0))]),
        access_request([(3, 112, charge(1), 5, dl(0))]),
        access_request([(2, 113, charge(1), 5, dl(0))]),
        access_request([(1, 113, charge(1), 5, b"\x00")]),
    )
    for content in bad:
        _rejected(st, "ECS07a", content)


def test_wrong_device_or_use_case():
    st = fresh("esme")
    _rejected(st, "GCS04", gcs04a(0))
    st = fresh("gsme")
    _rejected(st, "ECS07a", ecs07a(0))
    _rejected(st, "GCS04", ecs07a(0))          # DLMS content for a GBZ use case
    _rejected(st, "GCS06", gcs40b(0))
    raises(ValueError, meter.execute, st, "XYZ99", gcs06())


def test_gcs04_absolute_and_incremental():
    st = fresh("gsme", time1=100, time2=200, payment=300)
    got = meter.execute(st, "GCS04", gcs04([
        dict(atype=0, amount=5000, rec=70, freq=0, start=1000, coll=30),
        dict(atype=3, amount=-50, rec=80, freq=1, coll=120),
        dict(atype=5, amount=1000, pct=2500)]))
    assert got == zcl_answers([(0, 2, 0), (1, 2, 0), (2, 2, 0)])
    assert (st["time1"], st["time2"], st["payment"]) == (5000, 150, 1300)
    r = st["time1_recovery"]
    assert (r["rate"], r["freq"], r["start"], r["coll"]) == (70, 0, 1000, 30)
    r = st["time2_recovery"]
    assert (r["rate"], r["freq"], r["start"], r["coll"]) == (80, 1, 0, 120)
    assert st["payment_recovery"]["pct"] == 2500
    # absolute on the others, incremental on time1, the same register twice
    meter.execute(st, "GCS04", gcs04([dict(atype=1, amount=7), dict(atype=2, amount=0),
                                      dict(atype=4, amount=42, pct=1)]))
    assert (st["time1"], st["time2"], st["payment"]) == (5007, 0, 42)
    meter.execute(st, "GCS04", gcs04([dict(atype=1, amount=1), dict(atype=1, amount=2)]))
    assert st["time1"] == 5010


def test_gcs04_incremental_below_zero_fails_and_stops():
    st = fresh("gsme", time1=100, time2=200, payment=300)
    got = meter.execute(st, "GCS04", gcs04([
        dict(atype=1, amount=-10), dict(atype=3, amount=-201), dict(atype=5, amount=5)]))
    assert got == zcl_answers([(0, 2, 0), (1, 2, 0x87), (2, 0xFF, 0x01)])
    assert (st["time1"], st["time2"], st["payment"]) == (90, 200, 300)
    got = meter.execute(st, "GCS04", gcs04([dict(atype=1, amount=0x7FFFFFFF)]))
    assert got == zcl_answers([(0, 2, 0x87)]) and st["time1"] == 90


def test_gcs04_field_checks():
    st = fresh("gsme")
    for d in (dict(atype=0, amount=-1), dict(atype=0, amount=1, method=1),
              dict(atype=4, amount=1, method=0), dict(atype=0, amount=1, freq=2),
              dict(atype=0, amount=1, coll=1440), dict(atype=4, amount=1, pct=10001),
              dict(atype=6, amount=1), dict(atype=0, amount=1, rec=-1)):
        _rejected(st, "GCS04", gcs04([d]))


def test_ecs07_semantics():
    st = fresh("esme", time1=100, time2=200, payment=300)
    got = meter.execute(st, "ECS07", ecs07(td1=1, td2=-200, pd=-300, pct=10000,
                                           rate1=12, rate2=7, period=3600))
    assert got == access_response([(2, 0)] * 5 + [(3, 0)] * 5)
    assert (st["time1"], st["time2"], st["payment"]) == (101, 0, 0)
    assert st["time1_recovery"]["rate"] == 120000 and st["time1_recovery"]["freq"] == 0
    assert st["time2_recovery"]["rate"] == 70000
    assert st["payment_recovery"]["pct"] == 10000
    # a passive unit charge waits for activation; price scale -2 means 1/100 GBP
    meter.execute(st, "ECS07", access_request([(2, 113, charge(1), 6, unit_charge(9, -2))]))
    assert st["time1_recovery"]["passive"] == 9000 and st["time1_recovery"]["rate"] == 120000
    meter.execute(st, "ECS07", access_request([(3, 113, charge(1), 2, integer(0))]))
    assert st["time1_recovery"]["rate"] == 9000
    # going below zero fails the action and stops the rest
    got = meter.execute(st, "ECS07", access_request([
        (3, 113, charge(1), 4, dl(-102)), (3, 113, charge(3), 4, dl(5))]))
    assert got == access_response([(3, 0xFA), (3, 0xFA)])
    assert st["time1"] == 101 and st["payment"] == 0


def test_ecs07_rejects():
    st = fresh("esme")
    for specs in (
            [(2, 113, charge(3), 6, unit_charge(1))],       # unit charge on payment debt
            [(2, 113, charge(1), 13, lu(5))],               # proportion on a time debt
            [(2, 113, charge(1), 8, dlu(60))],              # period not hourly / daily
            [(2, 113, charge(3), 13, lu(10001))],
            [(2, 113, charge(1), 6, unit_charge(1, -6))],   # finer than 0.00001 GBP
            [(2, 113, charge(1), 6, unit_charge(-1))],
            [(3, 113, charge(3), 2, integer(0))],
            [(3, 113, charge(1), 2, integer(1))],
            [(3, 113, charge(1), 5, dl(0))],                # a reset is ECS07a
            [(3, 113, charge(1), 4, dlu(5))],
            [(1, 113, charge(1), 2, b"\x00")],
            [(3, 112, credit(0), 2, dl(0))]):
        _rejected(st, "ECS07", access_request(specs))


def test_balance_commands():
    st = fresh("gsme", balance=500)
    assert meter.execute(st, "GCS40b", gcs40b(-70, atype=0)) == zcl_answers([(0, 5, 0)])
    assert st["balance"] == 430
    meter.execute(st, "GCS40b", gcs40b(1234))
    assert st["balance"] == 1234
    assert meter.execute(st, "GCS40b", gcs40b(0x7FFFFFFF, atype=0)) == zcl_answers([(0, 5, 0x87)])
    assert st["balance"] == 1234
    _rejected(st, "GCS40b", gbz([(0x0705, 0, 5, b"\x00" * 8 + b"\x02" + b"\x00" * 4)]))
    st = fresh("esme", balance=5, ec_balance=6, acc_debt=7)
    assert meter.execute(st, "ECS04b", ecs04b()) == access_response([(3, 0)] * 3)
    assert (st["balance"], st["ec_balance"], st["acc_debt"]) == (0, 0, 0)
    meter.execute(st, "ECS04b", ecs04b((-5,)))
    assert st["balance"] == -5
    _rejected(st, "ECS04b", ecs04b((0, -1)))


def test_emergency_credit_success_iff_active_afterwards():
    for device in ("gsme", "esme"):
        name, content = ("GCS06", gcs06()) if device == "gsme" else ("ECS09", ecs09())
        ok = zcl_answers([(0, 0, 0)]) if device == "gsme" else access_response([(3, 0)])
        bad = zcl_answers([(0, 0, 1)]) if device == "gsme" else access_response([(3, 0xFA)])
        st = fresh(device)                                  # credit mode: not on offer
        assert meter.execute(st, name, content) == bad and not st["ec_active"]
        st = fresh(device, mode="prepayment", balance=100001)   # above the threshold
        assert meter.execute(st, name, content) == bad and not st["ec_active"]
        st = fresh(device, mode="prepayment", ec_limit=0)   # SMETS2: on offer, empty
        assert meter.execute(st, name, content) == ok
        assert st["ec_active"] and st["ec_balance"] == 0
        st = fresh(device, mode="prepayment", balance=100000)
        assert meter.execute(st, name, content) == ok
        assert st["ec_active"] and st["ec_balance"] == 500000
        st["ec_balance"] = 10
        assert meter.execute(st, name, content) == ok and st["ec_balance"] == 10
        st = fresh(device, ec_active=True)                  # already active: success
        assert meter.execute(st, name, content) == ok


def test_time_recovery_only_in_prepayment_stops_at_zero():
    st = fresh("gsme", time1=250, time1_rate=100, time1_freq=1, time1_coll=60,
               balance=10000)
    assert meter.advance(st, 10 * DAY) == [] and st["time1"] == 250   # credit mode
    assert st["clock"] == 10 * DAY
    meter.set_state(st, {"mode": "prepayment"})
    assert meter.advance(st, HOUR - 1) == [] and st["time1"] == 250   # 01:00 not reached
    assert meter.advance(st, 1) == [] and st["time1"] == 150 and st["balance"] == 9900
    assert meter.advance(st, DAY - 1) == [] and st["time1"] == 150
    assert meter.advance(st, 1) == [] and st["time1"] == 50
    assert meter.advance(st, DAY) == [0x81A7] and st["time1"] == 0   # takes only 50
    assert st["balance"] == 9750
    assert meter.advance(st, 5 * DAY) == [] and st["balance"] == 9750  # stays at zero


def test_time_recovery_hourly_start_and_shortfall():
    st = fresh("esme", mode="prepayment", time2=1000, time2_rate=300, time2_freq=0,
               time2_start=5 * HOUR, balance=400)
    assert meter.advance(st, 5 * HOUR - 1) == [] and st["time2"] == 1000   # before start
    assert meter.advance(st, 1) == [] and st["time2"] == 700
    # the balance covers 100 more; the rest becomes accumulated debt
    assert meter.advance(st, 3 * HOUR) == [0x81A8]
    assert st["time2"] == 0 and st["balance"] == 0 and st["acc_debt"] == 600
    # both registers in one advance, one alert each
    st = fresh("gsme", mode="prepayment", time1=10, time2=10, time1_rate=10,
               time2_rate=5, time2_freq=0, balance=100)
    assert meter.advance(st, DAY) == [0x81A7, 0x81A8]
    assert st["balance"] == 80
    raises(ValueError, meter.advance, st, -1)
    raises(ValueError, meter.advance, st, 0xFFFFFFFF)


def test_payment_debt_percentage_on_topup():
    st = fresh("gsme", payment=1000, payment_pct=2500)
    assert meter.topup(st, 2000) == [] and st["payment"] == 1000 and st["balance"] == 2000
    meter.set_state(st, {"mode": "prepayment"})
    assert meter.topup(st, 2000) == [] and st["payment"] == 500 and st["balance"] == 3500
    assert meter.topup(st, 4000) == [0x81A9] and st["payment"] == 0
    assert st["balance"] == 7000                      # only the 500 left was taken
    assert meter.topup(st, 100) == [] and st["balance"] == 7100
    # accumulated debt and used emergency credit are repaid before the balance
    st = fresh("gsme", mode="prepayment", acc_debt=300, ec_active=True, ec_limit=1000,
               ec_balance=400)
    meter.topup(st, 500)
    assert st["acc_debt"] == 0 and st["ec_active"] and st["ec_balance"] == 600
    meter.topup(st, 1000)
    assert not st["ec_active"] and st["ec_balance"] == 0 and st["balance"] == 600
    raises(ValueError, meter.topup, st, 0)
    raises(ValueError, meter.topup, st, 0x7FFFFFFF)   # balance would overflow
    assert st["balance"] == 600


def test_fault_injection_each_status_each_position():
    zcl = {"hardware": 0xC0, "failure": 0x01, "other": 0x01}
    cosem = {"hardware": 0x01, "failure": 0x02, "other": 0xFA}
    debts = [dict(atype=1, amount=1), dict(atype=3, amount=2), dict(atype=5, amount=3)]
    for status in ("hardware", "failure", "other"):
        for at in (1, 2, 3, 4):
            st = fresh("gsme")
            meter.inject_fault(st, at, status)
            got = meter.execute(st, "GCS04", gcs04(debts))
            want = []
            for i in range(3):
                want.append((i, 2, 0) if i + 1 < at else (i, 2, zcl[status])
                            if i + 1 == at else (i, 0xFF, 0x01))
            assert got == zcl_answers(want), (status, at)
            assert [st[r] for r in REGS] == [i + 1 if i + 1 < at else 0 for i in range(3)]
            assert st["fault"] is None
            st = fresh("esme")
            meter.inject_fault(st, at, status)
            got = meter.execute(st, "ECS04b", ecs04b())
            want = [(3, 0 if i + 1 < at else cosem[status] if i + 1 == at else 0xFA)
                    for i in range(3)]
            assert got == access_response(want), (status, at)
    # a fault is for the next Command only
    st = fresh("gsme")
    meter.inject_fault(st, 1, "hardware")
    assert meter.execute(st, "GCS04a", gcs04a(0)) == zcl_answers([(0, 2, 0xC0)])
    assert meter.execute(st, "GCS04a", gcs04a(0)) == zcl_answers([(0, 2, 0)])
    # a fault on a reset leaves the register as it was
    st = fresh("esme", time2=77)
    meter.inject_fault(st, 1, "failure")
    assert meter.execute(st, "ECS07a", ecs07a(1)) == access_response([(3, 2)])
    assert st["time2"] == 77
    for at, status in ((0, "hardware"), (256, "other"), (1, "broken"), ("1", "other")):
        raises(ValueError, meter.inject_fault, st, at, status)
    assert st["fault"] is None


def test_set_state_validation():
    st = fresh("gsme")
    before = snapshot(st)
    for fields in ({"time1": 1, "nonsense": 2}, {"time1": -1}, {"payment": 0x80000000},
                   {"balance": 1.5}, {"balance": True}, {"mode": "postpay"},
                   {"ec_active": 1}, {"time1_coll": 1440}, {"time2_freq": 2},
                   {"payment_pct": 10001}, {"clock": -1}, {"time1": "5"}):
        e = raises(ValueError, meter.set_state, st, fields)
        assert str(e)
        assert snapshot(st) == before, fields
    meter.set_state(st, {"time1": 5, "balance": -3, "mode": "prepayment", "ec_active": True,
                         "time2_rate": 9, "time2_coll": 30, "clock": 77})
    assert st["time1"] == 5 and st["balance"] == -3 and st["mode"] == "prepayment"
    assert st["time2_recovery"]["rate"] == 9 and st["time2_recovery"]["coll"] == 30
    assert st["clock"] == 77 and st["ec_active"] is True and st["keys"] == {"ds": "opaque"}


def test_registers_view():
    st = fresh("esme", time1=1, time2=2, payment=3, balance=4)
    st["counters"]["90b3d51f30010000"] = 1001
    r = meter.registers(st)
    for k in ("time1", "time2", "payment", "balance", "mode", "device", "counters",
              "time1_recovery", "time2_recovery", "payment_recovery", "ec_balance",
              "ec_limit", "ec_active", "acc_debt", "clock"):
        assert k in r, k
    assert (r["time1"], r["time2"], r["payment"], r["balance"]) == (1, 2, 3, 4)
    assert r["counters"] == {"90b3d51f30010000": 1001} and "keys" not in r
    r["counters"]["x"] = 1
    r["time1_recovery"]["rate"] = 99
    assert "x" not in st["counters"] and st["time1_recovery"]["rate"] == 0


def test_copy_is_deep_and_equal():
    st = fresh("esme", mode="prepayment", time1=5)
    st["anchors"] = {"90b3d51f30010000": {"role": 2, "ds": "ab" * 64}}
    st["counters"]["90b3d51f30010000"] = 7
    st["extra"] = [1, {"x": None}, [True, "s"]]
    st["extra2"] = {"anchors": {"a": 1}}
    work = meter.copy(st)
    assert work == st == snapshot(st)
    # every dict and list is new: changing the copy anywhere leaves st alone ...
    work["time1"] = 6
    work["time1_recovery"]["rate"] = 9
    work["counters"]["90b3d51f30010000"] = 8
    work["extra"][1]["x"] = 1
    work["extra"][2].append(0)
    work["extra2"]["anchors"]["a"] = 2       # only the state's own anchors are shared
    # ... but for the parts only ever replaced whole, which are shared
    for k in ("anchors", "keys", "settings"):
        assert work[k] is st[k]
        work[k] = {"replaced": True}
    assert st == snapshot(fresh("esme", mode="prepayment", time1=5)) | {
        "anchors": {"90b3d51f30010000": {"role": 2, "ds": "ab" * 64}},
        "counters": {"90b3d51f30010000": 7}, "extra": [1, {"x": None}, [True, "s"]],
        "extra2": {"anchors": {"a": 1}}}


def test_handlers_and_diagnostics_do_not_stay_loaded():
    # Their code is heap only while it runs (meter.execute, meter's diagnostics).
    import sys
    for device, name, content in (("gsme", "GCS06", gcs06()), ("esme", "ECS09", ecs09())):
        st = fresh(device)
        meter.execute(st, name, content)
        for m in ("gsme", "gbz", "esme", "dlms", "meterdiag"):
            assert m not in sys.modules, m
        raises(meter.FormatError, meter.execute, st, name, b"\x00")
        assert "gsme" not in sys.modules and "esme" not in sys.modules
    assert meter.advance(fresh(), 1) == [] and "meterdiag" not in sys.modules
    st = fresh()
    meter.set_state(st, {"time1": 5})
    meter.inject_fault(st, 1, "other")
    assert st["time1"] == 5 and st["fault"] == {"at": 1, "status": "other"}
    for m in ("meterset", "meterdiag", "profiles"):
        assert m not in sys.modules, m
    raises(AttributeError, getattr, meter, "no_such_thing")
