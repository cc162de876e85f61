# The meter application: board settings, the status LED, and what each frame does.
import gc
import json
import sys

import link
import service
import stream

VERSION = "0.1.0"


def _read_json(name, default):
    try:
        with open(name) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


class Led:
    """The board's status LED, toggled per handled frame; nothing where there is none."""

    def __init__(self, pin):
        self.pin = None
        if pin is None:
            return
        try:
            from machine import Pin
            self.pin = Pin(pin, Pin.OUT)
        except (ImportError, ValueError, TypeError):
            self.pin = None

    def toggle(self):
        if self.pin is not None:
            self.pin.value(not self.pin.value())


class Meter:
    def __init__(self, cfg, factory):
        self.cfg = cfg
        self.factory = factory
        self.led = Led(cfg.get("led"))
        self.last_error = None

    def device(self):
        return self.factory.get("device", "gsme")

    def ping(self):
        gc.collect()
        return {"ok": True, "fw": VERSION, "board": self.cfg.get("name", "unknown"),
                "device": self.device(), "heap_free": gc.mem_free(),
                "platform": sys.platform}

    def diag(self, op, req):
        self.led.toggle()
        if op == "ping":
            return self.ping(), ()
        if not self.cfg.get("diagnostics", True):
            return {"ok": False, "error": "diagnostics are switched off on this board"}, ()
        if op == "lasterror":
            return {"ok": True, "error": self.last_error}, ()
        return {"ok": False, "error": "unknown diagnostic: %s" % op}, ()

    def gbcs(self, command):
        self.led.toggle()
        return [(link.T_ALERT, b"")]


def boot():
    cfg = _read_json("board.json", {"name": "unknown"})
    factory = _read_json("device.json", {})
    port = stream.open_port(cfg)
    service.serve(port, Meter(cfg, factory))
