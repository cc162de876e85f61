"""gbmeter inspect: run the DCC's anomaly detection on a Signed Pre-Command (packet
inspection, then the volume thresholds) and say whether it would be released.

Like the DCC, it counts a released Command towards the thresholds and records a
quarantined one (with a notification) in the DCC folder; --dry-run only looks.
Exit 0: it would pass; 3: it would be quarantined."""

import json

from gbmeter import dcc
from gbmeter.cli._common import DCC_DIR_HELP
from gbmeter.cli._common import read_hex_arg


def register(sub):
    p = sub.add_parser(
        "inspect", help="DCC anomaly detection on a Signed Pre-Command (exit 3: quarantine)",
        description="Packet inspection (GCS04a: debt amount 0 and an absolute type; GCS04: "
                    "limits from adt.json) and per-User volume thresholds. Records counts "
                    "and quarantined Commands in the DCC folder's SQLite file unless "
                    "--dry-run. Exit 0 pass, 3 quarantine.")
    p.add_argument("message", metavar="SIGNED_PRECOMMAND_HEX|FILE",
                   help="Signed Pre-Command (or a bare PRECOMMAND) as hex, a file of hex, or -")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--dcc-dir", metavar="DIR",
                   help=DCC_DIR_HELP)
    p.add_argument("--now", metavar="ISO-TIME",
                   help="the DCC's clock for the threshold window (default: now, UTC)")
    p.add_argument("--dry-run", action="store_true",
                   help="check only: count nothing, record nothing")
    p.set_defaults(func=run)


def run(args):
    data = read_hex_arg(args.message)
    verdict = dcc.Dcc(args.dcc_dir).check(data, now=args.now, dry_run=args.dry_run)
    if args.json:
        print(json.dumps(verdict.as_json()))
    else:
        print(verdict.text())
        if verdict.quarantine_id is not None:
            print(f"recorded as quarantine entry {verdict.quarantine_id}")
    return 0 if verdict.release else dcc.QUARANTINE_EXIT
