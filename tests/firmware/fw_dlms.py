# DLMS codec: Access-Request parsing to views of the caller's buffer, A-XDR checks,
# Access-Response encoding; every kind of malformed content is a FormatError (never
# another exception) and changes nothing when it reaches the meter.
import dlms
import meter
from fwtest import raises
from fw_vectors import (access_request, access_response, charge, credit, dl, dlu, ecs04b,
                        ecs07, ecs07a, ecs09, ESME_ID, integer, INVOKE, lu,
                        mutation_campaign, snapshot, through_meter, truncation_campaign,
                        unit_charge)

GOOD = (
    ("ECS07", ecs07()),
    ("ECS07a", ecs07a(2)),
    ("ECS04b", ecs04b()),
    ("ECS09", ecs09()),
)


def test_request_parses_to_views():
    content = bytearray(ecs07())
    invoke, specs, data = dlms.request(content)
    assert bytes(invoke) == INVOKE and len(specs) == 10 and len(data) == 10
    kind, cls, obis, sid = specs[2]
    assert (kind, cls, bytes(obis), sid) == (2, 113, charge(3), 13)
    assert dlms.value(data[2], dlms.LONG_UNSIGNED) == 1000
    assert dlms.value(data[9], dlms.DOUBLE_LONG) == 15000
    assert dlms.unit_charge(data[1]) == (0, -1, 15)
    content[-1] = 0x99          # the parse did not copy: it sees the change
    assert dlms.value(data[9], dlms.DOUBLE_LONG) == 0x3A99


def test_skip_every_type():
    elems = (b"\x00", b"\x03\x01", dl(-1), dlu(7), b"\x09\x03abc", integer(-2),
             b"\x10\xff\xfe", b"\x11\x05", lu(9), b"\x16\x01", b"\x01\x02\x00\x11\x01",
             b"\x02\x01\x02\x01\x00", b"\x09\x81\x80" + bytes(128),
             b"\x09\x82\x01\x00" + bytes(256),
             b"\x04\x00", b"\x04\x03\xe0", b"\x04\x09\xff\x80",  # bit strings: count of bits
             b"\x02\x01" * 6 + b"\x00")                            # six deep (ECS19)
    for e in elems:
        assert dlms.skip(memoryview(e + b"\xee"), 0, len(e)) == len(e), e
        for i in range(len(e)):
            raises(meter.FormatError, dlms.skip, memoryview(e), 0, i)
    for e in (b"\x08\x00", b"\x07", b"\x13\x00", b"\xff", b"\x09\x83\x00\x00\x01\x00",
              b"\x01\x05\x00", b"\x04\x09\xff",              # unknown, lying
              b"\x02\x01" * 7 + b"\x00"):                      # too deep
        raises(meter.FormatError, dlms.skip, memoryview(e), 0, len(e))


def test_response_encoder():
    out = dlms.response(memoryview(INVOKE), bytearray((2, 3)), bytearray((0, 0xFA)))
    assert out == bytes.fromhex("da200003e9" "0000" "02" "0000" "02" "0200" "03fa")
    assert out == access_response([(2, 0), (3, 0xFA)])


def _bad(content):
    raises(meter.FormatError, dlms.request, content)


def test_malformed_requests():
    good = ecs09()
    _bad(b"")
    _bad(b"\xd9")
    _bad(good[:6])
    _bad(b"\xd8" + good[1:])                      # not an Access-Request
    _bad(good[:5] + b"\x0c" + good[6:])           # date-time present
    _bad(good[:6] + b"\x00" + good[7:])           # no specifications
    _bad(good[:6] + b"\x21" + good[7:])           # more than the firmware takes
    _bad(good[:6] + b"\x02" + good[7:])           # count lies
    _bad(good[:6] + b"\x80" + good[7:])           # bad length encoding
    _bad(good + b"\x00")                          # trailing byte
    for kind in (0, 4, 5, 0xFF):                  # unknown specification kinds
        _bad(good[:7] + bytes((kind,)) + good[8:])
    _bad(good[:17] + b"\x02" + good[18:])         # data count differs from specs
    _bad(good[:18] + b"\x07\x00")                 # unknown A-XDR tag
    _bad(good[:18] + b"\x05\x00")                 # truncated value
    _bad(access_request([(3, 112, credit(1), 3, b"\x01\x03\x00\x00")]))   # array lies


def test_use_case_shapes():
    st = meter.new_state("esme", ESME_ID)
    before = snapshot(st)
    for name, specs in (
            ("ECS09", [(3, 112, credit(1), 3, integer(1))]),
            ("ECS09", [(3, 112, credit(0), 3, integer(0))]),
            ("ECS09", [(3, 112, credit(1), 3, integer(0))] * 2),
            ("ECS09", [(3, 112, credit(1), 3, b"\x11\x00")]),
            ("ECS04b", [(3, 112, credit(3), 2, dl(0))]),
            ("ECS04b", [(3, 112, credit(0), 1, dl(0))]),
            ("ECS04b", [(2, 112, credit(0), 2, dl(0))]),
            ("ECS04b", [(3, 112, b"\x01\x00\x13\x0a\x00\xff", 2, dl(0))]),
            ("ECS04b", [(3, 112, b"\x00\x00\x13\x0a\x00\x00", 2, dl(0))]),
            ("ECS07", [(2, 113, charge(1), 6, b"\x02\x02\x00\x00")]),
            ("ECS07", [(2, 113, charge(1), 6, unit_charge(1)[:-3] + b"\x11\x00")]),
            ("ECS07", [(2, 113, charge(1), 2, integer(0))]),
            ("ECS07", [(2, 113, charge(1), 8, dl(86400))])):
        raises(meter.FormatError, meter.execute, st, name, access_request(specs))
        assert snapshot(st) == before, (name, specs)


def test_unit_charge_shapes():
    good = unit_charge(3)
    assert dlms.unit_charge(memoryview(good)) == (0, -1, 3)
    # an array of two charge table entries, a missing commodity reference, a null
    two = good[:-9] + b"\x01\x02" + good[-7:] + good[-7:]
    for v in (two, b"\x02\x02" + good[2:8] + good[-9:], b"\x00", b"\x02\x00"):
        dlms.skip(memoryview(v), 0, len(v))   # well-formed A-XDR...
        raises(meter.FormatError, dlms.unit_charge, memoryview(v))   # ...wrong shape


_through_meter = through_meter("esme", b"\xda")


def test_truncated_at_every_length():
    print("truncations tried: %d" % truncation_campaign(GOOD, _through_meter))


def test_byte_flips_and_random_mutations():
    tried, answered = mutation_campaign(GOOD, _through_meter, 7)
    print("mutations tried: %d, answered: %d" % (tried, answered))
