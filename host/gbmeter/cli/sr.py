"""gbmeter sr: turn a DUIS Service Request into the PRECOMMAND the DCC builds
(`--precommand`), or run the whole chain to a meter (`--port`)."""

import dataclasses
import json
import os

from gbmeter import dcc
from gbmeter.board.link import Link
from gbmeter.dcc import duis
from gbmeter.dcc.chain import run_chain
from gbmeter.errors import UserError
from gbmeter.supplier.session import Session
from gbmeter.supplier.answer import describe, meter_floor
from gbmeter.cli._common import DCC_DIR_HELP, KEYS_HELP, PORT_ENV, add_force, add_timeout


def add_dcc_options(p):
    """--device and --dcc-dir, shared by the verbs that read Service Requests."""
    p.add_argument("--device", choices=duis.DEVICES,
                   help="the target's device type when neither the body nor the DCC "
                        "inventory tells (default: from the body, else the inventory)")
    p.add_argument("--dcc-dir", metavar="DIR",
                   help=DCC_DIR_HELP + "; its optional inventory.json maps system "
                        "titles to esme/gsme")


def read_request(args):
    """The ServiceRequest named by args.request, with the DCC's inventory."""
    inventory = dcc.Dcc(args.dcc_dir).inventory()
    return duis.read_request(args.request, device=args.device, inventory=inventory)


def register(sub):
    p = sub.add_parser(
        "sr", help="Service Request (DUIS XML) -> PRECOMMAND, or send it through the chain",
        description="Read a DUIS-style Service Request (Update Debt, Reset Debt Register, "
                    "Update Meter Balance, Activate Emergency Credit, Update Payment Mode, "
                    "Read Instantaneous Prepay Values) and build the PRECOMMAND the DCC "
                    "makes from it. Issuer event ids come from the clock: --now "
                    "2015-01-01T00:00:00Z gives the RTDS PRECOMMANDs. With --port the "
                    "critical ones go through the whole chain (signature, Parse and "
                    "Correlate, anomaly detection); a non-critical read (4.3) goes straight "
                    "to the ACB's MAC, and its Response is MAC-checked and decrypted.")
    p.add_argument("request", metavar="FILE.xml", help="the Service Request (or - for stdin)")
    what = p.add_mutually_exclusive_group()
    what.add_argument("--precommand", action="store_true",
                      help="print the PRECOMMAND hex and stop")
    what.add_argument("--port", metavar="P", help="send it to the meter on port P "
                      "(default: $GBMETER_PORT; one of --port and --precommand is needed)")
    p.add_argument("--now", metavar="ISO-TIME",
                   help="the DCC's clock (default: the current UTC time)")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--keys", metavar="DIR", help=KEYS_HELP + "; used when sending")
    add_timeout(p)
    p.add_argument("--supplier", metavar="EUI", help="Supplier system title (used when sending)")
    p.add_argument("--keep-counter", action="store_true",
                   help="send the request with its own counter (the one in its RequestID). "
                        "By default --port sends it with the next originator counter for "
                        "the meter, as the reset-debt and manage-debt verbs do: a request "
                        "file's counter is accepted only while it is above the last one "
                        "the meter took (the ../shared DUIS files all carry 1000 or 1001)")
    add_force(p)
    add_dcc_options(p)
    p.set_defaults(func=run)


def run(args):
    if not args.precommand:
        args.port = args.port or os.environ.get(PORT_ENV) or None
        if not args.port:
            raise UserError("give --port PORT (or set GBMETER_PORT) to send the request, or "
                            "--precommand to print its PRECOMMAND", exit_code=64)
    request = read_request(args)
    now = dcc.parse_now(args.now)
    if args.port:
        return send(request, now, args)
    precommand = dcc.transform(request, now)
    if args.json:
        out = request.summary()
        out.update(now=now.strftime("%Y-%m-%dT%H:%M:%SZ"), precommand=precommand.hex().upper())
        print(json.dumps(out))
    else:
        print(precommand.hex().upper())
    return 0



def send(request, now, args):
    """`gbmeter sr FILE --port P`: run the whole chain for one Service Request
    (gbmeter.dcc.chain.run_chain) and print the result; exit 0 only when the Response
    meets the acceptance criterion. The request takes the next originator counter
    (its RequestID follows) unless --keep-counter."""
    s = Session(args.keys, args.supplier)
    if request.originator.hex() != s.supplier.eui:
        raise UserError(f"the request's originator {request.originator.hex()} is not the "
                        f"Supplier {s.supplier.eui} of {s.keys.path}")
    with Link(args.port, timeout=args.timeout) as link:
        if not args.keep_counter:
            counter = s.take_counter(request.target.hex(), meter_floor(link, s.supplier.eui))
            request = dataclasses.replace(request, counter=counter)
        precommand = dcc.transform(request, now)
        result = run_chain(s, link, request, precommand, args.dcc_dir,
                           getattr(args, "force", False))
    result["request_id"] = request.request_id
    print(json.dumps(result) if args.json else describe(result))
    return 0 if result["ok"] else 2
