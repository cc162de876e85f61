"""gbmeter quarantine: show the DCC's quarantine log (the SQLite file in the DCC
folder) and the notifications recorded with it."""

import json

from gbmeter import dcc


def register(sub):
    p = sub.add_parser("quarantine", help="the DCC's quarantined Commands")
    qs = p.add_subparsers(dest="quarantine_verb", metavar="ACTION")
    pl = qs.add_parser("list", help="list quarantined Commands and notifications")
    pl.add_argument("--json", action="store_true",
                    help='one JSON object: {"dir", "quarantined": [...], "notifications": [...]}')
    pl.add_argument("--dcc-dir", metavar="DIR",
                    help="the DCC folder (default: $GBMETER_DCC_DIR, else ./.gbmeter/dcc)")
    pl.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def run_list(args):
    d = dcc.Dcc(args.dcc_dir)
    rows, notes = d.quarantined(), d.notifications()
    if args.json:
        print(json.dumps({"dir": str(d.path), "quarantined": rows, "notifications": notes}))
        return 0
    if not rows:
        print(f"no quarantined Commands in {d.db_path}")
    for r in rows:
        print(f"{r['id']:4}  {r['time']}  {r['use_case']:7} {r['originator']} -> "
              f"{r['target']}  counter {r['counter']}  [{r['check']}] {r['reason']}")
    if notes:
        print("notifications:")
        for n in notes:
            print(f"{n['id']:4}  {n['time']}  to {n['originator']}: {n['text']}")
    return 0
