# The alert counter reserved ahead (alerts.py, app.Meter): refused Commands write the
# state once per alerts.RESERVE alert counter values (at most once per 64 refused
# Commands), never once each; a restart skips past the reservation; no alert counter
# value is ever used twice, whatever the restarts and wherever power is cut. The meter
# runs as a board runs it: booted by appboot on littlefs (os.VfsLfs2) over an emulated
# flash chip (fw_powercut.Flash) whose block writes are counted here.
import os
import struct

import alerts
import app
import appboot
import envelope
import gbcsmac
import link
import p256
import store
from fw_powercut import EIO, GEOMETRIES, MOUNT, Flash, _umount
from fw_vectors import GSME_ID, SUPPLIER, gcs04a

ACB = "90b3d51f30000002"


class MeteredFlash(Flash):
    """fw_powercut.Flash that also counts the bytes block writes carry."""

    def __init__(self, image, block_size, cut_at=0, torn=False):
        super().__init__(image, block_size, cut_at, torn)
        self.bytes = 0

    def writeblocks(self, block, buf, off=None):
        self.bytes += len(buf)
        return super().writeblocks(block, buf, off)


def _mount(image, geo, cut_at=0, torn=False):
    flash = MeteredFlash(image, geo[0], cut_at, torn)
    os.mount(os.VfsLfs2(flash, readsize=geo[2], progsize=geo[2], lookahead=32), MOUNT)
    return flash


def _blank(geo):
    image = bytearray(b"\xff" * geo[0] * geo[1])
    os.VfsLfs2.mkfs(Flash(image, geo[0]), readsize=geo[2], progsize=geo[2], lookahead=32)
    return image


def _boot():
    # The board's own start-up: the stored meter, else a factory-fresh GSME.
    return appboot.make_meter({"root": MOUNT, "name": "test"}, {"device": "gsme"})


def _restart():
    # The same meter from its stored state without the caches boot makes between
    # frames (app.Meter itself skips the alert counter past the reservation): the
    # power-cut campaign restarts some hundred times.
    keep = store.Store(MOUNT)
    return app.Meter({"root": MOUNT}, keep, keep.load())


class Remote:
    """The Supplier and the ACB of a provisioned meter: keys made here, Commands
    built and MAC'd as the DCC would (NOTES 2)."""

    def __init__(self, m):
        self.sup_ds, sup_ds_pub = p256.keypair()
        _, sup_ka_pub = p256.keypair()
        self.acb_ka, acb_ka_pub = p256.keypair()
        reply, _ = m.diag("provision", {"anchors": {
            SUPPLIER: {"role": 2, "ds": sup_ds_pub.hex(), "ka": sup_ka_pub.hex()},
            ACB: {"role": 4, "ka": acb_ka_pub.hex()}}})
        assert reply["ok"], reply
        self.z = p256.ecdh(self.acb_ka, bytes.fromhex(reply["ka"]))
        self.counter = 1000

    def command(self, counter=None, recipient=GSME_ID, key=None):
        if counter is None:
            self.counter += 1
            counter = self.counter
        apdu = envelope.build_apdu(1, counter, bytes.fromhex(SUPPLIER),
                                   bytes.fromhex(recipient), 0x0F01, gcs04a(0),
                                   key or self.sup_ds)
        return gbcsmac.wrap(self.z, apdu)

    def refused(self):
        """Frames the meter refuses, of every kind a flood brings: garbage, a
        truncated Command, a replay, another meter's, a bad MAC, a bad signature."""
        good = self.command(self.counter + 1)
        bad_mac = bytearray(good)
        bad_mac[-1] ^= 1
        other, _ = p256.keypair()
        return [b"\xdd\x00 garbage", good[:40], self.command(5),
                self.command(self.counter + 1, "00db1234567890ff"), bytes(bad_mac),
                self.command(self.counter + 1, key=other)]


def _alert_counters(out):
    # The originator counter of every Alert among a Command's answer frames.
    return [struct.unpack(">Q", data[3:11])[0] for t, data in out if t == link.T_ALERT]


def test_take_reserves_ahead():
    st = {"alert_ctr": 0}
    assert alerts.take(st) == 1 and st["alert_resv"] == alerts.RESERVE
    for v in range(2, alerts.RESERVE + 1):
        assert alerts.take(st) == v and st["alert_resv"] == alerts.RESERVE
    assert alerts.take(st) == alerts.RESERVE + 1 and st["alert_resv"] == 2 * alerts.RESERVE
    # a state from before reservations: its alert_ctr is the last value used
    old = {"alert_ctr": 500}
    assert alerts.take(old) == 501 and old["alert_resv"] == 500 + alerts.RESERVE
    assert alerts.RESERVE >= 2 * 64   # a refusal takes at most two values


def test_flood_of_refused_commands_writes_once_per_64_and_restarts_reuse_nothing():
    for geo in GEOMETRIES:
        image = _blank(geo)
        flash = _mount(image, geo)
        try:
            m = _boot()
            remote = Remote(m)
            # a state write: what an accepted Command writes (effects and counters,
            # one record each), on average over a few
            b0, seq0 = flash.bytes, m.store.seq
            for _ in range(8):
                out = m.gbcs(remote.command())
                assert out[-1][0] == link.T_RESPONSE
            assert m.store.seq == seq0 + 8
            per_accepted = (flash.bytes - b0) / 8
            used = []
            flood = 64 * 5
            frames = remote.refused()
            b0, seq0 = flash.bytes, m.store.seq
            for i in range(flood):
                out = m.gbcs(frames[i % len(frames)])
                assert out[-1][0] == link.T_ALERT
                used += _alert_counters(out)
            writes = m.store.seq - seq0
            per_refused = (flash.bytes - b0) / flood
            print("%d-byte blocks: %d refused Commands, %d alerts, %d state writes; flash "
                  "bytes per accepted Command %d, per refused Command %.1f (1/%.0f)"
                  % (geo[0], flood, len(used), writes, per_accepted, per_refused,
                     per_accepted / per_refused))
            assert len(used) > flood                       # 8F60 after each run of 5
            assert 1 <= writes <= flood // 64
            assert writes == (len(used) + alerts.RESERVE - 1) // alerts.RESERVE
            assert per_refused * 64 <= per_accepted
            # restarts at every kind of moment: right after a reservation moved, in
            # the middle of one, right after an accepted Command
            for k in (0, 1, 37, alerts.RESERVE - 1, 3):
                _umount()
                flash = _mount(image, geo)
                m = _boot()
                remote.counter = m.st["counters"][SUPPLIER]
                frames = remote.refused()
                for i in range(k):
                    used += _alert_counters(m.gbcs(frames[i % len(frames)]))
                assert m.gbcs(remote.command())[-1][0] == link.T_RESPONSE
                used += _alert_counters(m.gbcs(frames[0]))
            # every value used once, in increasing order, across all the restarts
            for i in range(len(used) - 1):
                assert used[i] < used[i + 1], "value %d after %d" % (used[i + 1], used[i])
        finally:
            _umount()


def test_accepted_commands_commit_effects_and_counters_as_one_record():
    geo = GEOMETRIES[0]
    image = _blank(geo)
    _mount(image, geo)
    try:
        m = _boot()
        remote = Remote(m)
        m.diag("set", {"fields": {"time1": 5000}})
        m.gbcs(b"garbage")                                  # an alert value in RAM only
        seq, resv = m.store.seq, m.st["alert_resv"]
        out = m.gbcs(remote.command())
        assert out[-1][0] == link.T_RESPONSE and m.store.seq == seq + 1
        _umount()
        _mount(image, geo)
        back = _boot().st
        assert back["time1"] == 0 and back["counters"][SUPPLIER] == remote.counter
        assert back["alert_resv"] == resv and back["alert_ctr"] == resv
    finally:
        _umount()


def test_state_from_before_reservations_continues_its_counter():
    # A state stored by firmware that committed every alert value (no alert_resv):
    # its alert_ctr is the last value used, and the next one follows it.
    geo = GEOMETRIES[0]
    image = _blank(geo)
    _mount(image, geo)
    try:
        m = _boot()
        st = m.st
        st.pop("alert_resv", None)
        st["alert_ctr"] = 4321
        m.store.commit(st)
        _umount()
        _mount(image, geo)
        m = _boot()
        assert _alert_counters(m.gbcs(b"garbage")) == [4322]
        _umount()
        _mount(image, geo)
        assert _alert_counters(_boot().gbcs(b"garbage")) == [4322 + alerts.RESERVE]
    finally:
        _umount()


def _cut_campaign(geo, torn):
    # A provisioned meter stored on flash, then booted: values up to its reservation
    # may have gone out before, so its first refusal moves the reservation (a state
    # write); then refused, accepted and refused Commands, with power cut at block
    # operation n after boot (every n in turn until the frames all go through).
    image = _blank(geo)
    _mount(image, geo)
    try:
        m = _boot()
        remote = Remote(m)
        for _ in range(3):
            m.gbcs(remote.command())
        st = m.st
        st["alert_ctr"] = 7000
        st["alert_resv"] = 7000 + alerts.RESERVE // 2
        m.store.commit(st)
        before = st["alert_resv"]    # values up to here may have gone out already
    finally:
        _umount()
    base = bytes(image)
    frames = remote.refused()
    frames = (frames[0], frames[1], remote.command(), frames[2])
    n = 0
    while True:
        n += 1
        image = bytearray(base)
        flash = _mount(image, geo)
        sent, done = [], False
        try:
            m = _restart()
            flash.cut_at = flash.ops + n
            for frame in frames:
                sent += _alert_counters(m.gbcs(frame))
            done = True
        except OSError as e:          # the dead chip: littlefs reports EIO
            assert e.args[0] == EIO, e
        _umount()
        _mount(image, geo)            # power back
        try:
            m = _restart()
            again = _alert_counters(m.gbcs(b"garbage"))
            assert again[0] > max([before] + sent), (n, before, sent, again)
            assert m.st["counters"][SUPPLIER] >= remote.counter - 1
        finally:
            _umount()
        if done:
            break
    print("%d-byte blocks%s: cut points tried %d" % (geo[0], " torn" if torn else "", n - 1))
    assert n - 1 >= 2


def test_power_cut_at_every_block_write_never_reuses_an_alert_counter():
    for geo in GEOMETRIES:
        for torn in (False, True):
            _cut_campaign(geo, torn)
