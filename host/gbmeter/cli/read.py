"""gbmeter read: the prepayment registers read over GBCS (SR 4.3: ECS19 / GCS14), as a
remote party reads them, not over the local port like `registers`."""

import json

from gbmeter.board.link import Link
from gbmeter.cli._common import KEYS_HELP, add_force, add_port, add_timeout
from gbmeter.cli.registers import pounds
from gbmeter.dcc.chain import read_registers
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import describe

# the registers a read returns, as `registers` names them, and their words
LABELS = (("time1", "Time Debt Register 1"), ("time2", "Time Debt Register 2"),
          ("payment", "Payment Debt Register"), ("balance", "meter balance"),
          ("ec_balance", "emergency credit"), ("acc_debt", "accumulated debt"))


def register(sub):
    p = sub.add_parser(
        "read", help="read the prepayment registers over GBCS (ECS19 / GCS14)",
        description="Read Instantaneous Prepay Values (SR 4.3): a non-critical Command "
                    "(ECS19 on an ESME, GCS14 on a GSME) that the ACB MACs and the Supplier "
                    "does not sign. The meter MACs its Response for the Supplier and "
                    "encrypts the registers (AES-128-GCM, NOTES 7): the verb checks the MAC "
                    "with the meter's and the Supplier's KA keys and decrypts the three debt "
                    "registers, the meter balance, the emergency credit balance and the "
                    "accumulated debt (0.00001 GBP, the names `registers --json` uses). "
                    "A MAC or ciphertext that does not verify is a failure (exit 2) and "
                    "nothing of it is shown as a value.")
    add_port(p)
    add_timeout(p)
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP)
    p.add_argument("--supplier", help="Supplier system title (default: the lowest)")
    add_force(p)
    p.add_argument("--json", action="store_true",
                   help="one JSON object: the send result with `registers` (and on a GSME "
                        "`currency` and `trailing_digits`)")
    p.set_defaults(func=run)


def run(args):
    s = Session(args.keys, args.supplier)
    with Link(args.port, timeout=args.timeout) as link:
        hello = link.ping()
        result = read_registers(s, link, hello["id"], hello["device"], force=args.force)
    if args.json:
        print(json.dumps(result))
    else:
        print(describe(result))
        regs = result.get("registers") if result["ok"] else None
        for key, label in LABELS if regs else ():
            print(f"  {label:24} {regs[key]:>12}  {pounds(regs[key])}")
        if regs and "currency" in result:
            print(f"  currency {result['currency']}, {result.get('trailing_digits')} trailing "
                  "digits (Price cluster)")
    return 0 if result["ok"] else 2
