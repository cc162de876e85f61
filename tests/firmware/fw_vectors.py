# Builders for the firmware tests' own vectors: GBZ and DLMS Command content written
# from the field tables in NOTES.md sections 3-5, independently of the firmware's
# codecs, and the General-Signing header walk that finds the content in an RTDS APDU.
# No test functions here: the other fw_*.py modules import it.
import struct

SUPPLIER = "90b3d51f30010000"
ESME_ID = "00db1234567890a0"
GSME_ID = "00db1234567890a1"
INVOKE = b"\x20\x00\x03\xe9"
ISSUER = 0x1C374A80

# -- General-Signing APDU (NOTES 2.1) -------------------------------------------------


def gs_content(apdu):
    """The content of a General-Signing APDU (DF 09 ...)."""
    b = memoryview(apdu)
    assert b[0] == 0xDF and b[1] == 0x09
    pos = 2 + 1 + 8
    assert b[pos] == 8 and b[pos + 9] == 8
    pos += 18
    pos += 1 if b[pos] == 0 else 13
    assert b[pos] == 2
    pos += 3
    n = b[pos]
    pos += 1
    if n == 0x81:
        n = b[pos]
        pos += 1
    elif n == 0x82:
        n = b[pos] << 8 | b[pos + 1]
        pos += 2
    return bytes(b[pos:pos + n])


# -- GBZ / ZCL (NOTES 3) --------------------------------------------------------------


def gbz(comps):
    """GBZ content from [(cluster, seq, command, payload)]: frame control 01."""
    out = bytearray(b"\x01\x09")
    out.append(len(comps))
    for i in range(len(comps)):
        cl, seq, cmd, p = comps[i]
        out += struct.pack(">BHH", 1 if i == len(comps) - 1 else 0, cl, len(p) + 3)
        out += bytes((1, seq, cmd)) + p
    return bytes(out)


def change_debt(atype, amount, method=None, start=0, coll=0, freq=0, rec=0, pct=0,
                label=b""):
    if method is None:
        method = 1 if atype >= 4 else 0
    return struct.pack("<IB", ISSUER, len(label)) + label + \
        struct.pack("<iBBIHBiH", amount, method, atype, start, coll, freq, rec, pct)


def gcs04(debts):
    """Manage Debt content, one Change Debt per dict of change_debt() arguments."""
    return gbz([(0x0705, i, 2, change_debt(**debts[i])) for i in range(len(debts))])


def gcs04a(reg):
    """Reset Debt Register content for register 0 time1, 1 time2, 2 payment."""
    return gbz([(0x0705, 0, 2, change_debt(2 * reg, 0))])


def gcs40b(value, atype=1):
    return gbz([(0x0705, 0, 5, struct.pack("<IIBi", ISSUER, 0, atype, value))])


def gcs06():
    return gbz([(0x0705, 0, 0, struct.pack("<IB", 0, 0))])


def zcl_answers(answers, cluster=0x0705):
    """Expected GBZ Response: [(seq, command answered, status)] as Default Responses."""
    out = bytearray(b"\x01\x09")
    out.append(len(answers))
    for i in range(len(answers)):
        seq, cmd, status = answers[i]
        out += struct.pack(">BHH", 1 if i == len(answers) - 1 else 0, cluster, 5)
        out += bytes((0x08, seq, 0x0B, cmd, status))
    return bytes(out)


# -- DLMS (NOTES 4) ---------------------------------------------------------------------


def charge(e):
    return bytes((0, 0, 19, 20, e, 255))


def credit(e):
    return bytes((0, 0, 19, 10, e, 255))


def dl(v):
    return b"\x05" + struct.pack(">i", v)


def dlu(v):
    return b"\x06" + struct.pack(">I", v)


def integer(v):
    return b"\x0f" + struct.pack(">b", v)


def lu(v):
    return b"\x12" + struct.pack(">H", v)


def unit_charge(per_unit, price_scale=-1):
    """Charge unit_charge: scale 0, price scale, a null commodity reference and one
    charge table entry with an empty index."""
    return b"\x02\x03\x02\x02\x0f\x00\x0f" + struct.pack(">b", price_scale) + \
        b"\x02\x03\x12\x00\x00\x09\x06" + bytes(6) + b"\x0f\x00" + \
        b"\x01\x01\x02\x02\x09\x00\x10" + struct.pack(">h", per_unit)


def access_request(specs, invoke=INVOKE):
    """Access-Request from [(kind, class id, obis, id, data)]."""
    out = bytearray(b"\xd9" + invoke + b"\x00")
    out.append(len(specs))
    for kind, cls, obis, sid, _ in specs:
        out += struct.pack(">BH", kind, cls) + obis + bytes((sid,))
    out.append(len(specs))
    for s in specs:
        out += s[4]
    return bytes(out)


def access_response(results, invoke=INVOKE):
    """Expected Access-Response: [(kind, result)], null data each."""
    n = len(results)
    out = bytearray(b"\xda" + invoke + b"\x00\x00")
    out.append(n)
    out += bytes(n)
    out.append(n)
    for k, r in results:
        out += bytes((k, r))
    return bytes(out)


def ecs07(td1=30000, td2=15000, pd=50000, pct=1000, rate1=3, rate2=15, period=86400):
    """Manage Debt content shaped like the RTDS ECS07 request (ten specifications)."""
    return access_request([
        (2, 113, charge(1), 6, unit_charge(rate1)),
        (2, 113, charge(2), 6, unit_charge(rate2)),
        (2, 113, charge(3), 13, lu(pct)),
        (2, 113, charge(1), 8, dlu(period)),
        (2, 113, charge(2), 8, dlu(period)),
        (3, 113, charge(1), 2, integer(0)),
        (3, 113, charge(2), 2, integer(0)),
        (3, 113, charge(3), 4, dl(pd)),
        (3, 113, charge(1), 4, dl(td1)),
        (3, 113, charge(2), 4, dl(td2)),
    ])


def ecs07a(reg):
    return access_request([(3, 113, charge(reg + 1), 5, dl(0))])


def ecs04b(values=(0, 0, 0)):
    return access_request([(3, 112, credit(i), 2, dl(values[i])) for i in range(len(values))])


def ecs09():
    return access_request([(3, 112, credit(1), 3, integer(0))])


# -- state helpers ------------------------------------------------------------------------


def fresh(device="gsme", profile="smets2", overrides=None, **fields):
    """A new meter of `device` and `profile` (with overrides of its settings), then
    fields set as the set-state diagnostic sets them. It carries keys of the
    security layer, which the meter must keep untouched."""
    import meter
    st = meter.new_state(device, GSME_ID if device == "gsme" else ESME_ID, profile, overrides)
    st["keys"] = {"ds": "opaque"}
    meter.set_state(st, fields)
    return st


def snapshot(st):
    """A deep, comparable copy of a state dict."""
    import json
    return json.loads(json.dumps(st))


def prng(seed):
    """A small deterministic generator of 31-bit numbers (an LCG)."""
    x = seed
    while True:
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        yield x


def mutate(content, rnd):
    """content with 1 to 4 random byte changes, insertions or deletions."""
    c = bytes(content)
    for _ in range(1 + next(rnd) % 4):
        op = next(rnd) % 3
        pos = next(rnd) % (len(c) + 1)
        if op == 0 and pos < len(c):
            c = c[:pos] + bytes((next(rnd) & 0xFF,)) + c[pos + 1:]
        elif op == 1:
            c = c[:pos] + bytes((next(rnd) & 0xFF,)) + c[pos:]
        elif len(c) > 1:
            pos %= len(c)
            c = c[:pos] + c[pos + 1:]
    return c


def through_meter(device, answer_prefix):
    """A through() for the campaigns below: run (name, content) on a fresh prepayment
    meter of `device` with debt in every register; 1 when it answers (the answer must
    start with answer_prefix), 0 when it refuses the content with FormatError, in
    which case the state must be untouched. Anything else fails the test."""
    import meter

    def through(name, content):
        st = meter.new_state(device, GSME_ID if device == "gsme" else ESME_ID)
        meter.set_state(st, {"mode": "prepayment", "time1": 10, "time2": 20, "payment": 30})
        before = snapshot(st)
        try:
            out = meter.execute(st, name, content)
        except meter.FormatError:
            assert snapshot(st) == before
            return 0
        assert out[:len(answer_prefix)] == answer_prefix
        return 1
    return through


def truncation_campaign(good, through):
    """Every good (name, content) must be answered (through() == 1); every cut of it
    and it with a trailing byte must be refused (0). Returns how many were tried."""
    n = 0
    for name, content in good:
        assert through(name, content) == 1
        for i in range(len(content)):
            assert through(name, content[:i]) == 0, (name, i)
            n += 1
        assert through(name, content + b"\x00") == 0
    return n


def mutation_campaign(good, through, seed, rounds=300):
    """Byte flips at every offset plus random mutations; through() returns 1 when the
    meter answered, 0 for a format failure (and must raise nothing else). Some of each
    must happen, or the campaign tests nothing. Returns (tried, answered)."""
    rnd = prng(seed)
    tried = answered = 0
    for name, content in good:
        for i in range(len(content)):
            for x in (0x01, 0x80, 0xFF):
                c = bytearray(content)
                c[i] ^= x
                answered += through(name, c)
                tried += 1
        for _ in range(rounds):
            answered += through(name, mutate(content, rnd))
            tried += 1
    assert 0 < answered < tried
    return tried, answered
