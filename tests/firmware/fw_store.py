# The store on the unix port's own filesystem (VfsPosix): round trips, alternating
# slots, and recovery from torn, corrupt or missing slot files.
import os
import struct

import meter
import store
import storeload
from fwtest import tmpdir
from fw_vectors import GSME_ID, snapshot


def _state(n):
    st = meter.new_state("gsme", GSME_ID)
    st["time1"] = n
    st["counters"]["90b3d51f30010000"] = 1000 + n
    st["keys"] = {"ka": "0123", "nested": [1, {"x": None}]}   # unknown keys survive
    return st


def _slots(d):
    return [d + "/" + s for s in store.SLOTS]


def _two_states(name):
    # A store in a fresh folder holding states 1 (slot a) and 2 (slot b): the next
    # commit goes to slot a. Returns (folder, store, slot a path, slot b path).
    d = tmpdir(name)
    s = store.Store(d)
    s.commit(_state(1))
    s.commit(_state(2))
    return (d, s) + tuple(_slots(d))


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


def test_empty_folder_loads_none():
    d = tmpdir("store_empty")
    assert store.Store(d).load() is None


def test_round_trip_and_alternation():
    d = tmpdir("store_rt")
    s = store.Store(d)
    assert s.load() is None
    a, b = _slots(d)
    for n in range(1, 6):
        s.commit(_state(n))
        assert store.Store(d).load() == _state(n)
        # odd commits land in slot a, even ones in b: the newest is never overwritten
        assert storeload._read_slot(a if n % 2 else b) == (n, _state(n))
        if n > 1:
            assert storeload._read_slot(b if n % 2 else a) == (n - 1, _state(n - 1))
    assert os.stat(a)[6] > store.HEADER_SIZE


def test_commit_without_load_continues_the_sequence():
    d = tmpdir("store_seq")
    store.Store(d).commit(_state(1))
    store.Store(d).commit(_state(2))     # a new Store finds the newest by itself
    s = store.Store(d)
    assert s.load() == _state(2) and s.seq == 2


def test_torn_write_at_every_length_loads_the_old_state():
    d, s, a, b = _two_states("store_torn")   # slot a: 1, slot b: 2
    old_a = _read(a)
    s.commit(_state(3))
    full = _read(a)
    assert store.Store(d).load() == _state(3)
    for i in range(len(full)):
        _write(a, full[:i])      # the cut left only i bytes of the new record
        assert store.Store(d).load() == _state(2), i
        # and a torn slot is simply the next one written
        _write(a, full[:i])
    _write(a, old_a)
    assert store.Store(d).load() == _state(2)


def test_commit_cut_before_its_header_is_final_loads_the_old_state():
    # commit writes the payload behind a header of length 0 and fixes the header
    # last: a cut in between leaves a whole payload that must still not count
    import json
    d, s, a, b = _two_states("store_midway")   # slot a: 1, slot b: 2
    payload = json.dumps(_state(3)).encode()
    head = bytearray(store.HEADER_SIZE)
    struct.pack_into("<4sIII", head, 0, store.MAGIC, 3, 0, 0)
    _write(a, bytes(head) + payload)
    assert store.Store(d).load() == _state(2)
    s = store.Store(d)
    s.load()
    s.commit(_state(3))
    assert _read(a)[store.HEADER_SIZE:] == payload     # the same bytes, now counted
    assert store.Store(d).load() == _state(3)


def test_corruption_is_detected():
    d, s, a, b = _two_states("store_crc")   # slot a: 1, slot b: 2
    good = _read(b)
    for i in range(len(good)):
        c = bytearray(good)
        c[i] ^= 0x20
        _write(b, c)
        assert store.Store(d).load() == _state(1), i
    _write(b, good + b"x")                            # length no longer matches
    assert store.Store(d).load() == _state(1)
    # a record whose CRC is right but whose payload is not a JSON object
    for payload in (b"[1, 2]", b"{not json"):
        head = bytearray(store.HEADER_SIZE)
        struct.pack_into("<4sIII", head, 0, store.MAGIC, 9, len(payload), 0)
        crc = store.crc32(payload, store.crc32(head[4:12]))
        struct.pack_into("<I", head, 12, crc)
        _write(b, bytes(head) + payload)
        assert store.Store(d).load() == _state(1)
    os.remove(a)
    assert store.Store(d).load() is None              # nothing valid left


def test_store_recovers_after_a_torn_newest_slot():
    d, s, a, b = _two_states("store_recover")   # slot a: 1, slot b: 2
    _write(b, _read(b)[:20])      # slot b (newest) torn by something outside the store
    s = store.Store(d)
    assert s.load() == _state(1)
    s.commit(_state(3))           # goes to b, keeping slot a's state 1 until it is done
    assert storeload._read_slot(a) == (1, _state(1))
    assert store.Store(d).load() == _state(3)


def test_crc32_fallback_matches():
    # the pure-Python CRC used on ports without binascii.crc32 agrees with it
    import binascii
    import crcsoft
    f = crcsoft.crc32
    for data in (b"", b"a", b"123456789", bytes(range(256))):
        assert f(data) == binascii.crc32(data)
        assert f(data[3:], f(data[:3])) == binascii.crc32(data)
    assert f(b"123456789") == 0xCBF43926


def test_meter_state_survives_a_restart():
    d = tmpdir("store_restart")
    st = _state(0)
    meter.set_state(st, {"mode": "prepayment", "payment": 123, "payment_pct": 50})
    meter.inject_fault(st, 2, "other")
    store.Store(d).commit(st)
    back = store.Store(d).load()
    assert back == snapshot(st) and back["fault"] == {"at": 2, "status": "other"}
    assert meter.registers(back) == meter.registers(st)


def test_store_on_a_mounted_vfsposix():
    # The same folder mounted as a board would mount its flash ("/flash").
    d = tmpdir("store_vfs")
    os.mount(os.VfsPosix(d), "/flashtest")
    try:
        s = store.Store("/flashtest")
        assert s.load() is None
        s.commit(_state(1))
        s.commit(_state(2))
        assert sorted(os.listdir("/flashtest")) == list(store.SLOTS)
    finally:
        os.umount("/flashtest")
    assert store.Store(d).load() == _state(2)    # the same files, seen directly
