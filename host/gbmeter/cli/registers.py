"""gbmeter registers: read a meter's whole state over the local port."""

import json

from gbmeter import profiles
from gbmeter.board.link import Link
from gbmeter.cli._common import add_port, add_timeout
from gbmeter.cli.ping import not_provisioned


def register(sub):
    p = sub.add_parser("registers", help="read debt registers, balances, mode and counters",
                       description="Read the meter's whole state over its local port: "
                       "profile and settings, the three debt registers and their recovery "
                       "settings, balances, emergency credit, mode, clock, a pending "
                       "injected fault, and the last originator counter accepted from each "
                       "party. Money in 0.00001 GBP (shown in GBP too).")
    add_port(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object: the meter's read-out as it sends it "
                        "(`ping --json` says whether it is provisioned)")
    add_timeout(p)
    p.set_defaults(func=run)


def read(link):
    r = link.diag("registers")
    for k in ("ok", "alerts"):
        r.pop(k, None)
    return r


def pounds(units):
    return f"£{units / 100000:,.5f}"


def recovery(r, name):
    """A debt register's recovery settings in words."""
    rec = r.get(f"{name}_recovery") or {}
    if name == "payment":
        return f"recovery {rec.get('pct', 0) / 100:g} % of each top-up" if rec else ""
    if not rec:
        return ""
    period = ("hour", "day")[rec.get("freq", 1)] if rec.get("freq") in (0, 1) else "?"
    return f"recovery {rec.get('rate')} per {period}"


def yes(flag):
    return "yes" if flag else "no"


def run(args):
    with Link(args.port, timeout=args.timeout) as link:
        hello = link.ping()
        r = read(link)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['device'].upper()} {r['id']} ({r.get('profile')}), {r['mode']} mode, clock {r['clock']}")
    if r.get("settings"):
        print(f"  settings: {profiles.text(r['settings'])}")
    for name, label in (("time1", "Time Debt Register 1"), ("time2", "Time Debt Register 2"),
                        ("payment", "Payment Debt Register")):
        print(f"  {label:24} {r[name]:>12}  {pounds(r[name])}  {recovery(r, name)}")
    print(f"  {'meter balance':24} {r['balance']:>12}  {pounds(r['balance'])}")
    print(f"  {'emergency credit':24} {r['ec_balance']:>12}  active: {yes(r['ec_active'])}")
    print(f"  {'accumulated debt':24} {r['acc_debt']:>12}")
    if r.get("fault"):
        f = r["fault"]
        print(f"  pending fault: part {f.get('at')} of the next Command fails ({f.get('status')})")
    for who, c in sorted(r.get("counters", {}).items()):
        print(f"  last counter from {who}: {c}")
    note = not_provisioned(hello, args.port)
    if note:
        print(f"  {note}")
    return 0
