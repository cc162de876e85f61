"""Host end of the framed serial link (see firmware/link.py for the frame layout).

Works over any pyserial port: a device path (/dev/ttyACM0, a virtual board's pty)
or a pyserial URL (socket://, rfc2217://, loop://)."""

import errno
import json
import random
import struct
import time
import zlib

import serial

from gbmeter.board import portlock
from gbmeter.errors import UserError

MAGIC = b"GM"
HEADER = 8
TRAILER = 4
MAX_PAYLOAD = 4096
FINAL = 1

T_GBCS = 0x01
T_RESPONSE = 0x02
T_ALERT = 0x03
T_DIAG = 0x10
T_DIAG_REPLY = 0x11
T_NAK = 0x15
T_RELEASE = 0x1B

# diagnostics that only read: an unanswered one changed nothing
READING_DIAGS = ("ping", "registers", "lasterror", "heap")

TYPE_NAMES = {T_GBCS: "gbcs", T_RESPONSE: "response", T_ALERT: "alert", T_DIAG: "diag",
              T_DIAG_REPLY: "diag-reply", T_NAK: "nak", T_RELEASE: "release"}


class LinkError(UserError):
    """The link failed: no board, no answer, the board went away, or it NAK'd."""


class OutcomeUnknown(LinkError):
    """A request that may change the meter went out and its answer was not read."""

    exit_code = 5


class MeterError(UserError):
    """The meter answered, but refused the request (a diagnostic error)."""


def crc8(data):
    c = 0
    for b in data:
        c ^= b
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


def encode(ftype, seq, payload, flags=FINAL):
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte limit")
    head = MAGIC + struct.pack(">BBBH", ftype, flags, seq, len(payload))
    head += bytes([crc8(head)])
    body = head + bytes(payload)
    return body + struct.pack(">I", zlib.crc32(body[2:]))


def nak_reason(payload):
    """The text of a NAK frame's payload (reason code, then text)."""
    return payload[1:].decode(errors="replace") if payload else "?"


class Frame:
    __slots__ = ("type", "flags", "seq", "payload")

    def __init__(self, ftype, flags, seq, payload):
        self.type, self.flags, self.seq, self.payload = ftype, flags, seq, payload

    @property
    def final(self):
        return bool(self.flags & FINAL)

    def __repr__(self):
        return f"Frame({TYPE_NAMES.get(self.type, hex(self.type))}, seq={self.seq}, {self.payload.hex()})"


class Interrupted(KeyboardInterrupt):
    """Ctrl-C while a request was out: args[0] says what is known of it."""


class Link:
    """The host end of one board's link. Opening it takes the port's lock
    (gbmeter.board.portlock: one process at a time, waiting up to `wait` seconds),
    drops whatever an earlier user left unread, and starts the frame sequence at a
    random number: with the lock, only the late answer of an earlier user that was
    killed mid-request can still arrive, and it is skipped as its sequence number is
    not ours (bar a 1 in 255 chance; a Response is also checked against its Command)."""

    def __init__(self, port, timeout=10.0, baudrate=115200, wait=None):
        self.port = port
        self.timeout = timeout
        self.seq = random.randrange(1, 256)
        self._rx = bytearray()
        self.ser = None
        self._lock = portlock.acquire(port, wait)
        try:
            self.ser = serial.serial_for_url(port, baudrate=baudrate, timeout=0.05)
            self.ser.reset_input_buffer()
        except (serial.SerialException, ValueError, OSError) as e:
            portlock.release(self._lock)
            self._lock = None
            if isinstance(e, OSError) and e.errno == errno.ENOENT or "No such file" in str(e):
                raise LinkError(f"cannot open {port}: no such port (is the board "
                                "plugged in, or the sim running?)") from None
            raise LinkError(f"cannot open {port}: {e}") from None

    def close(self):
        try:
            if self.ser is not None:
                self.ser.close()
        finally:
            portlock.release(self._lock)
            self._lock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- bytes ------------------------------------------------------------------
    def write(self, data):
        try:
            self.ser.write(data)
            self.ser.flush()
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.port} went away while sending: {e}") from None

    def _fill(self, deadline):
        try:
            chunk = self.ser.read(max(1, self.ser.in_waiting))
        except (serial.SerialException, OSError) as e:
            raise LinkError(f"{self.port} went away: {e}") from None
        if chunk:
            self._rx += chunk
        elif time.monotonic() > deadline:
            raise TimeoutError

    def read_frame(self, timeout=None):
        """The next well-formed frame; noise and corrupt frames are skipped."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        rx = self._rx
        while True:
            i = rx.find(MAGIC)
            if i < 0:
                del rx[:max(0, len(rx) - 1)]
            elif i:
                del rx[:i]
            if len(rx) >= HEADER and rx.startswith(MAGIC):
                if crc8(rx[:7]) != rx[7]:
                    del rx[:1]
                    continue
                n = struct.unpack_from(">H", rx, 5)[0]
                if n > MAX_PAYLOAD:
                    del rx[:1]
                    continue
                total = HEADER + n + TRAILER
                if len(rx) >= total:
                    want = struct.unpack_from(">I", rx, HEADER + n)[0]
                    if zlib.crc32(rx[2:HEADER + n]) != want:
                        del rx[:1]
                        continue
                    f = Frame(rx[2], rx[3], rx[4], bytes(rx[HEADER:HEADER + n]))
                    del rx[:total]
                    return f
            self._fill(deadline)

    # -- requests ---------------------------------------------------------------
    def request(self, ftype, payload, timeout=None, naks=False, what=None):
        """Send one request; return every frame of its answer, the FINAL one last.
        A NAK raises LinkError, or with `naks` ends the answer as its last frame.
        `what` names a request that may change the meter ("the Command"): when it
        went out and no answer was read (timeout, Ctrl-C), the error says so."""
        if len(payload) > MAX_PAYLOAD:
            raise LinkError(f"{len(payload)} bytes do not fit in one link frame (at most "
                            f"{MAX_PAYLOAD}): nothing was sent")
        self.seq = self.seq % 255 + 1      # 1..255; 0 is the sim's RELEASE at stop
        seq = self.seq
        frame = encode(ftype, seq, payload)
        try:
            return self._exchange(frame, seq, timeout, naks, what)
        except KeyboardInterrupt:
            # Ctrl-C with the request out: say what is known of it
            if what:
                raise Interrupted(self.unknown(what)) from None
            raise

    def unknown(self, what):
        """Words for a request that went out and whose answer was not read."""
        return (f"{what} was sent; no answer read, so whether the meter acted on it is "
                f"unknown: check with `gbmeter registers --port {self.port}`")

    def _exchange(self, frame, seq, timeout, naks, what):
        self.write(frame)
        frames = []
        wait = self.timeout if timeout is None else timeout
        while True:
            try:
                f = self.read_frame(wait)
            except TimeoutError:
                if what:
                    raise OutcomeUnknown(f"no answer from {self.port} within {wait:g} s "
                                         f"(--timeout): {self.unknown(what)}") from None
                if frames:
                    raise LinkError(f"{self.port} stopped answering mid-reply") from None
                raise LinkError(
                    f"no answer from {self.port} within {wait:g} s: is it a gbmeter board "
                    "running its firmware?") from None
            if f.seq != seq:
                continue  # a stale answer to an earlier request
            if f.type == T_NAK:
                if naks:
                    frames.append(f)
                    return frames
                raise LinkError(f"{self.port} rejected the frame: {nak_reason(f.payload)}")
            frames.append(f)
            if f.final:
                return frames

    def diag(self, op, timeout=None, **fields):
        """Run one local diagnostic; returns the meter's reply object and any alert frames."""
        req = dict(fields, op=op)
        what = None if op in READING_DIAGS else f"the {op} diagnostic"
        frames = self.request(T_DIAG, json.dumps(req).encode(), timeout, what=what)
        last = frames[-1]
        if last.type != T_DIAG_REPLY:
            raise LinkError(f"{self.port} answered a diagnostic with a {TYPE_NAMES.get(last.type)} frame")
        try:
            reply = json.loads(last.payload)
        except ValueError:
            raise LinkError(f"{self.port} sent a diagnostic reply that is not JSON") from None
        if not reply.get("ok"):
            raise MeterError(f"the meter refused {op}: {reply.get('error', 'no reason given')}")
        reply["alerts"] = [f.payload for f in frames[:-1] if f.type == T_ALERT]
        return reply

    def ping(self, timeout=None):
        return self.diag("ping", timeout=timeout)

    def gbcs(self, command, timeout=None, naks=False):
        """Send a GBCS COMMAND; returns the answer frames (alerts, then Response or
        alert; with `naks`, a NAK frame ends them instead of raising LinkError)."""
        return self.request(T_GBCS, command, timeout, naks, what="the Command")

    def release(self, timeout=None):
        """Ask the firmware to stop serving and hand the stream back to the REPL."""
        self.request(T_RELEASE, b"", timeout)
