"""`gbmeter dcc serve`: the DCC's DUIS web service (../shared/gbcs/NOTES.md section 8)
with virtual or real meters behind it.

    POST /api/v1/serviceT   CV 4: a critical Service Request -> signed I0 holding the
                            PRECOMMAND (ResponseMessage/PreCommand/GBCSPayload)
    POST /api/v1/serviceS   CV 5: the Signed Pre-Command -> Supplier signature, Parse
                            and Correlate against the CV 4 request, anomaly detection,
                            ACB MAC, the meter; synchronous I99, the meter's Response
                            later to the User's Receive Response Service (--response-url);
                            CV 1: a non-critical Service Request (SR 4.3's reads) -> the
                            DCC's own Command, ACB MAC, the meter; I99, the Response later
    POST /api/v1/serviceD   CV 8: 8.2 Read Inventory -> I0 with DSPInventory

Every request is parsed with the hardened parser (gbmeter.dcc.xmlsig), its XML
signature verified against the trust store, validated against the DUIS 5.4 XSD when
a schema folder is given (gbmeter.dcc.schema; without one the strict reader of
gbmeter.dcc.duis decides), and its signer must be the RequestID's originator.
Every message the service sends is signed with the DCC's XML key and, with a schema
folder, checked against the XSD before it leaves.

Durability (gbmeter.dcc.outbox): a Signed Pre-Command is recorded before it is
acknowledged and marked "sending" before its bytes go to the meter; a restart never
sends a "sending" one again (the User gets E21: the outcome is not known). Each
Service Response and alert is stored signed before it is sent and retried with
backoff until the User's endpoint answers 2xx.

One Command at a time per meter (one worker per meter); meters run in parallel. A
meter's port is held while it has Commands and let go after PORT_IDLE seconds without
one, so `gbmeter registers --port P` (or any verb) can look at a board meanwhile;
a Command that finds the port held waits for it, up to $GBMETER_PORT_WAIT (then E20).
README "DUIS web service" has the table of every code and HTTP status it answers.

Why one module of some 800 lines: every flow above shares one set of per-meter
workers, one outbox and one ordering rule (a request is recorded before it is
acknowledged, marked before it is sent), and the durability argument is only
checkable with all of them in view. What is not part of that argument lives apart:
XML security (xmlsig, schema, xmlpki), the messages (duisxml), the store (outbox),
the DCC's checks (correlate, anomaly, inspection, precommand) and the User's side
(client).
"""

import asyncio
import collections
import concurrent.futures
import datetime
import json
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
from aiohttp import web
from lxml import etree

from gbmeter import paths
from gbmeter.board.link import T_ALERT, T_RESPONSE, Link, LinkError
from gbmeter.dcc import duis, duisxml, xmlsig
from gbmeter.dcc import schema as xsd
from gbmeter.dcc.anomaly import Dcc, dcc_dir, threshold_for
from gbmeter.dcc.correlate import correlate
from gbmeter.dcc.outbox import NoRequest, Outbox, Replay
from gbmeter.dcc.precommand import GBCS_EPOCH, gbcs_seconds, parse_now, transform
from gbmeter.errors import UserError
from gbmeter.gbcs import codec, crypto, keys as gkeys
from gbmeter.supplier.provision import provision
from gbmeter.supplier.session import Session

NS = duis.NS
DEFAULT_LISTEN = "127.0.0.1:8079"
ENDPOINTS = {"serviceT": "transform", "serviceS": "send", "serviceD": "non-device"}
# the endpoint of each Command Variant (DUIS: CV 4 Transform, CV 1/3/5/7 Send
# Command, CV 2/6/8 Non-Device)
CV_ENDPOINT = {4: "serviceT", 1: "serviceS", 3: "serviceS", 5: "serviceS", 7: "serviceS",
               2: "serviceD", 6: "serviceD", 8: "serviceD"}
SERVED_CV = (1, 4, 5, 8)
READ_INVENTORY = ("8.2", "8.2")
SIM_DEFAULT_IDS = {"esme": "00db1234567890a0", "gsme": "00db1234567890a1"}
RETRY_FIRST = 0.05              # seconds before the first retry, doubling
RETRY_MAX = 2.0                 # the longest wait between two tries
DELIVERY_PARALLEL = 16          # messages on their way to the User's endpoint at once
TRANSFORMED_KEPT = 4096         # CV 4 requests kept read for their CV 5
METER_TIMEOUT = 10.0            # seconds a meter has to answer a Command
PORT_IDLE = 1.0                 # seconds without a Command before a meter's port is let go


QUIET = False                   # True: no log lines (the front-door demo prints its own)


def log(*parts):
    if QUIET:
        return
    t = time.time()
    print(time.strftime("%H:%M:%S", time.localtime(t)) + f".{int(t * 1000) % 1000:03d}", *parts,
          file=sys.stderr, flush=True)


class Refusal(Exception):
    """A request refused at the HTTP level: status and plain-text reason."""

    def __init__(self, status, reason):
        super().__init__(reason)
        self.status = status


class Coded(Exception):
    """A request answered with a DUIS error code (a signed sr:Response)."""

    def __init__(self, code, reason):
        super().__init__(reason)
        self.code = code


@dataclass
class Meter:
    id: str                         # 16 lowercase hex digits
    device: str                     # esme / gsme
    port: str
    profile: str = None
    supplier: str = None            # the Supplier this meter trusts
    firmware: str = None
    ds: str = None
    ka: str = None
    board: object = None            # VirtualBoard when --sim started it
    link: object = None
    queue: asyncio.Queue = field(default=None, repr=False)
    # held while the link is used or changed (the worker's thread, the idle release)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    last_used: float = 0.0          # time.monotonic() when the link was last used

    def describe(self):
        return {"id": self.id, "type": self.device, "profile": self.profile, "port": self.port,
                "ds": self.ds, "ka": self.ka}


def parse_sim(spec):
    """gsme|esme[:EUI[:PROFILE]] -> (device, eui or None, profile or None)."""
    parts = spec.split(":")
    if parts[0] not in duis.DEVICES or len(parts) > 3:
        raise UserError(f"--sim {spec!r}: expected gsme|esme[:EUI[:PROFILE]]")
    eui = gkeys.normalise_title(parts[1]) if len(parts) > 1 and parts[1] else None
    profile = parts[2] if len(parts) > 2 and parts[2] else None
    return parts[0], eui, profile


def read_inventory(path):
    """--inventory FILE: {"<system title>": {"port": ..., "device": esme|gsme,
    "profile": ...}, ...}."""
    data = json.loads(Path(path).read_text()) if Path(path).exists() else None
    if not isinstance(data, dict):
        raise UserError(f"--inventory {path}: expected a JSON object of system title -> "
                        '{"port", "device", "profile"}')
    out = []
    for k, v in data.items():
        eui = gkeys.normalise_title(k)
        if not isinstance(v, dict) or v.get("device") not in duis.DEVICES or not v.get("port"):
            raise UserError(f"--inventory {path}: {k}: needs port and device (esme or gsme)")
        out.append((v["device"], eui, v.get("profile"), v["port"]))
    return out


def listen_address(text):
    host, _, port = str(text).rpartition(":")
    if not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise UserError(f"--listen {text!r}: expected HOST:PORT with a port from 0 to "
                        f"65535, e.g. {DEFAULT_LISTEN}")
    return host.strip("[]"), int(port)


class DuisService:
    def __init__(self, listen=DEFAULT_LISTEN, response_url=None, keys_dir=None, xml_keys=None,
                 xsd_dir=None, dcc_folder=None, sims=(), inventory=None, dcc_key=None,
                 max_bytes=xmlsig.MAX_BYTES, retry_max=RETRY_MAX, meter_timeout=METER_TIMEOUT):
        shared = paths.shared()
        if keys_dir is None:
            if shared is None:
                raise UserError("--keys DIR: the GBCS key folder (the ACB and the parties the "
                                "meters trust) is needed when ../shared is absent")
            keys_dir = shared / "gbcs" / "keys"
        if xml_keys is None:
            if shared is None:
                raise UserError("--xml-keys DIR: the XML-signing trust store and the DCC's key "
                                "are needed when ../shared is absent")
            xml_keys = shared / "duis" / "xmlsign"
        self.host, self.port = listen_address(listen)
        self.response_url = response_url
        self.session = Session(keys_dir)
        self.trust = xmlsig.TrustStore(xml_keys)
        self.dcc_signer = self.trust.signer(dcc_key)
        self.schemas = xsd.load(xsd_dir) if xsd_dir else None
        self.dcc = Dcc(dcc_folder)
        self.folder = self.dcc.path
        self.sims = [parse_sim(s) for s in sims]
        self.inventory_file = inventory
        self.max_bytes = max_bytes
        self.retry_max = retry_max
        self.meter_timeout = meter_timeout
        self.meters = {}
        self.db = None
        self.tasks = []
        self.runner = None
        self.pool = None
        self.wake = None
        self.stopping = False
        self.queued = set()
        self.dcc_store = None           # held open: see start()
        self.meter_ka = {}              # meter id -> its KA public key (read once)
        self.endpoint_down = False      # the last delivery failed: one message at a time
        # request id -> the Service Request read at its CV 4, for its CV 5 (not read
        # again from the stored XML; after a restart, or beyond the bound, it is)
        self.transformed = collections.OrderedDict()

    # --- meters ----------------------------------------------------------------------------

    def _start_meters(self):
        """Start and provision the --sim boards, open the --inventory ones."""
        specs = []
        taken = set()
        for device, eui, profile in self.sims:
            if eui is None:
                eui = SIM_DEFAULT_IDS[device]
                if eui in taken:
                    raise UserError(f"--sim {device}: give each extra {device} its own system "
                                    f"title ({device}:EUI)")
            if eui in taken:
                raise UserError(f"--sim: system title {eui} given twice")
            taken.add(eui)
            specs.append((device, eui, profile, None))
        if self.inventory_file:
            for spec in read_inventory(self.inventory_file):
                if spec[1] in taken:
                    raise UserError(f"--inventory: system title {spec[1]} given twice")
                taken.add(spec[1])
                specs.append(spec)
        if not specs:
            raise UserError("no meters: give --sim gsme|esme[:EUI[:PROFILE]] or --inventory FILE")
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(specs)) as pool:
            futures = [pool.submit(self._start_meter, *s) for s in specs]
            errors = []
            for f in futures:
                try:
                    m = f.result()
                    self.meters[m.id] = m
                except Exception as e:          # every board is stopped below, then raise
                    errors.append(e)
        if errors:
            self._stop_meters()
            raise errors[0]

    def _board_dir(self, eui):
        return self.folder / "boards" / eui

    def _end_orphan(self, folder):
        """A virtual board this service started before a kill -9 may still run on
        its folder: end that process (by the pid this service recorded)."""
        f = folder / "unix-port.pid"
        try:
            pid = int(f.read_text())
        except (OSError, ValueError):
            return
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            cwd = os.readlink(f"/proc/{pid}/cwd")
        except OSError:
            return
        if b"micropython" in cmdline and Path(cwd).resolve() == folder.resolve():
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
            for _ in range(50):
                if not Path(f"/proc/{pid}").exists():
                    break
                time.sleep(0.05)

    def _start_meter(self, device, eui, profile, port):
        from gbmeter.board.sim import VirtualBoard
        board = None
        if port is None:
            folder = self._board_dir(eui)
            self._end_orphan(folder)
            fresh = not (folder / "device.json").exists()
            board = VirtualBoard(dir=folder, device=device, profile=profile if fresh else None)
            board.start()
            (folder / "unix-port.pid").write_text(str(board.pid))
            port = board.port
        try:
            with Link(port) as link:
                hello = link.ping()
                record = self.session.meter_record(eui)
                # a fresh board already answers with a default id: it is provisioned
                # unless it says it is (a record from an earlier board is not its keys)
                if (hello.get("id") != eui or record is None or hello.get("device") != device
                        or not hello.get("provisioned", True)
                        or (profile and hello.get("profile") != profile)):
                    if board is None and hello.get("id") != eui:
                        raise UserError(f"--inventory: the meter on {port} is "
                                        f"{hello.get('id')}, not {eui}")
                    provision(self.session, link, device, eui, profile=profile)
                    hello = link.ping()
                    record = self.session.meter_record(eui)
            return Meter(eui, device, port, hello.get("profile"),
                         record.get("supplier") or self.session.supplier.eui,
                         str(hello.get("fw", ""))[:8] or None, record.get("ds"),
                         record.get("ka"), board)
        except BaseException:
            if board is not None:
                board.stop()
            raise

    def _stop_meters(self):
        for m in self.meters.values():
            if m.link is not None:
                try:
                    m.link.close()
                except Exception:
                    pass
                m.link = None
            if m.board is not None:
                m.board.stop()
                try:
                    (self._board_dir(m.id) / "unix-port.pid").unlink()
                except OSError:
                    pass

    def _exchange(self, meter, command):
        """(kind, frames or reason) for one COMMAND, in a worker thread: "frames",
        "E20" (not sent: the port does not open, or another process held it for
        longer than $GBMETER_PORT_WAIT) or "E21" (sent, no full answer)."""
        with meter.lock:
            try:
                if meter.link is None:
                    try:
                        meter.link = Link(meter.port, timeout=self.meter_timeout)
                    except UserError as e:          # LinkError, PortBusy
                        return "E20", str(e)
                try:
                    return "frames", meter.link.gbcs(command)
                except LinkError as e:
                    self._close_link(meter)
                    return "E21", str(e)
            finally:
                meter.last_used = time.monotonic()

    @staticmethod
    def _close_link(meter):
        if meter.link is not None:
            try:
                meter.link.close()
            except Exception:
                pass
            meter.link = None

    def _let_go_idle_ports(self):
        """Close the link of a meter that had no Command for PORT_IDLE seconds (its
        port's lock goes with it); never one in use (its lock is held then)."""
        now = time.monotonic()
        for m in self.meters.values():
            if m.link is None or now - m.last_used < PORT_IDLE or not m.queue.empty():
                continue
            if m.lock.acquire(blocking=False):
                try:
                    if m.link is not None and time.monotonic() - m.last_used >= PORT_IDLE:
                        self._close_link(m)
                finally:
                    m.lock.release()

    # --- signing and checking what leaves -------------------------------------------------------

    def _signed(self, root):
        """The bytes of a message this service made, signed, and (with schemas) valid:
        the signed tree is validated, then serialised as it is."""
        signed = xmlsig.signed_tree(root, self.dcc_signer, in_place=True)
        if self.schemas is not None:
            self.schemas.validate(signed)
        return xmlsig.tostring(signed)

    # --- requests -----------------------------------------------------------------------------

    async def handle(self, request):
        endpoint = request.match_info["endpoint"]
        started = time.perf_counter()
        try:
            header, reply = await self._handle(request, endpoint)
            code = reply.findtext(f"{{{NS}}}Header/{{{NS}}}ResponseCode")
            log(f"{endpoint} CV {header.command_variant} {header.request_id}: {code} "
                f"({(time.perf_counter() - started) * 1000:.1f} ms)")
            return web.Response(body=self._signed(reply), content_type="application/xml")
        except Refusal as r:
            log(f"{endpoint}: HTTP {r.status}: {r}")
            return web.Response(status=r.status, text=str(r) + "\n")

    async def _handle(self, request, endpoint):
        if request.content_type != "application/xml":
            raise Refusal(415, f"Content-Type {request.content_type or '(none)'}: a DUIS request "
                               "is application/xml")
        try:
            data = await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise Refusal(413, f"the body is over the {self.max_bytes}-byte limit") from None
        try:
            root = xmlsig.parse(data, self.max_bytes)
        except xmlsig.XmlError as e:
            raise Refusal(413 if e.kind == "size" else 400, str(e)) from None
        try:
            verified = xmlsig.verify(root, self.trust, self.max_bytes)
        except xmlsig.XmlError as e:
            raise Refusal(401, str(e)) from None
        signed = verified.root
        try:
            if self.schemas is not None:
                self.schemas.validate(root)
            header = duisxml.read_header(signed)
        except xmlsig.XmlError as e:
            raise Refusal(400, str(e)) from None
        if verified.signer.eui != header.originator:
            raise Refusal(401, f"the request is signed by {verified.signer.name} (system title "
                               f"{(verified.signer.eui or '?').upper()}), not by its "
                               f"originator {header.originator.upper()}")
        try:
            return header, self._route(endpoint, header, signed)
        except Coded as c:
            log(f"  {header.request_id}: {c.code}: {c}")
            return header, duisxml.ack(header, c.code)

    def _route(self, endpoint, header, signed):
        cv = header.command_variant
        if CV_ENDPOINT.get(cv) != endpoint:
            raise Coded("E13", f"CV {cv} does not go to /api/v1/{endpoint}")
        if cv not in SERVED_CV:
            raise Coded("E12", f"CV {cv} is not served by this DCC")
        party = self.session.keys.parties.get(header.originator)
        if party is None:
            raise Coded("E1", f"{header.originator.upper()} is not a party in "
                              f"{self.session.keys.path}")
        if cv == 8:
            return self._non_device(header, signed, party)
        if cv == 4:
            return self._transform(header, signed, party)
        if cv == 1:
            return self._non_critical(header, signed, party)
        return self._send(header, signed, party)

    def _check_counter(self, header):
        last = self.db.last_counter(header.originator)
        if last is not None and header.counter <= last:
            raise Refusal(409, f"RequestID counter {header.counter} does not rise above "
                               f"{last}, the last one accepted from "
                               f"{header.originator.upper()} (a replay?)")

    def _meter_for(self, header, party, use_case):
        meter = self.meters.get(header.target)
        if meter is None:
            raise Coded("E19", f"device {duisxml.eui(header.target)} is not in the inventory")
        row = codec.load_usecases().by_name(use_case)
        if row is not None and party.role not in row[4]:
            raise Coded("E2", f"{party.role_name} {header.originator.upper()} may not send "
                              f"{use_case}")
        if party.role == gkeys.ROLE_SUPPLIER and meter.supplier != header.originator:
            raise Coded("E4", f"Supplier {header.originator.upper()} is not the Supplier of "
                              f"device {duisxml.eui(meter.id)}")
        return meter, row

    def _service_request(self, xml, header):
        meter = self.meters.get(header.target)
        if meter is None:
            raise Coded("E19", f"device {duisxml.eui(header.target)} is not in the inventory")
        try:
            return duis.parse_request(xml, inventory={meter.id: meter.device})
        except UserError as e:
            if str(e).startswith("device:"):
                raise Coded("E11", str(e)) from None
            raise Refusal(400, f"the Service Request: {e}") from None

    def _transform(self, header, signed, party):
        if header.body == "SignedPreCommand":
            raise Coded("E12", "a SignedPreCommand is CV 5, sent to /api/v1/serviceS")
        self._check_counter(header)
        xml = etree.tostring(signed)
        req = self._service_request(xml, header)
        meter, row = self._meter_for(header, party, req.use_case)
        if row is not None and not row[3]:
            raise Coded("E12", f"{req.use_case} is not critical: it is CV 1, not CV 4")
        now = parse_now(None)
        pre = transform(req, now)
        try:
            self.db.add_request(header, req.use_case, xml, pre, gbcs_seconds(now))
        except Replay as e:
            raise Refusal(409, str(e)) from None
        self.transformed[header.request_id] = req
        while len(self.transformed) > TRANSFORMED_KEPT:
            self.transformed.popitem(last=False)
        return duisxml.precommand(header, pre)

    def _send(self, header, signed, party):
        if header.body != "SignedPreCommand":
            raise Coded("E12", f"CV 5 carries a SignedPreCommand, not sr:{header.body}")
        rec = self.db.request(header.request_id)
        if rec is None:
            raise Refusal(422, f"no CV 4 request {header.request_id} before this CV 5: send the "
                               "Service Request to /api/v1/serviceT first")
        if rec["state"] != "transformed":
            raise Refusal(409, f"request {header.request_id} was completed by an earlier CV 5: "
                               "a Signed Pre-Command is accepted once")
        if (rec["service_reference"], rec["service_reference_variant"]) != (
                header.service_reference, header.service_reference_variant):
            raise Coded("E12", f"SR {header.service_reference} / SRV "
                               f"{header.service_reference_variant} is not the CV 4 request's "
                               f"{rec['service_reference']} / {rec['service_reference_variant']}")
        meter, _ = self._meter_for(header, party, rec["use_case"])
        text = signed.findtext(f"{{{NS}}}Body/{{{NS}}}SignedPreCommand/{{{NS}}}GBCSPayload")
        try:
            payload = xmlsig.unb64(text)
        except UserError as e:
            raise Refusal(400, str(e)) from None
        req = self.transformed.pop(header.request_id, None)
        if req is None:
            req = self._service_request(rec["xml"], header)
        made = GBCS_EPOCH + datetime.timedelta(seconds=rec["made_at"])
        try:
            corr = correlate(req, payload, self.session.keys, now=made)
        except UserError as e:
            raise Refusal(422, f"the GBCSPayload is not a Signed Pre-Command: {e}") from None
        if not corr.correlates or corr.signature != "valid" or payload[:1] != b"\xdf":
            raise Refusal(422, "Parse and Correlate: the Signed Pre-Command does not match the "
                               "Service Request:\n" + corr.text())
        try:
            cmd = self.db.accept(header.request_id, meter.id, payload)
        except (Replay, NoRequest) as e:
            raise Refusal(409, str(e)) from None
        self._detect(cmd, header, payload, meter)
        return duisxml.ack(header, "I99")

    def _non_critical(self, header, signed, party):
        """CV 1: a non-critical Service Request (the reads of SR 4.3). The DCC builds
        the Command itself: nothing for the User to sign, nothing to correlate or
        inspect; it is recorded, released to its meter at once (MAC'd as the ACB by
        the meter's worker) and acknowledged with I99. The meter's Response follows
        to the response URL as it came (MAC'd, its registers sealed for the
        Supplier's KA key: the User opens them, the DCC cannot)."""
        if header.body == "SignedPreCommand":
            raise Coded("E12", "a SignedPreCommand is CV 5, not CV 1")
        self._check_counter(header)
        xml = etree.tostring(signed)
        req = self._service_request(xml, header)
        meter, row = self._meter_for(header, party, req.use_case)
        if row is None or row[3]:
            raise Coded("E12", f"{req.use_case} is critical: it is CV 4 (then CV 5), not CV 1")
        now = parse_now(None)
        pre = transform(req, now)
        try:
            cmd = self.db.add_direct(header, req.use_case, xml, pre, gbcs_seconds(now), meter.id,
                                     self.session.sign_if_critical(pre))
        except Replay as e:
            raise Refusal(409, str(e)) from None
        self._enqueue(meter, cmd)
        return duisxml.ack(header, "I99")

    def _detect(self, cmd, header, payload, meter):
        """Anomaly detection on an accepted command: release it to its meter or hold
        it (AD1 to the User)."""
        verdict = self.dcc.check(payload)
        self._settle(cmd, header.request_id, verdict.as_json(), meter, header.originator)

    def _settle(self, cmd, request_id, verdict, meter, originator):
        if verdict["release"]:
            self.db.set_state(cmd, "released", verdict, expect="received")
            self._enqueue(meter, cmd)
            return
        choice = self._ad1_choice(verdict)
        rid = f"{duisxml.DCC_EUI}:{duisxml.eui(originator)}:{self.db.dcc_counter()}"
        alert = self._signed(duisxml.quarantined(rid, choice, request_id,
                                                 verdict.get("quarantine_id") or 0))
        self.db.set_state(cmd, "quarantined", verdict, [(rid, "DCCAlert AD1", alert)],
                          expect="received")
        log(f"  {request_id}: quarantined ({'; '.join(verdict.get('reasons') or [])}); AD1 "
            f"{choice}")
        self.wake.set()

    def _ad1_choice(self, verdict):
        if verdict.get("check") == "threshold":
            cfg = self.dcc.config(create=False)
            own = any(t["use_case"] == verdict.get("use_case") for t in cfg["thresholds"])
            return "ADUserThresholdBreach" if own else "ADDCCThresholdBreach"
        return "ADAttributeLimitsBreach"

    def _non_device(self, header, signed, party):
        if (header.service_reference, header.service_reference_variant) != READ_INVENTORY:
            raise Coded("E12", f"SR {header.service_reference} is not a Non-Device request this "
                               "DCC serves (8.2 Read Inventory)")
        if header.body != "ReadInventory":
            raise Refusal(400, f"8.2 Read Inventory carries sr:ReadInventory, not sr:{header.body}")
        try:
            self.db.take_counter(header.originator, header.counter)
        except Replay as e:
            raise Refusal(409, str(e)) from None
        ask = signed.findtext(f"{{{NS}}}Body/{{{NS}}}ReadInventory/{{{NS}}}DeviceID")
        meters = sorted(self.meters.values(), key=lambda m: m.id)
        if ask is not None:
            eui = ask.strip().replace("-", "").lower()
            meters = [m for m in meters if m.id == eui]
            if not meters:
                raise Coded("E19", f"device {ask.strip()} is not in the inventory")
        return duisxml.inventory(header, [{"id": m.id, "device": m.device, "profile": m.profile,
                                           "firmware": m.firmware} for m in meters])

    # --- meters' workers ----------------------------------------------------------------------

    async def _meter_worker(self, meter):
        loop = asyncio.get_running_loop()
        while True:
            cmd_id = await meter.queue.get()
            self.queued.discard(cmd_id)
            cmd = self.db.command(cmd_id)
            if cmd is None or cmd["state"] != "released":
                continue
            rec = self.db.request(cmd["request_id"])
            try:
                command = self._wrap(cmd["signed"], meter)
            except UserError as e:
                kind, result = "E20", f"cannot MAC the Command for {meter.id}: {e}"
                self.db.set_state(cmd_id, "sending", expect="released")
            else:
                self.db.set_state(cmd_id, "sending", expect="released")
                kind, result = await loop.run_in_executor(self.pool, self._exchange, meter,
                                                          command)
            outgoing = self._answers(rec, meter, kind, result)
            self.db.set_state(cmd_id, "done", outgoing=outgoing)
            log(f"  {rec['request_id']}: meter {meter.id}: "
                + (", ".join(k for _, k, _ in outgoing) or "nothing to send")
                + ("" if kind == "frames" else f" ({result})"))
            self.wake.set()

    def _wrap(self, signed, meter):
        """The COMMAND for a Signed Pre-Command: MAC'd as the ACB (Session.wrap with
        the meter's KA key read once: the service holds the meter's port, so nothing
        provisions it anew meanwhile)."""
        pub = self.meter_ka.get(meter.id)
        if pub is None:
            pub = self.meter_ka[meter.id] = self.session.meter_key(meter.id, "ka")
        return crypto.wrap(self.session.acb().ka_priv, pub, signed)

    def _answers(self, rec, meter, kind, result):
        """The signed messages for what a meter did with a Command."""
        ref, srv, rid = rec["service_reference"], rec["service_reference_variant"], rec["request_id"]
        if kind != "frames":
            return [(duisxml.response_id(rid), kind,
                     self._signed(duisxml.error_response(rid, ref, srv, kind)))]
        out = []
        for f in result:
            if f.type == T_ALERT:
                out.append(self._alert(f.payload, meter))
            elif f.type == T_RESPONSE:
                out.append((duisxml.response_id(rid), "Response",
                            self._signed(duisxml.service_response(rid, ref, srv, f.payload))))
        return [o for o in out if o is not None]

    def _alert(self, payload, meter):
        try:
            apdu = codec.parse_message(payload).get("apdu", payload) if payload[:1] == b"\xdd" \
                else payload
            a = codec.parse_apdu(apdu)
            code = codec.alert_code(a["message_code"], a["content"])
        except codec.DecodeError as e:
            log(f"  meter {meter.id}: an alert that does not decode ({e}): not forwarded")
            return None
        rid = f"{duisxml.eui(a['originator'])}:{duisxml.eui(a['recipient'])}:{a['counter']}"
        return (rid, f"DeviceAlert {code or 0:04X}",
                self._signed(duisxml.device_alert(rid, code or 0, payload)))

    # --- delivery ------------------------------------------------------------------------------

    def backoff(self, attempts):
        return min(RETRY_FIRST * (2 ** attempts), self.retry_max)

    async def _deliver(self):
        """Send what the outbox holds, oldest first, up to DELIVERY_PARALLEL at once
        over kept-alive connections; while the endpoint fails, one at a time (the
        others wait for their backoff)."""
        timeout = aiohttp.ClientTimeout(total=10)
        connector = aiohttp.TCPConnector(limit=DELIVERY_PARALLEL)
        inflight = {}
        try:
            async with aiohttp.ClientSession(timeout=timeout, connector=connector) as http:
                while True:
                    room = 1 if self.endpoint_down else DELIVERY_PARALLEL
                    if self.response_url and len(inflight) < room:
                        for r in self.db.due(limit=DELIVERY_PARALLEL + len(inflight)):
                            if len(inflight) >= room:
                                break
                            if r["id"] not in inflight:
                                inflight[r["id"]] = asyncio.create_task(
                                    self._post(http, r, inflight))
                    nxt = self.db.next_due() if self.response_url else None
                    wait = 1.0 if nxt is None else max(0.0, min(1.0, nxt - time.time()))
                    if inflight and nxt is not None and nxt <= time.time():
                        wait = 1.0          # due but no room: a delivery ending wakes us
                    self.wake.clear()
                    try:
                        await asyncio.wait_for(self.wake.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
        finally:
            for t in inflight.values():
                t.cancel()
            await asyncio.gather(*inflight.values(), return_exceptions=True)

    async def _post(self, http, r, inflight):
        try:
            try:
                async with http.post(self.response_url, data=r["xml"],
                                     headers={"Content-Type": "application/xml"}) as resp:
                    await resp.read()
                    ok, err = 200 <= resp.status < 300, f"HTTP {resp.status}"
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                ok, err = False, f"{type(e).__name__}: {e}"
            if ok:
                self.db.delivered(r["id"])
            else:
                self.db.failed(r["id"], err, self.backoff(r["attempts"]))
                if r["attempts"] == 0:
                    log(f"delivery of {r['response_id']} failed ({err}): retrying")
            self.endpoint_down = not ok
        finally:
            inflight.pop(r["id"], None)
            self.wake.set()

    # --- start, restart and stop ---------------------------------------------------------------

    def _recover(self):
        """After a restart: commands caught mid-way are settled, none is sent twice."""
        for cmd in self.db.commands("sending"):
            rec = self.db.request(cmd["request_id"])
            msg = duisxml.error_response(rec["request_id"], rec["service_reference"],
                                         rec["service_reference_variant"], "E21")
            self.db.set_state(cmd["id"], "done",
                              outgoing=[(duisxml.response_id(rec["request_id"]), "E21",
                                         self._signed(msg))])
            log(f"recovered {rec['request_id']}: the service stopped while the meter had it; "
                "not sent again, E21 (outcome not known)")
        for cmd in self.db.commands("received"):
            rec = self.db.request(cmd["request_id"])
            meter = self.meters.get(cmd["meter"])
            verdict = self._recorded_verdict(cmd, rec)
            if meter is None:
                continue
            if verdict is None:
                verdict = self.dcc.check(cmd["signed"]).as_json()
            self._settle(cmd["id"], rec["request_id"], verdict, meter, rec["originator"])
        self._pick_up_released()

    def _enqueue(self, meter, cmd_id):
        if cmd_id not in self.queued:
            self.queued.add(cmd_id)
            meter.queue.put_nowait(cmd_id)

    def _pick_up_released(self):
        """Released commands not queued yet: after a restart, or released from the
        quarantine by `gbmeter dcc quarantine release` while the service runs."""
        for cmd in self.db.commands("released"):
            meter = self.meters.get(cmd["meter"])
            if meter is not None:
                self._enqueue(meter, cmd["id"])

    async def _poll(self):
        while True:
            await asyncio.sleep(0.5)
            self._pick_up_released()
            self._let_go_idle_ports()

    def _recorded_verdict(self, cmd, rec):
        """What anomaly detection recorded for a command before a restart, or None."""
        orig, target = rec["originator"].upper(), rec["target"].upper()
        counter = int(rec["counter"])
        with self.dcc.store(read_only=True) as st:
            for q in st.quarantined():
                if (q["originator"], q["target"], q["counter"]) == (orig, target, counter):
                    return {"release": False, "check": q["check"], "use_case": q["use_case"],
                            "reasons": [q["reason"]], "quarantine_id": q["id"]}
            for v in st.volume():
                if (v["originator"], v["target"], v["counter"], v["use_case"]) == (
                        orig, target, counter, rec["use_case"]):
                    return {"release": True, "use_case": v["use_case"]}
        return None

    def url(self):
        return f"http://{self.host}:{self.port}"

    async def start(self):
        self.wake = asyncio.Event()
        self.db = Outbox(self.folder)
        # dcc.sqlite held open while the service runs: each check's own connection
        # then never is the last to close, so it does not checkpoint (fsync) each time
        self.dcc_store = self.dcc.store()
        self.dcc.config()           # writes the default adt.json once
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self._start_meters)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(self.meters) + 1)
        for m in self.meters.values():
            m.queue = asyncio.Queue()
        self._recover()
        app = web.Application(client_max_size=self.max_bytes)
        app.router.add_post("/api/v1/{endpoint:serviceT|serviceS|serviceD}", self.handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = site._server.sockets[0].getsockname()[1]
        self.tasks = [asyncio.create_task(self._deliver()), asyncio.create_task(self._poll())]
        self.tasks += [asyncio.create_task(self._meter_worker(m)) for m in self.meters.values()]

    async def stop(self):
        for t in self.tasks:
            t.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.runner is not None:
            await self.runner.cleanup()
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        await asyncio.get_running_loop().run_in_executor(None, self._stop_meters)
        if self.db is not None:
            self.db.close()
        if self.dcc_store is not None:
            self.dcc_store.close()

    def describe(self):
        return {"url": self.url(), "dcc_dir": str(self.folder),
                "response_url": self.response_url,
                "devices": [m.describe() for m in sorted(self.meters.values(), key=lambda m: m.id)]}

    async def run(self, on_ready=None):
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(s, done.set)
        try:
            await self.start()
            if on_ready:
                on_ready(self)
            await done.wait()
        finally:
            await self.stop()
