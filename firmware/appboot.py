# Boot: the board's settings (board.json, deployed from boards/<name>/), its link, and
# the meter from its store, or factory-fresh as device.json says. app.boot loads this
# module once and drops it before the first frame: a serving board holds none of it.
import gc
import json

import app
import meter
import onecall
import p256
import store
import stream

# Factory identities when device.json gives none: the NOTES.md test meters.
DEFAULT_ID = {"esme": "00db1234567890a0", "gsme": "00db1234567890a1"}


def read_json(name, default):
    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def comb_window(wanted, heap):
    """The largest comb window up to `wanted` whose two tables (generator and the
    Supplier's key: about 200 * 2**w bytes with the building) take at most 1/32 of
    the heap, so a 64K board gets window 3 (verify about 2.8 ms on the unix port), a
    128K board window 4 and the unix port's 2M heap window 8."""
    w = wanted
    while w > 2 and 200 * (1 << w) * 32 > heap:
        w -= 1
    return w


def led(pin):
    # The board's status LED as an output pin; None where there is none (or no
    # machine module: the unix port).
    if pin is None:
        return None
    try:
        from machine import Pin
        return Pin(pin, Pin.OUT)
    except (ImportError, ValueError, TypeError):
        return None


def make_meter(cfg, factory):
    """The app.Meter of this board: its stored state, else a factory-fresh one of
    the device and profile factory (device.json) gives, committed at once. A bad
    device.json is a ValueError that names it, and nothing is stored."""
    gc.collect()
    p256.set_window(comb_window(cfg.get("ec_window", 4), gc.mem_free() + gc.mem_alloc()))
    keep = store.Store(cfg.get("root", "."))
    st = keep.load()
    if st is None:
        device = factory.get("device", "gsme")
        if device not in DEFAULT_ID:
            raise ValueError("device.json: device must be esme or gsme, not %r" % device)
        try:
            st = meter.new_state(device, factory.get("id") or DEFAULT_ID[device],
                                 factory.get("profile", "smets2"), factory.get("settings"))
        except ValueError as e:
            raise ValueError("device.json: %s" % e)
        keep.commit(st)
    elif "settings" not in st:
        # Stored before profiles had settings: its profile's.
        st["profile"] = st.get("profile") or "smets2"
        st["settings"] = meter.new_state(st["device"], st["id"], st["profile"])["settings"]
        keep.commit(st)
    m = app.Meter(cfg, keep, st, led(cfg.get("led")))
    m.sec.warm(st)
    return m


def start():
    """(port, meter) for app.boot to serve."""
    onecall.intern()
    cfg = read_json("board.json", {"name": "unknown"})
    return stream.open_port(cfg), make_meter(cfg, read_json("device.json", {}))
