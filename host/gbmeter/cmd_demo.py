"""gbmeter demo: the main job on two virtual boards, no hardware needed."""

import sys
import tempfile
from pathlib import Path

from gbmeter import keys
from gbmeter.cmd_provision import provision
from gbmeter.debtverbs import reset_register, update_debt
from gbmeter.link import Link
from gbmeter.session import Session
from gbmeter.sim import VirtualBoard

METERS = (("gsme", "00db1234567890a1"), ("esme", "00db1234567890a0"))


def register(sub):
    p = sub.add_parser("demo", help="run the main job on a virtual GSME and ESME")
    p.add_argument("--profile", default="smets2", help="device profile of both meters")
    p.add_argument("--keep", metavar="DIR", help="keep the boards and keys in DIR")
    p.set_defaults(func=run)


def run(args):
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="gbmeter-demo-"))
    work.mkdir(parents=True, exist_ok=True)
    kdir = work / "keys"
    if not kdir.exists():
        made = keys.init(kdir)
        print(f"made a test PKI in {kdir}: " + ", ".join(f"{k} {v}" for k, v in made.items()))
    s = Session(kdir)
    dcc_dir = work / "dcc"
    failed = 0
    table = []

    def step(what, result):
        nonlocal failed
        ok = result["ok"]
        failed += not ok
        detail = "success, Response signature verified" if ok else "FAILED: " + result.get("reason", "?")
        print(f"  {what}: {result['use_case']} #{result['counter']} "
              f"(DCC: {result.get('dcc')}, {result.get('correlation')}): {detail}")

    for device, meter_id in METERS:
        with VirtualBoard(dir=work / device, device=device) as vb:
            with Link(vb.port) as link:
                hello = link.ping()
                print(f"{device.upper()} on {vb.port}: firmware {hello['fw']}, board "
                      f"{hello['board']}, {hello['heap_free']} bytes heap free")
                out = provision(s, link, device, meter_id, profile=args.profile)
                print(f"  provisioned {out['id']}, trusting " + ", ".join(
                    f"{v} {k}" for k, v in out["trust_anchors"].items()))
                link.diag("set", fields={"mode": "prepayment"})
                # the RTDS Update Debt values: the ESME's rates are a DLMS unit charge
                # with a price scale (3 at -1 is 30000 units per period)
                if device == "gsme":
                    rec = ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"})
                else:
                    rec = ({"rate": 3, "period": "DAILY", "price_scale": -1},
                           {"rate": 3, "period": "DAILY", "price_scale": -1})
                step("Update Debt Service Request", update_debt(
                    s, link, meter_id, device, 1000000, 500000, 1000000, 100, *rec, dcc_dir))
                before = link.diag("registers")
                for reg in ("time1", "time2", "payment"):
                    step(f"Reset Debt Register {reg}", reset_register(
                        s, link, meter_id, device, reg, dcc_dir))
                after = link.diag("registers")
                for reg in ("time1", "time2", "payment"):
                    table.append((device.upper(), reg, before[reg], after[reg]))
                    failed += after[reg] != 0
    print()
    print(f"{'meter':6} {'register':9} {'before':>10} {'after':>8}")
    for row in table:
        print(f"{row[0]:6} {row[1]:9} {row[2]:>10} {row[3]:>8}")
    print("demo: " + ("all done, every debt register is zero" if not failed
                      else f"{failed} step(s) FAILED"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(None))
