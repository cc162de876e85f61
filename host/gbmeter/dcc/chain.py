"""The DCC's chain for one Service Request, on the host: the Supplier signs the
PRECOMMAND, Parse and Correlate checks it, anomaly detection releases or quarantines
it, the ACB wraps it and the meter answers. What reset-debt, manage-debt, read,
payment-mode, `sr --port` and the demo share. A non-critical request (the reads of
SR 4.3) goes straight through: nothing for the Supplier to sign, nothing to
correlate or inspect; the ACB MACs it and its Response is MAC-checked and opened."""

from gbmeter.dcc import duis, srxml
from gbmeter.dcc.anomaly import Dcc
from gbmeter.dcc.correlate import correlate
from gbmeter.dcc.precommand import PREPAYMENT_SUSPEND_DEBT, transform
from gbmeter.errors import UserError
from gbmeter.gbcs import codec
from gbmeter.supplier.answer import is_critical, meter_floor, refuse_unfit, refuse_unknown


def run_chain(session, link, request, precommand, dcc_dir=None, force=False):
    """The whole DCC chain for one Service Request, as `gbmeter sr --port` runs it:
    the Supplier signs the PRECOMMAND, Parse and Correlate checks it against the
    request, anomaly detection releases or quarantines it (a quarantined Command is
    never sent), the ACB wraps it for the meter, and the Response is verified.
    A use case the meter's profile does not know is refused before the DCC sees it,
    unless forced. Returns the `send --json` result with `correlation` and `dcc` added.
    A non-critical request skips signing, Parse and Correlate and anomaly detection
    (`correlation` and `dcc` say "not applicable")."""
    if not is_critical(precommand):
        return _non_critical(session, link, request, precommand, force)
    signed = session.sign(precommand)
    if not force:
        refuse_unknown(link, signed)
    corr = correlate(request, signed, session.keys)
    if not corr.correlates:
        raise UserError("Parse and Correlate: the Signed Pre-Command does not correlate "
                        "with the Service Request:\n" + corr.text(), exit_code=3)
    meter_id = codec.parse_apdu(signed)["recipient"].hex()
    command = session.wrap(signed, meter_id)
    # what the host would refuse to send (another meter's Command, ...) is refused
    # before the DCC counts it towards its volume thresholds: nothing unsent is counted
    refuse_unfit(link.ping(), codec.parse_message(command))
    the_dcc = Dcc(dcc_dir)
    verdict = the_dcc.check(signed)
    verdict.require_release(the_dcc.path)
    session.used_counter(meter_id, request.counter)
    result = session.send(link, command, force=True)  # checked above
    result["correlation"] = "correlates"
    result["dcc"] = verdict.verdict
    return result


def _non_critical(session, link, request, precommand, force):
    signed = session.sign_if_critical(precommand)
    if not force:
        refuse_unknown(link, signed)
    meter_id = codec.parse_apdu(signed)["recipient"].hex()
    command = session.wrap(signed, meter_id)
    session.used_counter(meter_id, request.counter)
    result = session.send(link, command, force=True)  # checked above
    result["dcc"], result["correlation"] = "not applicable", "non-critical"
    return result


def read_registers(session, link, meter_id, device, now=None, force=False):
    """SR 4.3 Read Instantaneous Prepay Values (ECS19 / GCS14): the registers read
    over GBCS, the Response's MAC checked and its encrypted part opened
    (result["registers"])."""
    counter = session.take_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = srxml.read_prepayment_registers_xml(session.supplier.title, bytes.fromhex(meter_id),
                                              counter)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, transform(req, now), None, force)


def set_payment_mode(session, link, meter_id, device, mode, disablement_threshold=0,
                     dcc_dir=None, now=None, force=False):
    """SR 1.6 Update Payment Mode (ECS02 / ECS03 / GCS02 / GCS03) through the whole
    chain. Prepayment carries the device's suspend-debt flags as RTDS shows them
    (precommand.PREPAYMENT_SUSPEND_DEBT) and the disablement threshold."""
    counter = session.take_counter(meter_id, meter_floor(link, session.supplier.eui))
    disabled, emergency = PREPAYMENT_SUSPEND_DEBT[device]
    xml = srxml.update_payment_mode_xml(session.supplier.title, bytes.fromhex(meter_id),
                                        counter, mode, disabled, emergency,
                                        disablement_threshold)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, transform(req, now), dcc_dir, force)


def reset_register(session, link, meter_id, device, register, dcc_dir=None, now=None,
                   force=False):
    counter = session.take_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = srxml.reset_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, register)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, transform(req, now), dcc_dir, force)


def update_debt(session, link, meter_id, device, time1, time2, payment, per_payment,
                recovery1, recovery2, dcc_dir=None, now=None, force=False):
    counter = session.take_counter(meter_id, meter_floor(link, session.supplier.eui))
    xml = srxml.update_debt_xml(session.supplier.title, bytes.fromhex(meter_id), counter, device,
                               time1, time2, payment, per_payment, recovery1, recovery2)
    req = duis.parse_request(xml, device=device)
    return run_chain(session, link, req, transform(req, now), dcc_dir, force)
