# Framed binary link between host and meter over any byte stream (pty, USB CDC, UART).
#
# Frame (big-endian):
#   0  'G' 'M'          magic: where a frame may start; the receiver resynchronises on it
#   2  type             one of the T_* numbers below
#   3  flags            bit 0 FINAL: last frame of the answer to a request
#   4  seq              chosen by the host; every frame of the answer repeats it
#   5  length (2)       payload bytes, at most MAX_PAYLOAD
#   7  header check     CRC-8 (poly 07) of bytes 0..6, so a lying length is caught at once
#   8  payload
#   .. CRC-32 (4)       binascii.crc32 of bytes 2 .. end of payload
#
# The receiver never waits forever on a partial frame: once a frame has started, a
# gap longer than BYTE_TIMEOUT_MS between bytes abandons it with a NAK. Corrupt or
# oversize frames are answered with a NAK whose payload is a reason code and text.
# Every GBCS Command fits the receiver's own small buffer; only a longer frame (a
# big diagnostic request) gets one of its own, for as long as it takes. When the heap
# has no room for it, the frame is read to its end without keeping it and answered
# with a NAK "refused", so the link stays in step and the meter keeps running.
import gc
import struct

from micropython import const
from time import ticks_diff


_MAGIC0 = const(0x47)  # 'G'
_MAGIC1 = const(0x4D)  # 'M'
HEADER = const(8)
_TRAILER = const(4)
MAX_PAYLOAD = const(4096)
_SMALL = const(512)  # payloads up to this reuse the receiver's buffer
BYTE_TIMEOUT_MS = const(500)

FINAL = const(1)

T_GBCS = const(0x01)      # host -> meter: a GBCS COMMAND
T_RESPONSE = const(0x02)  # meter -> host: a GBCS Response
T_ALERT = const(0x03)     # meter -> host: a GBCS Alert
T_DIAG = const(0x10)      # host -> meter: local diagnostic request (JSON)
T_DIAG_REPLY = const(0x11)  # meter -> host: diagnostic reply (JSON)
T_NAK = const(0x15)       # meter -> host: frame rejected; payload = reason, text
T_RELEASE = const(0x1B)   # host -> meter: stop serving, hand the stream to the REPL

# NAK reasons
NAK_HEADER = const(1)     # header check failed
NAK_OVERSIZE = const(2)   # length above MAX_PAYLOAD
NAK_CRC = const(3)        # payload CRC wrong
NAK_TIMEOUT = const(4)    # frame started but not finished in time
NAK_TYPE = const(5)       # unknown frame type
NAK_BUSY = const(6)       # refused: a long frame the heap had no room for
NAK_INTERNAL = const(7)   # the meter failed handling it (see the lasterror diagnostic)

# NAK reason texts, reason 1 first, as fields of one string (see field)
REASONS = ("header check failed|frame longer than 4096 bytes|CRC mismatch|"
           "frame not completed in time|unknown frame type|refused|internal error")


def field(text, i):
    """Field i (0 first) of a text whose fields are separated by "|", found in place.
    Lists of texts (NAK reasons, the firmware's error texts) are kept this way: one
    string object in the heap instead of one for each, about 100 bytes apiece on a
    64-bit port; finding one allocates only the field itself."""
    o = 0
    for _ in range(i):
        o = text.index("|", o) + 1
    e = text.find("|", o)
    return text[o:e if e >= 0 else len(text)]


def crc8(buf, n):
    c = 0
    for i in range(n):
        c ^= buf[i]
        for _ in range(8):
            c = ((c << 1) ^ 0x07) & 0xFF if c & 0x80 else (c << 1) & 0xFF
    return c


try:
    from binascii import crc32
except ImportError:
    from crcsoft import crc32


def head(ftype, seq, n, flags=FINAL):
    """The header of a frame of n payload bytes. A sender that writes the payload out
    in pieces follows it with them and the CRC-32 of header[2:] and the payload."""
    if n > MAX_PAYLOAD:
        raise ValueError("payload too long")
    h = bytearray(HEADER)
    struct.pack_into(">BBBBBH", h, 0, _MAGIC0, _MAGIC1, ftype, flags, seq, n)
    h[7] = crc8(h, 7)
    return h


def encode(ftype, seq, payload, flags=FINAL):
    """One frame as bytes."""
    n = len(payload)
    h = head(ftype, seq, n, flags)
    f = bytearray(HEADER + n + _TRAILER)
    f[:HEADER] = h
    f[HEADER:HEADER + n] = payload
    struct.pack_into(">I", f, HEADER + n, crc32(memoryview(f)[2:HEADER + n]) & 0xFFFFFFFF)
    return f


class Receiver:
    """Byte-at-a-time frame assembler with a small preallocated buffer.

    feed(b, now_ms) returns None, or a tuple: ('frame', type, flags, seq, payload
    memoryview) or ('nak', reason, seq). The payload view is only valid until the
    next feed."""

    def __init__(self):
        self.buf = self.small = bytearray(HEADER + _SMALL + _TRAILER)
        self.n = 0
        self.need = 0
        self.last = 0

    def want(self):
        """How many bytes to read next without reading past the end of this frame:
        one at a time between frames, so bytes meant for the REPL stay unread."""
        n = self.n
        if n < 2:
            return 1
        if n < HEADER:
            return HEADER - n
        return self.need - n

    def expired(self, now_ms):
        """A started frame that stalled: abandon it (caller NAKs)."""
        if self.n and ticks_diff(now_ms, self.last) > BYTE_TIMEOUT_MS:
            seq = self.small[4] if self.n > 4 else 0
            self.n = 0
            self.buf = self.small
            return ("nak", NAK_TIMEOUT, seq)
        return None

    def feed(self, b, now_ms):
        self.last = now_ms
        buf = self.buf
        n = self.n
        if n == 0:
            if b == _MAGIC0:
                buf[0] = b
                self.n = 1
            return None
        if n == 1:
            if b == _MAGIC1:
                buf[1] = b
                self.n = 2
            elif b != _MAGIC0:
                self.n = 0
            return None
        if buf is not None:  # None: a long frame there was no room for
            buf[n] = b
        n += 1
        self.n = n
        if n == HEADER:
            if crc8(buf, 7) != buf[7]:
                return self._restart(NAK_HEADER)
            ln = (buf[5] << 8) | buf[6]
            if ln > MAX_PAYLOAD:
                return self._restart(NAK_OVERSIZE)
            self.need = HEADER + ln + _TRAILER
            if ln > _SMALL:
                self.buf = _room(self.need)
                if self.buf is not None:
                    self.buf[:HEADER] = buf[:HEADER]
            return None
        if n > HEADER and n == self.need:
            self.n = 0
            self.buf = self.small
            if buf is None:
                return ("nak", NAK_BUSY, self.small[4])
            end = n - _TRAILER
            mv = memoryview(buf)
            if crc32(mv[2:end]) & 0xFFFFFFFF != struct.unpack_from(">I", buf, end)[0]:
                return ("nak", NAK_CRC, buf[4])
            return ("frame", buf[2], buf[3], buf[4], mv[HEADER:end])
        return None

    def _restart(self, reason):
        # The header was bad: the magic may have been noise, so rescan from the
        # bytes after it rather than dropping a real frame that follows.
        seq = self.buf[4]
        tail = bytes(self.buf[2:self.n])
        self.n = 0
        for c in tail:
            r = self.feed(c, self.last)
            if r:
                break
        return ("nak", reason, seq)


def _room(n):
    # A buffer for a long frame, or None when the heap has no n bytes in one piece.
    for _ in (0, 1):
        try:
            return bytearray(n)
        except MemoryError:
            gc.collect()
    return None
