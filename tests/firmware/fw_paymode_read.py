# SR 4.3 (ECS19 / GCS14, the prepayment registers read, non-critical, personal data
# encrypted) and SR 1.6 (ECS02 / ECS03 / GCS02 / GCS03, payment mode, critical) on a
# whole meter (app.Meter: envelope, handlers, store), fed the RTDS COMMANDs as they
# are and compared with the RTDS RESPONSEs.
#
# The meters' private keys are not published, so the meter here has keys of its own;
# the ECDH secrets it holds with the ACB and the Supplier (envelope.Security.z) are
# set to the ones the RTDS meter shares with them, made from the ACB's and the
# Supplier's published KA private keys and the meter's KA certificate (ECDH agrees
# from either side). With those the ACB's MAC on each RTDS COMMAND verifies on the
# meter, and a read's Response (MAC'd and encrypted, no signature) equals RTDS byte
# for byte, ciphertext and MAC included. The 1.6 Responses are signed with the
# meter's own DS key: everything before the signature equals RTDS and the signature
# verifies with the meter's public key.
#
# State each RTDS case implies (set with the set diagnostic; clock 2015-01-01
# 00:00:00, the date-time of every one of these Responses):
#   ECS19  ec_balance 250000, acc_debt 95000, payment 187000, time1 203000,
#          time2 243000, balance 46000 (the MMC order, decrypted from RTDS)
#   GCS14  acc_debt 2500000, ec_balance 500000, balance 2500000, debts 5000 each
#   GCS02 / GCS03  friendly credit 01, calendar 2, ec_limit 1000000, ec_threshold 200000
#   1.6 ERROR cases  the same, plus a "hardware" fault where RTDS shows the failure:
#          ECS02 2, ECS03 4, GCS02 1, GCS03 1
import struct

import appboot
import envelope
import gbcsmac
import link
import meter
import p256
from fw_p256 import pem_point, pkcs8_scalar
from fw_vectors import access_request, gs_content
from fwtest import raises, rtds_hex, tmpdir

SUPPLIER = "90b3d51f30010000"
ACB = "90b3d51f30000002"
CLOCK = 473385600   # 2015-01-01 00:00:00

READ_STATE = {
    "ECS19": {"ec_balance": 250000, "acc_debt": 95000, "payment": 187000, "time1": 203000,
              "time2": 243000, "balance": 46000},
    "GCS14": {"acc_debt": 2500000, "ec_balance": 500000, "balance": 2500000, "time1": 5000,
              "time2": 5000, "payment": 5000},
}
MODE_STATE = {"friendly_credit": 1, "friendly_calendar": 2, "ec_limit": 1000000,
              "ec_threshold": 200000}

# folder/prefix, use case, meter, RTDS fault position in the ERROR case (0: none)
READS = (("4.3_ECS19/ECS19_4.3_SUCCESS", "ECS19", "00db1234567890a0"),
         ("4.3_GCS14/GCS14_4.3_SUCCESS_RELIABLE_GSME", "GCS14", "00db1234567890a3"))
MODES = (("1.6_ECS02/ECS02_1.6_IMMEDIATE_SINGLE", "ECS02", "00db1234567890a0", 2, "credit"),
         ("1.6_ECS03/ECS03_1.6_IMMEDIATE_SINGLE", "ECS03", "00db1234567890a0", 4, "prepayment"),
         ("1.6_GCS02/GCS02_1.6_IMMEDIATE", "GCS02", "00db1234567890a1", 1, "credit"),
         ("1.6_GCS03/GCS03_1.6_IMMEDIATE", "GCS03", "00db1234567890a1", 1, "prepayment"))


def diag(m, op, **req):
    reply, _ = m.diag(op, req)
    assert reply["ok"], reply
    return reply


def rtds_meter(name, meter_id, fields):
    """A provisioned app.Meter in the RTDS meter's place: its identity, the Supplier
    and the ACB as anchors with their published keys, the RTDS secrets with both, and
    `fields` set."""
    device = "esme" if meter_id == "00db1234567890a0" else "gsme"
    m = appboot.make_meter({"root": tmpdir(name), "name": "test"},
                           {"device": device, "id": meter_id})
    anchors = {SUPPLIER: {"role": 2, "ds": pem_point(SUPPLIER + "-ds.pem").hex(),
                          "ka": pem_point(SUPPLIER + "-ka.pem").hex()},
               ACB: {"role": 4, "ka": pem_point(ACB + "-ka.pem").hex()}}
    pub = diag(m, "provision", anchors=anchors)
    diag(m, "set", fields=dict(fields, clock=CLOCK))
    ka = pem_point(meter_id + "-ka.pem")
    m.sec.z[ACB] = p256.ecdh(pkcs8_scalar(ACB + "-ka.key"), ka)
    m.sec.z[SUPPLIER] = p256.ecdh(pkcs8_scalar(SUPPLIER + "-ka.key"), ka)
    return m, bytes.fromhex(pub["ds"])


def answer(m, cmd):
    out = m.gbcs(cmd)
    assert len(out) == 1 and out[0][0] == link.T_RESPONSE, (out, m.last_error)
    return out[0][1]


def test_rtds_reads_byte_for_byte():
    for prefix, name, mid in READS:
        m, _ = rtds_meter(name, mid, READ_STATE[name])
        before = m.st
        got = answer(m, rtds_hex(prefix + "_COMMAND_GBCS.HEX"))
        want = rtds_hex(prefix + "_RESPONSE_GBCS.HEX")
        assert got == want, "%s: got %s want %s" % (name, got.hex(), want.hex())
        # a read changes nothing but the counter it accepted
        assert m.st["counters"][SUPPLIER] == 1000
        for k in READ_STATE[name]:
            assert m.st[k] == before[k]
        # the same Command again is a replay
        out = m.gbcs(rtds_hex(prefix + "_COMMAND_GBCS.HEX"))
        assert out[0][0] == link.T_ALERT and m.st["counters"][SUPPLIER] == 1000
    print("RTDS read Responses matched: %d" % len(READS))


def _mode_case(prefix, name, mid, outcome, fault_at, start_mode):
    m, ds = rtds_meter(name + outcome, mid, dict(MODE_STATE, mode=start_mode))
    if fault_at:
        diag(m, "fault", at=fault_at, status="hardware")
    got = answer(m, rtds_hex("%s_%s_COMMAND_GBCS.HEX" % (prefix, outcome)))
    want = rtds_hex("%s_%s_RESPONSE_GBCS.HEX" % (prefix, outcome))
    assert got[:-64] == want[:-64], "%s %s: got %s want %s" % (name, outcome, got.hex(),
                                                              want.hex())
    f = envelope.parse_apdu(memoryview(got))
    assert p256.verify(ds, got[1:f[6]], got[f[7]:])
    assert m.st["fault"] is None
    return m


def test_rtds_payment_mode_success():
    for prefix, name, mid, _, mode in MODES:
        other = "credit" if mode == "prepayment" else "prepayment"
        m = _mode_case(prefix, name, mid, "SUCCESS", 0, other)
        assert m.st["mode"] == mode, name
        assert m.st["counters"][SUPPLIER] == int.from_bytes(
            rtds_hex("%s_SUCCESS_PRECOMMAND_GBCS.HEX" % prefix)[3:11], "big")


def test_rtds_payment_mode_error_with_fault():
    # RTDS: the GSME answers a Default Response with HARDWARE_FAILURE and changes
    # nothing; the ESME's first set (account mode) is done before the failing one.
    for prefix, name, mid, at, mode in MODES:
        other = "credit" if mode == "prepayment" else "prepayment"
        m = _mode_case(prefix, name, mid, "ERROR", at, other)
        assert m.st["mode"] == (other if name[0] == "G" else mode), name


# -- the read's encryption with the meter's own keys, and tampering -----------------


def _gcm_open(key, iv, sealed):
    # GCM decryption written from the NIST structure (counter blocks from IV || 2, tag
    # E(IV || 1) xor GHASH(31, C)); raises ValueError when the tag does not match.
    import aes
    assert sealed[:5] == b"\x31\x00\x00\x00\x00"
    ct, tag = sealed[5:-12], sealed[-12:]
    n = (len(ct) + 15) // 16
    blocks = bytes(16) + b"".join(iv + struct.pack(">I", i) for i in range(1, n + 2))
    e = aes.aes(key).encrypt(blocks)
    s = gbcsmac._ghash(int.from_bytes(e[:16], "big"), b"\x31", ct)
    if bytes(a ^ b for a, b in zip(e[16:28], s)) != tag:
        raise ValueError("tag does not verify")
    return bytes(a ^ b for a, b in zip(ct, e[32:]))


def _own_meter(device):
    # A meter with keys of its own, and the Supplier and ACB holding theirs.
    sup_ds, sup_ds_pub = p256.keypair()
    sup_ka, sup_ka_pub = p256.keypair()
    acb_ka, acb_ka_pub = p256.keypair()
    m = appboot.make_meter({"root": tmpdir("own" + device), "name": "test"},
                           {"device": device})
    pub = diag(m, "provision", anchors={
        SUPPLIER: {"role": 2, "ds": sup_ds_pub.hex(), "ka": sup_ka_pub.hex()},
        ACB: {"role": 4, "ka": acb_ka_pub.hex()}})
    ka = bytes.fromhex(pub["ka"])
    return m, sup_ds, p256.ecdh(acb_ka, ka), p256.ecdh(sup_ka, ka)


def _read_content(device, counter, recipient):
    sup = bytes.fromhex(SUPPLIER)
    if device == "gsme":
        # Read Attributes is profile-wide: frame control 00
        out = b"\x01\x09\x02"
        for last, cluster, seq, attrs in ((0, 0x0700, 0, b"\x17\x06\x16\x06"), (1, 0x0705, 1,
                                           b"\x05\x00\x02\x00\x01\x00\x31\x02\x11\x02\x21\x02")):
            out += struct.pack(">BHHBBB", last, cluster, 3 + len(attrs), 0, seq, 0) + attrs
        return out
    params = (b"\x01\x01\x02\x02\x16\x02\x02\x05\x09\x09\x04" + struct.pack(">Q", counter)
              + b"\x09\x08" + sup + b"\x09\x08" + recipient
              + b"\x09\x00\x02\x02\x16\x02\x02\x02\x09\x01\x02\x09\x00")
    objects = (b"\x02\x02\x01\x01\x02\x05\x12\x00\x01\x09\x06\x00\x00\x5e\x2c\x22\x1e"
               b"\x0f\x02\x12\x00\x00\x02\x02\x16\x00\x00")
    return access_request([(3, 30, b"\x00\x00\x2b\x02\x01\xff", 1, objects + params)])


def _read_command(m, counter, z_acb, signed_by=None, code=None, recipient=None):
    # The read Command of m's device from the Supplier, MAC'd with z_acb.
    recipient = recipient or bytes.fromhex(m.st["id"])
    gas = m.st["device"] == "gsme"
    content = _read_content(m.st["device"], counter, recipient)
    apdu = envelope.build_apdu(1, counter, bytes.fromhex(SUPPLIER), recipient,
                               code or (0x0075 if gas else 0x002D), content, signed_by)
    return gbcsmac.wrap(z_acb, apdu)


def _sealed_span(m, resp):
    # (start, end) of the sealed part (31 00000000 | ciphertext | tag) in a read Response.
    i = resp.find(b"\x31\x00\x00\x00\x00")
    n = int.from_bytes(resp[i - 2:i], "big") if m.st["device"] == "gsme" else resp[i - 1]
    return i, i + n


def _values(m, resp, z_sup, counter):
    # (MAC valid, decrypted plaintext) of a read Response from meter m.
    off, n = gbcsmac.parse_header(resp)
    mac_ok = gbcsmac.wrap(z_sup, resp[off:off + n]) == resp
    mid = bytes.fromhex(m.st["id"])
    i, j = _sealed_span(m, resp)
    key = gbcsmac.mac_key(z_sup, mid, 4, counter, bytes.fromhex(SUPPLIER))
    return mac_ok, _gcm_open(key, mid + bytes(4), resp[i:j])


def test_reads_with_own_keys_decrypt_to_the_state():
    for device in ("esme", "gsme"):
        m, _, z_acb, z_sup = _own_meter(device)
        diag(m, "set", fields={"time1": 111000, "time2": 222000, "payment": 333000,
                               "balance": -4000, "ec_balance": 5000, "acc_debt": 6000})
        resp = answer(m, _read_command(m, 7, z_acb))
        ok, plain = _values(m, resp, z_sup, 7)
        assert ok
        if device == "esme":
            want = b"\x02\x01\x02\x06" + b"".join(
                b"\x05" + struct.pack(">i", v)
                for v in (5000, 6000, 333000, 111000, 222000, -4000))
        else:
            want = b"".join(struct.pack("<HBBi", a, 0, t, v) for a, t, v in (
                (5, 0x2B, 6000), (2, 0x2B, 5000), (1, 0x2B, -4000), (0x231, 0x23, 333000),
                (0x211, 0x23, 111000), (0x221, 0x23, 222000)))
        assert plain == want, (device, plain.hex())
        # a tampered ciphertext or tag does not open, and breaks the MAC too
        i, j = _sealed_span(m, resp)
        for k in (i + 5, j - 1):
            bad = bytearray(resp)
            bad[k] ^= 1
            raises(ValueError, _values, m, bytes(bad), z_sup, 7)
            off, n = gbcsmac.parse_header(bad)
            assert gbcsmac.wrap(z_sup, bytes(bad[off:off + n])) != bytes(bad)
        # nor with another counter's key
        raises(ValueError, _values, m, resp, z_sup, 8)
        # what a second read encrypts differs (another counter: another key)
        resp2 = answer(m, _read_command(m, 8, z_acb))
        assert resp2[i:j] != resp[i:j]
        assert _values(m, resp2, z_sup, 8) == (True, want)


def test_non_critical_checks():
    # The envelope's checks for a non-critical Command: recipient, counter, MAC, the
    # originator's role; no signature allowed. Each refusal changes nothing.
    for device in ("esme", "gsme"):
        m, sup_ds, z_acb, _ = _own_meter(device)
        good = _read_command(m, 20, z_acb)
        answer(m, good)
        before = meter.copy(m.st)

        def refused(cmd, alert):
            out = m.gbcs(cmd)
            assert out[0][0] == link.T_ALERT, m.last_error
            c = gs_content(out[0][1])
            got = struct.unpack_from(">H", c, 3 if c[0] == 0x01 else 9)[0]  # GBZ or DLMS
            assert got == alert, (hex(got), m.last_error)
            assert m.st["counters"] == before["counters"]
            for k in ("mode", "time1", "payment"):
                assert m.st[k] == before[k]

        refused(good, envelope.A_AUTH)                                     # replay
        bad_mac = bytearray(_read_command(m, 21, z_acb))
        bad_mac[-1] ^= 1
        refused(bytes(bad_mac), envelope.A_AUTH)
        refused(_read_command(m, 22, bytes(32)), envelope.A_AUTH)          # not the ACB's
        refused(_read_command(m, 23, z_acb, signed_by=sup_ds), envelope.A_FORMAT)
        assert "no signature" in m.last_error
        # a critical use case without a signature
        refused(_read_command(m, 24, z_acb, code=0x006C if device == "gsme" else 0x001A),
                envelope.A_FORMAT)
        # another meter's read
        refused(_read_command(m, 25, z_acb, recipient=bytes.fromhex("00db1234567890ff")),
                envelope.A_AUTH)
        # the other fuel's read
        refused(_read_command(m, 26, z_acb, code=0x002D if device == "gsme" else 0x0075),
                envelope.A_FORMAT)
        # and after all that a good one still goes
        answer(m, _read_command(m, 27, z_acb))
        assert m.st["counters"][SUPPLIER] == 27


def test_read_needs_supplier_role():
    m, _, z_acb, _ = _own_meter("gsme")
    no = "90b3d51f30020000"
    _, ds = p256.keypair()
    _, ka = p256.keypair()
    anchors = dict(m.st["anchors"])
    anchors[no] = {"role": 3, "ds": ds.hex(), "ka": ka.hex()}
    diag(m, "provision", anchors=anchors, new_keys=False)
    m.sec.z[ACB] = z_acb
    cmd = bytearray(_read_command(m, 5, z_acb))
    off, n = gbcsmac.parse_header(cmd)
    apdu = bytearray(cmd[off:off + n])
    apdu[12:20] = bytes.fromhex(no)          # the Network Operator asks
    out = m.gbcs(gbcsmac.wrap(z_acb, bytes(apdu)))
    assert out[0][0] == link.T_ALERT and no not in m.st["counters"]
    assert "may not run GCS14" in m.last_error


# -- the handlers alone: content checks, faults, recovery following the mode ---------

def _ctx(st, counter=9):
    # What the envelope hands a read: its Security (a real one, with a secret of the
    # test's own for the Supplier).
    sec = envelope.Security()
    sec.z[SUPPLIER] = bytes(range(32))
    return counter, SUPPLIER, sec


def _cpm(config, when=0, cut=0, seq=0):
    # GBZ Change Payment Mode content (NOTES 7), frame control 01.
    p = struct.pack("<IIIHi", 0, 0x1C374A80, when, config, cut)
    return b"\x01\x09\x01" + struct.pack(">BHHBBB", 1, 0x0705, 3 + len(p), 1, seq, 6) + p


def _account(mode, status=1, extra=(), activation=bytes(9) + b"\x80\x00\xff"):
    # Access-Request content of ECS02 (mode 1) / ECS03 (mode 2), shaped like RTDS.
    acct = b"\x00\x01\x13\x00\x00\xff"
    cfg = b"\x01\x01\x02\x03\x09\x06\x00\x00\x13\x0a\x00\xff\x09\x06\x00\x00\x13\x14\x00\xff" \
          b"\x04\x03\xe0"
    specs = [(2, 111, acct, 2, b"\x02\x02\x16" + bytes((mode, 0x16, status)))]
    specs += list(extra)
    specs += [(2, 111, acct, 11, cfg), (2, 111, acct, 13, b"\x09\x0c" + activation)]
    return access_request(specs)


def _threshold(v=556677):
    return (2, 9000, b"\x00\x00\x5e\x2c\x80\x16", 4, b"\x05" + struct.pack(">i", v))


def _refused(st, name, content, why):
    before = meter.copy(st)
    meter.inject_fault(st, 1, "other")
    e = raises(meter.FormatError, meter.execute, st, name, content, _ctx(st))
    assert why in str(e), (name, str(e))
    assert st["fault"] is not None       # still pending: nothing ran
    st["fault"] = None
    assert st == before, name


def test_payment_mode_content_checks():
    g = meter.new_state("gsme", "00db1234567890a1")
    g["clock"] = 1000
    assert meter.execute(g, "GCS03", _cpm(0x0897))[-13:] == struct.pack(
        "<BIII", 0, 0, 500000, 100000)                      # factory values
    assert g["mode"] == "prepayment"
    _refused(g, "GCS02", _cpm(0x0897), "payment mode")      # prepayment bit set for credit
    _refused(g, "GCS03", _cpm(0x0C94), "payment mode")
    _refused(g, "GCS02", _cpm(0x0C94, when=1001), "future-dated")
    _refused(g, "GCS02", _cpm(0x0C94)[:-1], "length")
    _refused(g, "GCS02", _cpm(0x0C94)[:3] + b"\x01\x07\x00" + _cpm(0x0C94)[6:], "component")
    _refused(g, "GCS02", b"\x01\x09\x02" + _cpm(0x0C94)[3:].replace(b"\x01\x07\x05", b"\x00\x07\x05")
             + _cpm(0x0C94)[3:], "component")                # two components
    assert meter.execute(g, "GCS02", _cpm(0x0C94, when=999))[-13:]   # a past time is now
    assert g["mode"] == "credit"
    e = meter.new_state("esme", "00db1234567890a0")
    assert meter.execute(e, "ECS03", _account(2, extra=[_threshold()])) == \
        bytes.fromhex("da200003e9" "0000" "04" "00000000" "04" "0200020002000200")
    assert e["mode"] == "prepayment"
    _refused(e, "ECS02", _account(2), "payment mode")
    _refused(e, "ECS03", _account(1), "payment mode")
    _refused(e, "ECS02", _account(1, extra=[_threshold()]), "not part of ECS02")
    _refused(e, "ECS02", _account(1, activation=b"\x07\xdf\x01\x01" + bytes(5) + b"\x80\x00\xff"),
             "future-dated")
    _refused(e, "ECS02", _account(1, extra=[(2, 111, b"\x00\x01\x13\x00\x00\xff", 2,
                                             b"\x02\x02\x16\x01\x16\x01")]), "payment mode")
    _refused(e, "ECS02", _account(1, extra=[(3, 111, b"\x00\x01\x13\x00\x00\xff", 2,
                                             b"\x0f\x00")]), "not part of")
    _refused(e, "ECS02", _account(1, extra=[(2, 111, b"\x00\x00\x13\x00\x00\xff", 3,
                                             b"\x0f\x00")]), "not part of")
    assert e["mode"] == "prepayment"
    meter.execute(e, "ECS02", _account(1))
    assert e["mode"] == "credit"


def test_reads_content_checks_and_faults():
    g = meter.new_state("gsme", "00db1234567890a1")
    good = _read_content("gsme", 9, None)
    out = meter.execute(g, "GCS14", good, _ctx(g))
    assert out[:3] == b"\x01\x09\x02" and out[3] == 0 and out[22] == 3   # Prepayment: sealed
    # an attribute the meter does not have: UNSUPPORTED_ATTRIBUTE alone, in order
    c = b"\x01\x09\x01" + struct.pack(">BHHBBB", 1, 0x0700, 7, 0, 4, 0) + b"\x17\x06\x00\x99"
    assert meter.execute(g, "GCS14", c, _ctx(g)) == b"\x01\x09\x01" + struct.pack(
        ">BHHBBB", 1, 0x0700, 3 + 5 + 3, 8, 4, 1) + b"\x17\x06\x00\x18\x50" + b"\x00\x99\x86"
    def one(cluster, attrs, fc=0, cmd=0, last=1):
        return struct.pack(">BHHBBB", last, cluster, 3 + len(attrs), fc, 0, cmd) + attrs
    for bad, why in ((b"\x01\x09\x01" + one(0x0700, b"\x17\x06", fc=1), "frame control"),
                     (b"\x01\x09\x01" + one(0x0702, b"\x17\x06"), "not a GCS14"),
                     (b"\x01\x09\x01" + one(0x0705, b"\x17\x06", cmd=1), "not a GCS14"),
                     (b"\x01\x09\x01" + one(0x0705, b"\x17"), "not a GCS14"),
                     (b"\x01\x09\x01" + one(0x0705, b"\x01\x00" * 17), "not a GCS14"),
                     (b"\x01\x09\x02" + one(0x0705, b"\x01\x00", last=0)
                      + one(0x0705, b"\x02\x00"), "not a GCS14"),   # one seal per Response
                     (good[:-1], "length")):
        _refused(g, "GCS14", bad, why)
    meter.inject_fault(g, 2, "hardware")
    out = meter.execute(g, "GCS14", good, _ctx(g))
    assert out[22:] == struct.pack(">BHHBBBBB", 1, 0x0705, 5, 8, 1, 0x0B, 0, 0xC0)
    assert g["fault"] is None
    meter.inject_fault(g, 1, "failure")
    out = meter.execute(g, "GCS14", good, _ctx(g))
    assert out[3:] == struct.pack(">BHHBBBBB", 0, 0x0700, 5, 8, 0, 0x0B, 0, 0x01) + \
        struct.pack(">BHHBBBBB", 1, 0x0705, 5, 8, 1, 0x0B, 0xFF, 0x01)
    e = meter.new_state("esme", "00db1234567890a0")
    me = bytes.fromhex(e["id"])
    good = _read_content("esme", 9, me)
    assert meter.execute(e, "ECS19", good, _ctx(e))[-3:] == b"\x01\x03\x00"
    _refused(e, "ECS19", _read_content("esme", 8, me), "not a ECS19")   # another counter
    _refused(e, "ECS19", _read_content("esme", 9, bytes(8)), "not a ECS19")
    _refused(e, "ECS19", good.replace(b"\x5e\x2c\x22\x1e", b"\x5e\x2c\x22\x1f"), "not a ECS19")
    meter.inject_fault(e, 1, "hardware")
    assert meter.execute(e, "ECS19", good, _ctx(e)) == \
        bytes.fromhex("da200003e9" "0000" "01" "00" "01" "0301")
    meter.inject_fault(e, 3, "hardware")     # past the one action: used up, no effect
    assert meter.execute(e, "ECS19", good, _ctx(e))[-3:] == b"\x01\x03\x00"
    assert e["fault"] is None
    raises(TypeError, meter.execute, e, "ECS19", good)    # a read needs the envelope's ctx


def test_recovery_follows_the_mode_set_by_command():
    for device in ("gsme", "esme"):
        st = meter.new_state(device, "00db1234567890a1" if device == "gsme"
                             else "00db1234567890a0")
        meter.set_state(st, {"mode": "prepayment", "time1": 10000, "time1_rate": 1000,
                             "time1_freq": 0, "balance": 50000, "clock": 3600 * 100})
        meter.advance(st, 3600)
        assert st["time1"] == 9000 and st["balance"] == 49000
        if device == "gsme":
            meter.execute(st, "GCS02", _cpm(0x0C94))
        else:
            meter.execute(st, "ECS02", _account(1))
        assert meter.advance(st, 10 * 3600) == []
        assert st["time1"] == 9000 and st["balance"] == 49000, device   # nothing recovered
        if device == "gsme":
            meter.execute(st, "GCS03", _cpm(0x0897))
        else:
            meter.execute(st, "ECS03", _account(2, extra=[_threshold(0)]))
        meter.advance(st, 2 * 3600)     # recovery resumes: only the instants from now on
        assert st["time1"] == 7000 and st["balance"] == 47000, device


def test_friendly_credit_reported_and_old_states():
    g = meter.new_state("gsme", "00db1234567890a1")
    meter.set_state(g, {"friendly_credit": 1, "friendly_calendar": 7, "ec_limit": 123000,
                        "ec_threshold": -5000})
    out = meter.execute(g, "GCS02", _cpm(0x0C94, seq=3))
    assert out == b"\x01\x09\x01" + struct.pack(">BHHBBB", 1, 0x0705, 16, 0x19, 3, 2) + \
        struct.pack("<BIII", 1, 7, 123000, 0)       # a threshold below zero reports 0
    assert meter.registers(g)["friendly_calendar"] == 7
    raises(ValueError, meter.set_state, g, {"friendly_credit": 256})
    # absent until set (a state stored before SR 1.6, or a new one): 0
    new = meter.new_state("gsme", "00db1234567890a1")
    assert "friendly_credit" not in new and "friendly_calendar" not in new
    assert meter.execute(new, "GCS03", _cpm(0x0897))[-13:-8] == bytes(5)
    assert meter.registers(new)["friendly_credit"] == 0


def test_seal_with_cryptolib_or_pure_aes_matches_rtds():
    # seal.py's AES is gbcsmac's: cryptolib where the port has it, aes.py where not.
    # Both give the RTDS ECS19 ciphertext and tag from the RTDS plaintext and keys.
    import aes
    import seal
    meter_id = bytes.fromhex("00db1234567890a0")
    z = p256.ecdh(pkcs8_scalar(SUPPLIER + "-ka.key"), pem_point("00db1234567890a0-ka.pem"))
    plain = b"\x02\x01\x02\x06" + b"".join(
        struct.pack(">Bi", 5, v) for v in (250000, 95000, 187000, 203000, 243000, 46000))
    want = rtds_hex("4.3_ECS19/ECS19_4.3_SUCCESS_RESPONSE_GBCS.HEX")
    got = seal.seal(z, meter_id, 1000, bytes.fromhex(SUPPLIER), plain)
    assert got[:5] == b"\x31\x00\x00\x00\x00" and len(got) == 5 + len(plain) + 12
    assert want.find(got) > 0
    saved = gbcsmac._aes
    gbcsmac._aes = aes.aes
    try:
        assert seal.seal(z, meter_id, 1000, bytes.fromhex(SUPPLIER), plain) == got
        # and on lengths that are not whole blocks, against the test's own opening
        for n in (0, 1, 15, 16, 17, 48):
            p = bytes(range(n))
            s = seal.seal(z, meter_id, 5, bytes.fromhex(SUPPLIER), p)
            assert _gcm_open(gbcsmac.mac_key(z, meter_id, 4, 5, bytes.fromhex(SUPPLIER)),
                             meter_id + bytes(4), s) == p
    finally:
        gbcsmac._aes = saved
