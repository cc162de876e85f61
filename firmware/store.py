# Power-safe storage of the meter state: two slot files written alternately.
#
#   <root>/state.a, <root>/state.b    one record each:
#     magic "GBS1" | sequence u32 | payload length u32 | CRC-32 u32 | payload (JSON)
#     all little-endian; the CRC covers sequence, length and payload.
#
# commit() writes the whole new state, with sequence = newest + 1, into the slot
# that does NOT hold the newest valid record, and closes the file (which flushes
# it, and on littlefs commits it). load() reads both slots and returns the valid
# record with the highest sequence. The newest valid record is never written over,
# so a power cut at any instant of a commit leaves it intact: the interrupted slot
# is then either torn (bad length or CRC, ignored) or still the older record, and
# load returns exactly the old state. Once the slot file is closed the new record
# is the newest valid one and load returns exactly the new state. This holds on
# littlefs (copy-on-write, where a rewritten file is atomic only at close and the
# whole file can vanish at a cut), on FAT and on a POSIX folder alike.
# The sequence number is 32-bit: it would take 4e9 commits to wrap.
#
# Neither direction holds the JSON text in the heap (with keys and anchors it is
# over 1K, and its copies were a Command's biggest allocations on a 64K board):
# commit runs json.dump twice, first only counting (the CRC takes the length
# before the payload), then through a 64-byte buffer that CRCs it on the way to
# the file, and writes the header last (its length is 0 until then, so a cut
# leaves a torn slot); load CRCs the payload in 64-byte reads, then json.load
# parses it straight from the file, and only the winning slot is parsed. The
# reading side is storeload.py, loaded for the call: only a board starting up reads.
import io
import json
import struct

import onecall

try:
    from binascii import crc32
except ImportError:
    from crcsoft import crc32

MAGIC = b"GBS1"
HEADER = "<4sIII"
HEADER_SIZE = 16
SLOTS = ("state.a", "state.b")


class Sink(io.IOBase):
    """What json.dump writes (a few bytes a call), gathered in a small buffer and
    passed on to f.write in pieces, with the running length n and CRC-32 crc; with
    f None it only counts. (The service streams diagnostic replies through one too.)"""

    def __init__(self, f, crc):
        self.f = f
        self.crc = crc
        self.n = 0
        self.k = 0
        self.buf = bytearray(64) if f else None

    def write(self, b):
        n = len(b)
        if self.f is None:
            self.n += n
        elif self.k + n <= 64:
            self.buf[self.k:self.k + n] = b
            self.k += n
        else:
            self.flush()
            self._out(b)
        return n

    def flush(self):
        if self.k:
            self._out(memoryview(self.buf)[:self.k])
            self.k = 0

    def _out(self, b):
        self.f.write(b)
        self.crc = crc32(b, self.crc)
        self.n += len(b)


class Store:
    """The meter state under folder root, committed atomically (see above)."""

    def __init__(self, root):
        self.paths = (root + "/" + SLOTS[0], root + "/" + SLOTS[1])
        self.seq = None    # sequence of the newest valid record, 0 if none
        self.slot = None   # its slot index, None if none

    def load(self):
        """The newest valid state, or None when there is none."""
        # Records are read back at start only: storeload.py is loaded for the call
        # and dropped after it, so a serving board holds none of its code.
        return onecall.load("storeload").load(self)

    def commit(self, state):
        """Make state the stored state, all or nothing."""
        if self.seq is None:
            self.load()
        seq = self.seq + 1
        slot = 1 if self.slot == 0 else 0
        # The CRC takes the length before the payload, so count the JSON first.
        out = Sink(None, 0)
        json.dump(state, out)
        head = bytearray(HEADER_SIZE)
        struct.pack_into(HEADER, head, 0, MAGIC, seq, 0, 0)
        with open(self.paths[slot], "wb") as f:
            f.write(head)       # length 0: a torn record until the header is redone
            struct.pack_into("<I", head, 8, out.n)
            out = Sink(f, crc32(memoryview(head)[4:12]))
            json.dump(state, out)
            out.flush()
            struct.pack_into("<I", head, 12, out.crc)
            f.seek(0)
            f.write(head)
        self.seq, self.slot = seq, slot
