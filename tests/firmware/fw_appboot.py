# Boot (appboot.py) and the diagnostic dispatcher (app.Meter.diag): board settings
# read with a default, the status LED, the factory state and its bad-input path, and
# what the dispatcher does with a switched-off, unknown or failing diagnostic.
import json

import appboot
import store
from fwtest import raises, tmpdir


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)


def test_read_json_falls_back_to_the_default():
    d = tmpdir("boot_json")
    _write(d + "/good.json", '{"name": "pico"}')
    _write(d + "/bad.json", '{"name": ')
    assert appboot.read_json(d + "/good.json", {}) == {"name": "pico"}
    assert appboot.read_json(d + "/bad.json", {"name": "unknown"}) == {"name": "unknown"}
    assert appboot.read_json(d + "/none.json", {"x": 1}) == {"x": 1}


def test_led_and_blink():
    assert appboot.led(None) is None
    assert appboot.led(5) is None          # the unix port has no machine.Pin

    class Pin:
        v = 0

        def value(self, v=None):
            if v is None:
                return self.v
            self.v = v

    m = appboot.make_meter({"root": tmpdir("boot_led")}, {"device": "gsme"})
    m.led = Pin()
    m.diag("ping", {})
    assert m.led.v
    m.diag("ping", {})
    assert not m.led.v


def test_factory_state_and_a_bad_device_json():
    for factory, word in (({"device": "water"}, "device must be esme or gsme"),
                          ({"device": "esme", "profile": "smets9"}, "unknown profile"),
                          ({"device": "esme", "id": "00db12"}, "16 hex digits"),
                          ({"device": "gsme", "settings": {"colour": 1}}, "unknown setting")):
        d = tmpdir("boot_bad")
        e = raises(ValueError, appboot.make_meter, {"root": d}, factory)
        assert str(e).startswith("device.json: ") and word in str(e), str(e)
        assert store.Store(d).load() is None, factory      # nothing stored
    d = tmpdir("boot_good")
    m = appboot.make_meter({"root": d}, {"device": "esme", "profile": "smets2-pre"})
    assert m.st["device"] == "esme" and m.st["id"] == appboot.DEFAULT_ID["esme"]
    assert store.Store(d).load() == m.st
    # a stored meter wins over device.json
    m2 = appboot.make_meter({"root": d}, {"device": "gsme"})
    assert m2.st["device"] == "esme" and m2.st["profile"] == "smets2-pre"


def _stored(d):
    # The stored state and its sequence number: a commit of the same state shows too.
    s = store.Store(d)
    return json.dumps(s.load()), s.seq


def test_diagnostics_switched_off_unknown_and_failing():
    d = tmpdir("boot_diag")
    m = appboot.make_meter({"root": d, "diagnostics": False}, {"device": "gsme"})
    before = _stored(d)
    r, _ = m.diag("ping", {})
    assert r["ok"] and r["device"] == "gsme"               # ping always answers
    for op in ("heap", "registers", "set", "provision"):
        r, _ = m.diag(op, {"fields": {"time1": 5}})
        assert not r["ok"] and "switched off" in r["error"], op
    m.cfg["diagnostics"] = True
    r, _ = m.diag("no_such_op", {})
    assert not r["ok"] and r["error"] == "unknown diagnostic: no_such_op"
    for req in ({"fields": {"time1": -1}}, {"fields": {"nonsense": 1}}, {}):
        r, _ = m.diag("set", req)                         # ValueError, KeyError
        assert not r["ok"] and r["error"], req
    r, _ = m.diag("registers", {})
    assert r["ok"] and r["time1"] == 0
    assert _stored(d) == before                            # nothing committed
