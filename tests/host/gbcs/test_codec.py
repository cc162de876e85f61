"""gbmeter.gbcs.codec: GBCS wire formats. Own vectors are assembled here field by field
from the NOTES.md tables with `struct`, independently of the construct layouts; the
RTDS tests read ../shared at run time and skip when it is absent."""

import struct

import pytest
import rtdsref

from gbmeter.gbcs import codec
from gbmeter import paths

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS reference data) is absent")

SUPPLIER = bytes.fromhex("0211223344556677")
METER = bytes.fromhex("0a0b0c0d0e0f1011")


def rtds_files():
    if SHARED is None:
        return []
    return sorted((SHARED / "gbcs" / "rtds").glob("*/*.HEX"))


def rtds(path):
    return bytes.fromhex(path.read_text().strip())


def der_len(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82]) + n.to_bytes(2, "big")


def hand_apdu(cra, counter, orig, recip, code, content, sig=None, date_time=b""):
    """NOTES 2.1, byte by byte."""
    out = (b"\xdf\x09" + bytes([cra]) + counter.to_bytes(8, "big") + b"\x08" + orig
           + b"\x08" + recip + bytes([len(date_time)]) + date_time + b"\x02"
           + code.to_bytes(2, "big") + der_len(len(content)) + content)
    if sig is not None:
        out += bytes([len(sig)]) + sig
    return out


# --- General-Signing APDU --------------------------------------------------------

@pytest.mark.parametrize("size", [0, 1, 0x7F, 0x80, 0xFF, 0x100, 0x1234])
@pytest.mark.parametrize("sig", [None, b"", bytes(range(64))])
def test_build_apdu_matches_notes_layout(size, sig):
    content = bytes((i * 7) & 0xFF for i in range(size))
    built = codec.build_apdu(1, 0x0102030405060708, SUPPLIER, METER, 0x0F01, content, sig)
    assert built == hand_apdu(1, 0x0102030405060708, SUPPLIER, METER, 0x0F01, content, sig)
    p = codec.parse_apdu(built)
    assert p["cra"] == 1 and p["counter"] == 0x0102030405060708
    assert p["originator"] == SUPPLIER and p["recipient"] == METER
    assert p["message_code"] == 0x0F01 and p["content"] == content
    assert p["signature"] == (sig or None)
    assert p["signature_length"] == (None if sig is None else len(sig))
    end = len(built) - (0 if sig is None else 1 + len(sig))
    assert p["signed_part"] == built[1:end]
    assert p["precommand"] == built[:end]


def test_apdu_date_time_and_cra_names():
    dt = bytes(range(12))
    built = codec.build_apdu("response", 5, METER, SUPPLIER, 0x006E, b"\x01\x09", date_time=dt)
    assert built == hand_apdu(2, 5, METER, SUPPLIER, 0x006E, b"\x01\x09", date_time=dt)
    assert codec.parse_apdu(built)["date_time"] == dt


def test_build_apdu_rejects_bad_arguments():
    with pytest.raises(ValueError):
        codec.build_apdu(1, 1, SUPPLIER[:7], METER, 1, b"")
    with pytest.raises(ValueError):
        codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"", signature=bytes(63))
    with pytest.raises(ValueError):
        codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"", date_time=bytes(5))


def test_der_length_forms():
    assert codec.der_length(0x7F) == b"\x7f"
    assert codec.der_length(0x80) == b"\x81\x80"
    assert codec.der_length(0xFF) == b"\x81\xff"
    assert codec.der_length(0x100) == b"\x82\x01\x00"
    with pytest.raises(ValueError):
        codec.der_length(0x10000)


def test_bad_length_form_names_offset():
    good = codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"abc")
    bad = good[:33] + b"\x83" + good[34:]       # content length byte at offset 33
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_apdu(bad)
    assert e.value.offset == 33 and "content" in str(e.value)


def test_signature_length_must_be_00_or_40():
    good = codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"abc", bytes(64))
    bad = good[:37] + b"\x20" + bytes(32)
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_apdu(bad)
    assert e.value.offset == 37 and "signature" in str(e.value)


def test_wrong_tag_and_const_fields():
    good = codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"abc")
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_message(b"\x00" + good[1:])
    assert e.value.offset == 0
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_apdu(good[:11] + b"\x07" + good[12:])     # originator length
    assert e.value.offset == 11 and "originator" in e.value.field


def test_trailing_bytes_rejected():
    good = codec.build_apdu(1, 1, SUPPLIER, METER, 1, b"abc", bytes(64))
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_apdu(good + b"\x00")
    assert "unexpected" in str(e.value)


# --- MAC header -------------------------------------------------------------------

def test_message_with_mac_header_layout():
    apdu = codec.build_apdu(1, 9, SUPPLIER, METER, 0x006E, bytes(200), bytes(64))
    mac = bytes(range(12))
    msg = codec.build_message(apdu, mac)
    length = 5 + len(apdu) + 12
    assert msg == b"\xdd" + bytes(6) + der_len(length) + b"\x11" + bytes(4) + apdu + mac
    p = codec.parse_message(msg)
    assert p["apdu"] == apdu and p["mac"] == mac and p["mac_header"] == {"length": length}
    assert p["counter"] == 9 and p["content"] == bytes(200)
    # content offset counts from the start of the whole message
    assert msg[p["content_offset"]:p["content_offset"] + 200] == bytes(200)


def test_every_truncation_is_a_decode_error_with_offset():
    apdu = codec.build_apdu(1, 9, SUPPLIER, METER, 0x006E, bytes(40), bytes(64))
    msg = codec.build_message(apdu, bytes(12))
    for n in range(len(msg)):
        with pytest.raises(codec.DecodeError) as e:
            codec.parse_message(msg[:n])
        assert 0 <= e.value.offset <= max(n, 7), (n, str(e.value))
        assert "at byte" in str(e.value)
    for n in range(len(apdu)):
        if n == len(apdu) - 65:
            continue            # a PRECOMMAND: ends after the content, legitimately
        with pytest.raises(codec.DecodeError):
            codec.parse_message(apdu[:n])


def test_mac_header_length_mismatch():
    apdu = codec.build_apdu(1, 9, SUPPLIER, METER, 1, b"x", bytes(64))
    msg = codec.build_message(apdu, bytes(12))
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_message(msg + b"\x00")
    assert e.value.offset == 7 and "mac_header.length" in str(e.value)


# --- GBZ / ZCL ---------------------------------------------------------------------

def hand_change_debt(event, amount, method, atype, start, coll, freq, rec, pct, label=b""):
    return (struct.pack("<I", event) + bytes([len(label)]) + label + struct.pack(
        "<iBBIHBiH", amount, method, atype, start, coll, freq, rec, pct))


def test_change_debt_layout():
    got = codec.change_debt(issuer_event_id=0x11223344, debt_amount=-5, debt_recovery_method=1,
                            debt_amount_type=4, recovery_start_time=7,
                            recovery_collection_time=90, recovery_frequency=1,
                            recovery_amount=1234, recovery_balance_percentage=55,
                            debt_label=b"AB")
    assert got == hand_change_debt(0x11223344, -5, 1, 4, 7, 90, 1, 1234, 55, b"AB")
    assert len(codec.change_debt(1, 0, 0, 0)) == 24


def test_build_gbz_and_parse():
    cd = codec.change_debt(473385600, 0, 0, 2)
    ca = codec.credit_adjustment(1, 2, 1, -300)
    se = codec.select_emergency_credit(3, 0)
    gbz = codec.build_gbz([(0x0705, 0x02, cd), (0x0705, 0x05, ca), (0x0705, 0x00, se)])
    expect = b"\x01\x09\x03"
    for i, (cmd, pl) in enumerate([(2, cd), (5, ca), (0, se)]):
        frame = bytes([0x01, i, cmd]) + pl
        expect += bytes([1 if i == 2 else 0]) + b"\x07\x05" + struct.pack(">H", len(frame)) + frame
    assert gbz == expect
    assert ca == struct.pack("<IIBi", 1, 2, 1, -300)
    assert se == struct.pack("<IB", 3, 0)
    d = codec.decode_content(0x0F01, gbz)
    assert d["format"] == "gbz"
    c0, c1, c2 = d["components"]
    assert c0["command"] == "change_debt" and c0["change_debt"]["debt_amount_type"] == 2
    assert c0["change_debt"]["debt_amount"] == 0 and c0["sequence_number"] == 0
    assert c1["credit_adjustment"]["credit_adjustment_value"] == -300
    assert c2["command"] == "select_available_emergency_credit" and c2["control"] == 1


def test_default_response_gbz():
    gbz = codec.build_gbz([(0x0705, 0x0B, codec.default_response(0x02, 0x00), 0),
                           (0x0705, 0x0B, codec.default_response(0xFF, 0x01), 1)],
                          frame_control=codec.ZCL_FC_RESPONSE)
    assert gbz == bytes.fromhex("010902" "00070500050800" "0B0200" "01070500050801" "0BFF01")
    d = codec.parse_gbz(gbz)
    assert [c["default_response"]["status_name"] for c in d["components"]] == ["SUCCESS",
                                                                               "FAILURE"]


def test_unknown_zcl_command_is_shown_raw():
    gbz = codec.build_gbz([(0x0700, 0x42, b"\x01\x02")])
    comp = codec.parse_gbz(gbz)["components"][0]
    assert comp["payload_raw"] == b"\x01\x02" and "command" not in comp


def test_gbz_truncations_name_component():
    gbz = codec.build_gbz([(0x0705, 2, codec.change_debt(1, 0, 0, 0))] * 2)
    for n in range(2, len(gbz)):
        with pytest.raises(codec.DecodeError) as e:
            codec.parse_gbz(gbz[:n], base=100)
        assert e.value.offset >= 100
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_gbz(gbz[:40], base=100)
    assert "components[1]" in str(e.value)


def test_change_debt_payload_with_wrong_size_is_an_error():
    gbz = codec.build_gbz([(0x0705, 2, codec.change_debt(1, 0, 0, 0) + b"\x00")])
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_gbz(gbz)
    assert "unexpected" in str(e.value)


# --- A-XDR / DLMS -------------------------------------------------------------------

@pytest.mark.parametrize("name,value,encoded", [
    ("null-data", None, "00"),
    ("boolean", True, "0301"),
    ("double-long", -2, "05FFFFFFFE"),
    ("double-long-unsigned", 86400, "0600015180"),
    ("octet-string", b"\x01\x02", "09020102"),
    ("integer", -1, "0FFF"),
    ("long", 3, "100003"),
    ("unsigned", 200, "11C8"),
    ("long-unsigned", 1000, "1203E8"),
    ("enum", 7, "1607"),
])
def test_axdr_scalars(name, value, encoded):
    assert codec.axdr(name, value).hex().upper() == encoded
    node = codec.axdr_decode(bytes.fromhex(encoded))
    assert node == {"type": name, "value": value}
    assert codec.axdr_encode(node) == bytes.fromhex(encoded)


def test_axdr_nested_and_long_forms():
    big = codec.axdr("octet-string", bytes(300))
    assert big[:4] == b"\x09\x82\x01\x2c"
    s = codec.axdr("structure", [codec.axdr("integer", 0),
                                 {"type": "array", "value": [{"type": "long", "value": 3}]}])
    assert s == bytes.fromhex("02020F00010110 0003".replace(" ", ""))
    assert codec.axdr_encode(codec.axdr_decode(s)) == s


def test_axdr_errors():
    with pytest.raises(ValueError):
        codec.axdr("integer", 300)
    with pytest.raises(ValueError):
        codec.axdr("float128", 1)
    with pytest.raises(codec.DecodeError) as e:
        codec.axdr_decode(bytes.fromhex("0202 0F00 FE".replace(" ", "")), base=10)
    assert e.value.offset == 14 and "FE" in str(e.value)
    with pytest.raises(codec.DecodeError):
        codec.axdr_decode(bytes.fromhex("0500"))


def test_access_request_layout():
    t1 = codec.obis("0-0:19.20.1.255")
    assert t1 == bytes([0, 0, 19, 20, 1, 255])
    req = codec.build_access_request(
        0x200003E9, [("action", 113, t1, 5), ("get", 112, "0-0:19.10.0.255", 2)],
        [codec.axdr("double-long", 0), codec.axdr("null-data")])
    expect = (b"\xd9" + struct.pack(">I", 0x200003E9) + b"\x00" + b"\x02"
              + b"\x03\x00\x71" + t1 + b"\x05" + b"\x01\x00\x70" + bytes([0, 0, 19, 10, 0, 255])
              + b"\x02" + b"\x02" + b"\x05\x00\x00\x00\x00" + b"\x00")
    assert req == expect
    d = codec.decode_content(0x0F00, req)
    assert d["format"] == "dlms-access-request"
    assert d["specs"][0]["member"] == "set_total_amount_remaining"
    assert d["specs"][0]["object"] == "time debt 1 charge"
    assert d["data"][0] == {"type": "double-long", "value": 0}
    with pytest.raises(ValueError):
        codec.build_access_request(1, [("action", 113, t1, 5)], [])


def test_access_response_layout():
    resp = codec.build_access_response(0x200003E9, [codec.axdr("null-data")] * 2,
                                       [("action", 0x00), ("action", 0xFA)])
    assert resp == bytes.fromhex("DA200003E9000002000002030003FA")
    d = codec.decode_content(0x0F00, resp)
    assert [r["result_name"] for r in d["results"]] == ["success", "other-reason"]


def test_unknown_content_is_raw():
    d = codec.decode_content(0x0F00, b"\x77\x01")
    assert d == {"format": "unknown", "raw": b"\x77\x01"}


def test_critical_alert_content():
    content = b"\x01\x09\x00\x8f\x3d" + struct.pack(">I", 86400)
    for code in (codec.MSG_ALERT_CRITICAL, codec.MSG_ALERT_NON_CRITICAL):
        d = codec.decode_content(code, content)
        assert d["format"] == "gbz-alert"
        assert d["alert_code"] == "8F3D" and d["date_time_utc"] == "2000-01-02T00:00:00Z"
    # the same bytes in a Response are no alert, and no GBZ either (0 components)
    with pytest.raises(codec.DecodeError):
        codec.decode_content(0x0075, content)


def test_parse_hex():
    assert codec.parse_hex(" 0xdf 09\n") == b"\xdf\x09"
    with pytest.raises(codec.DecodeError) as e:
        codec.parse_hex("DF0Z")
    assert "character 3" in str(e.value)
    with pytest.raises(codec.DecodeError):
        codec.parse_hex("DF0")
    with pytest.raises(codec.DecodeError):
        codec.parse_hex("   ")


def test_load_usecases_is_the_firmware_table():
    uc = codec.load_usecases()
    assert uc.find(0x006E)[1] == "GCS04"
    assert codec.use_case_name(0x001E) == "ECS07"
    assert codec.use_case_name(0x1001) == "non-critical alert"
    assert codec.use_case_name(0x7777) is None


# --- RTDS ----------------------------------------------------------------------------

@needs_shared
def test_rtds_every_file_parses_and_content_decodes():
    """Every RTDS file, implemented use case or not, parses at the GBCS layer with no
    exception: its wrapping matches its kind, its content decodes as far as the codecs
    know it (unknown payloads come back as raw bytes), and a Response mirrors its
    Command. (Signatures and MACs: tests/host/gbcs/test_crypto.py.)"""
    refs = rtdsref.messages()
    assert refs
    for r in refs:
        m = r.msg
        d = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
        assert d["format"] != "unknown", r.name
        critical = m["signature_length"] == 64
        if r.kind == "COMMAND":
            assert m["mac"] is not None and m["cra"] == 1, r.name
        if r.kind == "PRECOMMAND":
            assert m["signature_length"] is None and m["mac"] is None, r.name
        if r.kind in ("RESPONSE", "ALERT"):
            assert m["cra"] == (2 if r.kind == "RESPONSE" else 3), r.name
            # critical: signed, no MAC header; non-critical: MAC'd, signature length 00
            assert (m["mac"] is None) == critical, r.name
            assert critical or m["signature_length"] == 0, r.name
        if r.kind == "RESPONSE":
            cmd = rtdsref.sibling(r, "COMMAND").msg
            assert m["counter"] == cmd["counter"] and m["message_code"] == cmd["message_code"]
            assert m["originator"] == cmd["recipient"] and m["recipient"] == cmd["originator"]
            assert (cmd["signature_length"] == 64) == critical, r.name


@needs_shared
def test_rtds_precommand_content_rebuilds_byte_for_byte():
    """The PRECOMMANDs of the use cases the project implements, rebuilt from their
    decoded fields with the codec's builders."""
    builders = {"change_debt": codec.change_debt, "credit_adjustment": codec.credit_adjustment,
                "select_available_emergency_credit": codec.select_emergency_credit,
                "change_payment_mode": codec.change_payment_mode}
    checked = []
    for r in rtdsref.messages():
        if r.kind != "PRECOMMAND" or not rtdsref.implemented(r):
            continue
        m = r.msg
        d = codec.decode_content(m["message_code"], m["content"])
        if d["format"] == "gbz":
            comps = []
            for c in d["components"]:
                fields = {k: v for k, v in c[c["command"]].items() if not k.endswith("_name")}
                comps.append((c["cluster_id"], c["command_id"], builders[c["command"]](**fields)))
            content = codec.build_gbz(comps)
        else:
            specs = [(s["kind"], s["class_id"], codec.obis(s["obis"]), s["attribute_or_method"])
                     for s in d["specs"]]
            content = codec.build_access_request(d["invoke_id"], specs, d["data"])
        assert content == m["content"], r.name
        rebuilt = codec.build_apdu(m["cra"], m["counter"], m["originator"], m["recipient"],
                                   m["message_code"], content, None, m["date_time"])
        assert rebuilt == r.data, r.name
        checked.append(r.name)
    assert checked


@needs_shared
def test_rtds_responses_rebuild():
    """The Responses of the implemented debt, balance and emergency credit use cases
    (Default Responses and Access-Responses) rebuilt from their decoded fields."""
    checked = []
    for r in rtdsref.messages():
        if r.kind != "RESPONSE" or not rtdsref.implemented(r):
            continue
        m = r.msg
        d = codec.decode_content(m["message_code"], m["content"])
        if d["format"] == "gbz":
            if any("default_response" not in c for c in d["components"]):
                continue        # another ZCL response (e.g. Change Payment Mode Response)
            comps = [(c["cluster_id"], c["command_id"],
                      codec.default_response(c["default_response"]["command_id"],
                                             c["default_response"]["status"]),
                      c["sequence_number"]) for c in d["components"]]
            content = codec.build_gbz(comps, frame_control=codec.ZCL_FC_RESPONSE)
        else:
            content = codec.build_access_response(
                d["invoke_id"], d["data"], [(r_["kind"], r_["result"]) for r_ in d["results"]],
                d["date_time"])
        assert content == m["content"], r.name
        checked.append(r.name)
    assert checked


@needs_shared
def test_rtds_alert_layouts_follow_the_device():
    """NOTES 2.3 against the four NA_G* files: the content follows the device (GSME:
    GBZ; ESME: DLMS data-notification), the wrapping the category."""
    seen = set()
    for r in rtdsref.messages():
        if r.kind != "ALERT":
            continue
        m = r.msg
        d = codec.decode_content(m["message_code"], m["content"])
        device = "gsme" if "ZigBee" in r.use_case else "esme"
        assert d["format"] == ("gbz-alert" if device == "gsme" else "dlms-data-notification")
        assert d["alert_code"] == r.name.split("_")[2], r.name
        assert codec.alert_code(m["message_code"], m["content"]) == int(d["alert_code"], 16)
        seen.add((device, m["message_code"]))
    assert seen


@needs_shared
def test_rtds_truncations_raise_decode_error_only():
    for f in rtds_files():
        data = rtds(f)
        for n in range(0, len(data), 3):
            try:
                m = codec.parse_message(data[:n])
            except codec.DecodeError as e:
                assert 0 <= e.offset <= len(data)
                continue
            # only a Command cut exactly after its content parses (as a PRECOMMAND)
            assert m["signature_length"] is None, (f.name, n)
