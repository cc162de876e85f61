# The frame receiver and encoder, run in the unix port.
import link
from fwtest import raises


def feed_all(rx, data, now=0):
    out = []
    for b in data:
        r = rx.feed(b, now)
        if r:
            out.append((r[0], r[1], r[2], r[3], bytes(r[4])) if r[0] == "frame" else r)
    return out


def test_round_trip():
    rx = link.Receiver()
    f = link.encode(link.T_DIAG, 7, b'{"op":"ping"}')
    assert feed_all(rx, f) == [("frame", link.T_DIAG, link.FINAL, 7, b'{"op":"ping"}')]


def test_empty_and_max_payload():
    rx = link.Receiver()
    big = bytes(range(256)) * 16
    assert len(big) == link.MAX_PAYLOAD
    got = feed_all(rx, link.encode(link.T_GBCS, 1, b"") + link.encode(link.T_GBCS, 2, big))
    assert [g[3] for g in got] == [1, 2]
    assert got[1][4] == big


def test_oversize_payload_refused_by_encoder():
    raises(ValueError, link.encode, link.T_GBCS, 1, bytes(link.MAX_PAYLOAD + 1))


def test_noise_before_and_between_frames():
    rx = link.Receiver()
    f = link.encode(link.T_DIAG, 3, b"abc")
    noise = b"\x00\xffGGxG\x4d\x47"  # includes false starts of the magic
    got = feed_all(rx, noise + f + b"GM" + noise + f)
    frames = [g for g in got if g[0] == "frame"]
    assert len(frames) == 2 and frames[0][4] == b"abc"


def test_crc_mismatch_naks_with_seq():
    rx = link.Receiver()
    f = bytearray(link.encode(link.T_GBCS, 9, b"hello"))
    f[10] ^= 1
    assert feed_all(rx, f) == [("nak", link.NAK_CRC, 9)]
    # and the next good frame still gets through
    assert feed_all(rx, link.encode(link.T_GBCS, 10, b"x"))[0][3] == 10


def test_lying_length_caught_by_header_check():
    rx = link.Receiver()
    f = bytearray(link.encode(link.T_GBCS, 4, b"hello"))
    f[6] += 3  # claims 8 bytes: the header check no longer matches
    got = feed_all(rx, f)
    assert got[0][:2] == ("nak", link.NAK_HEADER)


def test_oversize_length_with_valid_header_check():
    rx = link.Receiver()
    h = bytearray(b"GM\x01\x01\x05\x10\x01\x00")  # length 0x1001 = 4097
    h[7] = link.crc8(h, 7)
    assert feed_all(rx, h) == [("nak", link.NAK_OVERSIZE, 5)]
    assert rx.n == 0


def test_partial_frame_times_out():
    rx = link.Receiver()
    f = link.encode(link.T_GBCS, 6, b"hello")
    feed_all(rx, f[:10], now=1000)
    assert rx.expired(1000 + link.BYTE_TIMEOUT_MS - 1) is None
    assert rx.expired(1000 + link.BYTE_TIMEOUT_MS + 1) == ("nak", link.NAK_TIMEOUT, 6)
    assert rx.n == 0
    assert feed_all(rx, f)[0][3] == 6


def test_want_never_reads_past_a_frame():
    rx = link.Receiver()
    f = link.encode(link.T_GBCS, 1, b"12345")
    assert rx.want() == 1
    feed_all(rx, f[:2])
    assert rx.want() == link.HEADER - 2
    feed_all(rx, f[2:link.HEADER])
    assert rx.want() == len(f) - link.HEADER
    assert len(feed_all(rx, f[link.HEADER:])) == 1
    assert rx.want() == 1


def test_software_crc32_matches_binascii():
    import binascii
    import crcsoft
    for data in (b"", b"123456789", bytes(range(256)) * 3):
        assert crcsoft.crc32(data) == binascii.crc32(data)
    assert crcsoft.crc32(b"123456789") == 0xCBF43926  # the CRC-32 check value


def test_long_frame_gets_its_own_buffer_then_the_small_one_again():
    rx = link.Receiver()
    small = rx.buf
    big = bytes(range(256)) * 4 + b"tail"
    f = link.encode(link.T_DIAG, 3, big)
    got = feed_all(rx, f[:link.HEADER + 10])
    assert got == [] and rx.buf is not small and len(rx.buf) == len(f)
    got = feed_all(rx, f[link.HEADER + 10:] + link.encode(link.T_GBCS, 4, b"x"))
    assert got == [("frame", link.T_DIAG, link.FINAL, 3, big),
                   ("frame", link.T_GBCS, link.FINAL, 4, b"x")]
    assert rx.buf is small
    # a long frame abandoned half way gives its buffer back too
    feed_all(rx, f[:link.HEADER + 10], now=0)
    assert rx.expired(link.BYTE_TIMEOUT_MS + 1) == ("nak", link.NAK_TIMEOUT, 3)
    assert rx.buf is small


def test_long_frame_without_room_is_read_to_its_end_and_refused():
    rx = link.Receiver()
    saved = link._room
    link._room = lambda n: None   # the heap has no such piece
    try:
        f = link.encode(link.T_DIAG, 8, bytes(1000))
        got = feed_all(rx, f + link.encode(link.T_GBCS, 9, b"ok"))
    finally:
        link._room = saved
    # the long frame's bytes are all consumed (none taken for a new frame), then NAKed
    assert got == [("nak", link.NAK_BUSY, 8), ("frame", link.T_GBCS, link.FINAL, 9, b"ok")]
    assert rx.buf is rx.small and rx.n == 0


def test_reason_texts_are_fields_of_one_string():
    # NAK reason n is field n-1; the texts the host shows must stay these
    want = ("header check failed", "frame longer than 4096 bytes", "CRC mismatch",
            "frame not completed in time", "unknown frame type", "refused", "internal error")
    assert tuple(link.field(link.REASONS, i) for i in range(len(want))) == want
    assert link.field("only", 0) == "only"
    assert link.field("a||c", 1) == "" and link.field("a||c", 2) == "c"
    raises(ValueError, link.field, "a|b", 2)


def test_head_is_the_frame_header():
    f = link.encode(link.T_DIAG, 9, b"payload")
    assert bytes(link.head(link.T_DIAG, 9, 7)) == bytes(f[:link.HEADER])
    assert bytes(link.head(link.T_DIAG, 9, 7, 0)) != bytes(f[:link.HEADER])   # not FINAL
    raises(ValueError, link.head, link.T_DIAG, 1, link.MAX_PAYLOAD + 1)


def test_error_texts_of_the_codecs():
    import dlms
    import gbz
    import meter
    for fn, content, text in ((gbz.components, b"\x00", "not GBZ content"),
                              (dlms.request, b"\x00", "not a DLMS Access-Request")):
        try:
            fn(memoryview(content))
        except meter.FormatError as e:
            assert str(e) == text, str(e)
        else:
            assert False, "no FormatError"
