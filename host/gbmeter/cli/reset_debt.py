"""gbmeter reset-debt: reset one debt register (ECS07a / GCS04a) through the DCC chain."""

from gbmeter.cli._common import add_common, run_verb
from gbmeter.dcc.chain import reset_register


def register(sub):
    p = sub.add_parser("reset-debt", help="reset one debt register to zero (SECMP0002)",
                       description="Builds the Reset Debt Register Service Request, turns it "
                       "into a PRECOMMAND as the DCC does, signs it as the Supplier, runs "
                       "Parse and Correlate and anomaly detection, wraps it as the ACB, sends "
                       "it and verifies the Response: success means the register is zero.")
    p.add_argument("--register", choices=("time1", "time2", "payment"), required=True)
    add_common(p)
    p.set_defaults(func=run)


def run(args):
    def send(s, link, meter_id, device):
        result = reset_register(s, link, meter_id, device, args.register, args.dcc_dir,
                                force=args.force)
        result["register"] = args.register
        return result
    return run_verb(args, send, f": {args.register} is zero")
