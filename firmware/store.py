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
import json
import struct


def _crc32_py(data, crc=0):
    # CRC-32 (IEEE, as binascii.crc32) for ports built without binascii.crc32.
    crc ^= 0xFFFFFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0xEDB88320 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


try:
    from binascii import crc32
except ImportError:
    crc32 = _crc32_py

MAGIC = b"GBS1"
HEADER = "<4sIII"
HEADER_SIZE = 16
SLOTS = ("state.a", "state.b")


def _read_slot(path):
    # (sequence, state) of a valid record, else None.
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if len(raw) < HEADER_SIZE:
        return None
    magic, seq, length, crc = struct.unpack_from(HEADER, raw, 0)
    if magic != MAGIC or length != len(raw) - HEADER_SIZE:
        return None
    body = memoryview(raw)[4:]
    if crc32(body[12:], crc32(body[:8])) != crc:
        return None
    try:
        state = json.loads(bytes(body[12:]))
    except ValueError:
        return None
    return (seq, state) if type(state) is dict else None


class Store:
    """The meter state under folder root, committed atomically (see above)."""

    def __init__(self, root):
        self.paths = (root + "/" + SLOTS[0], root + "/" + SLOTS[1])
        self.seq = None    # sequence of the newest valid record, 0 if none
        self.slot = None   # its slot index, None if none

    def load(self):
        """The newest valid state, or None when there is none."""
        self.seq, self.slot = 0, None
        best = None
        for i in (0, 1):
            rec = _read_slot(self.paths[i])
            if rec and (best is None or rec[0] > self.seq):
                self.seq, self.slot, best = rec[0], i, rec[1]
        return best

    def commit(self, state):
        """Make state the stored state, all or nothing."""
        if self.seq is None:
            self.load()
        payload = json.dumps(state).encode()
        seq = self.seq + 1
        slot = 1 if self.slot == 0 else 0
        head = bytearray(HEADER_SIZE)
        struct.pack_into(HEADER, head, 0, MAGIC, seq, len(payload), 0)
        crc = crc32(payload, crc32(memoryview(head)[4:12]))
        struct.pack_into("<I", head, 12, crc)
        with open(self.paths[slot], "wb") as f:
            f.write(head)
            f.write(payload)
        self.seq, self.slot = seq, slot
