# The security envelope's own pieces, in the unix port: General-Signing parse/build,
# the length encoder, COSEM date-times for alerts, and the check order.
import struct

import alerts
import envelope
import gbcsmac
import p256
from fwtest import raises, rtds_hex

ME = bytes.fromhex("00db1234567890a1")
SUP = bytes.fromhex("90b3d51f30010000")


def test_der_len_forms():
    assert gbcsmac.der_len(0) == b"\x00"
    assert gbcsmac.der_len(0x7F) == b"\x7f"
    assert gbcsmac.der_len(0x80) == b"\x81\x80"
    assert gbcsmac.der_len(0xFF) == b"\x81\xff"
    assert gbcsmac.der_len(0x100) == b"\x82\x01\x00"
    raises(ValueError, gbcsmac.der_len, 0x10000)


def test_build_and_parse_apdu_round_trip():
    for n in (0, 1, 0x7F, 0x80, 0x1FF):  # every length form of the content
        content = bytes(range(256)) * 2
        content = content[:n]
        apdu = envelope.build_apdu(2, 1234, ME, SUP, 0x0F01, content)
        cra, ctr, orig, recip, code, c0, c1, sig = envelope.parse_apdu(memoryview(apdu))
        assert (cra, ctr, bytes(orig), bytes(recip), code, sig) == (2, 1234, ME, SUP, 0x0F01, -1)
        assert apdu[c0:c1] == content


def test_signed_apdu_verifies_over_apdu_after_df():
    priv, pub = p256.keypair()
    apdu = envelope.build_apdu(2, 7, ME, SUP, 0x006E, b"\x01\x09\x00", priv)
    f = envelope.parse_apdu(memoryview(apdu))
    assert p256.verify(pub, apdu[1:f[6]], apdu[f[7]:f[7] + 64])


def test_parse_apdu_refuses_malformed():
    good = envelope.build_apdu(1, 5, SUP, ME, 0x0F01, b"abc")
    for bad in (good[:-1], good + b"\x00", b"\xde" + good[1:], good[:20],
                good[:29] + b"\x05" + good[30:]):
        raises(ValueError, envelope.parse_apdu, memoryview(bad))


def test_rtds_messages_parse():
    for name in ("2.3_GCS04/GCS04_2.3_SUCCESS_RESPONSE_GBCS.HEX",
                 "NA_GCA-ZigBee/GCA-ZigBee_NA_8F30_ALERT_GBCS.HEX"):
        apdu = rtds_hex(name)
        f = envelope.parse_apdu(memoryview(apdu))
        assert f[7] == len(apdu) - 64


def test_cosem_datetime():
    # RTDS 810E alert: 2015-01-01 00:00:00, day of week, hundredths, deviation unset
    assert alerts.cosem_datetime(473385600) == bytes.fromhex("07df0101ff000000008000ff")
    assert alerts.cosem_datetime(0)[:4] == b"\x07\xd0\x01\x01"                 # 2000-01-01
    assert alerts.cosem_datetime(59 * 86400)[:4] == b"\x07\xd0\x02\x1d"        # 2000-02-29
    assert alerts.cosem_datetime(60 * 86400)[:4] == b"\x07\xd0\x03\x01"        # 2000-03-01
    t = 473385600 + 365 * 86400 + 13 * 3600 + 7 * 60 + 9                      # 2016-01-01 13:07:09
    d = alerts.cosem_datetime(t)
    assert struct.unpack(">HBB", d[:4]) == (2016, 1, 1) and tuple(d[5:8]) == (13, 7, 9)


def test_comb_window_fits_the_heap():
    import appboot
    assert appboot.comb_window(8, 2 * 1024 * 1024) == 8
    assert appboot.comb_window(8, 64 * 1024) == 3
    assert appboot.comb_window(8, 128 * 1024) == 4
    assert appboot.comb_window(4, 2 * 1024 * 1024) == 4
    assert appboot.comb_window(8, 1024) == 2


def _state(anchors, keys):
    return {"id": ME.hex(), "device": "gsme", "counters": {}, "anchors": anchors,
            "keys": keys}


def test_check_order_and_alerts():
    sup_ds, sup_ds_pub = p256.keypair()
    acb_ka, acb_ka_pub = p256.keypair()
    m_ds, _ = p256.keypair()
    m_ka, m_ka_pub = p256.keypair()
    acb = "90b3d51f30000002"
    st = _state({SUP.hex(): {"role": 2, "ds": sup_ds_pub.hex()},
                 acb: {"role": 4, "ka": acb_ka_pub.hex()}},
                {"ds": m_ds.hex(), "ka": m_ka.hex()})
    z = p256.ecdh(acb_ka, m_ka_pub)

    def command(counter=10, code=0x0F01, recip=ME, orig=SUP, key=sup_ds):
        apdu = envelope.build_apdu(1, counter, orig, recip, code, b"\x01\x09\x00", key)
        return gbcsmac.wrap(z, apdu)

    sec = envelope.Security()
    ok = lambda row: True
    row, who, ctr, content = sec.check(st, command(), ok)
    assert (row[1], who, ctr, bytes(content)) == ("GCS04a", SUP.hex(), 10, b"\x01\x09\x00")

    def alert(data, supports=ok):
        return raises(envelope.Reject, sec.check, st, data, supports).args[0]

    assert alert(b"\xdd\x00") == envelope.A_FORMAT
    assert alert(command(recip=bytes(8))) == envelope.A_AUTH
    assert alert(command(code=0x0ABC)) == envelope.A_FORMAT
    assert alert(command(code=0x001E)) == envelope.A_FORMAT           # an ESME use case
    assert alert(command(), lambda row: False) == envelope.A_FORMAT   # profile without it
    assert alert(command(orig=bytes.fromhex("90b3d51f30030000"))) == envelope.A_AUTHORITY
    st["counters"][SUP.hex()] = 10
    assert alert(command(counter=10)) == envelope.A_AUTH               # replay
    other, _ = p256.keypair()
    assert alert(command(counter=11, key=other)) == envelope.A_TRUST   # not the Supplier's key
    bad_mac = bytearray(command(counter=11))
    bad_mac[-1] ^= 1
    assert alert(bytes(bad_mac)) == envelope.A_AUTH
    assert st["counters"][SUP.hex()] == 10  # checks never move a counter


def test_warm_makes_the_caches_a_command_uses():
    # warm() makes, between frames, the ECDH secrets with the ACB and the Supplier and
    # a comb table for each anchor whose role may originate this device's use cases
    # (Suppliers), so a Command or an Alert makes nothing that would stay in the heap.
    sup_ds, sup_ds_pub = p256.keypair()
    sup_ka, sup_ka_pub = p256.keypair()
    _, no_ds_pub = p256.keypair()
    acb_ka, acb_ka_pub = p256.keypair()
    m_ds, _ = p256.keypair()
    m_ka, m_ka_pub = p256.keypair()
    acb, no = "90b3d51f30000002", "90b3d51f30030000"
    st = _state({SUP.hex(): {"role": 2, "ds": sup_ds_pub.hex(), "ka": sup_ka_pub.hex()},
                 no: {"role": 3, "ds": no_ds_pub.hex()},
                 acb: {"role": 4, "ka": acb_ka_pub.hex()}},
                {"ds": m_ds.hex(), "ka": m_ka.hex()})
    sec = envelope.Security()
    sec.warm(st)
    assert list(sec.tables) == [SUP.hex()]      # no Network Operator use case here
    assert sorted(sec.z) == sorted([acb, SUP.hex()])
    assert sec.z[acb] == p256.ecdh(acb_ka, m_ka_pub)
    assert sec.z[SUP.hex()] == p256.ecdh(sup_ka, m_ka_pub)
    table, z = sec.tables[SUP.hex()], sec.z[acb]
    apdu = envelope.build_apdu(1, 5, SUP, ME, 0x0F01, b"\x01\x09\x00", sup_ds)
    row, who, _, _ = sec.check(st, gbcsmac.wrap(z, apdu), lambda row: True)
    assert row[1] == "GCS04a" and who == SUP.hex()
    assert sec.tables[SUP.hex()] is table and sec.z[acb] is z    # used, not remade
    sec.warm(st)
    assert sec.tables[SUP.hex()] is table                       # nothing to do twice
    bare = envelope.Security()
    bare.warm({"id": ME.hex(), "device": "gsme", "anchors": {}})  # not provisioned
    assert bare.tables == {} and bare.z == {}
