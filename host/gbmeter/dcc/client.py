"""A User's side of DUIS, for a user without a User System: send signed Service
Requests to a DCC (DCC Boxed, or `gbmeter dcc serve`) and receive its Responses.

    Client(url, signer, trust, keys, schemas=None).send(xml) -> [step, ...]
        signs the request with the User's XML key and POSTs it to the endpoint of its
        Command Variant; for CV 4 it then does what DCC Boxed's own tooling does:
        takes the PRECOMMAND from the I0, signs it as the Supplier (GBCS DS key of
        the RequestID's originator), and sends it back as CV 5 with the same
        RequestID, ServiceReference and Variant. Each step: {endpoint, status, code,
        reply (summary), reason}.
    Listener(trust, schemas=None, store=None, on_message=None): a Receive Response
        Service: verifies each message's signature (and schema), stores it once per
        ResponseID (a repeat is counted, not stored again) and answers 200.
    summary(root) -> dict of a verified sr:Response.
    open_read(payload, supplier_ka_priv, meter_ka_pub) -> the registers of an SR 4.3
        Response (its GBCSPayload), the meter's MAC checked and the sealed part
        opened with the Supplier's KA key, as a User does (the DCC cannot).
"""

import asyncio
import base64
import copy
import os
import time
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from gbmeter.dcc import duisxml, xmlsig
from gbmeter.dcc.duis import NS
from gbmeter.errors import UserError
from gbmeter.gbcs import codec, crypto, protected

ENDPOINT = {4: "serviceT", 1: "serviceS", 3: "serviceS", 5: "serviceS", 7: "serviceS",
            2: "serviceD", 6: "serviceD", 8: "serviceD"}


def _q(name):
    return f"{{{NS}}}{name}"


def summary(root):
    """What a DUIS Response says, JSON-ready."""
    h = root.find(_q("Header"))
    out = {"request_id": h.findtext(_q("RequestID")) if h is not None else None,
           "response_id": h.findtext(_q("ResponseID")) if h is not None else None,
           "code": h.findtext(_q("ResponseCode")) if h is not None else None,
           "date_time": h.findtext(_q("ResponseDateTime")) if h is not None else None}
    body = root.find(_q("Body"))
    kid = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    out["kind"] = etree.QName(kid).localname if kid is not None else None
    if kid is None:
        return out
    if out["kind"] == "ResponseMessage":
        out["service_reference"] = kid.findtext(_q("ServiceReference"))
        out["service_reference_variant"] = kid.findtext(_q("ServiceReferenceVariant"))
        payload = kid.findtext(_q("GBCSPayload"))
        pre = kid.findtext(f"{_q('PreCommand')}/{_q('GBCSPayload')}")
        if payload:
            out["gbcs_payload"] = base64.b64decode(payload).hex().upper()
        if pre:
            out["precommand"] = base64.b64decode(pre).hex().upper()
        inv = kid.find(_q("DSPInventory"))
        if inv is not None:
            out["devices"] = [{"id": d.findtext(_q("DeviceID")), "type": d.findtext(_q("DeviceType")),
                               "status": d.findtext(_q("DeviceStatus"))} for d in inv]
    elif out["kind"] == "DeviceAlertMessage":
        out["alert_code"] = kid.findtext(_q("AlertCode"))
        out["gbcs_payload"] = base64.b64decode(kid.findtext(_q("GBCSPayload")) or "").hex().upper()
    elif out["kind"] == "DCCAlertMessage":
        out["dcc_alert_code"] = kid.findtext(_q("DCCAlertCode"))
        q = kid.find(f"{_q('DCCAlert')}/{_q('QuarantinedRequest')}")
        if q is not None and len(q):
            breach = q[0]
            out["quarantined"] = {"choice": etree.QName(breach).localname,
                                  "request_id": breach.findtext(_q("RequestID")),
                                  "quarantine_event_ref": breach.findtext(_q("QuarantineEventRef"))}
    return out


def open_read(payload, supplier_ka_priv, meter_ka_pub):
    """The User's side of a Read Instantaneous Prepay Values Response (ECS19 /
    GCS14), the GBCSPayload as the meter sent it: MAC'd by the meter for the
    Supplier, its registers AES-128-GCM sealed (NOTES 7). Returns {"use_case",
    "counter", "originator", "registers", and on a GSME "currency",
    "trailing_digits"}; UserError when it is not such a Response, its MAC does not
    verify or a sealed part does not open (nothing of it is returned then)."""
    payload = bytes(payload)
    try:
        m = codec.parse_message(payload)
        if m["mac"] is None:
            raise UserError("the read Response carries no MAC header")
        r = codec.parse_apdu(m["apdu"])
        z = crypto.ecdh(supplier_ka_priv, meter_ka_pub)
        if not crypto.check_mac(z, payload):
            raise UserError("the read Response's MAC does not verify with the meter's and "
                            "the Supplier's KA keys")
        if r["message_code"] not in protected.READS:
            raise UserError(f"message code {r['message_code']:04X} is not a read of the "
                            "prepayment registers")
        decoded = codec.decode_content(r["message_code"], r["content"], r["content_offset"])
        opened = protected.open_read(r["message_code"], decoded, z, r["originator"],
                                     r["counter"], r["recipient"])
    except crypto.SealError as e:
        raise UserError(f"the read Response's registers do not open: {e}") from None
    except codec.DecodeError as e:
        raise UserError(f"the read Response does not decode: {e}") from None
    out = {"use_case": protected.READS[r["message_code"]], "counter": r["counter"],
           "originator": r["originator"].hex(), "registers": opened["registers"]}
    for k in ("currency", "trailing_digits"):
        if k in opened:
            out[k] = opened[k]
    return out


def read_reply(body, trust, schemas=None):
    """A DCC reply: verified (its signer must be in the trust store) and, with
    schemas, valid. Returns (summary, verified root)."""
    root = xmlsig.parse(body)
    v = xmlsig.verify(root, trust)
    if schemas is not None:
        schemas.validate(root)
    s = summary(v.root)
    s["signer"] = v.signer.name
    return s, v.root


def set_counter(data, counter):
    """The request with its RequestID counter replaced (`now`: the time in ms, as
    SmartDCC's signing tool sets it)."""
    root = xmlsig.parse(data)
    el = root.find(f"{_q('Header')}/{_q('RequestID')}")
    if el is None:
        raise UserError("the request has no sr:Header/sr:RequestID")
    if counter == "now":
        counter = int(time.time() * 1000)
    a, b, _ = el.text.strip().split(":")
    el.text = f"{a}:{b}:{int(counter)}"
    return xmlsig.tostring(root)


class Client:
    """A User System in a few lines: see the module docstring."""

    def __init__(self, url, signer, trust, keys=None, schemas=None, timeout=30.0):
        self.url = url.rstrip("/")
        self.signer = signer
        self.trust = trust
        self.keys = keys
        self.schemas = schemas
        self.timeout = timeout
        self.http = None

    async def __aenter__(self):
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self

    async def __aexit__(self, *exc):
        await self.http.close()

    def endpoint(self, root):
        cv = root.findtext(f"{_q('Header')}/{_q('CommandVariant')}")
        try:
            return ENDPOINT[int(cv)]
        except (TypeError, ValueError, KeyError):
            raise UserError(f"sr:CommandVariant {cv!r} names no DUIS endpoint") from None

    async def post(self, endpoint, data, content_type="application/xml"):
        """(status, body bytes) of one POST."""
        async with self.http.post(f"{self.url}/api/v1/{endpoint}", data=data,
                                  headers={"Content-Type": content_type}) as r:
            return r.status, await r.read()

    async def step(self, endpoint, signed):
        status, body = await self.post(endpoint, signed)
        return self.answer(endpoint, status, body)

    def answer(self, endpoint, status, body):
        """(step, verified root or None) for what one POST answered (see step)."""
        out = {"endpoint": endpoint, "status": status}
        if status != 200:
            out["reason"] = body.decode(errors="replace").strip()
            return out, None
        try:
            out["reply"], root = read_reply(body, self.trust, self.schemas)
        except (xmlsig.XmlError, UserError) as e:
            out["reason"] = f"the DCC's reply is refused: {e}"
            return out, None
        out["code"] = out["reply"]["code"]
        return out, root

    def cv5(self, request_root, precommand):
        """The CV 5 for a CV 4 request: same header, CV 5, the Signed Pre-Command."""
        if self.keys is None:
            raise UserError("signing the PRECOMMAND needs the GBCS key folder (--keys)")
        rid = request_root.findtext(f"{_q('Header')}/{_q('RequestID')}").strip()
        party = self.keys.party(rid.split(":")[0])
        if party.ds_priv is None:
            raise UserError(f"no GBCS DS private key for {party.eui} in {self.keys.path}")
        signed_pre = crypto.sign_precommand(party.ds_priv, precommand)
        root = etree.Element(request_root.tag, nsmap={"sr": NS})
        root.set("schemaVersion", request_root.get("schemaVersion") or duisxml.SCHEMA_VERSION)
        header = copy.deepcopy(request_root.find(_q("Header")))
        header.find(_q("CommandVariant")).text = "5"
        root.append(header)
        body = etree.SubElement(root, _q("Body"))
        spc = etree.SubElement(body, _q("SignedPreCommand"))
        etree.SubElement(spc, _q("GBCSPayload")).text = base64.b64encode(signed_pre).decode()
        return root

    async def send(self, data, follow=True):
        """Sign and send a request (bytes); CV 4 is followed by its CV 5."""
        root = xmlsig.parse(data)
        signed = xmlsig.sign(root, self.signer)
        first, reply = await self.step(self.endpoint(xmlsig.parse(signed)), signed)
        steps = [first]
        if (follow and reply is not None and first.get("code") == "I0"
                and first["reply"].get("precommand")):
            pre = bytes.fromhex(first["reply"]["precommand"])
            cv5 = self.cv5(xmlsig.parse(data), pre)
            second, _ = await self.step("serviceS", xmlsig.sign(cv5, self.signer))
            steps.append(second)
        return steps


class Listener:
    """A Receive Response Service (see the module docstring)."""

    def __init__(self, trust, schemas=None, store=None, on_message=None):
        self.trust = trust
        self.schemas = schemas
        self.store = Path(store) if store else None
        self.on_message = on_message
        self.messages = {}          # ResponseID -> summary (first delivery)
        self.order = []
        self.duplicates = {}        # ResponseID -> repeats
        self.refused = []
        self.runner = None
        self.port = None
        self.event = asyncio.Event()
        if self.store:
            self.store.mkdir(parents=True, exist_ok=True)

    async def handle(self, request):
        if request.content_type != "application/xml":
            self.refused.append(f"Content-Type {request.content_type}")
            return web.Response(status=415, text="application/xml only\n")
        data = await request.read()
        try:
            root = xmlsig.parse(data)
            v = xmlsig.verify(root, self.trust)
            if self.schemas is not None:
                self.schemas.validate(root)
        except xmlsig.XmlError as e:
            self.refused.append(str(e))
            status = 401 if e.kind in ("signature", "unknown-signer") else 400
            return web.Response(status=status, text=f"{e}\n")
        s = summary(v.root)
        s["signer"] = v.signer.name
        key = s.get("response_id") or s.get("request_id") or f"unnamed-{len(self.order)}"
        if key in self.messages:
            self.duplicates[key] = self.duplicates.get(key, 0) + 1
            s["duplicate"] = True
        else:
            self.messages[key] = s
            self.order.append(key)
            if self.store:
                f = self.store / (key.replace(":", "_") + ".xml")
                tmp = f.with_suffix(".tmp")
                tmp.write_bytes(data)
                os.replace(tmp, f)
        if self.on_message:
            self.on_message(s)
        self.event.set()
        return web.Response(text="ok\n")

    async def start(self, host="127.0.0.1", port=0):
        app = web.Application(client_max_size=xmlsig.MAX_BYTES)
        app.router.add_post("/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        self.url = f"http://{host}:{self.port}/"
        return self

    async def stop(self):
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    async def wait_for(self, pred, timeout=30.0):
        """Wait until pred(self) is true; False on timeout."""
        end = time.monotonic() + timeout
        while not pred(self):
            left = end - time.monotonic()
            if left <= 0:
                return False
            self.event.clear()
            try:
                await asyncio.wait_for(self.event.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass
        return True
