# The firmware fed each RTDS Command's content answers the RTDS Response's content
# byte for byte (SUCCESS cases from the state the case implies, ERROR cases with the
# fault injected where RTDS shows it); the same paths with this project's own vectors.
#
# State each RTDS case implies (documented here and in meter.py):
#   GCS04, ECS07   registers low enough that the incremental amounts fit (fresh: 0)
#   GCS40b, ECS04b any state (an absolute / set-to-value of 0)
#   GCS06, ECS09   prepayment mode, emergency credit on offer: ec_limit > 0 and the
#                  balance at or below ec_threshold (fresh state + mode prepayment)
#   ERROR cases    the same state, plus a "hardware" fault at the component /
#                  specification RTDS shows failing: GCS04 2, ECS07 9, ECS04b 2,
#                  GCS40b 1, GCS06 1, ECS09 1
import meter
from fwtest import rtds_hex, shared_dir
from fw_vectors import (ESME_ID, GSME_ID, INVOKE, access_response, ecs04b, ecs07, ecs09,
                        gcs04, gcs06, gcs40b, gs_content, snapshot, zcl_answers)

CASES = (
    # folder/prefix            use case  device  fault at
    ("2.3_GCS04/GCS04_2.3", "GCS04", "gsme", 2),
    ("2.3_ECS07/ECS07_2.3", "ECS07", "esme", 9),
    ("1.5_ECS04b/ECS04b_1.5", "ECS04b", "esme", 2),
    ("1.5_GCS40b/GCS40b_1.5", "GCS40b", "gsme", 1),
    ("2.5_ECS09/ECS09_2.5", "ECS09", "esme", 1),
    ("2.5_GCS06/GCS06_2.5", "GCS06", "gsme", 1),
)


def implied_state(device):
    st = meter.new_state(device, ESME_ID if device == "esme" else GSME_ID)
    meter.set_state(st, {"mode": "prepayment"})
    return st


def _run_rtds(outcome):
    shared_dir()
    n = 0
    for prefix, name, device, at in CASES:
        st = implied_state(device)
        if outcome == "ERROR":
            meter.inject_fault(st, at, "hardware")
        cmd = gs_content(rtds_hex("%s_%s_PRECOMMAND_GBCS.HEX" % (prefix, outcome)))
        want = gs_content(rtds_hex("%s_%s_RESPONSE_GBCS.HEX" % (prefix, outcome)))
        got = meter.execute(st, name, cmd)
        assert got == want, "%s %s: got %s want %s" % (name, outcome, got.hex(), want.hex())
        assert st["fault"] is None
        n += 1
    print("RTDS %s cases matched: %d" % (outcome, n))


def test_rtds_success_cases():
    _run_rtds("SUCCESS")


def test_rtds_error_cases():
    _run_rtds("ERROR")


def test_rtds_success_state_effects():
    # The RTDS Commands do what their DUIS Service Requests asked.
    shared_dir()
    st = implied_state("gsme")
    meter.execute(st, "GCS04", gs_content(rtds_hex(
        "2.3_GCS04/GCS04_2.3_SUCCESS_PRECOMMAND_GBCS.HEX")))
    assert (st["time1"], st["time2"], st["payment"]) == (1000000, 500000, 1000000)
    assert st["time1_recovery"]["rate"] == 50000 and st["time1_recovery"]["freq"] == 1
    assert st["time2_recovery"]["rate"] == 50000 and st["time2_recovery"]["freq"] == 0
    assert st["payment_recovery"]["pct"] == 100
    st = implied_state("esme")
    meter.execute(st, "ECS07", gs_content(rtds_hex(
        "2.3_ECS07/ECS07_2.3_SUCCESS_PRECOMMAND_GBCS.HEX")))
    assert (st["time1"], st["time2"], st["payment"]) == (30000, 15000, 50000)
    assert st["time1_recovery"]["rate"] == 30000 and st["time2_recovery"]["rate"] == 150000
    assert st["payment_recovery"]["pct"] == 1000


# -- the same paths with own vectors ------------------------------------------------------

_GCS04 = [dict(atype=1, amount=1000000, rec=50000, freq=1),
          dict(atype=3, amount=500000, rec=50000, freq=0),
          dict(atype=5, amount=1000000, rec=1, freq=0, pct=100)]


def _own(name, device, content, fault_at=None):
    st = implied_state(device)
    if fault_at:
        meter.inject_fault(st, fault_at, "hardware")
    return meter.execute(st, name, content)


def test_own_gsme_success_and_error():
    ok, hw, ff = 0x00, 0xC0, 0x01
    assert _own("GCS04", "gsme", gcs04(_GCS04)) == \
        zcl_answers([(0, 2, ok), (1, 2, ok), (2, 2, ok)])
    assert _own("GCS04", "gsme", gcs04(_GCS04), 2) == \
        zcl_answers([(0, 2, ok), (1, 2, hw), (2, 0xFF, ff)])
    assert _own("GCS40b", "gsme", gcs40b(0)) == zcl_answers([(0, 5, ok)])
    assert _own("GCS40b", "gsme", gcs40b(0), 1) == zcl_answers([(0, 5, hw)])
    assert _own("GCS06", "gsme", gcs06()) == zcl_answers([(0, 0, ok)])
    assert _own("GCS06", "gsme", gcs06(), 1) == zcl_answers([(0, 0, hw)])


def test_own_esme_success_and_error():
    sets, acts = [(2, 0)] * 5, [(3, 0)] * 5
    assert _own("ECS07", "esme", ecs07()) == access_response(sets + acts)
    assert _own("ECS07", "esme", ecs07(), 9) == \
        access_response(sets + [(3, 0)] * 3 + [(3, 1), (3, 0xFA)])
    assert _own("ECS04b", "esme", ecs04b()) == access_response([(3, 0)] * 3)
    assert _own("ECS04b", "esme", ecs04b(), 2) == access_response([(3, 0), (3, 1), (3, 0xFA)])
    assert _own("ECS09", "esme", ecs09()) == access_response([(3, 0)])
    assert _own("ECS09", "esme", ecs09(), 1) == access_response([(3, 1)])


def test_own_invoke_id_echoed():
    inv = b"\x20\x00\x12\x34"
    from fw_vectors import access_request, credit, integer
    got = _own("ECS09", "esme", access_request([(3, 112, credit(1), 3, integer(0))], inv))
    assert got == access_response([(3, 0)], inv)
    assert got[1:5] == inv and INVOKE != inv


def test_own_error_case_state():
    # In an ERROR case, what came before the failure is done, the rest is not.
    st = implied_state("gsme")
    before = snapshot(st)
    meter.inject_fault(st, 2, "hardware")
    meter.execute(st, "GCS04", gcs04(_GCS04))
    assert st["time1"] == 1000000 and st["time2"] == 0 and st["payment"] == 0
    assert st["time2_recovery"] == before["time2_recovery"]
    st = implied_state("esme")
    meter.inject_fault(st, 9, "hardware")
    meter.execute(st, "ECS07", ecs07())
    assert st["payment"] == 50000 and st["time1"] == 0 and st["time2"] == 0
