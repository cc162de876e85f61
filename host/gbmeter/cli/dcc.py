"""gbmeter dcc: the DCC's front door. `gbmeter dcc serve` runs the DUIS web service
(gbmeter.dcc.web) with virtual or real meters behind it; `gbmeter dcc outbox` shows
what it has sent and still holds; `gbmeter dcc adt` sets the anomaly detection
thresholds and limits (adt.json, read on every check, so a running service applies a
change at once); `gbmeter dcc quarantine` lists, releases or discards the Signed
Pre-Commands it holds (a running service sends a released one within half a second)."""

import argparse
import asyncio
import json
import os

from gbmeter.cli._parser import usage
from gbmeter.dcc import xmlsig
from gbmeter.dcc.anomaly import DEFAULT_CONFIG, LIMIT_KEYS, Dcc, check_config
from gbmeter.dcc.outbox import Outbox, Replay
from gbmeter.errors import UserError
from gbmeter.gbcs import codec


def register(sub):
    p = sub.add_parser("dcc", help="the DCC's DUIS web service (serve) and its state",
                       description="Play the DCC behind the DUIS web service that DCC Boxed "
                                   "users point their User Systems at.")
    ds = p.add_subparsers(dest="dcc_verb", metavar="ACTION")
    s = ds.add_parser(
        "serve", help="run the DUIS web service until interrupted",
        description="Serve /api/v1/serviceT (CV 4), /api/v1/serviceS (CV 5; CV 1 for "
                    "the non-critical reads of SR 4.3) and "
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
                        "(default: $GBMETER_DCC_DIR, else dcc/ in gbmeter's home)")
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
    a = ds.add_parser("adt", help="anomaly detection thresholds and limits (a running "
                                  "service applies changes at once)")
    a.add_argument("--dcc-dir", metavar="DIR")
    acts = a.add_subparsers(dest="adt_verb", metavar="ACTION")
    sh = acts.add_parser("show", help="the thresholds and limits in force")
    sh.add_argument("--json", action="store_true")
    sh.set_defaults(func=run_adt_show)
    th = acts.add_parser("threshold", help="set (or --remove) a volume threshold: at most "
                                           "LIMIT Commands of USE_CASE (or *) per User in "
                                           "WINDOW seconds")
    th.add_argument("use_case", metavar="USE_CASE|*")
    th.add_argument("--limit", type=int)
    th.add_argument("--window", type=int, metavar="SECONDS", default=3600)
    th.add_argument("--remove", action="store_true")
    th.set_defaults(func=run_adt_threshold)
    li = acts.add_parser("limit", help="set a value limit of the packet inspection, GCS04 "
                                       "and ECS07 alike (" + ", ".join(LIMIT_KEYS) + ")")
    li.add_argument("name", choices=LIMIT_KEYS)
    li.add_argument("value", type=int)
    li.set_defaults(func=run_adt_limit)
    a.set_defaults(func=lambda args: usage(a))
    q = ds.add_parser("quarantine", help="Signed Pre-Commands the service holds: list, "
                                         "release (sent to the meter) or discard")
    q.add_argument("--dcc-dir", metavar="DIR")
    qa = q.add_subparsers(dest="q_verb", metavar="ACTION")
    ql = qa.add_parser("list")
    ql.add_argument("--json", action="store_true")
    ql.set_defaults(func=run_q_list)
    for name, helptext in (("release", "send it to its meter"), ("discard", "never send it")):
        qx = qa.add_parser(name, help=helptext)
        qx.add_argument("id", type=int, help="the command id (`gbmeter dcc quarantine list`)")
        qx.set_defaults(func=run_q_change, action=name)
    q.set_defaults(func=lambda args: usage(q))
    p.set_defaults(func=lambda args: usage(p))


def _dcc_dir(args):
    return getattr(args, "dcc_dir", None)


def _write_config(d, cfg):
    """adt.json rewritten whole or not at all, checked first."""
    checked = check_config(cfg)
    out = {"about": DEFAULT_CONFIG["about"], **checked}
    d.path.mkdir(parents=True, exist_ok=True)
    tmp = d.config_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    os.replace(tmp, d.config_path)
    return out


def run_adt_show(args):
    d = Dcc(_dcc_dir(args))
    cfg = d.config()
    if args.json:
        print(json.dumps({"file": str(d.config_path), **cfg}))
        return 0
    print(f"{d.config_path}:")
    for t in cfg["thresholds"]:
        print(f"  threshold {t['use_case']:7} at most {t['limit']} per User in "
              f"{t['window_seconds']} s")
    for k, v in cfg["gcs04_limits"].items():
        print(f"  limit {k} {v}")
    return 0


def run_adt_threshold(args):
    d = Dcc(_dcc_dir(args))
    cfg = d.config()
    rest = [t for t in cfg["thresholds"] if t["use_case"] != args.use_case]
    if args.remove:
        if len(rest) == len(cfg["thresholds"]):
            raise UserError(f"no threshold for {args.use_case} in {d.config_path}")
    else:
        if args.limit is None:
            raise UserError("give --limit N (or --remove)")
        if args.use_case != "*" and codec.load_usecases().by_name(args.use_case) is None:
            raise UserError(f"{args.use_case} is not a use case this DCC knows")
        rest.append({"use_case": args.use_case, "limit": args.limit,
                     "window_seconds": args.window})
    _write_config(d, dict(cfg, thresholds=rest))
    return run_adt_show(argparse.Namespace(dcc_dir=_dcc_dir(args), json=False))


def run_adt_limit(args):
    d = Dcc(_dcc_dir(args))
    cfg = d.config()
    _write_config(d, dict(cfg, gcs04_limits=dict(cfg["gcs04_limits"], **{args.name: args.value})))
    return run_adt_show(argparse.Namespace(dcc_dir=_dcc_dir(args), json=False))


def run_q_list(args):
    box = Outbox(Dcc(_dcc_dir(args)).path)
    rows = box.quarantined()
    if args.json:
        print(json.dumps([{k: (v.hex() if isinstance(v, bytes) else v) for k, v in r.items()}
                          for r in rows]))
        return 0
    if not rows:
        print("no Signed Pre-Command held")
    for r in rows:
        why = "; ".join((r["verdict"] or {}).get("reasons") or [])
        print(f"{r['id']:5}  {r['use_case']:7} {r['request_id']}  {why}")
    return 0


def run_q_change(args):
    box = Outbox(Dcc(_dcc_dir(args)).path)
    try:
        getattr(box, args.action)(args.id)
    except Replay:
        raise UserError(f"command {args.id} is not quarantined (`gbmeter dcc quarantine list`)")
    print(f"command {args.id} " + ("released: the service sends it to its meter"
                                   if args.action == "release" else "discarded: never sent"))
    return 0


def run_serve(args):
    from gbmeter.dcc.web import DuisService, listen_address
    listen_address(args.listen)     # a bad address is named before any board starts
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
