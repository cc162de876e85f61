"""gbmeter dcc: the DCC's front door. `gbmeter dcc serve` runs the DUIS web service
(gbmeter.dcc.web) with virtual or real meters behind it; `gbmeter dcc outbox` shows
what it has sent and still holds."""

import asyncio
import json

from gbmeter.dcc import xmlsig
from gbmeter.dcc.anomaly import Dcc
from gbmeter.dcc.outbox import Outbox


def register(sub):
    p = sub.add_parser("dcc", help="the DCC's DUIS web service (serve) and its state",
                       description="Play the DCC behind the DUIS web service that DCC Boxed "
                                   "users point their User Systems at.")
    ds = p.add_subparsers(dest="dcc_verb", metavar="ACTION")
    s = ds.add_parser(
        "serve", help="run the DUIS web service until interrupted",
        description="Serve /api/v1/serviceT (CV 4), /api/v1/serviceS (CV 5) and "
                    "/api/v1/serviceD (CV 8) over HTTP, with virtual boards (--sim) or "
                    "real ones (--inventory) behind it. Every request's XML signature is "
                    "checked, every response signed with the DCC's XML key; the meters' "
                    "Responses and alerts go to --response-url, stored first and retried "
                    "until it answers 2xx.")
    s.add_argument("--listen", default="127.0.0.1:8079", metavar="HOST:PORT",
                   help="where to listen (default 127.0.0.1:8079; port 0 picks a free one)")
    s.add_argument("--response-url", metavar="URL",
                   help="the User's Receive Response Service (without it Responses wait in "
                        "the outbox)")
    s.add_argument("--keys", metavar="DIR",
                   help="GBCS key folder: the ACB and the parties the meters trust "
                        "(default ../shared/gbcs/keys)")
    s.add_argument("--xml-keys", metavar="DIR",
                   help="XML-signing trust store with the DCC's own key "
                        "(default ../shared/duis/xmlsign)")
    s.add_argument("--dcc-key", metavar="NAME",
                   help=f"the DCC's XML-signing certificate in --xml-keys "
                        f"(default {xmlsig.DEFAULT_DCC_KEY})")
    s.add_argument("--xsd", metavar="DIR",
                   help="folder of the official DUIS 5.4 / MMC 5.4 schemas: requests and "
                        "responses are validated against them (and gbmeter's extension)")
    s.add_argument("--dcc-dir", metavar="DIR",
                   help="the DCC folder: anomaly detection, the outbox, the virtual boards "
                        "(default: $GBMETER_DCC_DIR, else ./.gbmeter/dcc)")
    s.add_argument("--sim", action="append", default=[], metavar="gsme|esme[:EUI[:PROFILE]]",
                   help="start and provision a virtual board (repeatable)")
    s.add_argument("--inventory", metavar="FILE",
                   help='real boards: JSON {"<system title>": {"port", "device", "profile"}}')
    s.add_argument("--max-bytes", type=int, default=xmlsig.MAX_BYTES,
                   help=f"the largest request body accepted (default {xmlsig.MAX_BYTES})")
    s.add_argument("--retry-max", type=float, default=2.0, metavar="SECONDS",
                   help="the longest wait between two delivery tries (default 2)")
    s.add_argument("--meter-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long a meter has to answer a Command before E21 (default 10)")
    s.add_argument("--json", action="store_true",
                   help="print one JSON line when every device answers")
    s.set_defaults(func=run_serve)
    o = ds.add_parser("outbox", help="the Service Responses and alerts stored for the User")
    o.add_argument("--dcc-dir", metavar="DIR")
    o.add_argument("--json", action="store_true")
    o.set_defaults(func=run_outbox)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_serve(args):
    from gbmeter.dcc.web import DuisService
    svc = DuisService(listen=args.listen, response_url=args.response_url, keys_dir=args.keys,
                      xml_keys=args.xml_keys, xsd_dir=args.xsd, dcc_folder=args.dcc_dir,
                      sims=args.sim, inventory=args.inventory, dcc_key=args.dcc_key,
                      max_bytes=args.max_bytes, retry_max=args.retry_max,
                      meter_timeout=args.meter_timeout)

    def ready(service):
        info = service.describe()
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"DUIS service on {info['url']} (DCC folder {info['dcc_dir']}); responses to "
                  f"{info['response_url'] or 'nowhere yet (no --response-url)'}", flush=True)
            for d in info["devices"]:
                print(f"  {d['type'].upper()} {d['id']} ({d['profile']}) on {d['port']}",
                      flush=True)
            print("Ctrl-C stops it", flush=True)

    asyncio.run(svc.run(ready))
    return 0


def run_outbox(args):
    box = Outbox(Dcc(args.dcc_dir).path)
    rows = box.messages()
    if args.json:
        print(json.dumps({"dir": str(box.path), "messages": rows}))
        return 0
    if not rows:
        print(f"nothing in {box.path}")
    for r in rows:
        print(f"{r['id']:5}  {r['state']:9}  {r['kind']:18} {r['response_id']}  "
              f"tries {r['attempts']}" + (f"  last: {r['last_error']}" if r["last_error"] and
                                          r["state"] != "delivered" else ""))
    return 0
