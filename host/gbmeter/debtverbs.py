"""What reset-debt, manage-debt and the demo share: make the Service Request a
Supplier would send, then run the whole DCC chain on it (gbmeter.session.run_chain)."""

from gbmeter import dcc, duis
from gbmeter.session import meter_floor, run_chain


def reset_register(session, link, meter_id, device, register, dcc_dir=None, now=None):
    counter = session.next_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = duis.reset_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, register)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, dcc.transform(req, now), dcc_dir)


def update_debt(session, link, meter_id, device, time1, time2, payment, per_payment,
                recovery1, recovery2, dcc_dir=None, now=None):
    counter = session.next_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = duis.update_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, device,
                               time1, time2, payment, per_payment, recovery1, recovery2)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, dcc.transform(req, now), dcc_dir)


def add_common(p):
    p.add_argument("--port", required=True)
    p.add_argument("--keys", help="key folder (default .gbmeter/keys)")
    p.add_argument("--supplier", help="Supplier system title (default: the lowest)")
    p.add_argument("--dcc-dir", metavar="DIR", help="DCC folder (anomaly detection state)")
    p.add_argument("--json", action="store_true")
