"""gbmeter quarantine: the DCC's quarantine log (the SQLite file in the DCC folder) and
the notifications recorded with it; `release` sends a quarantined Command after all
(the User's say-so, as the DCC's quarantine release), `clear` drops it unsent."""

import json

from gbmeter import dcc
from gbmeter.board.link import Interrupted, Link, OutcomeUnknown
from gbmeter.cli._common import DCC_DIR_HELP, KEYS_HELP, add_force, add_port, add_timeout
from gbmeter.cli._parser import usage
from gbmeter.errors import UserError
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import describe


def register(sub):
    p = sub.add_parser("quarantine", help="the DCC's quarantined Commands: list, release, clear",
                       description="Commands the DCC's anomaly detection quarantined are "
                       "never sent. `list` shows them (ids as `release` and `clear` take "
                       "them); `release ID` sends one after all, as the DCC does when its "
                       "User says so; `clear ID` drops one, never sent. Both record a "
                       "notification.")
    qs = p.add_subparsers(dest="quarantine_verb", metavar="ACTION")
    pl = qs.add_parser("list", help="list quarantined Commands and notifications")
    pl.add_argument("--json", action="store_true",
                    help='one JSON object: {"dir", "quarantined": [...], "notifications": [...]}')
    pl.add_argument("--dcc-dir", metavar="DIR", help=DCC_DIR_HELP)
    pl.set_defaults(func=run_list)
    pr = qs.add_parser("release", help="send a quarantined Command to the meter after all",
                       description="Wrap the quarantined Signed Pre-Command as the ACB and "
                       "send it to the meter on PORT; the Response is checked as `send` "
                       "checks it. It leaves the quarantine once sent (whatever the meter "
                       "answers) and counts for the volume thresholds from then. Its counter "
                       "is the one it was signed with: if the meter has accepted a higher "
                       "one since, it answers 8F53.")
    pr.add_argument("id", type=int, metavar="ID", help="the id `quarantine list` shows")
    add_port(pr)
    add_timeout(pr)
    pr.add_argument("--keys", metavar="DIR", help=KEYS_HELP + "; it needs the ACB")
    pr.add_argument("--dcc-dir", metavar="DIR", help=DCC_DIR_HELP)
    add_force(pr)
    pr.add_argument("--json", action="store_true")
    pr.set_defaults(func=run_release)
    pc = qs.add_parser("clear", help="drop quarantined Commands, never sending them")
    pc.add_argument("ids", type=int, nargs="*", metavar="ID", help="the ids to drop")
    pc.add_argument("--all", action="store_true", help="drop every quarantined Command")
    pc.add_argument("--dcc-dir", metavar="DIR", help=DCC_DIR_HELP)
    pc.add_argument("--json", action="store_true")
    pc.set_defaults(func=run_clear)
    p.set_defaults(func=lambda args: usage(p))


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


def _what(row):
    return f"Command {row['use_case']} to {row['target']} counter {row['counter']}"


def run_release(args):
    d = dcc.Dcc(args.dcc_dir)
    row = d.quarantined_command(args.id)
    signed = bytes.fromhex(row["hex"])
    m = dcc.read_signed_precommand(signed)
    if not m["signature"]:
        raise UserError(f"quarantined {args.id} is a bare PRECOMMAND (no Supplier "
                        "signature): a meter would refuse it; clear it instead")
    s = Session(args.keys, row["originator"].lower())
    meter_id = row["target"].lower()
    with Link(args.port, timeout=args.timeout) as link:
        command = s.wrap(signed, meter_id)
        s.used_counter(meter_id, row["counter"])
        try:
            result = s.send(link, command, force=args.force)
        except (OutcomeUnknown, Interrupted) as e:
            d.settle(args.id, "released", f"{_what(row)} released by the User and sent; no "
                     "answer read")
            raise e
    result["quarantine_id"] = args.id
    result["notification_id"] = d.settle(
        args.id, "released", f"{_what(row)} released by the User and sent: {describe(result)}")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"released {args.id} from the quarantine in {d.path}: {describe(result)}")
    return 0 if result["ok"] else 2


def run_clear(args):
    d = dcc.Dcc(args.dcc_dir)
    if args.all == bool(args.ids):
        raise UserError("name the quarantined Commands to drop (ids from `gbmeter quarantine "
                        f"list --dcc-dir {d.path}`), or give --all", exit_code=64)
    ids = [r["id"] for r in d.quarantined()] if args.all else args.ids
    rows = [d.quarantined_command(i) for i in ids]     # every id checked before any goes
    for r in rows:
        d.settle(r["id"], "cleared", f"{_what(r)} cleared by the User: never sent")
    if args.json:
        print(json.dumps({"dir": str(d.path), "cleared": ids}))
    else:
        print(f"cleared {len(ids)} quarantined Command(s) from {d.path}"
              + (f": {', '.join(map(str, ids))}" if ids else ""))
    return 0
