"""`gbmeter duis demo` (what `make demo` runs): the demo's job through the DCC's
front door. The DUIS web service (gbmeter.dcc.web) with a virtual GSME and ESME, a
Receive Response Service (gbmeter.dcc.client.Listener), and a User who sends every
Service Request as signed DUIS over HTTP on 127.0.0.1, per meter: Update Payment Mode
to prepayment (SR 1.6, CV 4 / CV 5), Update Debt (SR 2.3), the registers read over
GBCS (SR 4.3, CV 1: the meter's Response MAC-checked and its sealed registers opened
with the Supplier's KA key, as the User does), the ESME switched to credit mode
(SR 1.6), the three Reset Debt Registers (SR 2.3, SRV 2.3.1), and the registers read
again. Each Service Response is verified at the listener (the DCC's XML signature,
the DUIS schema when there is one) and the meter's Response inside it (its GBCS
signature or MAC, every part succeeded).

Keys: a fresh test PKI (gbmeter.gbcs.pki) and XML-signing test keys made for it
(gbmeter.dcc.xmlpki) in the work folder, so nothing of gbmeter's home is used and no
../shared is needed; `--keys` / `--xml-keys` use others (the ZAZ1 ones). Schemas:
../shared/duis/xsd when present, else `--xsd`, else none (said so).

A profile whose meters do not know Reset Debt Register (smets2-pre): the DCC has no
say in what a meter's firmware knows, so each reset goes to the meter and comes back
as its alert 8F1E (a DeviceAlertMessage); `gbmeter demo` shows the host refusing them
before they are sent."""

import asyncio
import tempfile
import time
from pathlib import Path

from gbmeter import paths, profiles
from gbmeter.cli.demo import AMOUNTS, CREDIT_MODE_METER, METERS, held, keep_folder
from gbmeter.dcc import client, duisxml, schema, srxml, web, xmlpki, xmlsig
from gbmeter.dcc.duis import REGISTERS, RESET_DEBT_REGISTER
from gbmeter.dcc.precommand import PREPAYMENT_SUSPEND_DEBT
from gbmeter.dcc.web import DuisService
from gbmeter.errors import UserError
from gbmeter.gbcs import codec, crypto, keys as gkeys, pki
from gbmeter.supplier.answer import outcome

# the RTDS Update Debt recovery: the ESME's rates are a DLMS unit charge with a price
# scale (3 at -1 is 30000 units per period), as `gbmeter demo` sends
REC = {"gsme": ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"}),
       "esme": ({"rate": 3, "period": "DAILY", "price_scale": -1},
                {"rate": 3, "period": "DAILY", "price_scale": -1})}
ANSWER_WAIT = 30.0          # seconds for a Service Response to reach the listener
ALERT_GRACE = 0.3           # after a meter's alert, how long its Response may still follow (the
                            # DCC stores a Command's Response and alerts in one go)


def run(args):
    """Without --keep the boards and keys live in a temporary folder that is removed
    afterwards, whatever happens."""
    if args.keep:
        return _run(args, keep_folder(args.keep))
    with tempfile.TemporaryDirectory(prefix="gbmeter-duis-demo-") as work:
        return _run(args, Path(work))


def _keys(args, work):
    """(GBCS key folder, XML-signing folder, the DCC's XML key name)."""
    shared = paths.shared()
    if args.keys or args.xml_keys:
        kdir = Path(args.keys) if args.keys else (shared / "gbcs" / "keys" if shared else None)
        xdir = Path(args.xml_keys) if args.xml_keys else (
            shared / "duis" / "xmlsign" if shared else None)
        if kdir is None or xdir is None:
            raise UserError("--keys and --xml-keys go together when ../shared is absent (the "
                            "XML certificates name the GBCS parties)")
        trust = xmlsig.TrustStore(xdir)
        dcc = [c.name for c in trust.certs if c.ou == xmlpki.OU_DCC and c.key is not None]
        if not dcc:
            raise UserError(f"no DCC XML-signing key (OU {xmlpki.OU_DCC}, with its private key) "
                            f"in {xdir}")
        return kdir, xdir, xmlsig.DEFAULT_DCC_KEY if xmlsig.DEFAULT_DCC_KEY in dcc else dcc[0]
    kdir, xdir = work / "keys", work / "xmlsign"
    if not kdir.exists():
        made = pki.init(kdir)
        print(f"made a test PKI in {kdir}: " + ", ".join(f"{k} {v}" for k, v in made.items()))
    folder = gkeys.KeyFolder(kdir)
    if not xdir.exists():
        dcc = xmlpki.init(xdir, folder)
        print(f"made XML-signing test keys for it in {xdir} (the DCC signs with {dcc})")
    names = [n for n, ou, _ in xmlpki.names(folder) if ou == xmlpki.OU_DCC]
    return kdir, xdir, names[0]


def _run(args, work):
    kdir, xdir, dcc_key = _keys(args, work)
    shared = paths.shared()
    xsd_dir = args.xsd or (shared / "duis" / "xsd" if shared and (shared / "duis" / "xsd")
                           .is_dir() else None)
    if xsd_dir is None:
        print("no DUIS schemas (../shared/duis/xsd is absent, --xsd not given): the messages "
              "are checked by their signatures only")
    web.QUIET = True
    return asyncio.run(_demo(kdir, xdir, dcc_key, xsd_dir, work, args.profile))


class User:
    """The User System of the demo: signs and sends requests, waits for their answers
    at its listener, checks them, prints one line per step, counts failures."""

    def __init__(self, c, listener, supplier, dcc_name):
        self.c, self.listener, self.supplier = c, listener, supplier
        self.dcc_name = dcc_name
        self.counter = int(time.time() * 1000)
        self.failed = 0

    def next(self):
        self.counter = max(self.counter + 1, int(time.time() * 1000))
        return self.counter

    def fail(self, what, why):
        print(f"  {what}: FAILED: {why}")
        self.failed += 1

    async def answer(self, rid, meter, before):
        """What reached the listener for a request: ("response", summary), ("alerts",
        [summaries]) when the meter only refused it, or (None, None) on timeout."""
        prefix = duisxml.eui(meter.id) + ":"

        def alerts(lst):
            return [m for k, m in lst.messages.items() if k not in before and
                    m.get("kind") == "DeviceAlertMessage" and k.startswith(prefix)]

        await self.listener.wait_for(lambda lst: rid in lst.messages or alerts(lst), ANSWER_WAIT)
        if rid not in self.listener.messages and alerts(self.listener):
            await self.listener.wait_for(lambda lst: rid in lst.messages, ALERT_GRACE)
        if rid in self.listener.messages:
            return "response", self.listener.messages[rid]
        found = alerts(self.listener)
        return ("alerts", found) if found else (None, None)

    async def critical(self, what, xml, meter, want_alert=None):
        """A critical Service Request: CV 4 -> PRECOMMAND -> signed -> CV 5; True when
        the meter's Response arrived, signed by the DCC, with a verified meter
        signature and every part ok (or, with want_alert, the meter's refusal)."""
        before = set(self.listener.messages)
        steps = await self.c.send(xml.encode())
        codes = [s.get("code") or f"HTTP {s['status']}" for s in steps]
        if codes != ["I0", "I99"]:
            return self.fail(what, f"the DCC answered {', '.join(codes)}: "
                                   f"{steps[-1].get('reason', '')}")
        first = steps[0]["reply"]
        pre = codec.parse_apdu(bytes.fromhex(first["precommand"]))
        head = (f"{codec.use_case_name(pre['message_code'])} #{pre['counter']}: CV 4 I0, "
                f"CV 5 I99")
        kind, got = await self.answer(duisxml.response_id(first["request_id"]), meter, before)
        if kind is None:
            return self.fail(what, f"{head}; nothing at the listener in {ANSWER_WAIT:.0f} s")
        if kind == "alerts":
            codes = [a["alert_code"] for a in got]
            if want_alert in codes:
                print(f"  {what}: {head}; as expected: the meter refused it with alert "
                      f"{want_alert} (DeviceAlertMessage signed by {got[0]['signer']})")
                return True
            return self.fail(what, f"{head}; the meter refused it with alert "
                                   f"{', '.join(codes)}")
        if got["code"] != "I0" or not got.get("gbcs_payload"):
            return self.fail(what, f"{head}; Service Response {got['code']}")
        if want_alert:
            return self.fail(what, f"{head}; a Response where alert {want_alert} was expected")
        data = bytes.fromhex(got["gbcs_payload"])
        a = codec.parse_apdu(data)
        sig = crypto.verify_apdu(crypto.load_public_key(bytes.fromhex("04" + meter.ds)), data)
        parts, ok = outcome(a["message_code"], a["content"])
        status = ", ".join(f"{p} {s}" for p, s, _ in parts)
        if not (sig and ok and a["counter"] == pre["counter"]):
            return self.fail(what, f"{head}; meter Response "
                             + ("signature verified" if sig else "signature INVALID")
                             + f" ({status}), counter {a['counter']}")
        print(f"  {what}: {head}, Service Response I0 signed by {got['signer']}: meter "
              f"Response signature verified ({status})")
        return True

    async def read(self, meter):
        """SR 4.3 on CV 1: the registers, opened with the Supplier's KA key, or None."""
        what = "Read Instantaneous Prepay Values"
        before = set(self.listener.messages)
        xml = srxml.read_prepayment_registers_xml(self.supplier.title, bytes.fromhex(meter.id),
                                                  self.next())
        steps = await self.c.send(xml.encode())
        codes = [s.get("code") or f"HTTP {s['status']}" for s in steps]
        if codes != ["I99"]:
            self.fail(what, f"the DCC answered {', '.join(codes)}: "
                            f"{steps[-1].get('reason', '')}")
            return None
        rid = steps[0]["reply"]["request_id"]
        kind, got = await self.answer(duisxml.response_id(rid), meter, before)
        head = f"SR 4.3 #{rid.split(':')[2]}: CV 1 I99"
        if kind != "response" or got["code"] != "I0" or not got.get("gbcs_payload"):
            why = ("nothing at the listener" if kind is None else
                   f"alert {', '.join(a['alert_code'] for a in got)}" if kind == "alerts" else
                   f"Service Response {got['code']}")
            self.fail(what, f"{head}; {why}")
            return None
        try:
            opened = client.open_read(bytes.fromhex(got["gbcs_payload"]), self.supplier.ka_priv,
                                      bytes.fromhex("04" + meter.ka))
        except UserError as e:
            self.fail(what, f"{head}; {e}")
            return None
        if opened["counter"] != int(rid.split(":")[2]) or opened["originator"] != meter.id:
            self.fail(what, f"{head}; the Response is not this request's")
            return None
        print(f"  {what}: {opened['use_case']} #{opened['counter']}: CV 1 I99, Service Response "
              f"I0 signed by {got['signer']}: meter Response MAC verified, registers decrypted "
              "with the Supplier's KA key")
        return opened["registers"]


def _notes(profile, settings):
    uc = codec.load_usecases()
    out = []
    unknown = [RESET_DEBT_REGISTER["use_cases"][d] for d, _ in METERS
               if not profiles.knows(settings, uc.by_name(RESET_DEBT_REGISTER["use_cases"][d]))]
    if unknown:
        out.append(f"a {profile} meter does not know Reset Debt Register ({' / '.join(unknown)}):"
                   " the DCC does not stop it, so each reset goes to the meter and is refused "
                   "there with alert 8F1E (`gbmeter demo --profile " + profile + "` shows the "
                   "host refusing them before they are sent)")
    if profile.startswith("smets1"):
        out.append(f"{profile} meters answer in GBCS here, as everywhere in gbmeter: the DCC's "
                   "SMETS1 Service Provider path (SMETS1ResponseMessage) is not modelled")
    return out


async def _demo(kdir, xdir, dcc_key, xsd_dir, work, profile):
    settings = profiles.settings(profile)
    trust = xmlsig.TrustStore(xdir)
    schemas = schema.load(xsd_dir) if xsd_dir else None
    folder = gkeys.KeyFolder(kdir)
    uc = codec.load_usecases()
    for note in _notes(profile, settings):
        print("note: " + note)
    listener = await client.Listener(trust, schemas).start()
    svc = DuisService(listen="127.0.0.1:0", response_url=listener.url, keys_dir=kdir,
                      xml_keys=xdir, xsd_dir=xsd_dir, dcc_folder=work / "dcc",
                      sims=[f"{d}:{m}:{profile}" for d, m in METERS], dcc_key=dcc_key)
    table = []
    print(f"starting the DUIS web service with a virtual GSME and ESME ({profile}) ...")
    await svc.start()
    try:
        print(f"DUIS service on {svc.url()}, Service Responses to the listener on "
              f"{listener.url}" + (f", schemas {xsd_dir}" if xsd_dir else ""))
        supplier = svc.session.supplier
        signer = trust.signer(supplier.eui)
        async with client.Client(svc.url(), signer, trust, folder, schemas) as c:
            user = User(c, listener, supplier, dcc_key)
            for device, meter_id in METERS:
                meter = svc.meters[meter_id]
                print(f"{device.upper()} {duisxml.eui(meter.id)} on {meter.port} "
                      f"({meter.profile}), requests signed by {signer.name}")
                title = bytes.fromhex(meter.id)

                def mode(m):
                    flags = PREPAYMENT_SUSPEND_DEBT[device] if m == "prepayment" else (False,
                                                                                      False)
                    return srxml.update_payment_mode_xml(supplier.title, title, user.next(), m,
                                                         *flags)

                await user.critical("Update Payment Mode prepayment", mode("prepayment"), meter)
                await user.critical("Update Debt", srxml.update_debt_xml(
                    supplier.title, title, user.next(), device, AMOUNTS["time1"],
                    AMOUNTS["time2"], AMOUNTS["payment"], 100, *REC[device]), meter)
                before = await user.read(meter)
                if before is None:
                    continue
                for reg in REGISTERS:
                    if before[reg] != held(settings, AMOUNTS[reg]):
                        user.fail(f"Update Debt {reg}", f"the meter holds {before[reg]}, "
                                  f"expected {held(settings, AMOUNTS[reg])}")
                if device == CREDIT_MODE_METER:
                    await user.critical("Update Payment Mode credit", mode("credit"), meter)
                knows = profiles.knows(settings,
                                       uc.by_name(RESET_DEBT_REGISTER["use_cases"][device]))
                for reg in REGISTERS:
                    await user.critical(f"Reset Debt Register {reg}", srxml.reset_debt_xml(
                        supplier.title, title, user.next(), reg), meter,
                        None if knows else "8F1E")
                after = await user.read(meter)
                if after is None:
                    continue
                for reg in REGISTERS:
                    want = 0 if knows else before[reg]
                    table.append((device.upper(), reg, AMOUNTS[reg], before[reg], after[reg],
                                  want))
                    user.failed += after[reg] != want
    finally:
        await svc.stop()
        await listener.stop()
    failed = user.failed + (len(table) != 2 * len(REGISTERS)) + len(listener.refused)
    print()
    print(f"{profile} meters, through the front door")
    print(f"{'meter':6} {'register':9} {'sent':>10} {'held':>10} {'after':>10} {'expected':>10}")
    for row in table:
        print(f"{row[0]:6} {row[1]:9} {row[2]:>10} {row[3]:>10} {row[4]:>10} {row[5]:>10}")
    print(f"{len(listener.messages)} Service Responses and alerts received at the listener, "
          f"every one signed by the DCC ({dcc_key})" + (" and valid DUIS 5.4" if schemas else "")
          + (f"; {len(listener.refused)} refused there: {listener.refused[0]}"
             if listener.refused else ""))
    print("duis demo: " + (f"all done through the front door, every meter behaved as a {profile}"
                           " meter should" if not failed else f"{failed} step(s) FAILED"))
    return 1 if failed else 0
