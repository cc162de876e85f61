# Provisioning a provisioned meter as another device or id (issue 12 item 3): it wipes
# the meter, so only when asked (factory_reset); a trust anchor's system title is
# never a meter id; a party no longer trusted keeps no counter.
import json

import appboot
import p256
import store
from fwtest import tmpdir

SUPPLIER = "90b3d51f30010000"
OTHER = "90b3d51f30010001"


def meter_in(name, device="esme"):
    root = tmpdir(name)
    return appboot.make_meter({"root": root, "name": "test"}, {"device": device}), root


def anchors(*titles):
    out = {}
    for t in titles:
        _, ds = p256.keypair()
        _, ka = p256.keypair()
        out[t] = {"role": 2, "ds": ds.hex(), "ka": ka.hex()}
    return out


def diag(m, op, **req):
    reply, _ = m.diag(op, req)
    return reply


def test_another_device_or_id_needs_factory_reset():
    m, root = meter_in("wipe")
    a = anchors(SUPPLIER)
    assert diag(m, "provision", anchors=a, id="00db1234567890a0", new_keys=False)["ok"]
    assert diag(m, "set", fields={"time1": 30000, "mode": "prepayment", "clock": 99})["ok"]
    before = json.dumps(store.Store(root).load())
    for req in ({"device": "gsme"}, {"id": "00db1234567890a9"}):
        r = diag(m, "provision", anchors=a, new_keys=False, **req)
        assert not r["ok"] and "factory_reset" in r["error"], r
        assert json.dumps(store.Store(root).load()) == before
    r = diag(m, "provision", anchors=a, device="gsme", factory_reset=True)
    assert r["ok"] and r["device"] == "gsme"
    st = store.Store(root).load()
    assert (st["time1"], st["mode"], st["clock"]) == (0, "credit", 0)
    # the same device and id again: nothing is wiped, nothing to ask for
    assert diag(m, "set", fields={"time1": 500})["ok"]
    assert diag(m, "provision", anchors=a, new_keys=False)["ok"]
    assert store.Store(root).load()["time1"] == 500


def test_a_factory_fresh_meter_takes_any_identity():
    m, root = meter_in("fresh")
    r = diag(m, "provision", anchors=anchors(SUPPLIER), device="gsme", id="00db1234567890a1",
             new_keys=False)
    assert r["ok"] and (r["device"], r["id"]) == ("gsme", "00db1234567890a1")


def test_anchor_title_is_not_a_meter_id():
    m, root = meter_in("title")
    before = json.dumps(store.Store(root).load())
    r = diag(m, "provision", anchors=anchors(SUPPLIER), id=SUPPLIER.upper(), new_keys=False)
    assert not r["ok"] and "trust anchor" in r["error"], r
    assert json.dumps(store.Store(root).load()) == before


def test_counter_of_a_party_no_longer_trusted_is_dropped():
    m, root = meter_in("ctr")
    both = anchors(SUPPLIER, OTHER)
    assert diag(m, "provision", anchors=both, new_keys=False)["ok"]
    st = store.Store(root).load()
    st["counters"] = {SUPPLIER: 7, OTHER: 9}
    store.Store(root).commit(st)
    m = appboot.make_meter({"root": root, "name": "test"}, {})
    one = {SUPPLIER: both[SUPPLIER]}
    assert diag(m, "provision", anchors=one, new_keys=False)["ok"]
    assert store.Store(root).load()["counters"] == {SUPPLIER: 7}
    assert diag(m, "registers")["counters"] == {SUPPLIER: 7}
