"""gbmeter correlate: Parse and Correlate a Signed Pre-Command against the Service
Request it should come from. Exit 0 when it correlates, 3 when it does not."""

import json

from gbmeter import dcc
from gbmeter.cli._common import read_hex_arg
from gbmeter.cli.sr import add_dcc_options, read_request


def register(sub):
    p = sub.add_parser(
        "correlate", help="does a Signed Pre-Command match its Service Request? (exit 3: no)",
        description="Compare originator, target, counter, use case and every content value "
                    "of a Signed Pre-Command with what the DCC builds from the Service "
                    "Request, and check the Supplier signature with --keys (without it the "
                    "signature is reported as not checked). Exit 0 correlates, 3 not.")
    p.add_argument("request", metavar="SR.xml", help="the Service Request (DUIS XML)")
    p.add_argument("message", metavar="SIGNED_PRECOMMAND",
                   help="the Signed Pre-Command as hex, a file of hex, or -")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--keys", metavar="DIR",
                   help="key folder with the originator's DS certificate (signature check)")
    p.add_argument("--now", metavar="ISO-TIME",
                   help="the DCC's clock: check the issuer event id against it (default: "
                        "take it from the pre-command)")
    add_dcc_options(p)
    p.set_defaults(func=run)


def run(args):
    request = read_request(args)
    data = read_hex_arg(args.message)
    folder = None
    if args.keys:
        from gbmeter.gbcs.keys import KeyFolder
        folder = KeyFolder(args.keys)
    now = dcc.parse_now(args.now) if args.now else None
    result = dcc.correlate(request, data, folder=folder, now=now)
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(result.text())
    return 0 if result.correlates else dcc.CORRELATE_FAIL_EXIT
