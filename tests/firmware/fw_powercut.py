# Power-cut campaign, the way littlefs tests itself: the store runs on littlefs
# (os.VfsLfs2) over an emulated flash chip backed by a bytearray. For a Command's
# commit (a reset, and a three-register GCS04), power is cut at every single block
# operation in turn: that operation is lost (or left half done) and every later one
# fails. The image is then remounted and loaded: the state must be exactly the old
# or the new one, originator counters never go back, and the store carries on.
import os

import meter
import store
from fw_vectors import GSME_ID, SUPPLIER, gcs04, gcs04a, snapshot

MOUNT = "/pcut"


EIO = 5


class Flash:
    """Block device with the extended interface. cut_at counts block operations
    (writeblocks calls and erases); from that one on the chip is dead: the operation
    is not done (torn: left half done) and reports EIO, as does every later one.
    Errors are returned, not raised, so littlefs unwinds as on a failing chip; the
    methods avoid allocating because file finalizers may call them with the heap
    locked."""

    def __init__(self, image, block_size, cut_at=0, torn=False):
        self.img = image
        self.bs = block_size
        self.cut_at = cut_at
        self.torn = torn
        self.ops = self.writes = self.erases = 0

    def _dead(self, addr, data):
        self.ops += 1
        if not self.cut_at or self.ops < self.cut_at:
            return False
        if self.torn and self.ops == self.cut_at:
            for i in range(len(data) // 2):
                self.img[addr + i] = data[i]
        return True

    def readblocks(self, block, buf, off=0):
        a = block * self.bs + off
        try:
            buf[:] = self.img[a:a + len(buf)]
        except MemoryError:     # heap locked: copy without allocating
            for i in range(len(buf)):
                buf[i] = self.img[a + i]

    def writeblocks(self, block, buf, off=None):
        a = block * self.bs + (off or 0)
        self.writes += 1
        if self._dead(a, buf):
            return -EIO
        self.img[a:a + len(buf)] = buf
        return 0

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.img) // self.bs
        if op == 5:
            return self.bs
        if op == 6:
            a = arg * self.bs
            self.erases += 1
            if self._dead(a, _ERASED[:self.bs]):
                return -EIO
            self.img[a:a + self.bs] = _ERASED[:self.bs]
        return 0


_ERASED = b"\xff" * 4096


# (block size, blocks, prog size): a small-page NOR layout and an RP2040-like one
GEOMETRIES = ((512, 48, 16), (4096, 16, 256))


def _mount(image, geo, cut_at=0, torn=False):
    flash = Flash(image, geo[0], cut_at, torn)
    os.mount(os.VfsLfs2(flash, readsize=geo[2], progsize=geo[2], lookahead=32), MOUNT)
    return flash


def _umount():
    try:
        os.umount(MOUNT)
    except OSError:
        pass


def _base_image(geo, states):
    image = bytearray(b"\xff" * geo[0] * geo[1])
    flash = Flash(image, geo[0])
    os.VfsLfs2.mkfs(flash, readsize=geo[2], progsize=geo[2], lookahead=32)
    _mount(image, geo)
    s = store.Store(MOUNT)
    for st in states:
        s.commit(st)
    _umount()
    return image


def _campaign(label, history, new, geo, torn):
    # history: states committed before (the last is "old"); new: the Command's state.
    old = history[-1]
    base = _base_image(geo, history)
    old_ctr = old["counters"].get(SUPPLIER, 0)
    after = snapshot(new)
    after["alert_ctr"] += 1
    outcomes = {"old": 0, "new": 0}
    n = 0
    while True:
        n += 1
        image = bytearray(base)
        flash = _mount(image, geo, n, torn)
        finished = False
        try:
            s = store.Store(MOUNT)
            assert s.load() == old
            s.commit(new)
            finished = True
        except OSError as e:          # littlefs reports the dead chip as EIO
            assert e.args[0] == EIO, e
        _umount()
        # power back: remount the same flash image and load
        _mount(image, geo)
        try:
            s = store.Store(MOUNT)
            got = s.load()
            assert got == old or got == new, "torn state at cut point %d" % n
            assert got["counters"].get(SUPPLIER, 0) >= old_ctr
            if finished:
                assert got == new
            outcomes["old" if got == old else "new"] += 1
            s.commit(after)               # and the store carries on
            assert store.Store(MOUNT).load() == after
        finally:
            _umount()
        if finished:
            break
    print("%s %s%s: cut points tried: %d (block writes %d, erases %d), old %d, new %d"
          % (label, geo[0], " torn" if torn else "", n - 1, flash.writes, flash.erases,
             outcomes["old"], outcomes["new"]))
    assert n - 1 >= 3 and outcomes["old"] >= 1
    return n - 1


def _states(content_name, content, fill):
    st = meter.new_state("gsme", GSME_ID)
    # room the security layer takes in the same record (keys, anchors), roughly
    st["anchors"] = {"supplier": "ab" * fill}
    meter.set_state(st, {"mode": "prepayment", "time1": 5000, "time2": 7000,
                         "payment": 9000, "time1_rate": 100, "payment_pct": 1000})
    st["counters"][SUPPLIER] = 1000
    older = snapshot(st)
    older["counters"][SUPPLIER] = 999
    old = snapshot(st)
    new = snapshot(st)
    meter.execute(new, content_name, content)
    new["counters"][SUPPLIER] = 1001
    assert new != old
    return [older, old], new


def _scenario(label, name, content):
    total = 0
    for geo in GEOMETRIES:
        for fill in (0, 700):
            history, new = _states(name, content, fill)
            for torn in (False, True):
                total += _campaign(label, history, new, geo, torn)
    print("%s: cut points tried in all: %d" % (label, total))


def test_powercut_reset():
    _scenario("GCS04a reset", "GCS04a", gcs04a(0))


def test_powercut_three_register_gcs04():
    _scenario("GCS04 three registers", "GCS04", gcs04([
        dict(atype=1, amount=1000000, rec=50000, freq=1),
        dict(atype=3, amount=500000, rec=50000),
        dict(atype=5, amount=1000000, rec=1, pct=100)]))


def test_powercut_first_commit_on_fresh_flash():
    # No older record at all: a cut during the very first commit loads nothing or
    # the new state, never something else.
    geo = GEOMETRIES[0]
    st = meter.new_state("gsme", GSME_ID)
    n = 0
    while True:
        n += 1
        image = bytearray(b"\xff" * geo[0] * geo[1])
        os.VfsLfs2.mkfs(Flash(image, geo[0]), readsize=geo[2], progsize=geo[2], lookahead=32)
        _mount(image, geo, n)
        done = False
        try:
            store.Store(MOUNT).commit(st)
            done = True
        except OSError:
            pass
        _umount()
        _mount(image, geo)
        try:
            got = store.Store(MOUNT).load()
        finally:
            _umount()
        assert got is None or got == st
        if done:
            assert got == st
            break
    print("first commit: cut points tried: %d" % (n - 1))
