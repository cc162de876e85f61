"""gbmeter demo: the main job on two virtual boards, no hardware needed."""

import tempfile
from pathlib import Path

from gbmeter.gbcs import codec, pki
from gbmeter import paths, profiles
from gbmeter.dcc.duis import DEFAULT_INVENTORY, REGISTERS, RESET_DEBT_REGISTER
from gbmeter.supplier.provision import provision
from gbmeter.dcc.chain import read_registers, reset_register, set_payment_mode, update_debt
from gbmeter.errors import UserError
from gbmeter.board.link import Link
from gbmeter.supplier.session import Session
from gbmeter.board.sim import VirtualBoard

# the NOTES.md test meters, gas first: the first of each device type in the inventory
METERS = [(d, min(m for m, dev in DEFAULT_INVENTORY.items() if dev == d))
          for d in ("gsme", "esme")]
# the meter the demo switches to credit mode over GBCS before resetting its registers
# there (resets work in both modes; only debt recovery follows the mode)
CREDIT_MODE_METER = "esme"


# Update Debt amounts (0.00001 GBP): the RTDS values with fractions of a penny added,
# so a whole-pence profile shows what it keeps.
AMOUNTS = {"time1": 1000456, "time2": 500789, "payment": 1000000}


def register(sub):
    p = sub.add_parser("demo", help="run the main job on a virtual GSME and ESME",
                       description="On a virtual GSME and ESME of one device profile: "
                       "provision, set prepayment mode over GBCS (Update Payment Mode), "
                       "load debt with Update Debt, read the registers over GBCS (Read "
                       "Instantaneous Prepay Values, decrypted), switch the ESME to credit "
                       "mode over GBCS, reset each debt register (ECS07a / GCS04a) and read "
                       "them back over GBCS, every Command through the DCC chain. What the "
                       "demo expects follows from the profile's settings.")
    p.add_argument("--profile", default="smets2", choices=profiles.names(),
                   help="device profile of both meters")
    p.add_argument("--keep", metavar="DIR", help="keep the boards and keys in DIR")
    p.set_defaults(func=run)


def read_over_gbcs(s, link, meter_id, device, step):
    """The registers read over GBCS (SR 4.3, MAC checked and decrypted), or None when
    the read failed (the step says why)."""
    result = read_registers(s, link, meter_id, device)
    step("Read Instantaneous Prepay Values", result)
    return result.get("registers") if result["ok"] else None


def held(settings, amount):
    """What a meter with these settings keeps of an amount it is sent."""
    if settings["whole_pence"]:
        return amount // 1000 * 1000
    return amount


def run(args):
    """Without --keep the boards and keys (private keys among them) live in a
    temporary folder that is removed afterwards, whatever happens."""
    if args.keep:
        return demo(args, keep_folder(args.keep))
    with tempfile.TemporaryDirectory(prefix="gbmeter-demo-") as work:
        return demo(args, Path(work))


def keep_folder(path):
    return paths.make_folder(path, "--keep", "a folder to keep the demo in")


def demo(args, work):
    kdir = work / "keys"
    if not kdir.exists():
        made = pki.init(kdir)
        print(f"made a test PKI in {kdir}: " + ", ".join(f"{k} {v}" for k, v in made.items()))
    s = Session(kdir)
    dcc_dir = work / "dcc"
    failed = 0
    table = []
    uc = codec.load_usecases()

    def step(what, result, want_alert=None):
        # a step succeeds with a verified Response, or with the alert it should raise
        nonlocal failed
        ok = result["ok"]
        as_expected = result.get("alert") == want_alert if want_alert else ok
        failed += not as_expected
        if ok:
            detail = ("success, Response MAC verified, registers decrypted"
                      if "mac_valid" in result else "success, Response signature verified")
        else:
            detail = ("as expected: " if as_expected else "FAILED: ") + result.get("reason", "?")
        if ok and want_alert:
            detail = f"FAILED: success where alert {want_alert} was expected"
        print(f"  {what}: {result['use_case']} #{result['counter']} "
              f"(DCC: {result.get('dcc')}, {result.get('correlation')}): {detail}")

    for device, meter_id in METERS:
        with VirtualBoard(dir=work / device, device=device, profile=args.profile) as vb:
            with Link(vb.port) as link:
                hello = link.ping()
                print(f"{device.upper()} on {vb.port}: firmware {hello['fw']}, board "
                      f"{hello['board']}, {hello['heap_free']} bytes heap free")
                out = provision(s, link, device, meter_id, profile=args.profile)
                settings = out["settings"]
                print(f"  provisioned {out['id']} as a {out['profile']} meter, trusting "
                      + ", ".join(f"{v} {k}" for k, v in out["trust_anchors"].items()))
                print(f"  settings: {profiles.text(settings)}")
                step("Update Payment Mode prepayment", set_payment_mode(
                    s, link, meter_id, device, "prepayment", dcc_dir=dcc_dir))
                # the RTDS Update Debt recovery: the ESME's rates are a DLMS unit charge
                # with a price scale (3 at -1 is 30000 units per period)
                if device == "gsme":
                    rec = ({"rate": 50000, "period": "DAILY"}, {"rate": 50000, "period": "HOURLY"})
                else:
                    rec = ({"rate": 3, "period": "DAILY", "price_scale": -1},
                           {"rate": 3, "period": "DAILY", "price_scale": -1})
                step("Update Debt Service Request", update_debt(
                    s, link, meter_id, device, AMOUNTS["time1"], AMOUNTS["time2"],
                    AMOUNTS["payment"], 100, *rec, dcc_dir))
                before = read_over_gbcs(s, link, meter_id, device, step)
                if before is None:
                    failed += 1
                    continue
                for reg in REGISTERS:
                    if before[reg] != held(settings, AMOUNTS[reg]):
                        print(f"  Update Debt {reg}: FAILED: the meter holds {before[reg]}, "
                              f"expected {held(settings, AMOUNTS[reg])}")
                        failed += 1
                if device == CREDIT_MODE_METER:
                    step("Update Payment Mode credit", set_payment_mode(
                        s, link, meter_id, device, "credit", dcc_dir=dcc_dir))
                reset = uc.by_name(RESET_DEBT_REGISTER["use_cases"][device])
                knows = profiles.knows(settings, reset)
                for reg in REGISTERS:
                    if knows:
                        step(f"Reset Debt Register {reg}", reset_register(
                            s, link, meter_id, device, reg, dcc_dir))
                        continue
                    try:
                        reset_register(s, link, meter_id, device, reg, dcc_dir)
                        print(f"  Reset Debt Register {reg}: FAILED: the host sent it")
                        failed += 1
                    except UserError as e:
                        print(f"  Reset Debt Register {reg}: refused by the host: {e}")
                    if reg == "time1":  # once, forced, to show what the meter does
                        step(f"Reset Debt Register {reg} (--force)", reset_register(
                            s, link, meter_id, device, reg, dcc_dir, force=True), "8F1E")
                after = read_over_gbcs(s, link, meter_id, device, step)
                if after is None:
                    failed += 1
                    continue
                for reg in REGISTERS:
                    want = 0 if knows else before[reg]
                    table.append((device.upper(), reg, AMOUNTS[reg], before[reg], after[reg], want))
                    failed += after[reg] != want
    print()
    print(f"{args.profile} meters")
    print(f"{'meter':6} {'register':9} {'sent':>10} {'held':>10} {'after':>10} {'expected':>10}")
    for row in table:
        print(f"{row[0]:6} {row[1]:9} {row[2]:>10} {row[3]:>10} {row[4]:>10} {row[5]:>10}")
    print("demo: " + ("all done, every meter behaved as a " + args.profile + " meter should"
                      if not failed else f"{failed} step(s) FAILED"))
    return 1 if failed else 0
