"""`gbmeter dcc serve` over real HTTP on 127.0.0.1: every flow and bad input on both
fuels, with the official DUIS 5.4 XSD and the real XML-signing keys of ../shared/duis,
a test client and Receive Response Service built on gbmeter.dcc.client, and the
`gbmeter duis send|listen` verbs."""

import base64
import json
import os
import subprocess
import time

import pytest
from lxml import etree

from gbmeter.dcc import client, duisxml, schema, srxml, xmlsig
from gbmeter.dcc.duis import NS
from gbmeter.gbcs import codec, crypto, keys as gkeys

from duishelp import (NETWORK_OPERATOR, SECOND_SUPPLIER, SUPPLIER, LoopThread, Service,
                      make_xml_cert, wait_until)
from simboards import GBMETER

pytestmark = pytest.mark.e2e

GSME, ESME, PRE = "00db1234567890a1", "00db1234567890a0", "00db1234567890b1"
STRANGER = bytes.fromhex("90b3d51f30050000")    # an XML certificate, no GBCS party
FUELS = {"gsme": GSME, "esme": ESME}
REC = {"gsme": ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"}),
       "esme": ({"rate": 3, "period": "DAILY", "price_scale": -1},
                {"rate": 3, "period": "DAILY", "price_scale": -1})}


@pytest.fixture(scope="module")
def duis(shared):
    d = shared / "duis"
    if not (d / "xsd").is_dir():
        pytest.skip("../shared/duis is absent: DUIS schemas and XML keys not available")
    return d


@pytest.fixture(scope="module")
def world(duis, shared, tmp_path_factory):
    """The service with a GSME, an ESME and a smets2-pre GSME, a listener, a client."""
    work = tmp_path_factory.mktemp("duis")
    xml_keys = work / "xmlsign"
    xml_keys.mkdir()
    for f in (duis / "xmlsign").iterdir():
        (xml_keys / f.name).symlink_to(f)
    for who in (SECOND_SUPPLIER, STRANGER):
        make_xml_cert(xml_keys, who.hex(), duis / "xmlsign" / f"{xmlsig.DEFAULT_DCC_KEY}.pem")
    loop = LoopThread()
    trust = xmlsig.TrustStore(xml_keys)
    schemas = schema.load(duis / "xsd")
    listener = loop.run(client.Listener(trust, schemas).start())
    env = dict(os.environ, GBMETER_HOME=str(work / "home"))
    svc = Service(work / "dcc", listener.url, duis / "xsd",
                  ["gsme", "esme", f"gsme:{PRE}:smets2-pre"], xml_keys=xml_keys,
                  extra=["--meter-timeout", "3"], env=env)
    keys = gkeys.KeyFolder(shared / "gbcs" / "keys")
    w = World(loop, listener, svc, trust, schemas, keys, work)
    yield w
    svc.stop()
    loop.run(listener.stop())
    loop.close()


class World:
    def __init__(self, loop, listener, svc, trust, schemas, keys, work):
        self.loop, self.listener, self.svc = loop, listener, svc
        self.trust, self.schemas, self.keys, self.work = trust, schemas, keys, work
        self.counter = int(time.time() * 1000)

    def next(self):
        # rising per originator, like SmartDCC's tool (ms), whatever else sent meanwhile
        self.counter = max(self.counter + 1, int(time.time() * 1000))
        return self.counter

    def signer(self, who=SUPPLIER):
        return self.trust.signer(who.hex())

    def client(self, who=SUPPLIER):
        return client.Client(self.svc.url, self.signer(who), self.trust, self.keys, self.schemas)

    def send(self, xml, who=SUPPLIER, follow=True):
        async def go():
            async with self.client(who) as c:
                return await c.send(xml.encode() if isinstance(xml, str) else xml, follow)
        return self.loop.run(go())

    def post(self, endpoint, data, content_type="application/xml", who=SUPPLIER):
        async def go():
            async with self.client(who) as c:
                return await c.step(endpoint, data) if content_type is None else \
                    await c.post(endpoint, data, content_type)
        return self.loop.run(go())

    def signed_step(self, endpoint, root, who=SUPPLIER):
        async def go():
            async with self.client(who) as c:
                return (await c.step(endpoint, xmlsig.sign(root, self.signer(who))))[0]
        return self.loop.run(go())

    def received(self, response_id, timeout=20):
        assert wait_until(lambda: response_id in self.listener.messages, timeout), \
            f"{response_id} never reached the listener; service log:\n{self.svc.log()[-3000:]}"
        return self.listener.messages[response_id]


def reset(w, meter, register="time1", counter=None, sender=SUPPLIER):
    return srxml.reset_debt_xml(sender, bytes.fromhex(meter), counter or w.next(), register)


def update(w, device, amounts=(1000, 2000, 3000), counter=None):
    return srxml.update_debt_xml(SUPPLIER, bytes.fromhex(FUELS[device]), counter or w.next(),
                                 device, *amounts, 100, *REC[device])


def meter_response(w, payload_hex, meter):
    """The meter's Response inside a Service Response: (apdu dict, all parts ok)."""
    from gbmeter.supplier.answer import outcome
    data = bytes.fromhex(payload_hex)
    a = codec.parse_apdu(data)
    pub = crypto.load_public_key(bytes.fromhex("04" + w.svc.devices[meter]["ds"]))
    assert crypto.verify_apdu(pub, data), "the meter's signature does not verify"
    _, ok = outcome(a["message_code"], a["content"])
    return a, ok


# --- the flows ------------------------------------------------------------------------------

@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_update_debt_and_resets_through_the_front_door(world, device):
    w, meter = world, FUELS[device]
    for xml, use_case in [(update(w, device), "ECS07" if device == "esme" else "GCS04")] + [
            (reset(w, meter, reg), "ECS07a" if device == "esme" else "GCS04a")
            for reg in ("time1", "time2", "payment")]:
        steps = w.send(xml)
        assert [s["code"] for s in steps] == ["I0", "I99"], steps
        first, second = steps
        rid = first["reply"]["request_id"]
        assert first["reply"]["signer"] == xmlsig.DEFAULT_DCC_KEY
        assert second["reply"]["request_id"] == rid
        pre = codec.parse_apdu(bytes.fromhex(first["reply"]["precommand"]))
        assert pre["signature"] is None and codec.use_case_name(pre["message_code"]) == use_case
        got = w.received(duisxml.response_id(rid))
        assert got["code"] == "I0" and got["kind"] == "ResponseMessage"
        assert got["service_reference_variant"] == ("2.3" if use_case in ("ECS07", "GCS04")
                                                    else "2.3.1")
        a, ok = meter_response(w, got["gbcs_payload"], meter)
        assert ok and a["cra"] == codec.CRA_RESPONSE
        assert a["counter"] == int(rid.split(":")[2])
        assert a["originator"].hex() == meter


def test_read_inventory(world):
    req = _inventory_request(world.next())
    steps = world.send(req)
    assert [s["code"] for s in steps] == ["I0"]
    ids = {d["id"] for d in steps[0]["reply"]["devices"]}
    assert ids == {duisxml.eui(m) for m in (GSME, ESME, PRE)}
    one = world.send(_inventory_request(world.next(), GSME))[0]["reply"]["devices"]
    assert one == [{"id": duisxml.eui(GSME), "type": "GSME", "status": "Commissioned"}]
    assert world.send(_inventory_request(world.next(), "00db1234567890ff"))[0]["code"] == "E19"


def _inventory_request(counter, device=None):
    body = (f"<sr:DeviceID>{duisxml.eui(device)}</sr:DeviceID>" if device else
            "<sr:UPRN>123456789012</sr:UPRN>")
    return (f'<sr:Request xmlns:sr="{NS}" schemaVersion="5.4"><sr:Header><sr:RequestID>'
            f"{duisxml.eui(SUPPLIER)}:{duisxml.DCC_EUI}:{counter}</sr:RequestID>"
            "<sr:CommandVariant>8</sr:CommandVariant><sr:ServiceReference>8.2"
            "</sr:ServiceReference><sr:ServiceReferenceVariant>8.2</sr:ServiceReferenceVariant>"
            f"</sr:Header><sr:Body><sr:ReadInventory>{body}</sr:ReadInventory></sr:Body>"
            "</sr:Request>")


def test_a_meter_refusal_arrives_as_a_device_alert(world):
    """A smets2-pre GSME does not know Reset Debt Register: it refuses with 8F1E."""
    steps = world.send(reset(world, PRE))
    assert [s["code"] for s in steps] == ["I0", "I99"]
    assert wait_until(lambda: any(m.get("alert_code") == "8F1E" and
                                  m["response_id"].startswith(duisxml.eui(PRE))
                                  for m in world.listener.messages.values()), 20)
    alert = next(m for m in world.listener.messages.values()
                 if m.get("alert_code") == "8F1E" and m["response_id"].startswith(duisxml.eui(PRE)))
    a = codec.parse_apdu(bytes.fromhex(alert["gbcs_payload"]))
    assert a["cra"] == codec.CRA_ALERT and a["originator"].hex() == PRE
    assert duisxml.response_id(steps[0]["reply"]["request_id"]) not in world.listener.messages


def _adt(world, cfg):
    (world.work / "dcc" / "adt.json").write_text(json.dumps(cfg))


def test_quarantine_sends_ad1_with_the_right_choice(world):
    from gbmeter.dcc.anomaly import DEFAULT_CONFIG
    base = {"thresholds": [], "gcs04_limits": DEFAULT_CONFIG["gcs04_limits"]}
    try:
        cases = [
            ({"thresholds": [{"use_case": "GCS04a", "limit": 0, "window_seconds": 60}]},
             reset(world, GSME), "ADUserThresholdBreach"),
            ({"thresholds": [{"use_case": "*", "limit": 0, "window_seconds": 60}]},
             reset(world, ESME), "ADDCCThresholdBreach"),
            ({"gcs04_limits": {"max_debt_amount": 10}}, update(world, "gsme"),
             "ADAttributeLimitsBreach"),
        ]
        for change, xml, choice in cases:
            _adt(world, dict(base, **change))       # the running service reads it per check
            steps = world.send(xml)
            assert [s["code"] for s in steps] == ["I0", "I99"]
            rid = steps[0]["reply"]["request_id"]
            assert wait_until(lambda: any((m.get("quarantined") or {}).get("request_id") == rid
                                          for m in world.listener.messages.values()), 20)
            ad1 = next(m for m in world.listener.messages.values()
                       if (m.get("quarantined") or {}).get("request_id") == rid)
            assert ad1["dcc_alert_code"] == "AD1" and ad1["quarantined"]["choice"] == choice
            assert ad1["response_id"].startswith(duisxml.DCC_EUI)
            time.sleep(0.5)
            assert duisxml.response_id(rid) not in world.listener.messages   # never sent
    finally:
        _adt(world, DEFAULT_CONFIG)
    steps = world.send(reset(world, GSME))
    world.received(duisxml.response_id(steps[0]["reply"]["request_id"]))


def test_meter_that_does_not_answer_gets_e21(world):
    pid = int((world.work / "dcc" / "boards" / ESME / "unix-port.pid").read_text())
    os.kill(pid, 19)            # SIGSTOP: the meter freezes
    try:
        steps = world.send(reset(world, ESME))
        assert [s["code"] for s in steps] == ["I0", "I99"]
        got = world.received(duisxml.response_id(steps[0]["reply"]["request_id"]), 20)
        assert got["code"] == "E21"
    finally:
        os.kill(pid, 18)        # SIGCONT
    time.sleep(0.5)
    steps = world.send(reset(world, ESME))
    assert world.received(duisxml.response_id(steps[0]["reply"]["request_id"]))["code"] == "I0"


# --- SR 4.3 on CV 1 (non-critical), SR 1.6 on CV 4 / CV 5 -------------------------------------

READ_KEYS = ("time1", "time2", "payment", "balance", "ec_balance", "acc_debt")
SET = {"gsme": {"time1": 111000, "time2": 222000, "payment": 333000, "balance": 44000,
                "ec_balance": 5000, "acc_debt": 6000},
       "esme": {"time1": 123456, "time2": 234567, "payment": 345678, "balance": -4567,
                "ec_balance": 7000, "acc_debt": 8000}}


def _gbj(*args):
    r = _gb(*args, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def registers(w, meter):
    """`gbmeter registers --json` on the board behind the service: the service lets
    a meter's port go when it has no Command for it (the verb waits for it)."""
    return _gbj("registers", "--port", w.svc.devices[meter]["port"])


def read_request(w, meter, counter=None):
    return srxml.read_prepayment_registers_xml(SUPPLIER, bytes.fromhex(meter),
                                               counter or w.next())


def open_read(w, payload_hex, meter, counter):
    """The User's own opening of a read Response (the test's code, not the
    service's nor the chain's): Z of the Supplier's KA private key and the meter's KA
    public key; the meter's MAC; each sealed part decrypted with AES-128-GCM (key =
    SHA-256 of NOTES 7's KDF input with 04 for the CRA, IV = the meter's title and
    four zero bytes, AAD 31, 12-byte tag). Returns the registers by the names
    `registers --json` uses."""
    import hashlib
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from gbmeter.gbcs import protected
    msg = bytes.fromhex(payload_hex)
    assert msg[0] == 0xDD                       # MAC header: a non-critical Response
    supplier = w.keys.party(SUPPLIER.hex())
    meter_ka = crypto.load_public_key(bytes.fromhex("04" + w.svc.devices[meter]["ka"]))
    z = crypto.ecdh(supplier.ka_priv, meter_ka)
    assert crypto.check_mac(z, msg), "the meter's MAC does not verify"
    m = codec.parse_message(msg)
    a = codec.parse_apdu(m["apdu"])
    assert a["cra"] == codec.CRA_RESPONSE and a["signature_length"] == 0
    assert (a["originator"].hex(), a["recipient"], a["counter"]) == (meter, SUPPLIER, counter)
    decoded = codec.decode_content(a["message_code"], a["content"], a["content_offset"])
    parts = protected.sealed_parts(a["message_code"], decoded)
    assert parts, "nothing sealed in the read Response"
    key = hashlib.sha256(b"\x00\x00\x00\x01" + z + bytes.fromhex("60857406080300") + a["originator"]
                         + b"\x09\x04" + counter.to_bytes(8, "big") + a["recipient"]).digest()[:16]
    regs = {}
    for _, sealed, cluster in parts:
        assert sealed[:5] == bytes.fromhex("3100000000")
        ct, tag = sealed[5:-12], sealed[-12:]
        dec = Cipher(algorithms.AES(key), modes.GCM(a["originator"] + bytes(4), tag,
                                                    min_tag_length=12)).decryptor()
        dec.authenticate_additional_data(b"\x31")
        plain = dec.update(ct) + dec.finalize()
        if cluster is None:                     # ECS19: six double-longs, MMC order
            tree = codec.axdr_decode(plain)
            values = [v["value"] for v in tree["value"][0]["value"]]
            regs.update(zip(("ec_balance", "acc_debt", "payment", "time1", "time2", "balance"),
                            values))
        else:                                   # GCS14: Read Attributes records
            for rec in codec.parse_attribute_records(cluster, plain):
                name = protected.GCS14_VALUES.get(rec.get("name"))
                if name and rec["status"] == 0:
                    regs[name] = rec["value"]
    return regs


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_read_registers_over_cv1(world, device):
    """SR 4.3 on CV 1: I99 at once, then the meter's Response as it sent it (MAC'd,
    the registers sealed for the Supplier), which the User opens with the Supplier's
    KA key: the values are what `registers --json` shows."""
    w, meter = world, FUELS[device]
    port = w.svc.devices[meter]["port"]
    args = [x for k, v in SET[device].items() for x in (f"--{k.replace('_', '-')}", v)]
    _gbj("diag", "set", "--port", port, *args)
    shown = registers(w, meter)
    steps = w.send(read_request(w, meter))
    assert [(s["endpoint"], s["code"]) for s in steps] == [("serviceS", "I99")], steps
    rid = steps[0]["reply"]["request_id"]
    got = w.received(duisxml.response_id(rid))
    assert got["code"] == "I0" and got["kind"] == "ResponseMessage"
    assert (got["service_reference"], got["service_reference_variant"]) == ("4.3", "4.3")
    assert got["signer"] == xmlsig.DEFAULT_DCC_KEY      # and valid DUIS 5.4: the listener checks
    regs = open_read(w, got["gbcs_payload"], meter, int(rid.split(":")[2]))
    assert regs == {k: shown[k] for k in READ_KEYS}
    assert regs == SET[device]          # whole pence, as set: the meter holds what was set
    # the same read with a changed value on the meter: the Response follows it
    _gbj("diag", "set", "--port", port, "--time2", 999000)
    steps = w.send(read_request(w, meter))
    rid = steps[0]["reply"]["request_id"]
    got = w.received(duisxml.response_id(rid))
    assert open_read(w, got["gbcs_payload"], meter, int(rid.split(":")[2]))["time2"] == 999000
    # a tampered ciphertext does not open
    bad = bytearray.fromhex(got["gbcs_payload"])
    bad[-20] ^= 1
    with pytest.raises(Exception):
        open_read(w, bad.hex(), meter, int(rid.split(":")[2]))


def test_read_on_the_wrong_variant_or_endpoint(world):
    """SR 4.3 is non-critical: CV 4 on serviceT is E12 (nothing to sign); CV 1 on
    serviceT is E13; a CV 1 carrying a SignedPreCommand is E12; nothing reaches a meter."""
    w = world
    before = dict(w.listener.messages)
    as_cv4 = xmlsig.parse(read_request(w, GSME).encode())
    as_cv4.find(f"{{{NS}}}Header/{{{NS}}}CommandVariant").text = "4"
    assert w.signed_step("serviceT", as_cv4)["code"] == "E12"
    for meter in (GSME, ESME):
        assert w.signed_step("serviceT", xmlsig.parse(read_request(w, meter).encode()))[
            "code"] == "E13"
    xml = reset(w, ESME)
    pre = _precommand(w, xml)
    cv1 = _cv5(xml, crypto.sign_precommand(w.keys.party(SUPPLIER.hex()).ds_priv, pre))
    cv1.find(f"{{{NS}}}Header/{{{NS}}}CommandVariant").text = "1"
    assert w.signed_step("serviceS", cv1)["code"] == "E12"
    # a CV 1 for a device not in the inventory: E19
    assert w.signed_step("serviceS", xmlsig.parse(read_request(w, "00db1234567890ff").encode())
                         )["code"] == "E19"
    # a replayed CV 1
    good = xmlsig.sign(read_request(w, GSME).encode(), w.signer())
    assert w.post("serviceS", good)[0] == 200
    assert w.post("serviceS", good)[0] == 409
    time.sleep(0.5)
    new = set(w.listener.messages) - set(before)
    assert len(new) == 1 and all(m.startswith(duisxml.eui(GSME)) for m in new)   # the good one


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_payment_mode_through_the_front_door(world, device):
    """SR 1.6 is critical: CV 4 -> the PRECOMMAND, signed, CV 5 -> Parse and
    Correlate, anomaly detection, the meter; the mode moves as the Service Response
    says. A Signed Pre-Command for the other mode does not correlate (422), and a
    User threshold on the use case quarantines it (AD1)."""
    from gbmeter.dcc.anomaly import DEFAULT_CONFIG
    from gbmeter.dcc.precommand import PREPAYMENT_SUSPEND_DEBT
    w, meter = world, FUELS[device]
    codes = {"gsme": ("GCS02", "GCS03"), "esme": ("ECS02", "ECS03")}[device]

    def mode_xml(mode):
        flags = PREPAYMENT_SUSPEND_DEBT[device] if mode == "prepayment" else (False, False)
        return srxml.update_payment_mode_xml(SUPPLIER, bytes.fromhex(meter), w.next(), mode,
                                             *flags)

    for mode, use_case in (("credit", codes[0]), ("prepayment", codes[1])):
        steps = w.send(mode_xml(mode))
        assert [s["code"] for s in steps] == ["I0", "I99"], steps
        rid = steps[0]["reply"]["request_id"]
        pre = codec.parse_apdu(bytes.fromhex(steps[0]["reply"]["precommand"]))
        assert codec.use_case_name(pre["message_code"]) == use_case
        got = w.received(duisxml.response_id(rid))
        assert got["code"] == "I0" and got["service_reference_variant"] == "1.6"
        a, ok = meter_response(w, got["gbcs_payload"], meter)
        assert ok and a["counter"] == int(rid.split(":")[2])
        assert registers(w, meter)["mode"] == mode
    # Parse and Correlate: the CV 5 of a credit request carrying a prepayment one
    credit = mode_xml("credit")
    _precommand(w, credit)
    other = _precommand(w, mode_xml("prepayment"))
    sup = w.keys.party(SUPPLIER.hex()).ds_priv
    got = w.signed_step("serviceS", _cv5(credit, crypto.sign_precommand(sup, other)))
    assert got["status"] == 422, got
    # anomaly detection: a User threshold of 0 on the credit use case
    try:
        _adt(w, {"thresholds": [{"use_case": codes[0], "limit": 0, "window_seconds": 60}],
                 "gcs04_limits": DEFAULT_CONFIG["gcs04_limits"]})
        steps = w.send(mode_xml("credit"))
        assert [s["code"] for s in steps] == ["I0", "I99"]
        rid = steps[0]["reply"]["request_id"]
        assert wait_until(lambda: any((m.get("quarantined") or {}).get("request_id") == rid
                                      for m in w.listener.messages.values()), 20)
        ad1 = next(m for m in w.listener.messages.values()
                   if (m.get("quarantined") or {}).get("request_id") == rid)
        assert ad1["quarantined"]["choice"] == "ADUserThresholdBreach"
    finally:
        _adt(w, DEFAULT_CONFIG)
    time.sleep(0.5)
    assert duisxml.response_id(rid) not in w.listener.messages
    assert registers(w, meter)["mode"] == "prepayment"


# --- bad input: each gets its code or status, nothing reaches a meter ---------------------------

def _cv5(request_xml, signed_pre, srv=None):
    root = xmlsig.parse(request_xml.encode())
    h = root.find(f"{{{NS}}}Header")
    h.find(f"{{{NS}}}CommandVariant").text = "5"
    if srv:
        h.find(f"{{{NS}}}ServiceReferenceVariant").text = srv
    body = root.find(f"{{{NS}}}Body")
    for c in list(body):
        body.remove(c)
    spc = etree.SubElement(body, f"{{{NS}}}SignedPreCommand")
    etree.SubElement(spc, f"{{{NS}}}GBCSPayload").text = base64.b64encode(signed_pre).decode()
    return root


def _precommand(world, xml):
    steps = world.send(xml, follow=False)
    assert steps[0]["code"] == "I0", steps
    return bytes.fromhex(steps[0]["reply"]["precommand"])


def test_bad_input_http_level(world, duis):
    w = world
    before = dict(w.listener.messages)
    good = xmlsig.sign(reset(w, GSME).encode(), w.signer())
    no_sig = reset(w, GSME).encode()
    broken = good.replace(b"TimeDebtRegister1", b"PaymentDebtRegister")
    xxe = (duis / "samples" / "duis-xxe.xml").read_bytes()
    big = b"<r>" + b" " * (xmlsig.MAX_BYTES + 10) + b"</r>"
    cases = [
        ("serviceT", b"this is not XML", "application/xml", 400, "not well-formed"),
        ("serviceT", xxe, "application/xml", 400, "DOCTYPE"),
        ("serviceT", big, "application/xml", 413, "limit"),
        ("serviceT", good, "text/plain", 415, "application/xml"),
        ("serviceT", no_sig, "application/xml", 401, "not signed"),
        ("serviceT", broken, "application/xml", 401, "does not verify"),
        ("serviceT", (duis / "samples" / "ECS17b_4.1.1_SINGLE_SUCCESS_REQUEST_DUIS-signed.XML")
         .read_bytes(), "application/xml", 401, "not in the trust store"),
        # a request from the Supplier signed by the Network Operator
        ("serviceT", xmlsig.sign(reset(w, GSME).encode(), w.signer(NETWORK_OPERATOR)),
         "application/xml", 401, "not by its originator"),
        # a reset naming two registers: refused by the schema
        ("serviceT", xmlsig.sign(reset(w, GSME).replace(
            "<sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>",
            "<sr:DebtRegister>TimeDebtRegister1</sr:DebtRegister>"
            "<sr:DebtRegister>TimeDebtRegister2</sr:DebtRegister>").encode(), w.signer()),
         "application/xml", 400, "DebtRegister"),
    ]
    for endpoint, data, ctype, status, words in cases:
        got, body = w.post(endpoint, data, ctype)
        assert got == status, (words, body)
        assert words.encode() in body, body
        assert b"root:" not in body
    # a replay, and a lower counter
    got, _ = w.post("serviceT", good)
    assert got == 200
    assert w.post("serviceT", good)[0] == 409
    assert w.post("serviceT", xmlsig.sign(reset(w, GSME, counter=5).encode(), w.signer()))[0] == 409
    time.sleep(0.5)
    assert w.listener.messages == before         # nothing reached a meter


def test_bad_input_duis_codes(world):
    w = world
    before = dict(w.listener.messages)
    sign = lambda x: xmlsig.parse(x.encode())   # noqa: E731  (signed in signed_step)
    # wrong endpoint: a CV 4 to the Send Command Service
    assert w.signed_step("serviceS", sign(reset(w, GSME)))["code"] == "E13"
    assert w.signed_step("serviceD", sign(reset(w, ESME)))["code"] == "E13"
    # unknown device
    assert w.signed_step("serviceT", sign(reset(w, "00db1234567890ff")))["code"] == "E19"
    # a Network Operator may not reset debt (role not allowed the Service Request)
    assert w.signed_step("serviceT", sign(reset(w, GSME, sender=NETWORK_OPERATOR)),
                         NETWORK_OPERATOR)["code"] == "E2"
    # a second Supplier is not the meter's
    assert w.signed_step("serviceT", sign(reset(w, ESME, sender=SECOND_SUPPLIER)),
                         SECOND_SUPPLIER)["code"] == "E4"
    # the body names the other fuel
    elec_to_gas = srxml.update_debt_xml(SUPPLIER, bytes.fromhex(GSME), w.next(), "esme", 1, 2, 3,
                                        4, *REC["esme"])
    assert w.signed_step("serviceT", sign(elec_to_gas))["code"] == "E11"
    # a User the DCC has no GBCS party for
    assert w.signed_step("serviceT", sign(reset(w, GSME, sender=STRANGER)), STRANGER)["code"] == "E1"
    # CV / SRV: a CV 5 whose SRV is not its CV 4's
    xml = reset(w, GSME)
    pre = _precommand(w, xml)
    signed_pre = crypto.sign_precommand(w.keys.party(SUPPLIER.hex()).ds_priv, pre)
    assert w.signed_step("serviceS", _cv5(xml, signed_pre, srv="2.3"))["code"] == "E12"
    # a critical Service Request on CV 1
    cv1 = xmlsig.parse(reset(w, GSME).encode())
    cv1.find(f"{{{NS}}}Header/{{{NS}}}CommandVariant").text = "1"
    assert w.signed_step("serviceS", cv1)["code"] == "E12"
    # a CV 4 carrying a Signed Pre-Command
    wrong = _cv5(reset(w, GSME), signed_pre)
    wrong.find(f"{{{NS}}}Header/{{{NS}}}CommandVariant").text = "4"
    assert w.signed_step("serviceT", wrong)["code"] == "E12"
    time.sleep(0.5)
    assert w.listener.messages == before


@pytest.mark.parametrize("device", ["gsme", "esme"])
def test_bad_signed_precommands(world, device):
    w, meter = world, FUELS[device]
    before = dict(w.listener.messages)
    sup = w.keys.party(SUPPLIER.hex()).ds_priv
    # a CV 5 with no CV 4 before it
    lone = reset(w, meter)
    from gbmeter.dcc import duis as duis_mod, precommand as tf
    stray = crypto.sign_precommand(sup, tf.transform(duis_mod.parse_request(
        lone, inventory={meter: device})))
    got = w.signed_step("serviceS", _cv5(lone, stray))
    assert got["status"] == 422 and "no CV 4" in got["reason"]
    # content that differs from its Service Request (another register)
    xml = reset(w, meter, "time1")
    pre = _precommand(w, xml)
    counter = codec.parse_apdu(pre)["counter"]
    req = srxml.reset_debt_xml(SUPPLIER, bytes.fromhex(meter), counter, "payment")
    made = codec.parse_apdu(pre)
    r = duis_mod.parse_request(req, inventory={meter: device})
    seconds = None
    if device == "gsme":
        seconds = codec.parse_gbz(made["content"], made["content_offset"])["components"][0][
            "change_debt"]["issuer_event_id"]
    other = codec.build_apdu(codec.CRA_COMMAND, r.counter, r.originator, r.target, r.message_code,
                             tf.content(r, seconds=seconds or 0))
    got = w.signed_step("serviceS", _cv5(xml, crypto.sign_precommand(sup, other)))
    assert got["status"] == 422 and "register" in got["reason"], got
    # signed by another Supplier
    second = w.keys.party(SECOND_SUPPLIER.hex()).ds_priv
    got = w.signed_step("serviceS", _cv5(xml, crypto.sign_precommand(second, pre)))
    assert got["status"] == 422 and "signature" in got["reason"], got
    # the right one still goes through, once
    right = _cv5(xml, crypto.sign_precommand(sup, pre))
    assert w.signed_step("serviceS", right)["code"] == "I99"
    again = w.signed_step("serviceS", _cv5(xml, crypto.sign_precommand(sup, pre)))
    assert again["status"] == 409
    rid = duisxml.response_id(xmlsig.parse(xml.encode()).findtext(
        f"{{{NS}}}Header/{{{NS}}}RequestID"))
    w.received(rid)
    time.sleep(0.3)
    assert set(w.listener.messages) - set(before) == {rid}


# --- the verbs a user without a User System drives ------------------------------------------------

def test_duis_send_and_listen_verbs(world, duis, tmp_path):
    w = world
    port_file = tmp_path / "req.xml"
    port_file.write_text(reset(w, GSME, "time2"))
    store = tmp_path / "store"
    # the service posts to the test listener; the verb's listener gets a copy posted here
    lst = subprocess.Popen([GBMETER, "duis", "listen", "--port", "0", "--store", str(store),
                            "--xsd", str(duis / "xsd"), "--count", "1", "--json"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    r = subprocess.run([GBMETER, "duis", "send", str(port_file), "--url", w.svc.url, "--xsd",
                        str(duis / "xsd"), "--json"], capture_output=True, text=True, timeout=60)
    lst.kill()
    lst.wait()
    assert r.returncode == 0, r.stdout + r.stderr
    steps = [json.loads(line) for line in r.stdout.splitlines()]
    assert [s["code"] for s in steps] == ["I0", "I99"]
    w.received(duisxml.response_id(steps[0]["reply"]["request_id"]))
    # the same file again: the counter does not rise, the DCC says so (exit 2)
    r = subprocess.run([GBMETER, "duis", "send", str(port_file), "--url", w.svc.url],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "HTTP 409" in r.stdout
    r = subprocess.run([GBMETER, "duis", "send", str(port_file), "--url", w.svc.url,
                        "--counter", "now"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and "I99" in r.stdout, r.stdout + r.stderr
    # a CV 1 (SR 4.3): posted to serviceS, I99 printed, the Response at the listener
    read_file = tmp_path / "read.xml"
    read_file.write_text(read_request(w, ESME))
    r = subprocess.run([GBMETER, "duis", "send", str(read_file), "--url", w.svc.url, "--xsd",
                        str(duis / "xsd"), "--counter", "now"], capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    (line,) = r.stdout.splitlines()
    assert line.startswith("serviceS: I99 ") and "signed by" in line, line
    rid = line.split()[2]
    got = w.received(duisxml.response_id(rid))
    assert got["service_reference"] == "4.3"
    assert set(open_read(w, got["gbcs_payload"], ESME, int(rid.split(":")[2]))) == set(READ_KEYS)


def test_listen_verb_verifies_and_stores(world, duis, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    store = tmp_path / "store"
    lst = subprocess.Popen([GBMETER, "duis", "listen", "--port", str(port), "--store", str(store),
                            "--xsd", str(duis / "xsd"), "--count", "1"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_until(lambda: _open(port), 20)
        import urllib.request
        good = (duis / "samples" / "readfw-response.xml").read_bytes()
        bad = (duis / "samples" / "readfw-response-badsignature.xml").read_bytes()
        for data, want in ((bad, 401), (good, 200)):
            req = urllib.request.Request(f"http://127.0.0.1:{port}/", data=data,
                                         headers={"Content-Type": "application/xml"})
            try:
                status = urllib.request.urlopen(req, timeout=10).status
            except urllib.error.HTTPError as e:
                status = e.code
            assert status == want
        out, _ = lst.communicate(timeout=20)
    finally:
        if lst.poll() is None:
            lst.kill()
            lst.wait()
    assert "I0 88-73-84-57-00-2F-96-1E:90-B3-D5-1F-30-01-00-00:1660751141087" in out
    stored = list(store.iterdir())
    assert [f.name for f in stored] == [
        "88-73-84-57-00-2F-96-1E_90-B3-D5-1F-30-01-00-00_1660751141087.xml"]


def _open(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), 0.2).close()
        return True
    except OSError:
        return False


# --- the User's endpoint down for a while -------------------------------------------------------

def test_user_endpoint_down_then_back(world):
    w = world
    port = w.listener.port
    w.loop.run(w.listener.stop())
    try:
        rids = []
        for device, meter in FUELS.items():
            steps = w.send(reset(w, meter, "payment"))
            assert [s["code"] for s in steps] == ["I0", "I99"]
            rids.append(duisxml.response_id(steps[0]["reply"]["request_id"]))
        time.sleep(2.0)         # the service retries meanwhile
        r = subprocess.run([GBMETER, "dcc", "outbox", "--dcc-dir", str(w.work / "dcc"), "--json"],
                           capture_output=True, text=True, timeout=30)
        held = {m["response_id"]: m for m in json.loads(r.stdout)["messages"]}
        for rid in rids:
            assert held[rid]["state"] == "pending" and held[rid]["attempts"] >= 2
    finally:
        w.loop.run(w.listener.start("127.0.0.1", port))
    for rid in rids:
        assert w.received(rid, 20)["code"] == "I0"
    time.sleep(1.0)
    assert not any(w.listener.duplicates.get(rid) for rid in rids)


def _gb(*args):
    return subprocess.run([GBMETER, *map(str, args)], capture_output=True, text=True, timeout=60)


def test_adt_verbs_and_quarantine_release_discard(world):
    """Thresholds set with `gbmeter dcc adt` apply to the running service at once; a
    held Signed Pre-Command released with `gbmeter dcc quarantine release` reaches its
    meter, a discarded one never does."""
    w = world
    d = w.work / "dcc"
    from gbmeter.dcc.anomaly import DEFAULT_CONFIG
    try:
        r = _gb("dcc", "adt", "--dcc-dir", d, "threshold", "ECS07a", "--limit", 0, "--window", 60)
        assert r.returncode == 0, r.stderr
        held = []
        for reg in ("time1", "time2"):
            steps = w.send(reset(w, ESME, reg))
            assert [s["code"] for s in steps] == ["I0", "I99"]
            rid = steps[0]["reply"]["request_id"]
            assert wait_until(lambda: any((m.get("quarantined") or {}).get("request_id") == rid
                                          for m in w.listener.messages.values()), 20)
            held.append(rid)
        listed = json.loads(_gb("dcc", "quarantine", "--dcc-dir", d, "list", "--json").stdout)
        ids = {q["request_id"]: q["id"] for q in listed}
        assert set(held) <= set(ids)
        assert _gb("dcc", "adt", "--dcc-dir", d, "threshold", "ECS07a", "--remove").returncode == 0
        assert _gb("dcc", "quarantine", "--dcc-dir", d, "release", ids[held[0]]).returncode == 0
        assert _gb("dcc", "quarantine", "--dcc-dir", d, "discard", ids[held[1]]).returncode == 0
        r = _gb("dcc", "quarantine", "--dcc-dir", d, "release", ids[held[1]])
        assert r.returncode == 1 and "not quarantined" in r.stderr
        got = w.received(duisxml.response_id(held[0]))
        a, ok = meter_response(w, got["gbcs_payload"], ESME)
        assert ok and a["counter"] == int(held[0].split(":")[2])
        time.sleep(1.5)
        assert duisxml.response_id(held[1]) not in w.listener.messages
    finally:
        _adt(w, DEFAULT_CONFIG)
