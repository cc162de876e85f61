"""`gbmeter duis demo`: the demo's job through the DCC's front door. The DUIS web
service (gbmeter.dcc.web) with a virtual GSME and ESME, a Receive Response Service
(gbmeter.dcc.client.Listener), and a User who sends every Service Request as signed
DUIS over HTTP on 127.0.0.1: Update Debt, then the three Reset Debt Registers, per
meter. Each Service Response is verified at the listener (the DCC's XML signature,
the DUIS schema when given) and the meter's Response inside it (the meter's GBCS
signature, every part succeeded); the registers are read back over the meter's local
port between the steps."""

import asyncio
import tempfile
import time
from pathlib import Path

from gbmeter import paths
from gbmeter.dcc import client, duisxml, schema, srxml, web, xmlsig
from gbmeter.dcc.duis import REGISTERS
from gbmeter.dcc.web import SIM_DEFAULT_IDS, DuisService
from gbmeter.errors import UserError
from gbmeter.gbcs import codec, crypto, keys as gkeys
from gbmeter.supplier.answer import outcome

AMOUNTS = {"time1": 1000456, "time2": 500789, "payment": 1000000}
REC = {"gsme": ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"}),
       "esme": ({"rate": 3, "period": "DAILY", "price_scale": -1},
                {"rate": 3, "period": "DAILY", "price_scale": -1})}


def run(args):
    shared = paths.shared()
    if shared is None and not (args.keys and args.xml_keys):
        raise UserError("the front-door demo needs the ZAZ1 keys: ../shared, or --keys and "
                        "--xml-keys")
    keys_dir = Path(args.keys) if args.keys else shared / "gbcs" / "keys"
    xml_dir = Path(args.xml_keys) if args.xml_keys else shared / "duis" / "xmlsign"
    xsd_dir = args.xsd or (shared / "duis" / "xsd" if shared and (shared / "duis" / "xsd")
                           .is_dir() else None)
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gbmeter-duis-demo-"))
    web.QUIET = True
    return asyncio.run(_demo(keys_dir, xml_dir, xsd_dir, work, args.profile))


async def _demo(keys_dir, xml_dir, xsd_dir, work, profile):
    trust = xmlsig.TrustStore(xml_dir)
    schemas = schema.load(xsd_dir) if xsd_dir else None
    folder = gkeys.KeyFolder(keys_dir)
    listener = await client.Listener(trust, schemas).start()
    sims = [f"{d}:{SIM_DEFAULT_IDS[d]}:{profile}" for d in ("gsme", "esme")]
    svc = DuisService(listen="127.0.0.1:0", response_url=listener.url, keys_dir=keys_dir,
                      xml_keys=xml_dir, xsd_dir=xsd_dir, dcc_folder=work / "dcc", sims=sims)
    failed = 0
    table = []
    loop = asyncio.get_running_loop()
    print(f"starting the DUIS web service with a virtual GSME and ESME ({profile}) ...")
    await svc.start()
    try:
        print(f"DUIS service on {svc.url()}, responses to {listener.url}"
              + (f", schemas {xsd_dir}" if xsd_dir else ""))
        supplier = svc.session.supplier
        signer = trust.signer(supplier.eui)
        counter = int(time.time() * 1000)
        async with client.Client(svc.url(), signer, trust, folder, schemas) as c:
            for device in ("gsme", "esme"):
                meter = svc.meters[SIM_DEFAULT_IDS[device]]
                print(f"{device.upper()} {duisxml.eui(meter.id)} on {meter.port} ({meter.profile})")

                async def registers():
                    return await loop.run_in_executor(svc.pool, _registers, meter)

                await loop.run_in_executor(svc.pool, _prepayment, meter)
                before = await registers()
                counter += 1
                xml = srxml.update_debt_xml(supplier.title, bytes.fromhex(meter.id), counter,
                                            device, AMOUNTS["time1"], AMOUNTS["time2"],
                                            AMOUNTS["payment"], 100, *REC[device])
                failed += not await _step(c, listener, xml, meter, "Update Debt")
                held = await registers()
                for reg in REGISTERS:
                    counter += 1
                    xml = srxml.reset_debt_xml(supplier.title, bytes.fromhex(meter.id), counter,
                                               reg)
                    failed += not await _step(c, listener, xml, meter,
                                              f"Reset Debt Register {reg}")
                after = await registers()
                for reg in REGISTERS:
                    table.append((device.upper(), reg, before[reg], held[reg], after[reg]))
                    failed += after[reg] != 0 or held[reg] == before[reg]
    finally:
        await svc.stop()
        await listener.stop()
    print()
    print(f"{'meter':6} {'register':9} {'before':>10} {'held':>10} {'after':>10}")
    for row in table:
        print(f"{row[0]:6} {row[1]:9} {row[2]:>10} {row[3]:>10} {row[4]:>10}")
    print(f"{len(listener.messages)} Service Responses received at the listener, every one "
          f"signed by the DCC" + (" and valid DUIS" if schemas else ""))
    print("duis demo: " + ("all done through the front door" if not failed
                           else f"{failed} step(s) FAILED"))
    return 1 if failed else 0


def _registers(meter):
    return meter.link.diag("registers") if meter.link else _with_link(meter, "registers")


def _prepayment(meter):
    return _with_link(meter, "set", fields={"mode": "prepayment"})


def _with_link(meter, op, **kw):
    from gbmeter.board.link import Link
    if meter.link is None:
        meter.link = Link(meter.port)
    return meter.link.diag(op, **kw)


async def _step(c, listener, xml, meter, what):
    """One Service Request through the front door; True when the meter's Response
    arrived, signed by the DCC, with a verified meter signature and every part ok."""
    steps = await c.send(xml.encode())
    codes = [s.get("code") or f"HTTP {s['status']}" for s in steps]
    if codes != ["I0", "I99"]:
        print(f"  {what}: FAILED: the DCC answered {', '.join(codes)}: "
              f"{steps[-1].get('reason', '')}")
        return False
    rid = duisxml.response_id(steps[0]["reply"]["request_id"])
    if not await listener.wait_for(lambda lst: rid in lst.messages, 30):
        print(f"  {what}: FAILED: no Service Response {rid} at the listener")
        return False
    got = listener.messages[rid]
    if got["code"] != "I0" or not got.get("gbcs_payload"):
        print(f"  {what}: FAILED: Service Response {got['code']}")
        return False
    data = bytes.fromhex(got["gbcs_payload"])
    a = codec.parse_apdu(data)
    sig = crypto.verify_apdu(crypto.load_public_key(bytes.fromhex("04" + meter.ds)), data)
    parts, ok = outcome(a["message_code"], a["content"])
    status = ", ".join(f"{p} {s}" for p, s, _ in parts)
    print(f"  {what}: {codec.use_case_name(a['message_code'])} {steps[0]['reply']['request_id']}: "
          f"CV 4 I0, CV 5 I99, Service Response I0 signed by {got['signer']}; meter Response "
          + ("signature verified" if sig else "signature INVALID") + f" ({status})")
    return sig and ok
