"""gbmeter registers: read a meter's whole state over the local port."""

import json

from gbmeter import profiles
from gbmeter.board.link import Link


def register(sub):
    p = sub.add_parser("registers", help="read debt registers, balances, mode and counters")
    p.add_argument("--port", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def read(link):
    r = link.diag("registers")
    for k in ("ok", "alerts"):
        r.pop(k, None)
    return r


def pounds(units):
    return f"£{units / 100000:,.5f}"


def run(args):
    with Link(args.port) as link:
        r = read(link)
    if args.json:
        print(json.dumps(r))
        return 0
    print(f"{r['device'].upper()} {r['id']} ({r.get('profile')}), {r['mode']} mode, clock {r['clock']}")
    if r.get("settings"):
        print(f"  settings: {profiles.text(r['settings'])}")
    for name, label in (("time1", "Time Debt Register 1"), ("time2", "Time Debt Register 2"),
                        ("payment", "Payment Debt Register")):
        print(f"  {label:24} {r[name]:>12}  {pounds(r[name])}")
    print(f"  {'meter balance':24} {r['balance']:>12}  {pounds(r['balance'])}")
    print(f"  {'emergency credit':24} {r['ec_balance']:>12}  active: {r['ec_active']}")
    print(f"  {'accumulated debt':24} {r['acc_debt']:>12}")
    for who, c in sorted(r.get("counters", {}).items()):
        print(f"  last counter from {who}: {c}")
    return 0
