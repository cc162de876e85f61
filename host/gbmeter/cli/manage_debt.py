"""gbmeter manage-debt: Update Debt (ECS07 / GCS04) through the DCC chain.

Update Debt always carries every recovery setting (both time debts' rates and
periods and the payment debt's share of a top-up): the meter takes what it is sent.
So a setting left out of the command line is read off the meter first (the
`registers` diagnostic) and sent back as it is: left out means unchanged. A board
whose diagnostics are off cannot be read, and then the verb refuses, naming the
settings to give."""

from gbmeter.board.link import MeterError
from gbmeter.cli._common import add_common, run_verb
from gbmeter.dcc.chain import update_debt
from gbmeter.errors import UserError

PERIOD_NAMES = ("HOURLY", "DAILY")     # the meter's freq 0 / 1
DLMS_LONG_MAX = 32767                  # an ESME's charge_per_unit is a DLMS long


def register(sub):
    p = sub.add_parser(
        "manage-debt", help="add to the debt registers and set debt recovery (Update Debt)",
        description="Update Debt (ECS07 on an ESME, GCS04 on a GSME). Amounts are "
                    "incremental, in 0.00001 GBP, as the RTDS Update Debt cases use them "
                    "(a whole-pence meter drops fractions of a penny). Recovery "
                    "settings left out stay as the meter has them: the verb reads the "
                    "meter's current rates, periods and payment share and sends them back "
                    "(a board whose diagnostics are off cannot be read: then give all five). "
                    "Recovery start and collection times are sent as 0 (now), as the "
                    "DCC's transform builds them.")
    p.add_argument("--time1", type=int, default=0, metavar="N",
                   help="add N to Time Debt Register 1 (0.00001 GBP; negative lowers it)")
    p.add_argument("--time2", type=int, default=0, metavar="N",
                   help="add N to Time Debt Register 2 (0.00001 GBP)")
    p.add_argument("--payment", type=int, default=0, metavar="N",
                   help="add N to the Payment Debt Register (0.00001 GBP)")
    p.add_argument("--per-payment", type=int, metavar="PCT",
                   help="share of each top-up that pays the payment debt, in 0.01 %% "
                        "(10000 = all of it; DebtRecoveryPerPayment; default: unchanged)")
    for n in (1, 2):
        p.add_argument(f"--rate{n}", type=int, metavar="N",
                       help=f"time debt {n} recovered per period, in 0.00001 GBP "
                            "(an ESME gets it as a DLMS unit charge with the price scale "
                            "that holds it exactly; default: unchanged)")
        p.add_argument(f"--period{n}", choices=PERIOD_NAMES,
                       help=f"time debt {n} recovery period (default: unchanged)")
    add_common(p)
    p.set_defaults(func=run)


def esme_rate(units, what):
    """A recovery rate in 0.00001 GBP as the DLMS unit charge that holds it exactly:
    {rate (a long), price_scale} with units = rate * 10 ** (price_scale + 5)."""
    for k in range(10):
        if units % 10 ** k == 0 and abs(units // 10 ** k) <= DLMS_LONG_MAX:
            return {"rate": units // 10 ** k, "price_scale": k - 5}
    raise UserError(f"{what} {units} cannot be sent to an ESME exactly: a DLMS unit charge "
                    f"holds at most {DLMS_LONG_MAX} times a power of ten")


def wanted(args, current):
    """The recovery settings to send: what the command line gives, the meter's
    current value (`current`, its registers read-out) for the rest.
    Returns (recovery1, recovery2, per_payment) in the meter's own units."""
    recs = []
    for n in (1, 2):
        cur = current[f"time{n}_recovery"] if current else {}
        rate = getattr(args, f"rate{n}")
        period = getattr(args, f"period{n}")
        recs.append({"rate": cur.get("rate") if rate is None else rate,
                     "period": PERIOD_NAMES[cur["freq"]] if period is None else period})
    per = args.per_payment
    if per is None:
        per = current["payment_recovery"]["pct"]
    return recs[0], recs[1], per


def left_out(args):
    names = [f"--{k}" for k in ("rate1", "period1", "rate2", "period2")
             if getattr(args, k) is None]
    return names + (["--per-payment"] if args.per_payment is None else [])


def run(args):
    def send(s, link, meter_id, device):
        current = None
        missing = left_out(args)
        if missing:
            try:
                current = link.diag("registers")
            except MeterError as e:
                raise UserError(
                    f"cannot read the meter's current recovery settings ({e}), so "
                    f"leaving out {', '.join(missing)} would overwrite them: give them "
                    "all") from None
        r1, r2, per = wanted(args, current)
        if device == "esme":
            r1 = dict(r1, **esme_rate(r1["rate"], "--rate1"))
            r2 = dict(r2, **esme_rate(r2["rate"], "--rate2"))
        result = update_debt(s, link, meter_id, device, args.time1, args.time2, args.payment,
                             per, r1, r2, args.dcc_dir, force=args.force)
        result["recovery"] = {"rate1": wanted_units(r1), "period1": r1["period"],
                              "rate2": wanted_units(r2), "period2": r2["period"],
                              "per_payment": per,
                              "unchanged": [m.lstrip("-") for m in missing]}
        return result
    return run_verb(args, send)


def wanted_units(rec):
    """A recovery setting's rate in 0.00001 GBP (an ESME's is scaled)."""
    scale = rec.get("price_scale")
    if scale is None:
        return rec["rate"]
    return rec["rate"] * 10 ** (scale + 5)
