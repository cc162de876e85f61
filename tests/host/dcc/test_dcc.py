"""gbmeter.dcc: the transform (Service Request -> PRECOMMAND), anomaly detection
with its SQLite quarantine, and Parse and Correlate.

Own vectors are assembled here byte by byte from the NOTES.md tables with
`struct`, independently of gbmeter.gbcs.codec; the RTDS tests read ../shared at run time
and skip when it is absent."""

import datetime
import json
import sqlite3
import struct

import pytest
import rtdsref

from gbmeter import dcc, paths
from gbmeter.dcc import duis, srxml
from gbmeter.gbcs import codec, crypto, keys
from gbmeter.gbcs import pki as testpki
from gbmeter.errors import UserError

SHARED = paths.shared()
needs_shared = pytest.mark.skipif(
    SHARED is None, reason="../shared/gbcs (RTDS and DUIS reference data) is absent")

SUP = bytes.fromhex("0211223344556677")
SUP2 = bytes.fromhex("0211223344556688")
METER = bytes.fromhex("0a0b0c0d0e0f1011")
NOW = "2021-03-04T05:06:07Z"
T = 668149567                      # NOW in seconds since 2000-01-01
UTC = datetime.timezone.utc
OBIS_CHARGE = {"time1": bytes([0, 0, 19, 20, 1, 255]), "time2": bytes([0, 0, 19, 20, 2, 255]),
               "payment": bytes([0, 0, 19, 20, 3, 255])}


def at(seconds):
    return datetime.datetime(2021, 3, 4, tzinfo=UTC) + datetime.timedelta(seconds=seconds)


def req(register=None, device="gsme", counter=4097, originator=SUP, target=METER):
    text = srxml.reset_debt_xml(originator, target, counter, register)
    return duis.parse_request(text, device=device)


def hand_apdu(counter, orig, recip, code, content):
    """NOTES 2.1, a PRECOMMAND (content below 128 bytes here)."""
    assert len(content) < 0x80
    return (b"\xdf\x09\x01" + counter.to_bytes(8, "big") + b"\x08" + orig + b"\x08" + recip
            + b"\x00" + b"\x02" + code.to_bytes(2, "big") + bytes([len(content)]) + content)


def hand_change_debt(issuer, amount, method, amount_type, start=0, coll=0, freq=0, rate=0,
                     pct=0):
    return struct.pack("<IBiBBIHBiH", issuer, 0, amount, method, amount_type, start, coll,
                       freq, rate, pct)


def hand_gbz(payloads):
    """payloads: (command id, payload); cluster 0705, frame control 01."""
    out = b"\x01\x09" + bytes([len(payloads)])
    for i, (cmd, p) in enumerate(payloads):
        frame = bytes([0x01, i, cmd]) + p
        out += bytes([1 if i == len(payloads) - 1 else 0]) + b"\x07\x05" + \
            struct.pack(">H", len(frame)) + frame
    return out


def hand_access_request(counter, specs):
    """specs: (kind, class, obis, id, encoded data)."""
    out = b"\xd9" + struct.pack(">I", 0x20000000 | counter) + b"\x00" + bytes([len(specs)])
    for kind, cls, obis, n, _ in specs:
        out += bytes([kind]) + struct.pack(">H", cls) + obis + bytes([n])
    out += bytes([len(specs)])
    for *_, data in specs:
        out += data
    return out


# --- transform: own vectors -----------------------------------------------------------

@pytest.mark.parametrize("register,number,amount_type,method", [
    ("time1", 1, 0, 0), ("time2", 2, 2, 0), ("payment", 3, 4, 1)])
def test_reset_precommands(register, number, amount_type, method):
    esme = dcc.transform(req(register, "esme"), NOW)
    content = hand_access_request(4097, [(3, 113, bytes([0, 0, 19, 20, number, 255]), 5,
                                          b"\x05\x00\x00\x00\x00")])
    assert esme == hand_apdu(4097, SUP, METER, 0x0F00, content)
    gsme = dcc.transform(req(register, "gsme"), NOW)
    content = hand_gbz([(2, hand_change_debt(T, 0, method, amount_type))])
    assert gsme == hand_apdu(4097, SUP, METER, 0x0F01, content)


def test_invoke_id_follows_counter_low_bits():
    pre = dcc.transform(req("time1", "esme", counter=0x123456789), NOW)
    i = pre.index(b"\xd9")
    assert pre[i + 1:i + 5] == bytes.fromhex("20456789")


def test_update_debt_gsme_own_vector():
    text = srxml.update_debt_xml(SUP, METER, 12, "gsme", 1000, -200, 3000, 4000,
                                {"rate": 11, "period": "HOURLY"}, {"rate": 22, "period": "DAILY"})
    pre = dcc.transform(duis.parse_request(text, device="gsme"), NOW)
    content = hand_gbz([
        (2, hand_change_debt(T, 1000, 0, 1, freq=0, rate=11)),
        (2, hand_change_debt(T, -200, 0, 3, freq=1, rate=22)),
        (2, hand_change_debt(T, 3000, 1, 5, freq=1, pct=4000)),
    ])
    assert pre[:33] == hand_apdu(12, SUP, METER, 0x006E, b"")[:33]
    assert pre[33] == 0x63 and pre[34:] == content


def test_update_debt_esme_own_vector():
    text = srxml.update_debt_xml(SUP, METER, 7, "esme", 100, 200, 300, 400,
                                {"rate": 9, "period": "HOURLY", "price_scale": -3},
                                {"rate": -4, "period": "DAILY", "price_scale": 2})
    pre = dcc.transform(duis.parse_request(text), NOW)

    def unit_charge(rate, scale):
        return (b"\x02\x03" + b"\x02\x02\x0f\x00\x0f" + struct.pack(">b", scale)
                + b"\x02\x03\x12\x00\x00\x09\x06" + bytes(6) + b"\x0f\x00"
                + b"\x01\x01\x02\x02\x09\x00\x10" + struct.pack(">h", rate))
    t1, t2, pay = OBIS_CHARGE["time1"], OBIS_CHARGE["time2"], OBIS_CHARGE["payment"]
    content = hand_access_request(7, [
        (2, 113, t1, 6, unit_charge(9, -3)), (2, 113, t2, 6, unit_charge(-4, 2)),
        (2, 113, pay, 13, b"\x12" + struct.pack(">H", 400)),
        (2, 113, t1, 8, b"\x06" + struct.pack(">I", 3600)),
        (2, 113, t2, 8, b"\x06" + struct.pack(">I", 86400)),
        (3, 113, t1, 2, b"\x0f\x00"), (3, 113, t2, 2, b"\x0f\x00"),
        (3, 113, pay, 4, b"\x05" + struct.pack(">i", 300)),
        (3, 113, t1, 4, b"\x05" + struct.pack(">i", 100)),
        (3, 113, t2, 4, b"\x05" + struct.pack(">i", 200)),
    ])
    head = hand_apdu(7, SUP, METER, 0x001E, b"")[:-1]
    assert pre == head + b"\x81" + bytes([len(content)]) + content


def test_meter_balance_and_emergency_credit_own_vectors():
    def sr(ref, body, device):
        text = f"""<sr:Request xmlns:sr="{duis.NS}"><sr:Header>
            <sr:RequestID>02-11-22-33-44-55-66-77:0A-0B-0C-0D-0E-0F-10-11:9</sr:RequestID>
            <sr:ServiceReference>{ref}</sr:ServiceReference>
            <sr:ServiceReferenceVariant>{ref}</sr:ServiceReferenceVariant></sr:Header>
            <sr:Body>{body}</sr:Body></sr:Request>"""
        return dcc.transform(duis.parse_request(text, device=device), NOW)
    mb = "<sr:UpdateMeterBalance><sr:{0}><sr:ResetMeterBalance/></sr:{0}></sr:UpdateMeterBalance>"
    credit = [bytes([0, 0, 19, 10, n, 255]) for n in (0, 1, 2)]
    assert sr("1.5", mb.format("CreditMode"), "esme") == hand_apdu(9, SUP, METER, 0x00B3,
        hand_access_request(9, [(3, 112, o, 2, b"\x05" + bytes(4)) for o in credit]))
    assert sr("1.5", mb.format("PrepaymentMode"), "gsme") == hand_apdu(9, SUP, METER, 0x00B4,
        hand_gbz([(5, struct.pack("<IIBi", T, 0, 1, 0))]))
    ec = "<sr:ActivateEmergencyCredit/>"
    assert sr("2.5", ec, "esme") == hand_apdu(9, SUP, METER, 0x0020,
        hand_access_request(9, [(3, 112, credit[1], 3, b"\x0f\x00")]))
    assert sr("2.5", ec, "gsme") == hand_apdu(9, SUP, METER, 0x0070,
        hand_gbz([(0, struct.pack("<IB", 0, 0))]))


def test_now_parsing():
    assert dcc.gbcs_seconds("2000-01-01T00:00:00Z") == 0
    assert dcc.gbcs_seconds("2021-03-04T06:06:07+01:00") == T
    assert dcc.gbcs_seconds("2021-03-04T05:06:07") == T        # no offset: UTC
    with pytest.raises(UserError, match="--now: 'yesterday' is not an ISO 8601"):
        dcc.parse_now("yesterday")
    with pytest.raises(UserError, match="outside"):
        dcc.transform(req("time1"), "1999-12-31T23:59:59Z")


@needs_shared
def test_rtds_precommands_from_duis():
    """Every DUIS request the project supports transforms into the RTDS PRECOMMAND
    made from it, byte for byte (a non-critical one: the COMMAND's APDU up to its
    content, as it has no PRECOMMAND file); the others are refused as not supported."""
    checked = []
    for f in rtdsref.duis_requests():
        try:
            req = duis.read_request(f)
        except UserError as e:
            assert "not supported" in str(e), f.name
            continue
        got = dcc.transform(req, "2015-01-01T00:00:00Z")
        pre = rtdsref.rtds_for(f, "PRECOMMAND")
        if pre is not None:
            want = bytes.fromhex(pre.read_text().strip())
        else:
            cmd = rtdsref.rtds_for(f, "COMMAND")
            assert cmd is not None, f"no RTDS message for {f.name}"
            want = codec.parse_message(bytes.fromhex(cmd.read_text().strip()))["precommand"]
        assert got.hex().upper() == want.hex().upper(), f.name
        checked.append(f.name)
    assert checked


# --- anomaly detection ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def signer():
    from cryptography.hazmat.primitives.asymmetric import ec
    return ec.generate_private_key(ec.SECP256R1())


def signed(signer, pre):
    return crypto.sign_precommand(signer, pre)


def with_content(pre, content):
    """The same header with other content (length byte below 80 here)."""
    return pre[:33] + bytes([len(content)]) + content


def write_config(d, thresholds, **limits):
    d.mkdir(parents=True, exist_ok=True)
    cfg = {"thresholds": thresholds}
    if limits:
        cfg["gcs04_limits"] = limits
    (d / "adt.json").write_text(json.dumps(cfg))


def test_inspect_passes_a_correct_gsme_reset(tmp_path, signer):
    for reg in duis.REGISTERS:
        v = dcc.Dcc(tmp_path).check(signed(signer, dcc.transform(req(reg), NOW)), NOW)
        assert v.release and v.verdict == "pass" and v.inspection == "passed", v.reasons
        assert v.signature == "present" and v.use_case == "GCS04a"
    assert dcc.Dcc(tmp_path).quarantined() == []
    # the default configuration was written and counts were kept
    assert json.loads((tmp_path / "adt.json").read_text())["thresholds"]
    with dcc.Dcc(tmp_path).store(read_only=True) as st:
        assert len(st.volume()) == 3


@pytest.mark.parametrize("payload,words", [
    (hand_change_debt(T, 1, 0, 0), "debt amount is 1, a reset must set 0"),
    (hand_change_debt(T, 0, 0, 1), "debt amount type is 1 (time debt 1 incremental)"),
    (hand_change_debt(T, 0, 1, 5), "absolute type"),
    (hand_change_debt(T, -7, 1, 4), "debt amount is -7"),
])
def test_inspect_quarantines_bad_gsme_reset(tmp_path, signer, payload, words):
    pre = with_content(dcc.transform(req("time1"), NOW), hand_gbz([(2, payload)]))
    spc = signed(signer, pre)
    v = dcc.Dcc(tmp_path).check(spc, NOW)
    assert not v.release and v.check == "inspection" and v.inspection == "failed"
    assert any(words in r for r in v.reasons), v.reasons
    rows = dcc.Dcc(tmp_path).quarantined()
    assert len(rows) == 1 and rows[0]["hex"] == spc.hex().upper()
    assert rows[0]["use_case"] == "GCS04a" and rows[0]["counter"] == 4097
    assert rows[0]["originator"] == SUP.hex().upper() and rows[0]["target"] == METER.hex().upper()
    assert words in rows[0]["reason"] and rows[0]["check"] == "inspection"
    notes = dcc.Dcc(tmp_path).notifications()
    assert len(notes) == 1 and notes[0]["quarantine_id"] == rows[0]["id"]
    with pytest.raises(UserError) as e:
        v.require_release()
    assert e.value.exit_code == 3
    # an inspected-and-quarantined Command is not counted for the thresholds
    with dcc.Dcc(tmp_path).store(read_only=True) as st:
        assert st.volume() == []


def test_inspect_gsme_reset_structure(tmp_path):
    pre = dcc.transform(req("time1"), NOW)
    two = with_content(pre, hand_gbz([(2, hand_change_debt(T, 0, 0, 0))] * 2))
    v = dcc.Dcc(tmp_path).check(two, NOW, dry_run=True)
    assert not v.release and "one Change Debt, this one 2" in v.reasons[0]
    other = with_content(pre, hand_gbz([(5, struct.pack("<IIBi", T, 0, 1, 0))]))
    assert "not a Prepayment Change Debt" in dcc.Dcc(tmp_path).check(
        other, NOW, dry_run=True).reasons[0]
    cut = with_content(pre, hand_gbz([(2, hand_change_debt(T, 0, 0, 0)[:-3])]))
    assert "does not decode" in dcc.Dcc(tmp_path).check(cut, NOW, dry_run=True).reasons[0]


def test_esme_reset_not_inspected(tmp_path):
    pre = dcc.transform(req("time1", "esme"), NOW)
    # even a set to 5 passes: the ESME Command is not inspected (NOTES 5)
    odd = pre.replace(b"\x05\x00\x00\x00\x00", b"\x05\x00\x00\x00\x05")
    v = dcc.Dcc(tmp_path).check(odd, NOW)
    assert v.release and v.inspection == "not inspected" and v.signature == "absent"


def test_gcs04_limits(tmp_path):
    write_config(tmp_path, [], max_debt_amount=5000, max_recovery_amount=100,
                 max_recovery_balance_percentage=5000)
    base = dcc.transform(req("time1"), NOW)
    code_gcs04 = base[:31] + b"\x00\x6e" + base[33:]

    def check(*payloads):
        return dcc.Dcc(tmp_path).check(with_content(code_gcs04, hand_gbz(
            [(2, p) for p in payloads])), NOW, dry_run=True)
    ok = check(hand_change_debt(T, 5000, 0, 1, rate=100), hand_change_debt(T, -5000, 1, 5,
                                                                              pct=5000))
    assert ok.release and ok.use_case == "GCS04" and ok.inspection == "passed"
    cases = [
        (hand_change_debt(T, 5001, 0, 1), "debt amount 5001 is beyond the limit +/-5000"),
        (hand_change_debt(T, -5001, 0, 1), "debt amount -5001"),
        (hand_change_debt(T, 1, 0, 1, rate=101), "recovery amount 101 is outside 0..100"),
        (hand_change_debt(T, 1, 0, 1, rate=-1), "recovery amount -1"),
        (hand_change_debt(T, 1, 1, 5, pct=5001), "recovery balance percentage 5001"),
        (hand_change_debt(T, 1, 0, 1, freq=7), "recovery frequency 7"),
    ]
    for payload, words in cases:
        v = check(hand_change_debt(T, 1, 0, 1), payload)
        assert not v.release, words
        assert words in "; ".join(v.reasons), v.reasons
        assert "component 2" in v.reasons[0]     # numbered from 1, as send results are


def test_unknown_message_code_quarantined(tmp_path):
    pre = dcc.transform(req("time1"), NOW)
    odd = pre[:31] + b"\x0e\xee" + pre[33:]
    v = dcc.Dcc(tmp_path).check(odd, NOW, dry_run=True)
    assert not v.release and "0EEE is not a use case" in v.reasons[0]


def test_not_a_signed_precommand(tmp_path):
    d = dcc.Dcc(tmp_path)
    pre = dcc.transform(req("time1"), NOW)
    for data, words in [(pre[:20], "at byte"), (b"\xdd" + pre, "COMMAND"),
                        (pre[:2] + b"\x02" + pre[3:], "not a Command"),
                        (pre + b"\x00", "signature length is 00"),
                        (pre + b"\x40" + bytes(10), "signature")]:
        with pytest.raises(UserError, match=words):
            d.check(data, NOW)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        dcc.Dcc(tmp_path / "file").check(pre, NOW)


def test_threshold_quarantines_past_the_limit_and_survives_restart(tmp_path, signer):
    write_config(tmp_path, [{"use_case": "GCS04a", "limit": 3, "window_seconds": 600}])
    made = [signed(signer, dcc.transform(req("time1", counter=100 + i), NOW)) for i in range(5)]
    verdicts = [dcc.Dcc(tmp_path).check(m, at(i)) for i, m in enumerate(made[:4])]
    assert [v.release for v in verdicts] == [True, True, True, False]
    assert verdicts[2].volume == {"count": 3, "limit": 3, "window_seconds": 600}
    q = verdicts[3]
    assert q.check == "threshold" and "3 GCS04a Commands" in q.reasons[0]
    assert "limit is 3" in q.reasons[0] and q.notification_id is not None
    # a quarantined GSME reset (inspection) also ends in the same log
    bad = signed(signer, with_content(made[4][:-65], hand_gbz([(2, hand_change_debt(T, 1, 0, 0))])))
    assert not dcc.Dcc(tmp_path).check(bad, at(5)).release

    # "restart": new objects on the same file see both entries and the counts
    rows = dcc.Dcc(tmp_path).quarantined()
    assert [(r["check"], r["counter"]) for r in rows] == [("threshold", 103), ("inspection", 104)]
    notes = dcc.Dcc(tmp_path).notifications()
    assert [n["kind"] for n in notes] == ["threshold", "inspection"]
    assert "counter 103 quarantined" in notes[0]["text"]
    again = dcc.Dcc(tmp_path).check(made[4], at(6))
    assert not again.release and again.check == "threshold"
    # a plain sqlite3 reader sees the same tables
    db = sqlite3.connect(tmp_path / "dcc.sqlite")
    assert db.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0] == 3
    assert db.execute("SELECT COUNT(*) FROM volume").fetchone()[0] == 3
    db.close()
    # the window slides: 600 s after the first, one place is free again
    assert dcc.Dcc(tmp_path).check(made[4], at(600)).release
    assert not dcc.Dcc(tmp_path).check(made[4], at(600)).release


def test_threshold_is_per_user_and_per_use_case(tmp_path, signer):
    write_config(tmp_path, [{"use_case": "*", "limit": 1, "window_seconds": 3600}])
    d = dcc.Dcc(tmp_path)
    assert d.check(dcc.transform(req("time1"), NOW), NOW).release
    assert not d.check(dcc.transform(req("time2"), NOW), NOW).release
    # another User, another use case: their own counts
    assert d.check(dcc.transform(req("time1", originator=SUP2), NOW), NOW).release
    assert d.check(dcc.transform(req("time1", device="esme"), NOW), NOW).release
    # no entry at all: no threshold
    write_config(tmp_path, [{"use_case": "ECS07", "limit": 0, "window_seconds": 60}])
    v = d.check(dcc.transform(req("time2"), NOW), NOW)
    assert v.release and v.volume is None


def test_dry_run_writes_nothing(tmp_path):
    d = dcc.Dcc(tmp_path / "dcc")
    pre = dcc.transform(req("time1"), NOW)
    assert d.check(pre, NOW, dry_run=True).release
    bad = with_content(pre, hand_gbz([(2, hand_change_debt(T, 1, 0, 0))]))
    v = d.check(bad, NOW, dry_run=True)
    assert not v.release and v.quarantine_id is None and v.dry_run
    assert not (tmp_path / "dcc").exists()
    # with counts on file, a dry run sees them but adds none
    write_config(tmp_path / "dcc", [{"use_case": "GCS04a", "limit": 1, "window_seconds": 60}])
    assert d.check(pre, NOW).release
    assert not d.check(pre, NOW, dry_run=True).release
    assert d.quarantined() == [] and len(d.store(read_only=True).volume()) == 1


def test_dcc_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv("GBMETER_DCC_DIR", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GBMETER_HOME", str(tmp_path / "home"))
    assert dcc.dcc_dir() == tmp_path / "home" / "dcc"    # one per user, not per folder
    monkeypatch.delenv("GBMETER_HOME")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert dcc.dcc_dir() == tmp_path / "xdg" / "gbmeter" / "dcc"
    monkeypatch.setenv("GBMETER_DCC_DIR", str(tmp_path / "env"))
    assert dcc.dcc_dir() == tmp_path / "env"
    assert dcc.dcc_dir(tmp_path / "arg") == tmp_path / "arg"


@pytest.mark.parametrize("cfg,words", [
    ("{", "not valid JSON"),
    ("[]", "expected a JSON object"),
    ('{"thresholds": [{"use_case": "GCS04a", "limit": -1, "window_seconds": 5}]}',
     "thresholds[0].limit"),
    ('{"thresholds": [{"use_case": "GCS04a", "limit": 1, "window_seconds": 0}]}',
     "window_seconds"),
    ('{"thresholds": [{"use_case": "GCS04a", "limit": 1}]}', "thresholds[0] needs"),
    ('{"thresholds": [], "gcs04_limits": {"max_debt": 1}}', "unknown key 'max_debt'"),
    ('{"thresholds": [], "extra": 1}', "unknown key 'extra'"),
    ('{"thresholds": [{"use_case": "*", "limit": 1, "window_seconds": 5},'
     ' {"use_case": "*", "limit": 2, "window_seconds": 5}]}', "listed twice"),
])
def test_bad_config(tmp_path, cfg, words):
    (tmp_path / "adt.json").write_text(cfg)
    with pytest.raises(UserError, match=words.replace("[", r"\[").replace("]", r"\]")):
        dcc.Dcc(tmp_path).check(dcc.transform(req("time1"), NOW), NOW)
    assert not (tmp_path / "dcc.sqlite").exists()


def test_not_a_database(tmp_path):
    (tmp_path / "dcc.sqlite").write_text("not sqlite at all " * 100)
    with pytest.raises(UserError, match="not a gbmeter DCC database"):
        dcc.Dcc(tmp_path).check(dcc.transform(req("time1"), NOW), NOW)


def test_inventory_file(tmp_path):
    d = dcc.Dcc(tmp_path)
    assert d.inventory()["00db1234567890a1"] == "gsme"
    (tmp_path / "inventory.json").write_text(json.dumps({"0A-0B-0C-0D-0E-0F-10-11": "esme"}))
    assert d.inventory()[METER.hex()] == "esme"
    (tmp_path / "inventory.json").write_text(json.dumps({"0a0b": "esme"}))
    with pytest.raises(UserError, match="not a system title"):
        d.inventory()
    (tmp_path / "inventory.json").write_text(json.dumps({METER.hex(): "water"}))
    with pytest.raises(UserError, match="neither esme nor gsme"):
        d.inventory()


# --- Parse and Correlate ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    d = tmp_path_factory.mktemp("keys")
    made = testpki.init(d)
    folder = keys.KeyFolder(d)
    return folder, made


def sup_req(pki, register="time2", device="gsme", counter=1000, **kw):
    folder, _ = pki
    return req(register, device, counter, originator=folder.pick("supplier").title, **kw)


def spc_for(pki, request, now=NOW, who="supplier"):
    folder, made = pki
    party = folder.party(made[who])
    return crypto.sign_precommand(party.ds_priv, dcc.transform(request, now))


@pytest.mark.parametrize("device", ["esme", "gsme"])
def test_correlate_accepts_a_matching_signed_precommand(pki, device):
    r = sup_req(pki, device=device)
    c = dcc.correlate(r, spc_for(pki, r), folder=pki[0])
    assert c.correlates and c.signature == "valid" and c.differences == []
    c = dcc.correlate(r, spc_for(pki, r))
    assert c.correlates and c.signature == "not checked"
    assert dcc.correlate(r, spc_for(pki, r), folder=pki[0], now=NOW).correlates


@pytest.mark.parametrize("device", ["esme", "gsme"])
def test_correlate_flags_register(pki, device):
    pc = spc_for(pki, sup_req(pki, "time1", device))
    c = dcc.correlate(sup_req(pki, "time2", device), pc, folder=pki[0])
    assert not c.correlates and c.signature == "valid"
    assert [d["field"] for d in c.differences] == ["register"]
    assert c.differences[0]["text"] == ("register: SR says TimeDebtRegister2, pre-command "
                                        "resets time debt 1")


def test_correlate_flags_counter(pki):
    pc = spc_for(pki, sup_req(pki, counter=1001))
    c = dcc.correlate(sup_req(pki, counter=1000), pc, folder=pki[0])
    assert not c.correlates
    assert [d["text"] for d in c.differences] == ["counter: SR says 1000, pre-command has 1001"]
    # the ESME invoke id follows the counter: still one difference
    pc = spc_for(pki, sup_req(pki, device="esme", counter=1001))
    c = dcc.correlate(sup_req(pki, device="esme", counter=1000), pc)
    assert [d["field"] for d in c.differences] == ["counter"]


def test_correlate_flags_originator_target_use_case(pki):
    folder, made = pki
    r = sup_req(pki)
    other_target = req("time2", "gsme", 1000, originator=r.originator, target=SUP2)
    c = dcc.correlate(r, spc_for(pki, other_target), folder=folder)
    assert [d["field"] for d in c.differences] == ["target"]
    c = dcc.correlate(r, spc_for(pki, sup_req(pki, device="esme")), folder=folder)
    assert [d["field"] for d in c.differences] == ["use case"]
    assert "SR says GCS04a (0F01), pre-command has ECS07a (0F00)" in c.differences[0]["text"]
    second = req("time2", "gsme", 1000, originator=folder.party(made["second supplier"]).title)
    c = dcc.correlate(r, spc_for(pki, second, who="second supplier"), folder=folder)
    assert [d["field"] for d in c.differences] == ["originator", "signature"]


def test_correlate_signature_checks(pki):
    folder, made = pki
    r = sup_req(pki)
    # signed by someone else in the name of the Supplier
    pre = dcc.transform(r, NOW)
    forged = crypto.sign_precommand(folder.party(made["second supplier"]).ds_priv, pre)
    c = dcc.correlate(r, forged, folder=folder)
    assert not c.correlates and c.signature == "invalid"
    assert "does not verify" in c.differences[0]["text"]
    # a bare PRECOMMAND never correlates
    c = dcc.correlate(r, pre)
    assert not c.correlates and c.signature == "absent"
    # no certificate for the originator
    stranger = req("time2", "gsme", 1000, originator=SUP)
    c = dcc.correlate(stranger, spc_for(pki, stranger), folder=folder)
    assert c.signature == "no key" and "no DS certificate" in c.differences[0]["text"]
    # a Network Operator may not originate a reset
    no = req("time2", "gsme", 1000, originator=folder.party(made["network operator"]).title)
    c = dcc.correlate(no, spc_for(pki, no, who="network operator"), folder=folder)
    assert c.signature == "wrong role" and "may only come from a supplier" in c.text()


def test_correlate_update_debt_values_named_in_duis_terms(pki):
    folder, _ = pki
    orig = folder.pick("supplier").title
    rec = ({"rate": 10, "period": "DAILY", "price_scale": -1},
           {"rate": 20, "period": "HOURLY", "price_scale": -1})
    for device, rate_name in (("gsme", "GasDebtRecovery2/DebtRecoveryRate"),
                              ("esme", "ElecDebtRecovery2/DebtRecoveryRate")):
        sr = duis.parse_request(srxml.update_debt_xml(orig, METER, 5, device, 100, 200, 300, 40,
                                                     *rec), device=device)
        changed = dict(rec[1], rate=21)
        pc_sr = duis.parse_request(srxml.update_debt_xml(orig, METER, 5, device, 101, 200, 300,
                                                        40, rec[0], changed), device=device)
        c = dcc.correlate(sr, spc_for(pki, pc_sr), folder=folder)
        texts = sorted(d["text"] for d in c.differences)
        assert texts == [f"{rate_name}: SR says 20, pre-command has 21",
                         "TimeDebtRegister1: SR says 100, pre-command has 101"], texts


def test_correlate_issuer_event_id_against_now(pki):
    r = sup_req(pki)
    pc = spc_for(pki, r, now=NOW)
    assert dcc.correlate(r, pc, now=NOW).correlates
    c = dcc.correlate(r, pc, now="2021-03-04T05:06:08Z")
    assert [d["field"] for d in c.differences] == ["components[0].change_debt.issuer_event_id"]
    assert dcc.correlate(r, pc).notes == ["issuer event id taken from the pre-command "
                                          "(no --now given)"]


def test_correlate_undecodable_content(pki):
    r = sup_req(pki)
    pre = with_content(dcc.transform(r, NOW), b"\x01\x09\x01\x01\x07")
    c = dcc.correlate(r, pre)
    assert any(d["field"] == "content" and "does not decode" in d["text"]
               for d in c.differences)


@needs_shared
def test_correlate_rtds_commands_with_zaz1_keys():
    """Every critical RTDS Command whose request the project supports correlates with
    it (signature valid with the ZAZ1 Supplier key); the ERROR Command of the pair was
    made for another counter and differs there only."""
    folder = keys.KeyFolder(SHARED / "gbcs" / "keys")
    checked = []
    for f in rtdsref.duis_requests():
        try:
            req = duis.read_request(f)
        except UserError:
            continue            # not supported: test_rtds_precommands_from_duis
        success = rtdsref.rtds_for(f, "COMMAND")
        if rtdsref.rtds_for(f, "PRECOMMAND") is None:
            continue            # non-critical: nothing for the Supplier to sign
        command = bytes.fromhex(success.read_text().strip())
        c = dcc.correlate(req, command, folder=folder, now="2015-01-01T00:00:00Z")
        assert c.correlates and c.signature == "valid", (f.name, c.text())
        error = success.with_name(success.name.replace("_SUCCESS_", "_ERROR_"))
        if error.exists():
            c = dcc.correlate(req, bytes.fromhex(error.read_text().strip()), folder=folder)
            assert [x["field"] for x in c.differences] == ["counter"], (f.name, c.text())
        checked.append(f.name)
    assert checked
