"""gbmeter profiles: the device profiles a board can be, their settings and clauses."""

import json

from gbmeter import paths, profiles


def register(sub):
    p = sub.add_parser("profiles", help="list device profiles and their settings",
                       description="The firmware's profile table: which use-case releases "
                       "each profile knows and its named settings, with the clause each "
                       "setting comes from and the values it takes.")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run)


def run(args):
    usecases = paths.firmware_table("usecases")
    rows = profiles.rows()
    table = profiles.table()
    out = {"profiles": [], "settings": [
        {"name": n, "clause": c, "values": list(v) if v else None} for n, c, v in table.SETTINGS]}
    for name, what, settings in rows:
        known = [r[1] for r in usecases.USE_CASES if profiles.knows(settings, r)]
        out["profiles"].append({"name": name, "description": what, "settings": settings,
                                "use_cases": known})
    if args.json:
        print(json.dumps(out))
        return 0
    for p in out["profiles"]:
        print(f"{p['name']}: {p['description']}")
        print(f"  settings: {profiles.text(p['settings'])}")
        print(f"  use cases: {' '.join(p['use_cases'])}")
    print()
    print("settings (first value is SMETS2's; override with provision --setting NAME=VALUE):")
    for s in out["settings"]:
        values = " | ".join(str(v).lower() for v in s["values"]) if s["values"] else "set by the profile"
        print(f"  {s['name']:15} {s['clause']:18} {values}")
    return 0
