"""gbmeter demo: the main job on two virtual boards, no hardware needed."""

import sys
import tempfile
from pathlib import Path

from gbmeter import keys
from gbmeter.cmd_provision import provision
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
    failed = 0
    for device, meter_id in METERS:
        with VirtualBoard(dir=work / device, device=device) as vb:
            with Link(vb.port) as link:
                hello = link.ping()
                print(f"{device.upper()} on {vb.port}: firmware {hello['fw']}, board "
                      f"{hello['board']}, {hello['heap_free']} bytes heap free")
                out = provision(s, link, device, meter_id, profile=args.profile)
                print(f"  provisioned {out['id']}, trusting " + ", ".join(
                    f"{v} {k}" for k, v in out["trust_anchors"].items()))
    print("demo: " + ("all done" if not failed else f"{failed} step(s) FAILED"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(run(None))
