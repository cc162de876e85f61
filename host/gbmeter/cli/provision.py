"""gbmeter provision: give a meter its identity, key pairs and trust anchors."""

import json

from gbmeter import profiles
from gbmeter.board.link import Link
from gbmeter.cli._common import KEYS_HELP, add_port, add_timeout
from gbmeter.supplier.provision import provision
from gbmeter.supplier.session import Session


def register(sub):
    p = sub.add_parser("provision", help="give a meter its identity, keys and trust anchors",
                       description="Over the local port: set the meter's device type and "
                       "system title, trust the Supplier, ACB and Network Operator of the key "
                       "folder (roles from each certificate's OU), and have the meter make its "
                       "own DS and KA key pairs. Their public keys are saved for the host.")
    add_port(p)
    add_timeout(p, 10.0, "each answer; making the key pairs gets at least 30 s")
    p.add_argument("--device", choices=("esme", "gsme"), required=True)
    p.add_argument("--id", required=True, help="the meter's system title (16 hex digits)")
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP)
    p.add_argument("--supplier", help="Supplier system title (default: the lowest)")
    p.add_argument("--acb", help="ACB system title (default: the lowest)")
    p.add_argument("--network-operator", help="Network Operator system title (default: the lowest)")
    p.add_argument("--profile", choices=profiles.names(),
                   help="device profile stored on the meter (default: keep the meter's; "
                        "`gbmeter profiles` lists them)")
    p.add_argument("--setting", action="append", metavar="NAME=VALUE",
                   help="override one of the profile's settings (repeatable; "
                        "`gbmeter profiles` lists them)")
    p.add_argument("--keep-keys", action="store_true",
                   help="keep the meter's existing key pairs instead of making new ones")
    p.add_argument("--seed", metavar="HEX",
                   help="a test board without an entropy source makes its key pairs from "
                        "this seed (32 bytes or more; default: a fresh one from the host)")
    p.add_argument("--factory-reset", action="store_true",
                   help="allow provisioning a meter as another device or id, which wipes "
                        "it to factory state (registers, balances, mode, clock, recovery "
                        "settings, key pairs; originator counters are kept) and says what "
                        "it cleared; without it that is refused and nothing changes")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    s = Session(args.keys, args.supplier, args.acb)
    with Link(args.port, timeout=args.timeout) as link:
        out = provision(s, link, args.device, args.id, args.acb, args.network_operator,
                        args.profile, not args.keep_keys, profiles.parse_settings(args.setting), args.seed,
                        factory_reset=args.factory_reset)
    certs = out["certificates"]
    if args.json:
        print(json.dumps(out))
    else:
        if out.get("factory_reset"):
            print("factory reset: cleared " + ", ".join(out["factory_reset"]))
        print(f"provisioned {out['device'].upper()} {out['id']} as a {out['profile']} meter")
        print("  settings: " + profiles.text(out["settings"] or {}))
        print(f"  DS public key {out['ds_public_key']}")
        print(f"  KA public key {out['ka_public_key']}")
        if out["key_pairs_from"]:
            print(f"  key pairs made on the meter from {out['key_pairs_from']}")
        for k, v in out["trust_anchors"].items():
            print(f"  trusts {k} as {v}")
        print(f"  saved for the host in {out['saved']}" + (f" and {len(certs)} certificates" if certs else ""))
    return 0
