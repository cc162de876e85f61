# The service loop: frames in, the meter application's answers out.
import gc
import json
import micropython
import struct
from micropython import const
from time import ticks_diff, ticks_ms

import link
import store
from stream import Closed

_CHUNK = bytearray(64)  # bytes in hand are fed one at a time anyway

# mpremote takes the REPL with CR ETX, then CR SOH. Between frames, after _QUIET_MS of
# silence, CR ETX CR hands the stream back: the firmware stops reading at once, so
# the SOH (Ctrl-A) that follows reaches the REPL, which answers mpremote itself.
# (The unix port cannot be interrupted with Ctrl-C on a raw pty, and on boards
# keyboard interrupt is off while serving, so this is how mpremote gets in.)
TAKEOVER = b"\r\x03\r"
_QUIET_MS = const(50)


def send(port, ftype, seq, payload, final=True):
    port.write(link.encode(ftype, seq, payload, link.FINAL if final else 0))


def nak(port, reason, seq):
    send(port, link.T_NAK, seq, bytes([reason]) + link.field(link.REASONS, reason - 1).encode())


def serve(port, app):
    """Serve frames until a RELEASE frame or the REPL takeover (returns True) or the
    stream closes (returns False).

    Keyboard interrupt is off while serving: 0x03 is an ordinary byte in a frame."""
    rx = link.Receiver()
    micropython.kbd_intr(-1)
    last = ticks_ms()
    tk = 0  # how much of TAKEOVER has been seen
    try:
        while True:
            try:
                n = port.read(_CHUNK, min(rx.want(), 64), 100)
            except Closed:
                return False
            now = ticks_ms()
            if not n:
                r = rx.expired(now)
                if r:
                    nak(port, r[1], r[2])
                continue
            if rx.n == 0:
                b = _CHUNK[0]
                if b == TAKEOVER[tk] and (tk or ticks_diff(now, last) >= _QUIET_MS):
                    tk += 1
                    if tk == len(TAKEOVER):
                        return True
                else:
                    tk = 0
            last = now
            for i in range(n):
                r = rx.feed(_CHUNK[i], now)
                if r is None:
                    continue
                if r[0] == "nak":
                    nak(port, r[1], r[2])
                    continue
                # Handed over in a box the handler empties: the payload of a long
                # frame holds that frame's own buffer (up to 4K), which can then go
                # as soon as the request is parsed, not after the answer.
                box = [r]
                r = None
                if _frame(port, app, box):
                    return True
    finally:
        micropython.kbd_intr(3)


def _frame(port, app, box):
    # Answer the frame in box (a Receiver.feed tuple); True for a RELEASE frame.
    r = box.pop()
    ftype, seq, payload = r[1], r[3], r[4]
    r = None
    if ftype == link.T_RELEASE:
        send(port, link.T_RELEASE, seq, b"")
        return True
    try:
        if ftype == link.T_DIAG:
            box.append(payload)
            payload = None
            _diag(port, app, seq, box)
        elif ftype == link.T_GBCS:
            _gbcs(port, app, seq, payload)
        else:
            nak(port, link.NAK_TYPE, seq)
    except MemoryError:
        # No room to build the answer: say so and keep serving.
        gc.collect()
        nak(port, link.NAK_INTERNAL, seq)
    return False


def _gbcs(port, app, seq, payload):
    # The answer is one or more GBCS messages (alerts, then the Response or the
    # alert that refuses the Command); the last one carries FINAL.
    try:
        out = app.gbcs(payload)
    except Exception as e:  # never let one Command stop the meter
        app.last_error = repr(e)
        nak(port, link.NAK_INTERNAL, seq)
        return
    last = len(out) - 1
    for i, (t, data) in enumerate(out):
        send(port, t, seq, data, i == last)


def _diag(port, app, seq, box):
    # box holds the request's payload, taken out (and so let go) once parsed.
    try:
        req = json.loads(box.pop())  # straight from the frame buffer, no copy
        op = req["op"]
    except (ValueError, KeyError, TypeError):
        reply, extra = {"ok": False, "error": "diagnostic request is not a JSON object with an op"}, ()
    else:
        try:
            reply, extra = app.diag(op, req)
        except Exception as e:
            app.last_error = repr(e)
            reply, extra = {"ok": False, "error": "internal error: " + repr(e)}, ()
    for t, data in extra:
        send(port, t, seq, data, False)
    # The reply goes out as json.dump writes it, through a store.Sink (a small buffer,
    # the CRC on the way), so it is never text or bytes in the heap: a register
    # read-out is most of a kilobyte. It is counted first, as the header carries the
    # length.
    out = store.Sink(None, 0)
    json.dump(reply, out)
    h = link.head(link.T_DIAG_REPLY, seq, out.n)
    port.write(h)
    out = store.Sink(port, link.crc32(memoryview(h)[2:]))
    json.dump(reply, out)
    out.flush()
    port.write(struct.pack(">I", out.crc & 0xFFFFFFFF))
