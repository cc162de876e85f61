"""gbmeter diag: local test set-up over the meter's physical port (not GBCS)."""

import argparse
import json
import re

from gbmeter.errors import UserError
from gbmeter.board.link import Link, MeterError
from gbmeter.cli._common import add_port, add_timeout
from gbmeter.supplier.answer import frame_alert_code

# field -> help: units and meaning (firmware/meter.py describes the state)
SET_HELP = {
    "time1": "Time Debt Register 1, in 0.00001 GBP (1000 = one penny)",
    "time2": "Time Debt Register 2, in 0.00001 GBP",
    "payment": "Payment Debt Register, in 0.00001 GBP",
    "balance": "meter balance, in 0.00001 GBP (may be negative)",
    "ec_balance": "emergency credit balance: what is left of it, in 0.00001 GBP",
    "ec_limit": "emergency credit limit: what activating it makes available, in 0.00001 GBP",
    "ec_threshold": "emergency credit is offered when the balance is at or below this, "
                    "in 0.00001 GBP",
    "acc_debt": "accumulated debt: recovery the balance could not cover, paid first by "
                "the next top-ups, in 0.00001 GBP",
    "clock": "the meter's clock, UTC seconds since 2000-01-01 (it moves only by "
             "`diag advance` or this)",
    "payment_pct": "share of each top-up that pays the payment debt, in 0.01 %% "
                   "(10000 = all of it)",
    "time1_rate": "time debt 1 recovered per period, in 0.00001 GBP",
    "time1_freq": "time debt 1 recovery period: HOURLY or DAILY",
    "time1_start": "time debt 1 recovery starts at this clock time (seconds since 2000)",
    "time1_coll": "time debt 1 collection time, in minutes after midnight (DAILY) or "
                  "after the hour (HOURLY)",
    "time2_rate": "time debt 2 recovered per period, in 0.00001 GBP",
    "time2_freq": "time debt 2 recovery period: HOURLY or DAILY",
    "time2_start": "time debt 2 recovery starts at this clock time (seconds since 2000)",
    "time2_coll": "time debt 2 collection time, in minutes after midnight or the hour",
    "friendly_credit": "ZCL friendly credit bitmap (bit 0: enabled), as GCS02 / GCS03 "
                       "report it",
    "friendly_calendar": "friendly credit calendar id, as GCS02 / GCS03 report it",
}
SET_FIELDS = tuple(SET_HELP)
FREQ_FIELDS = ("time1_freq", "time2_freq")
PERIODS = ("HOURLY", "DAILY")          # the meter's freq 0 / 1
MONEY = ("time1", "time2", "payment", "balance", "ec_balance", "ec_limit", "ec_threshold",
         "acc_debt", "time1_rate", "time2_rate")
MAX_PARTS = 10      # the most parts a Command of these use cases has (ECS07's 10)


def option(field):
    return "--" + field.replace("_", "-")


def period(text):
    """argparse type for a recovery period: HOURLY or DAILY (0 or 1 as the meter
    stores it)."""
    t = str(text).strip().upper()
    if t in PERIODS:
        return PERIODS.index(t)
    if t in ("0", "1"):
        return int(t)
    raise argparse.ArgumentTypeError(f"{text!r}: give HOURLY or DAILY")


def register(sub):
    p = sub.add_parser("diag", help="set state, advance the clock, top up, inject a fault",
                       description="Local diagnostics: the meter's physical port, for test "
                       "preconditions. GBCS Commands stay the only remote way to change a meter.")
    ops = p.add_subparsers(dest="op", metavar="OP", required=True)
    s = ops.add_parser("set", help="set registers, balances, mode and settings",
                       description="Set fields of the meter's state; every field is checked "
                       "first and a bad one changes nothing. A whole-pence meter keeps money "
                       "in whole pence: what it made of a value is said.")
    for f in SET_FIELDS:
        s.add_argument(option(f), dest=f, type=period if f in FREQ_FIELDS else int,
                       metavar="PERIOD" if f in FREQ_FIELDS else "N", help=SET_HELP[f])
    s.add_argument("--mode", choices=("credit", "prepayment"), help="payment mode")
    s.add_argument("--ec-active", choices=("true", "false"), help="emergency credit in use")
    a = ops.add_parser("advance", help="move the meter clock on (recovery runs)",
                       description="Move the meter's clock on; in prepayment mode the "
                       "time-based debt recovery due in that time runs (Debt Collection "
                       "Completed alerts when a debt reaches zero).")
    a.add_argument("seconds", type=int, help="how far, in seconds")
    t = ops.add_parser("topup", help="top up the meter balance",
                       description="A top-up as a payment would make it: in prepayment mode "
                       "the payment debt's share, then the accumulated debt, then used "
                       "emergency credit, and the rest to the balance.")
    t.add_argument("amount", type=int, help="in 0.00001 GBP (1000 = one penny)")
    f = ops.add_parser("fault", help="make the next Command fail at component/specification N",
                       description="Arm a fault: part N (1-based, as send results count "
                       "them) of the next Command fails with the status given, and nothing "
                       "after it runs. The next Command uses it up even when it has fewer "
                       "parts; the send result then says it was not reached.")
    f.add_argument("--at", type=int, required=True, metavar="N",
                   help=f"the component (GSME) or specification (ESME) that fails, 1..{MAX_PARTS}")
    f.add_argument("--status", choices=("hardware", "failure", "other"), required=True,
                   help="how it fails: hardware fault, failure, or other reason")
    for q in (s, a, t, f):
        add_port(q)
        q.add_argument("--json", action="store_true")
        add_timeout(q)
    p.set_defaults(func=run)


def _named(text):
    """The meter's error text with its field names as this verb's options."""
    names = "|".join(sorted(SET_FIELDS + ("ec_active", "mode"), key=len, reverse=True))
    text = re.sub(rf"(?<![\w-])({names})(?![\w-])", lambda m: option(m.group(1)), text)
    return re.sub(r"(--time[12]-freq) must be a whole number 0\.\.1(?!\d)",
                  r"\1 must be HOURLY or DAILY", text)


def held(regs, field):
    """What the meter holds for a set field, from its registers read-out."""
    if field[:5] in ("time1", "time2") and "_" in field:
        return (regs.get(field[:5] + "_recovery") or {}).get(field[6:])
    if field == "payment_pct":
        return (regs.get("payment_recovery") or {}).get("pct")
    return regs.get(field)


def run(args):
    if args.op == "fault" and not 1 <= args.at <= MAX_PARTS:
        raise UserError(f"--at {args.at}: no Command here has that many parts (the most, "
                        f"ECS07, has {MAX_PARTS}); the fault would be used up unseen",
                        exit_code=64)
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
    changed = {}
    with Link(args.port, timeout=args.timeout) as link:
        try:
            reply = link.diag(args.op, **req)
        except MeterError as e:
            raise UserError(_named(str(e))) from None
        if args.op == "set" and any(k in MONEY for k in req["fields"]):
            regs = link.diag("registers")
            changed = {k: held(regs, k) for k, v in req["fields"].items()
                       if k in MONEY and held(regs, k) != v}
    frames = reply.pop("alerts", [])
    alerts = [frame_alert_code(raw) for raw in frames]
    reply.pop("ok", None)
    reply["alerts"] = alerts
    reply["alert_messages"] = [raw.hex() for raw in frames]  # exactly as received
    if changed:
        reply["held"] = changed      # what a whole-pence meter made of the values
    if args.json:
        print(json.dumps(reply))
    else:
        kept = "; ".join(f"{option(k)} {req['fields'][k]} is held as {v}"
                         for k, v in changed.items())
        print(f"{args.op}: done" + (f"; alerts {', '.join(alerts)}" if alerts else "")
              + (f"; whole pence: {kept}" if kept else ""))
    return 0
