"""The DCC's side of the chain, on the host.

    Service Request (gbmeter.duis) --transform--> PRECOMMAND
      --Supplier signs (gbcs.sign_precommand)--> Signed Pre-Command
      --Parse and Correlate (correlate) + anomaly detection (Dcc.check)-->
      released: ACB wraps (gbcs.wrap) and sends / quarantined: never sent

Modules: precommand (the transform: Service Request -> PRECOMMAND), anomaly
(packet inspection, threshold ADTs, the DCC folder), store (the SQLite quarantine
log), correlate (Parse and Correlate).

Public API:
    transform(request, now=None) -> PRECOMMAND bytes
    content(request, now=None, seconds=None) -> Command content bytes
    parse_now(text_or_datetime_or_None) -> aware UTC datetime
    Dcc(path=None).check(signed_pre_command, now=None, dry_run=False) -> Verdict
    Dcc(path).quarantined() / .notifications() / .inventory() / .config()
    correlate(request, signed_pre_command, folder=None, now=None) -> Correlation
    send_hook(request, precommand, args) -> exit code
"""

from gbmeter.dcc.anomaly import (  # noqa: F401
    QUARANTINE_EXIT, Dcc, Verdict, dcc_dir, inspect_packet, read_signed_precommand)
from gbmeter.dcc.correlate import CORRELATE_FAIL_EXIT, Correlation, correlate  # noqa: F401
from gbmeter.dcc.precommand import content, gbcs_seconds, parse_now, transform  # noqa: F401
from gbmeter.errors import UserError


def send_hook(request, precommand, args):
    """`gbmeter sr FILE --port P`: run the whole chain for one Service Request.

    The chain this hook is for: sign `precommand` with the Supplier's DS key
    (gbcs.sign_precommand), correlate(request, signed, folder), then
    Dcc(args.dcc_dir).check(signed).require_release() (a quarantined Command is
    never sent), gbcs.wrap with the ACB's KA key and the meter's KA certificate,
    send on args.port and verify the Response. Not wired yet: it stops before
    anything is signed, counted or sent."""
    raise UserError("sending needs the security chain; not available yet")
