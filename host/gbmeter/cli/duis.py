"""gbmeter duis: a User's DUIS client, for a user without a User System.

  gbmeter duis send FILE.xml --url URL     sign a Service Request with the User's XML key
                                           and send it; a CV 4 is followed by its CV 5
                                           (the PRECOMMAND signed as the Supplier); a
                                           CV 1 (SR 4.3, non-critical) answers I99 and
                                           its Response goes to the response URL
  gbmeter duis listen --port N             a Receive Response Service: verify, print and
                                           store each Service Response and alert

Exit codes of send: 0 every step answered I0 / I99, 2 the DCC refused a step (a DUIS
error code or an HTTP error), 1 bad input here."""

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from gbmeter.cli._parser import usage
from gbmeter import paths
from gbmeter.dcc import client, schema, xmlsig
from gbmeter.errors import UserError
from gbmeter.gbcs import keys as gkeys


def _shared(*parts):
    s = paths.shared()
    return s.joinpath(*parts) if s is not None else None


def _trust(args):
    folder = args.xml_keys or _shared("duis", "xmlsign")
    if folder is None:
        raise UserError("--xml-keys DIR is needed when ../shared is absent")
    return xmlsig.TrustStore(folder)


def _common(p):
    p.add_argument("--xml-keys", metavar="DIR",
                   help="XML-signing keys and trust store (default ../shared/duis/xmlsign)")
    p.add_argument("--xsd", metavar="DIR",
                   help="check the DCC's messages against the DUIS 5.4 schemas in DIR")
    p.add_argument("--json", action="store_true", help="one JSON object per line")


def register(sub):
    p = sub.add_parser("duis", help="a User's DUIS client: send requests, receive responses")
    ds = p.add_subparsers(dest="duis_verb", metavar="ACTION")
    s = ds.add_parser("send", help="sign and send a Service Request (CV 4 -> CV 5 followed; "
                                       "CV 1 -> I99)")
    s.add_argument("request", metavar="FILE.xml", help="the Service Request (- for stdin)")
    s.add_argument("--url", required=True, help="the DCC, e.g. http://127.0.0.1:8079")
    s.add_argument("--xml-key", metavar="NAME",
                   help="the User's XML-signing certificate in --xml-keys (default: the one "
                        "of the RequestID's originator)")
    s.add_argument("--keys", metavar="DIR",
                   help="GBCS key folder: the Supplier's DS key signs the PRECOMMAND "
                        "(default ../shared/gbcs/keys)")
    s.add_argument("--counter", metavar="N|now",
                   help="replace the RequestID counter (now: the time in ms)")
    s.add_argument("--no-follow", action="store_true", help="send only the request itself")
    _common(s)
    s.set_defaults(func=run_send)
    lp = ds.add_parser("listen", help="receive Service Responses and alerts")
    lp.add_argument("--port", type=tcp_port, required=True)
    lp.add_argument("--host", default="127.0.0.1")
    lp.add_argument("--store", metavar="DIR", help="keep each message as DIR/<ResponseID>.xml")
    lp.add_argument("--count", type=int, metavar="N", help="stop after N messages")
    _common(lp)
    lp.set_defaults(func=run_listen)
    from gbmeter import profiles
    dm = ds.add_parser("demo", help="the demo's job through the front door (make demo): the "
                                    "DUIS service with a virtual GSME and ESME, every request "
                                    "signed DUIS over HTTP",
                       description="The DUIS web service with a virtual GSME and ESME of one "
                       "device profile, and a User sending signed DUIS over HTTP: Update "
                       "Payment Mode prepayment (SR 1.6, CV 4/5), Update Debt, the registers "
                       "read over GBCS (SR 4.3, CV 1, decrypted with the Supplier's KA key), "
                       "the ESME switched to credit mode (SR 1.6), the three Reset Debt "
                       "Registers and the registers read again; each Service Response "
                       "verified at a listener. Keys: a fresh test PKI and XML-signing keys "
                       "in the work folder unless --keys / --xml-keys.")
    dm.add_argument("--profile", default="smets2", choices=profiles.names(),
                    help="device profile of both meters")
    dm.add_argument("--keep", metavar="DIR", help="keep the keys, DCC folder and boards in DIR")
    dm.add_argument("--keys", metavar="DIR",
                    help="GBCS keys (default: a fresh test PKI; with --xml-keys alone "
                         "../shared/gbcs/keys)")
    dm.add_argument("--xml-keys", metavar="DIR",
                    help="XML-signing keys naming the GBCS parties (default: made for the "
                         "fresh PKI; with --keys alone ../shared/duis/xmlsign)")
    dm.add_argument("--xsd", metavar="DIR",
                    help="DUIS schemas (default ../shared/duis/xsd when present)")
    dm.set_defaults(func=run_demo)
    p.set_defaults(func=lambda args: usage(p))


def run_demo(args):
    from gbmeter.cli import _frontdoor
    return _frontdoor.run(args)


def _read(path):
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise UserError(f"cannot read {path}: {e.strerror}") from None


def run_send(args):
    data = _read(args.request)
    if args.counter:
        data = client.set_counter(data, args.counter if args.counter == "now" else int(args.counter))
    root = xmlsig.parse(data)
    rid = (root.findtext(f"{{{client.NS}}}Header/{{{client.NS}}}RequestID") or "").strip()
    trust = _trust(args)
    if args.xml_key:
        signer = trust.signer(args.xml_key)
    else:
        if not rid:
            raise UserError("the request has no sr:Header/sr:RequestID")
        signer = trust.signer(gkeys.normalise_title(rid.split(":")[0]))
    kdir = args.keys or _shared("gbcs", "keys")
    keys = gkeys.KeyFolder(kdir) if kdir else None
    schemas = schema.load(args.xsd) if args.xsd else None

    async def go():
        async with client.Client(args.url, signer, trust, keys, schemas) as c:
            return await c.send(data, follow=not args.no_follow)

    try:
        steps = asyncio.run(go())
    except OSError as e:
        raise UserError(f"cannot reach {args.url}: {e}") from None
    ok = True
    for st in steps:
        good = st["status"] == 200 and st.get("code") in ("I0", "I99")
        ok &= good
        if args.json:
            print(json.dumps(st))
        elif st["status"] != 200:
            print(f"{st['endpoint']}: HTTP {st['status']}: {st.get('reason')}")
        elif "reply" not in st:
            print(f"{st['endpoint']}: {st.get('reason')}")
        else:
            r = st["reply"]
            extra = f" PreCommand {r['precommand']}" if r.get("precommand") else ""
            print(f"{st['endpoint']}: {r['code']} {r.get('request_id')} (signed by "
                  f"{r['signer']}){extra}")
    return 0 if ok else 2


def describe(s):
    head = f"{s.get('code')} {s.get('response_id') or s.get('request_id')} {s.get('kind')}"
    if s.get("kind") == "DeviceAlertMessage":
        head += f" alert {s.get('alert_code')}"
    if s.get("kind") == "DCCAlertMessage":
        q = s.get("quarantined") or {}
        head += f" {s.get('dcc_alert_code')} {q.get('choice')} {q.get('request_id')}"
    if s.get("gbcs_payload"):
        head += f" GBCSPayload {s['gbcs_payload']}"
    if s.get("duplicate"):
        head += " (again: already received)"
    return head + f" (signed by {s.get('signer')})"


def run_listen(args):
    trust = _trust(args)
    schemas = schema.load(args.xsd) if args.xsd else None

    async def go():
        done = asyncio.Event()
        seen = []

        def show(s):
            print(json.dumps(s) if args.json else describe(s), flush=True)
            seen.append(s)
            if args.count and len([x for x in seen if not x.get("duplicate")]) >= args.count:
                done.set()

        lst = client.Listener(trust, schemas, args.store, show)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, done.set)
        await lst.start(args.host, args.port)
        if not args.json:
            print(f"listening on {lst.url}", flush=True)
        try:
            await done.wait()
        finally:
            await lst.stop()

    asyncio.run(go())
    return 0


def tcp_port(text):
    """argparse type: a TCP port number (0 lets the system choose one)."""
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number from 0 to 65535")
    return int(text)
