"""gbmeter payment-mode: set the payment mode over GBCS (SR 1.6: ECS02 / ECS03 /
GCS02 / GCS03) through the DCC chain."""

from gbmeter.cli._common import add_common, run_verb
from gbmeter.dcc.chain import set_payment_mode
from gbmeter.dcc.precommand import PREPAYMENT_SUSPEND_DEBT


def _flags(device):
    d, e = PREPAYMENT_SUSPEND_DEBT[device]
    return (f"SuspendDebtDisabled {'true' if d else 'false'}, SuspendDebtEmergency "
            f"{'true' if e else 'false'}")


def register(sub):
    p = sub.add_parser(
        "payment-mode", help="set credit or prepayment mode over GBCS (Update Payment Mode)",
        description="Update Payment Mode (SR 1.6): ECS02 / ECS03 on an ESME, GCS02 / GCS03 "
                    "on a GSME, critical, through the whole chain (Supplier signature, Parse "
                    "and Correlate, anomaly detection, ACB MAC). Immediate, not future-dated. "
                    "Debt is recovered only in prepayment mode. Prepayment carries the "
                    "suspend-debt flags RTDS shows for the device (ESME: " + _flags("esme")
                    + "; GSME: " + _flags("gsme") + ") and the disablement threshold.")
    p.add_argument("mode", choices=("credit", "prepayment"))
    p.add_argument("--disablement-threshold", type=int, default=0, metavar="N",
                   help="prepayment: the DisablementThreshold, 0.00001 GBP (default 0)")
    add_common(p)
    p.set_defaults(func=run)


def run(args):
    def send(s, link, meter_id, device):
        result = set_payment_mode(s, link, meter_id, device, args.mode,
                                  args.disablement_threshold, args.dcc_dir, force=args.force)
        result["mode"] = args.mode
        return result
    return run_verb(args, send, f": the meter is in {args.mode} mode")
