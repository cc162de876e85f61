"""gbmeter diag: local test set-up over the meter's physical port (not GBCS)."""

import json

from gbmeter.errors import UserError
from gbmeter.board.link import Link
from gbmeter.supplier.session import frame_alert_code

SET_FIELDS = ("time1", "time2", "payment", "balance", "ec_balance", "ec_limit", "ec_threshold",
              "acc_debt", "clock", "payment_pct", "time1_rate", "time1_freq", "time1_start",
              "time1_coll", "time2_rate", "time2_freq", "time2_start", "time2_coll")


def register(sub):
    p = sub.add_parser("diag", help="set state, advance the clock, top up, inject a fault",
                       description="Local diagnostics: the meter's physical port, for test "
                       "preconditions. GBCS Commands stay the only remote way to change a meter.")
    ops = p.add_subparsers(dest="op", metavar="OP", required=True)
    s = ops.add_parser("set", help="set registers, balances, mode and settings")
    for f in SET_FIELDS:
        s.add_argument("--" + f.replace("_", "-"), dest=f, type=int)
    s.add_argument("--mode", choices=("credit", "prepayment"))
    s.add_argument("--ec-active", choices=("true", "false"))
    a = ops.add_parser("advance", help="move the meter clock on (recovery runs)")
    a.add_argument("seconds", type=int)
    t = ops.add_parser("topup", help="top up the meter balance")
    t.add_argument("amount", type=int)
    f = ops.add_parser("fault", help="make the next Command fail at component/specification N")
    f.add_argument("--at", type=int, required=True)
    f.add_argument("--status", choices=("hardware", "failure", "other"), required=True)
    for q in (s, a, t, f):
        q.add_argument("--port", required=True)
        q.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    if args.op == "set":
        fields = {k: getattr(args, k) for k in SET_FIELDS + ("mode",) if getattr(args, k) is not None}
        if args.ec_active is not None:
            fields["ec_active"] = args.ec_active == "true"
        if not fields:
            raise UserError("nothing to set: give at least one field, e.g. --time1 100000")
        req = {"fields": fields}
    elif args.op == "advance":
        req = {"seconds": args.seconds}
    elif args.op == "topup":
        req = {"amount": args.amount}
    else:
        req = {"at": args.at, "status": args.status}
    with Link(args.port) as link:
        reply = link.diag(args.op, **req)
    frames = reply.pop("alerts", [])
    alerts = [frame_alert_code(raw) for raw in frames]
    reply.pop("ok", None)
    reply["alerts"] = alerts
    reply["alert_messages"] = [raw.hex() for raw in frames]  # exactly as received
    if args.json:
        print(json.dumps(reply))
    else:
        print(f"{args.op}: done" + (f"; alerts {', '.join(alerts)}" if alerts else ""))
    return 0
