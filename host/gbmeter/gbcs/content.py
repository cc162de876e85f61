"""Any Command, Response or Alert content decoded by what it starts with, and the
names of use cases from the firmware's one table."""

from gbmeter import paths
from gbmeter.gbcs.alerts import ALERT_CODES, decode_alert
from gbmeter.gbcs.dlms import (
    TAG_ACCESS_REQUEST, TAG_ACCESS_RESPONSE, TAG_DATA_NOTIFICATION, parse_access_request,
    parse_access_response, parse_data_notification)
from gbmeter.gbcs.gbz import GBZ_PROFILE, parse_gbz


def decode_content(message_code, content, base=0):
    """The content decoded by what it starts with (GBZ, Access-Request,
    Access-Response, Data-Notification; an alert as its device lays it out). Never guesses: a format it
    does not know comes back as {"format": "unknown", "raw": bytes}; a known format
    that does not parse raises DecodeError."""
    content = bytes(content)
    if message_code in ALERT_CODES:
        alert = decode_alert(content, base)
        if alert is not None:
            return alert
    if content[:2] == GBZ_PROFILE:
        return {"format": "gbz", **parse_gbz(content, base)}
    first = content[0] if content else None
    if first == TAG_ACCESS_REQUEST:
        return {"format": "dlms-access-request", **parse_access_request(content, base)}
    if first == TAG_ACCESS_RESPONSE:
        return {"format": "dlms-access-response", **parse_access_response(content, base)}
    if first == TAG_DATA_NOTIFICATION:
        return {"format": "dlms-data-notification", **parse_data_notification(content, base)}
    return {"format": "unknown", "raw": content}


# --- the firmware's use-case table -------------------------------------------------

def load_usecases():
    """firmware/usecases.py, imported from the checkout: the one use-case table."""
    return paths.firmware_table("usecases")


def use_case_name(message_code):
    row = load_usecases().find(message_code)
    if row:
        return row[1]
    uc = load_usecases()
    if message_code == uc.ALERT_CRITICAL:
        return "critical alert"
    if message_code == uc.ALERT_NON_CRITICAL:
        return "non-critical alert"
    return None
