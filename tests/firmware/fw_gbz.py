# GBZ / ZCL codec: well-formed content parses to views of the caller's buffer, every
# kind of malformed content is a FormatError (never another exception) and changes
# nothing when it reaches the meter.
import struct

import gbz
import meter
from fwtest import raises
from fw_vectors import (change_debt, gbz as build, gcs04, gcs04a, gcs06, gcs40b,
                        mutation_campaign, through_meter, truncation_campaign)

GOOD = (
    ("GCS04", gcs04([dict(atype=1, amount=1000000, rec=50000, freq=1),
                     dict(atype=3, amount=500000, rec=50000),
                     dict(atype=5, amount=1000000, rec=1, pct=100)])),
    ("GCS04a", gcs04a(1)),
    ("GCS40b", gcs40b(0)),
    ("GCS06", gcs06()),
)


def test_components_are_views():
    content = bytearray(GOOD[0][1])
    comps = gbz.components(content)
    assert [(c[0], c[1], c[2], c[3]) for c in comps] == \
        [(0, 0x0705, 0, 2), (0, 0x0705, 1, 2), (1, 0x0705, 2, 2)]
    p = comps[0][4]
    assert type(p) is memoryview and len(p) == 24
    content[3 + 5 + 3 + 4 + 1] = 0x41    # the parse did not copy: it sees the change
    assert gbz.change_debt(p)[1] == 0x000F4241


def test_decoders():
    d = gbz.change_debt(memoryview(change_debt(3, -5, start=7, coll=8, freq=1, rec=9,
                                               label=b"abc")))
    assert d == (0x1C374A80, -5, 0, 3, 7, 8, 1, 9, 0)
    assert gbz.credit_adjustment(memoryview(struct.pack("<IIBi", 1, 2, 0, -3))) == (1, 2, 0, -3)
    assert gbz.select_emergency_credit(memoryview(struct.pack("<IB", 5, 2))) == (5, 2)


def test_encoders():
    comps = gbz.components(GOOD[0][1])
    out = gbz.default_responses(comps, [(2, 0), (2, 0xC0), (0xFF, 1)])
    assert out == bytes.fromhex("010903" "00070500050800" "0b0200" "00070500050801"
                                "0b02c0" "01070500050802" "0bff01")


def _bad(content):
    raises(meter.FormatError, gbz.components, content)


def test_malformed_frames():
    one = build([(0x0705, 0, 2, change_debt(0, 0))])
    _bad(b"")
    _bad(b"\x01")
    _bad(b"\x01\x09")
    _bad(b"\x02\x09" + one[2:])                  # wrong profile
    _bad(b"\x01\x0a" + one[2:])
    _bad(b"\x01\x09\x00")                        # no components
    _bad(b"\x01\x09\x09" + one[3:])              # more than the firmware takes
    _bad(b"\x01\x09\x02" + one[3:])              # count says 2, there is 1
    _bad(one + b"\x00")                          # trailing byte
    _bad(one[:-1])                               # truncated
    c = bytearray(one)
    c[3] = 0                                     # last component without its flag
    _bad(c)
    c = bytearray(one)
    c[3] = 0x81                                  # unknown control bits
    _bad(c)
    for ln in (0, 1, 2, len(one) - 7, len(one) - 9, 0xFFFF):
        c = bytearray(one)
        struct.pack_into(">H", c, 6, ln)         # length that lies
        _bad(c)
    c = bytearray(one)
    c[8] = 0x09                                  # not a client-to-server command
    _bad(c)
    two = build([(0x0705, 0, 2, change_debt(0, 0)), (0x0705, 1, 2, change_debt(2, 0))])
    c = bytearray(two)
    c[3] = 1                                     # first component claims to be last
    _bad(c)


def test_malformed_payloads():
    bad_cd = (
        change_debt(0, 0)[:-1], change_debt(0, 0) + b"\x00",
        struct.pack("<IB", 0, 5) + b"ab",                    # label longer than payload
        change_debt(0, 0, label=b"xy")[:-2],
        change_debt(0, 0, method=2), change_debt(6, 0), change_debt(0, 0, freq=2),
        change_debt(0, 0, coll=1440), change_debt(0, 0, rec=-1),
        change_debt(4, 0, pct=10001), b"",
    )
    for p in bad_cd:
        raises(meter.FormatError, gbz.change_debt, memoryview(p))
    for p in (b"", bytes(12), bytes(14), bytes(8) + b"\x02" + bytes(4)):
        raises(meter.FormatError, gbz.credit_adjustment, memoryview(p))
    for p in (b"", bytes(4), bytes(6), bytes(4) + b"\x03"):
        raises(meter.FormatError, gbz.select_emergency_credit, memoryview(p))


_through_meter = through_meter("gsme", b"\x01\x09")


def test_truncated_at_every_length():
    print("truncations tried: %d" % truncation_campaign(GOOD, _through_meter))


def test_byte_flips_and_random_mutations():
    tried, answered = mutation_campaign(GOOD, _through_meter, 2024)
    print("mutations tried: %d, answered: %d" % (tried, answered))
