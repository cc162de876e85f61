"""GBCS wire formats on the host, in one import: MAC header, General-Signing APDU, GBZ / ZCL
Prepayment and DLMS COSEM (A-XDR) content.

The layouts live in gbcs.apdu (NOTES 2), gbcs.gbz (3), gbcs.dlms (4) and
gbcs.alerts (2.3), on the building blocks of gbcs.fields; this module gathers their
public names so that callers say `codec.parse_message`. They are `construct` structs written to read like the tables of
../shared/gbcs/NOTES.md (sections 2-4). Every field is wrapped so that a message
that is cut short or malformed raises `DecodeError` naming the field and the
byte offset where it starts, counted from the start of the whole message.

Public API (used by the DCC-side helpers as well as `gbmeter parse`):

    build_apdu(cra, counter, originator, recipient, message_code, content,
               signature=None, date_time=None) -> bytes
    parse_apdu(data) -> dict
    build_message(apdu, mac) -> bytes            (MAC header + APDU + MAC)
    parse_message(data) -> dict                  (with or without MAC header)
    build_gbz(components, frame_control=0x01) -> bytes
    parse_gbz(content) -> dict
    change_debt(...), credit_adjustment(...), select_emergency_credit(...),
    default_response(...) -> ZCL payload bytes
    axdr(type_name, value) -> bytes, axdr_encode(node), axdr_decode(data)
    build_access_request(invoke_id, specs, data) -> bytes
    build_access_response(invoke_id, data, results) -> bytes
    decode_content(message_code, content) -> dict
    load_usecases() -> the firmware's usecases module
"""

# Every public name of the codec modules, re-exported: this module is the codec's
# one import, the modules below are where each layout is defined.
from gbmeter.gbcs.alerts import *  # noqa: F401,F403
from gbmeter.gbcs.apdu import *  # noqa: F401,F403
from gbmeter.gbcs.content import *  # noqa: F401,F403
from gbmeter.gbcs.dlms import *  # noqa: F401,F403
from gbmeter.gbcs.fields import *  # noqa: F401,F403
from gbmeter.gbcs.gbz import *  # noqa: F401,F403
