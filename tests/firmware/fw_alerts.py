# The meter's own Alerts in each device's format (../shared/gbcs/NOTES.md 2.3): the
# wrapping follows the category (critical 1000: signed, no MAC header; non-critical
# 1001: MAC header, signature length 00, MAC'd with the meter's and the Supplier's KA
# keys), the content follows the device (GSME: GBZ; ESME: DLMS data-notification).
# Reference: every RTDS ALERT file present, one test per device and category; each
# is rebuilt on a meter whose id, clock and alert counter are the file's, and must
# equal it byte for byte up to what depends on the meter's own keys (signature or
# MAC), which must verify with the keys that test meter made. The same layouts from
# the application: a refused Command and a Debt Collection Completed alert per device.
import struct

import appboot
import alerts
import envelope
import gbcsmac
import link
import p256
from fw_p256 import pem_point, pkcs8_scalar, rtds_names
from fwtest import SkipTest, rtds_hex, shared_dir, tmpdir

GSME, ESME = "gsme", "esme"
CRITICAL, NON_CRITICAL = 0x1000, 0x1001
_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


# --- an independent reading of what the reference carries


def _seconds_of_cosem(d):
    # UTC seconds since 2000-01-01 of a 12-byte COSEM date-time (year..second),
    # counted day by day: not the firmware's arithmetic.
    year, month, day = struct.unpack(">HBB", d[:4])
    days = 0
    for y in range(2000, year):
        days += 366 if y % 4 == 0 and (y % 100 or y % 400 == 0) else 365
    for m in range(1, month):
        days += _MONTH_DAYS[m - 1] + (1 if m == 2 and year % 4 == 0
                                      and (year % 100 or year % 400 == 0) else 0)
    days += day - 1
    return days * 86400 + d[5] * 3600 + d[6] * 60 + d[7]


def _split(data):
    # (APDU, MAC or None) of an alert frame, MAC-headed or not
    if data[0] == 0xDD:
        o, n = gbcsmac.parse_header(data)
        return data[o:o + n], data[o + n:]
    return data, None


def _fields(apdu):
    f = envelope.parse_apdu(memoryview(apdu))
    return {"cra": f[0], "counter": f[1], "orig": bytes(f[2]).hex(),
            "recip": bytes(f[3]).hex(), "code": f[4], "content": apdu[f[5]:f[6]],
            "signed": apdu[1:f[6]], "sig": apdu[f[7]:f[7] + 64] if f[7] >= 0 else None}


def _code_and_clock(device, c):
    # The alert code and clock a content carries, at the offsets of its layout.
    if device == GSME:
        return struct.unpack(">H", c[3:5])[0], struct.unpack(">I", c[5:9])[0]
    return struct.unpack(">H", c[9:11])[0], _seconds_of_cosem(c[13:25])


def _check_layout(device, c, code, clock, counter):
    # The content layout of NOTES 2.3, field by field.
    if device == GSME:
        assert c == b"\x01\x09\x00" + struct.pack(">HI", code, clock), c.hex()
    else:
        assert len(c) == 25 and c[0] == 0x0F, c.hex()
        assert struct.unpack(">I", c[1:5])[0] == 0x20000000 | (counter & 0xFFFFFF), c.hex()
        assert c[5:9] == b"\x00\x02\x02\x12" and c[11:13] == b"\x09\x0c", c.hex()
        assert struct.unpack(">H", c[9:11])[0] == code, c.hex()
        assert _seconds_of_cosem(c[13:25]) == clock, c.hex()


# --- RTDS: all four combinations


def _references(device, category):
    # RTDS ALERT files of this device (ZigBee folders: GSME, DLMS: ESME) and category.
    shared_dir()
    word = "ZigBee" if device == GSME else "DLMS"
    out = []
    for name in rtds_names("_ALERT_"):
        if word not in name.split("/")[0]:
            continue
        data = rtds_hex(name)
        if _fields(_split(data)[0])["code"] == category:
            out.append((name, data))
    if not out:
        raise SkipTest("no RTDS %s alert with message code %04X" % (device, category))
    return out


def _rtds_case(device, category):
    for name, ref in _references(device, category):
        apdu, mac = _split(ref)
        r = _fields(apdu)
        assert r["cra"] == 3, name
        code, clock = _code_and_clock(device, r["content"])
        _check_layout(device, r["content"], code, clock, r["counter"])
        # the test meter: the file's identity, clock and alert counter (the next value
        # is the file's), keys of its own, the ZAZ1 Supplier as the anchor
        m_ds, m_ds_pub = p256.keypair()
        m_ka, m_ka_pub = p256.keypair()
        _, sup_ds_pub = p256.keypair()
        st = {"device": device, "id": r["orig"], "clock": clock,
              "alert_ctr": r["counter"] - 1, "keys": {"ds": m_ds.hex(), "ka": m_ka.hex()},
              "anchors": {r["recip"]: {"role": 2, "ds": sup_ds_pub.hex(),
                                       "ka": pem_point(r["recip"] + "-ka.pem").hex()}}}
        sec = envelope.Security()
        if category == CRITICAL:
            out = sec.critical_alert(st, code)
            assert mac is None and out[0] == 0xDF, name        # no MAC header
            assert out[:-64] == ref[:-64], "%s: %s" % (name, out.hex())
            o = _fields(out)
            assert o["sig"] is not None and out[-65] == 0x40, name
            assert p256.verify(m_ds_pub, o["signed"], o["sig"]), name
            assert not p256.verify(m_ds_pub, o["signed"][:-1], o["sig"]), name
        else:
            out = sec.non_critical_alert(st, code)
            assert mac is not None and out[0] == 0xDD, name   # MAC header
            assert out[:-12] == ref[:-12], "%s: %s" % (name, out.hex())
            o = _fields(_split(out)[0])
            assert o["sig"] is None, name                     # signature length 00
            # the Supplier's end of the ECDH: its ZAZ1 private key, the meter's public
            sup_ka = pkcs8_scalar(r["recip"] + "-ka.key")
            assert gbcsmac.wrap(p256.ecdh(sup_ka, m_ka_pub), _split(out)[0]) == out, name
            other = pkcs8_scalar("90b3d51f30030000-ka.key")
            assert gbcsmac.wrap(p256.ecdh(other, m_ka_pub), _split(out)[0]) != out, name
        assert st["alert_ctr"] == r["counter"], name
        print("%s: rebuilt, content %s" % (name, r["content"].hex()))


def test_rtds_gsme_critical_alert():
    _rtds_case(GSME, CRITICAL)


def test_rtds_gsme_non_critical_alert():
    _rtds_case(GSME, NON_CRITICAL)


def test_rtds_esme_critical_alert():
    _rtds_case(ESME, CRITICAL)


def test_rtds_esme_non_critical_alert():
    _rtds_case(ESME, NON_CRITICAL)


# --- every alert the application raises, per device (no ../shared needed)


def _provisioned(device):
    root = tmpdir("alerts_" + device)
    m = appboot.make_meter({"root": root, "name": "test"}, {"device": device})
    sup_ka, sup_ka_pub = p256.keypair()
    _, sup_ds_pub = p256.keypair()
    reply, _ = m.diag("provision", {"anchors": {"90b3d51f30010000": {
        "role": 2, "ds": sup_ds_pub.hex(), "ka": sup_ka_pub.hex()}}})
    assert reply["ok"], reply
    return m, sup_ka


def _app_case(device):
    m, sup_ka = _provisioned(device)
    m.diag("set", {"fields": {"clock": 473385600 + 86400 * 400 + 3723}})
    clock = m.st["clock"]
    # a refused Command: critical, signed, the device's content
    before = m.st["alert_ctr"]
    out = m.gbcs(b"\xdd\x00 not a Command")
    assert len(out) == 1 and out[0][0] == link.T_ALERT
    a = _fields(out[0][1])
    assert (a["cra"], a["code"], a["counter"]) == (3, CRITICAL, before + 1)
    assert a["orig"] == m.st["id"] and a["recip"] == "90b3d51f30010000"
    _check_layout(device, a["content"], envelope.A_FORMAT, clock, a["counter"])
    assert p256.verify(bytes.fromhex(m.st["pub"]["ds"]), a["signed"], a["sig"])
    # time debt 1 fully collected: Debt Collection Completed, non-critical, MAC'd
    reply, extra = m.diag("set", {"fields": {"mode": "prepayment", "balance": 100000,
                                             "time1": 700, "time1_rate": 700,
                                             "time1_start": clock}})
    assert reply["ok"], reply
    reply, extra = m.diag("advance", {"seconds": 86400})
    assert reply["ok"] and reply["alerts_raised"] == ["81A7"], reply
    assert len(extra) == 1 and extra[0][0] == link.T_ALERT
    data = extra[0][1]
    apdu, mac = _split(data)
    assert mac is not None
    n = _fields(apdu)
    assert (n["cra"], n["code"], n["counter"], n["sig"]) == (3, NON_CRITICAL, before + 2, None)
    _check_layout(device, n["content"], 0x81A7, m.st["clock"], n["counter"])
    assert gbcsmac.wrap(p256.ecdh(sup_ka, bytes.fromhex(m.st["pub"]["ka"])), apdu) == data


def test_gsme_raises_gbz_alerts_of_both_categories():
    _app_case(GSME)


def test_esme_raises_dlms_alerts_of_both_categories():
    _app_case(ESME)


def test_unprovisioned_meter_refuses_with_unsigned_alert_in_its_format():
    # No keys yet: the critical alert goes out unsigned (signature length 00), to an
    # all-zero recipient, but in the device's own content layout all the same.
    for device in (GSME, ESME):
        m = appboot.make_meter({"root": tmpdir("alerts_bare_" + device)}, {"device": device})
        out = m.gbcs(b"garbage")
        a = _fields(out[0][1])
        assert a["sig"] is None and a["recip"] == "00" * 8 and a["code"] == CRITICAL
        _check_layout(device, a["content"], envelope.A_FORMAT, m.st["clock"], a["counter"])


def test_esme_invoke_id_keeps_the_low_24_bits_of_the_counter():
    st = {"device": ESME, "clock": 0}
    assert alerts.content(st, 0x8F30, 0x12345678)[1:5] == b"\x20\x34\x56\x78"
    assert alerts.content(st, 0x8F30, 0x01000005)[1:5] == b"\x20\x00\x00\x05"
    assert alerts.content({"device": GSME, "clock": 0x01020304}, 0xABCD, 7) \
        == b"\x01\x09\x00\xab\xcd\x01\x02\x03\x04"
