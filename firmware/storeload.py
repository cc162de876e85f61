# Reading the meter state back from its two slots (the record format and why it is
# power-safe: store.py). Only a board starting up reads, so store loads this module
# for the call and drops it again.
import json
import struct

from store import HEADER, HEADER_SIZE, MAGIC, crc32


def _header(f):
    # (sequence, CRC so far, CRC wanted) of a record whose header fits the file,
    # else None. Leaves f at the start of the payload.
    head = f.read(HEADER_SIZE)
    if len(head) < HEADER_SIZE:
        return None
    magic, seq, length, crc = struct.unpack(HEADER, head)
    if magic != MAGIC or not length or f.seek(0, 2) != HEADER_SIZE + length:
        return None
    f.seek(HEADER_SIZE)
    return seq, crc32(memoryview(head)[4:12]), crc


def _seq(path):
    # The sequence number a slot's header claims (not yet checked), 0 for none.
    try:
        with open(path, "rb") as f:
            h = _header(f)
    except OSError:
        return 0
    return h[0] if h else 0


def _read_slot(path):
    # (sequence, state) of a valid record, else None.
    try:
        with open(path, "rb") as f:
            h = _header(f)
            if h is None:
                return None
            c = h[1]
            buf = bytearray(64)
            while True:
                n = f.readinto(buf)
                if not n:
                    break
                c = crc32(memoryview(buf)[:n], c)
            if c != h[2]:
                return None
            f.seek(HEADER_SIZE)
            state = json.load(f)
    except (OSError, ValueError):
        return None
    return (h[0], state) if type(state) is dict else None


def load(store):
    """Store.load: the newest valid state, or None when there is none."""
    store.seq, store.slot = 0, None
    # Only one record is parsed: the one whose header claims the higher sequence, or
    # the other one if that record is torn or corrupt.
    paths = store.paths
    for i in ((1, 0) if _seq(paths[1]) > _seq(paths[0]) else (0, 1)):
        rec = _read_slot(paths[i])
        if rec:
            store.seq, store.slot = rec[0], i
            return rec[1]
    return None
