"""gbmeter manage-debt: Update Debt (ECS07 / GCS04) through the DCC chain."""

from gbmeter.cli._common import add_common, run_verb
from gbmeter.dcc.chain import update_debt


def register(sub):
    p = sub.add_parser("manage-debt", help="add to the debt registers (Update Debt)",
                       description="Amounts are incremental, in 0.00001 GBP, as the RTDS "
                       "Update Debt cases use them.")
    p.add_argument("--time1", type=int, default=0)
    p.add_argument("--time2", type=int, default=0)
    p.add_argument("--payment", type=int, default=0)
    p.add_argument("--per-payment", type=int, default=0,
                   help="payment debt share of each top-up (DebtRecoveryPerPayment)")
    for n in (1, 2):
        p.add_argument(f"--rate{n}", type=int, default=0, help=f"time debt {n} recovery per period")
        p.add_argument(f"--period{n}", choices=("HOURLY", "DAILY"), default="DAILY")
    add_common(p)
    p.set_defaults(func=run)


def run(args):
    def send(s, link, meter_id, device):
        return update_debt(s, link, meter_id, device, args.time1, args.time2, args.payment,
                           args.per_payment, {"rate": args.rate1, "period": args.period1},
                           {"rate": args.rate2, "period": args.period2}, args.dcc_dir,
                           force=args.force)
    return run_verb(args, send)
