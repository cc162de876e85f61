# The application's side of device profiles: the factory profile, provisioning a
# profile and its settings (bad ones change nothing), the state kept in the store, a
# state stored before profiles, and which use cases the envelope lets through.
import json

import appboot
import p256
import store
import usecases
from fwtest import tmpdir


def meter_in(name, factory):
    root = tmpdir(name)
    return appboot.make_meter({"root": root, "name": "test"}, factory), root


def anchors():
    _, ds = p256.keypair()
    _, ka = p256.keypair()
    return {"90b3d51f30010000": {"role": 2, "ds": ds.hex(), "ka": ka.hex()}}


def diag(m, op, **req):
    reply, _ = m.diag(op, req)
    return reply


def test_factory_profile_reported_and_stored():
    m, root = meter_in("fp", {"device": "esme", "profile": "smets2-pre"})
    hello = diag(m, "ping")
    assert hello["profile"] == "smets2-pre" and hello["settings"]["releases"] == []
    r = diag(m, "registers")
    assert r["ok"] and r["profile"] == "smets2-pre" and r["device"] == "esme"
    again = store.Store(root).load()
    assert again["profile"] == "smets2-pre" and again["settings"] == m.st["settings"]
    # the envelope's question: a reset is unknown here, Manage Debt is not
    assert not m.supports(usecases.by_name("ECS07a"))
    assert m.supports(usecases.by_name("ECS07"))
    m2, _ = meter_in("fp2", {"device": "esme"})
    assert diag(m2, "ping")["profile"] == "smets2" and m2.supports(usecases.by_name("ECS07a"))


def test_provision_profile_and_settings():
    m, root = meter_in("pp", {"device": "gsme"})
    a = anchors()
    r = diag(m, "provision", anchors=a, profile="smets1-secure")
    assert r["ok"] and r["profile"] == "smets1-secure" and r["settings"]["whole_pence"]
    r = diag(m, "provision", anchors=a, settings={"ec_amount": "limit-less-debt"},
             new_keys=False)
    assert r["ok"] and r["settings"]["ec_amount"] == "limit-less-debt"
    assert r["settings"]["whole_pence"] is True            # still the profile's
    r = diag(m, "provision", anchors=a, new_keys=False)    # no settings: overrides kept
    assert r["settings"]["ec_amount"] == "limit-less-debt"
    r = diag(m, "provision", anchors=a, profile="smets2", new_keys=False)
    assert r["settings"]["ec_amount"] == "limit" and r["settings"]["whole_pence"] is False
    assert store.Store(root).load()["profile"] == "smets2"


def _retitled(anchors, title):
    return {title: a for a in anchors.values()}


def _with(anchors, **fields):
    return {who: dict(a, **fields) for who, a in anchors.items()}


def test_bad_provisioning_changes_nothing():
    m, root = meter_in("bp", {"device": "gsme", "profile": "smets1-secure"})
    a = anchors()
    assert diag(m, "provision", anchors=a)["ok"]
    before = json.dumps(store.Store(root).load())
    for req, word in (({"profile": "smets9"}, "unknown profile"),
                      ({"settings": {"colour": 1}}, "unknown setting"),
                      ({"settings": {"whole_pence": "yes"}}, "whole_pence"),
                      ({"settings": {"releases": []}}, "set by the profile"),
                      ({"device": "water"}, "device"),
                      ({"id": "00db12"}, "16 hex digits"),
                      ({"anchors": _retitled(a, "90b3d51f 30010000")}, "system title"),
                      ({"anchors": _retitled(a, "90b3d51f300100")}, "system title"),
                      ({"anchors": _with(a, role=5)}, "role"),
                      ({"anchors": _with(a, ds="04" + "00" * 64)}, "not a P-256 point")):
        req.setdefault("anchors", a)
        sup_table = m.sec.tables[list(a)[0]]
        r = diag(m, "provision", **req)
        assert not r["ok"] and word in r["error"], (req, r)
        assert json.dumps(store.Store(root).load()) == before
        assert m.st["profile"] == "smets1-secure"
        # the caches of the anchors the meter kept are still there
        assert m.sec.tables[list(a)[0]].pub() == sup_table.pub()


def test_state_stored_before_profiles_gets_its_settings():
    root = tmpdir("old")
    s = store.Store(root)
    m, _ = meter_in("old", {"device": "esme"})
    st = m.st
    for profile in ("smets2-pre", None):
        old = dict(st)
        del old["settings"]
        if profile:
            old["profile"] = profile
        else:
            del old["profile"]
        old["time1"] = 4242
        s.commit(old)
        m2 = appboot.make_meter({"root": root}, {"device": "gsme", "profile": "smets1-secure"})
        want = profile or "smets2"
        assert m2.st["profile"] == want and m2.st["time1"] == 4242
        assert m2.st["device"] == "esme"                    # the stored meter, not the factory
        assert m2.st["settings"]["releases"] == ([] if profile else ["SECMP0002"])
        assert store.Store(root).load()["settings"] == m2.st["settings"]


def test_provisioning_remakes_the_security_caches():
    m, _ = meter_in("warm", {"device": "gsme"})
    assert m.sec.tables == {}                       # factory-fresh: nothing to warm
    a = anchors()
    assert diag(m, "provision", anchors=a)["ok"]
    sup = list(a)[0]
    first = m.sec.tables[sup]
    assert first.pub() == bytes.fromhex(a[sup]["ds"])
    b = anchors()
    assert diag(m, "provision", anchors=b, new_keys=False)["ok"]
    assert m.sec.tables[sup] is not first           # the new key's table
    assert m.sec.tables[sup].pub() == bytes.fromhex(b[sup]["ds"])
    m2 = appboot.make_meter(m.cfg, {})              # a restart warms from the store
    assert m2.sec.tables[sup].pub() == bytes.fromhex(b[sup]["ds"])
