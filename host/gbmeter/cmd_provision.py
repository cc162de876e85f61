"""gbmeter provision: give a meter its identity, key pairs and trust anchors."""

import json

from gbmeter import gbcs, keys, profiles
from gbmeter.link import Link
from gbmeter.session import ACB, NETWORK_OPERATOR, SUPPLIER, Session


def register(sub):
    p = sub.add_parser("provision", help="give a meter its identity, keys and trust anchors",
                       description="Over the local port: set the meter's device type and "
                       "system title, trust the Supplier, ACB and Network Operator of the key "
                       "folder (roles from each certificate's OU), and have the meter make its "
                       "own DS and KA key pairs. Their public keys are saved for the host.")
    p.add_argument("--port", required=True)
    p.add_argument("--device", choices=("esme", "gsme"), required=True)
    p.add_argument("--id", required=True, help="the meter's system title (16 hex digits)")
    p.add_argument("--keys", help="key folder (default .gbmeter/keys)")
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
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def _anchor(party):
    a = {"role": party.role}
    for usage, pub in (("ds", party.ds_pub), ("ka", party.ka_pub)):
        if pub is not None:
            a[usage] = gbcs.public_point(pub)[1:].hex()
    return a


def provision(s, link, device, meter_id, acb=None, network_operator=None, profile=None,
              new_keys=True, settings=None):
    """Provision the meter on `link` for Session `s`; returns the summary dict.
    `settings` ({name: value}) overrides the profile's settings."""
    meter_id = keys.normalise_title(meter_id)
    if profile or settings:
        # checked here too, so a typo is named before the meter is touched
        profiles.settings(profile or link.ping().get("profile") or "smets2", settings)
    anchors = {s.supplier.eui: _anchor(s.supplier)}
    acb = s.keys.pick(ACB, acb)
    anchors[acb.eui] = _anchor(acb)
    if network_operator or s.keys.by_role(NETWORK_OPERATOR):
        no = s.keys.pick(NETWORK_OPERATOR, network_operator)
        anchors[no.eui] = _anchor(no)
    req = {"device": device, "id": meter_id, "anchors": anchors, "new_keys": new_keys}
    if profile:
        req["profile"] = profile
    if settings:
        req["settings"] = settings
    reply = link.diag("provision", timeout=30, **req)
    record = {"device": reply["device"], "ds": reply["ds"], "ka": reply["ka"],
              "supplier": s.supplier.eui, "acb": acb.eui, "profile": reply.get("profile")}
    s.save_meter(meter_id, record)
    certs = []
    if s.keys.has_root():
        for usage in ("ds", "ka"):
            certs.append(str(keys.issue_device_cert(s.keys, meter_id, bytes.fromhex("04" + reply[usage]), usage)))
    out = {"id": meter_id, "device": reply["device"], "profile": reply.get("profile"),
           "settings": reply.get("settings"), "ds_public_key": reply["ds"],
           "ka_public_key": reply["ka"], "trust_anchors": {k: keys.role_name(v["role"]) for k, v in anchors.items()},
           "saved": str(s.state / "meters" / f"{meter_id}.json"), "certificates": certs}
    return out


def run(args):
    s = Session(args.keys, args.supplier, args.acb)
    with Link(args.port) as link:
        out = provision(s, link, args.device, args.id, args.acb, args.network_operator,
                        args.profile, not args.keep_keys, profiles.parse_settings(args.setting))
    certs = out["certificates"]
    if args.json:
        print(json.dumps(out))
    else:
        print(f"provisioned {out['device'].upper()} {out['id']} as a {out['profile']} meter")
        print("  settings: " + profiles.text(out["settings"] or {}))
        print(f"  DS public key {out['ds_public_key']}")
        print(f"  KA public key {out['ka_public_key']}")
        for k, v in out["trust_anchors"].items():
            print(f"  trusts {k} as {v}")
        print(f"  saved for the host in {out['saved']}" + (f" and {len(certs)} certificates" if certs else ""))
    return 0
