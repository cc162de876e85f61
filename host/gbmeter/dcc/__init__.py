"""The DCC's side of the chain, on the host.

    Service Request (gbmeter.dcc.duis) --transform--> PRECOMMAND
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
"""

from gbmeter.dcc.anomaly import (  # noqa: F401
    QUARANTINE_EXIT, Dcc, Verdict, dcc_dir, inspect_packet, read_signed_precommand)
from gbmeter.dcc.correlate import CORRELATE_FAIL_EXIT, Correlation, correlate  # noqa: F401
from gbmeter.dcc.precommand import content, gbcs_seconds, parse_now, transform  # noqa: F401
