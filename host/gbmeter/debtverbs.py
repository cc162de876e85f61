"""What reset-debt, manage-debt and the demo share: make the Service Request a
Supplier would send, then run the whole DCC chain on it (gbmeter.session.run_chain)."""

import json

from gbmeter import dcc, duis
from gbmeter.link import Link
from gbmeter.session import Session, describe, meter_floor, run_chain


def reset_register(session, link, meter_id, device, register, dcc_dir=None, now=None,
                   force=False):
    counter = session.next_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = duis.reset_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, register)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, dcc.transform(req, now), dcc_dir, force)


def update_debt(session, link, meter_id, device, time1, time2, payment, per_payment,
                recovery1, recovery2, dcc_dir=None, now=None, force=False):
    counter = session.next_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = duis.update_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, device,
                               time1, time2, payment, per_payment, recovery1, recovery2)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, dcc.transform(req, now), dcc_dir, force)


def add_force(p):
    p.add_argument("--force", action="store_true",
                   help="send it even when the meter's profile does not know the use case "
                        "(negative testing: expect alert 8F1E)")


def add_common(p):
    p.add_argument("--port", required=True)
    p.add_argument("--keys", help="key folder (default .gbmeter/keys)")
    p.add_argument("--supplier", help="Supplier system title (default: the lowest)")
    p.add_argument("--dcc-dir", metavar="DIR", help="DCC folder (anomaly detection state)")
    add_force(p)
    p.add_argument("--json", action="store_true")


def run_verb(args, send, suffix=""):
    """The body of a sending verb: open the key folder and the port, ask the meter who
    it is, run send(session, link, meter_id, device) and print the result (JSON or
    plain words, `suffix` added on success). Exit 0 only when the Response meets the
    criterion, 2 when it does not."""
    s = Session(args.keys, args.supplier)
    with Link(args.port) as link:
        hello = link.ping()
        result = send(s, link, hello["id"], hello["device"])
    if args.json:
        print(json.dumps(result))
    else:
        print(describe(result) + (suffix if result["ok"] else ""))
    return 0 if result["ok"] else 2
