"""gbmeter keys: make a self-made test PKI (`init`) or show a key folder (`list`).
Folders use the ZAZ1 naming: <system title>-ds.pem / -ka.pem certificates and
-ds.key / -ka.key PKCS#8 private keys."""

import json

from gbmeter.cli._parser import usage
from gbmeter.gbcs import keys, pki


def register(sub):
    p = sub.add_parser("keys", help="create or list a key folder (test PKI)")
    ks = p.add_subparsers(dest="keys_verb", metavar="ACTION")
    pi = ks.add_parser("init", help="create a fresh test PKI: Supplier, second Supplier, "
                                    "Network Operator, ACB, and a test root")
    pi.add_argument("dir", metavar="DIR")
    pi.add_argument("--force", action="store_true",
                    help="replace the key files of an existing PKI in DIR")
    pi.add_argument("--json", action="store_true")
    pi.set_defaults(func=run_init)
    pl = ks.add_parser("list", help="show the parties of a key folder with their roles")
    pl.add_argument("dir", metavar="DIR")
    pl.add_argument("--json", action="store_true")
    pl.set_defaults(func=run_list)
    p.set_defaults(func=lambda args: usage(p))


def run_init(args):
    made = pki.init(args.dir, force=args.force)
    if args.json:
        print(json.dumps({"dir": str(args.dir), "parties": made}))
        return 0
    print(f"test PKI created in {args.dir} (root: {keys.ROOT_CERT}, {keys.ROOT_KEY})")
    for label, eui in made.items():
        print(f"  {label:17} {eui}")
    return 0


def run_list(args):
    folder = keys.KeyFolder(args.dir)
    parties = folder.describe()
    defaults = {}
    for role in ("supplier", "network-operator", "acb"):
        found = folder.by_role(role)
        defaults[role] = found[0].eui if found else None
    if args.json:
        print(json.dumps({"dir": str(args.dir), "parties": parties, "defaults": defaults,
                          "root": folder.has_root()}))
        return 0
    if not parties:
        print(f"{args.dir}: no keys (make a test PKI with `gbmeter keys init {args.dir}`)")
        return 0
    for p in parties:
        mark = " (default)" if defaults.get(p["role"]) == p["system_title"] else ""
        priv = "+".join(p["private_keys"]) or "none"
        print(f"{p['system_title']}  {p['role']:17} certificates {'+'.join(p['certificates'])}"
              f", private keys {priv}{mark}")
    if folder.has_root():
        print(f"test root: {keys.ROOT_CERT} (can issue device certificates)")
    return 0
