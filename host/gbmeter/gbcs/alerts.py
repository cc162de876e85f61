"""Alert content (NOTES 2.3). The wrapping follows the category (critical 1000:
signed, no MAC header; non-critical 1001: MAC header, MAC'd), the content follows
the device, in both categories:

    GSME (GBZ)   01 09 | 00 | alert code (2) | UTC seconds since 2000-01-01 (4)
    ESME (DLMS)  0F | invoke id (4) | 00 | 02 02 | 12 alert code (2) | 09 0C date-time (12)

checked against rtds/NA_GCA-ZigBee, NA_GCA-DLMS, NA_GNCA-ZigBee and NA_GNCA-DLMS."""

import datetime

from construct import Const, Int16ub, Int32ub

from gbmeter.gbcs.apdu import MSG_ALERT_CRITICAL, MSG_ALERT_NON_CRITICAL
from gbmeter.gbcs.dlms import TAG_DATA_NOTIFICATION, parse_data_notification
from gbmeter.gbcs.fields import DecodeError, _parse_exact, plain, table
from gbmeter.gbcs.gbz import GBZ_PROFILE

ALERT_CODES = (MSG_ALERT_CRITICAL, MSG_ALERT_NON_CRITICAL)
GBZ_ALERT_START = GBZ_PROFILE + b"\x00"    # a GBZ payload with no components

GBZ_ALERT = table(
    "profile_fixed" / Const(GBZ_PROFILE),
    "zero_fixed" / Const(b"\x00"),
    "alert_code" / Int16ub,
    "date_time" / Int32ub,              # UTC seconds since 2000-01-01
)


def parse_gbz_alert(content, base=0):
    """A GSME's alert content (either category)."""
    out = plain(_parse_exact(GBZ_ALERT, content, base, "alert"))
    out["alert_code"] = f"{out['alert_code']:04X}"
    out["date_time_utc"] = gbcs_time_text(out["date_time"])
    return out


def decode_alert(content, base=0):
    """An alert's content in the layout its first bytes name: GBZ (GSME) or a DLMS
    data-notification (ESME). None for neither; DecodeError for a broken one."""
    content = bytes(content)
    if content[:3] == GBZ_ALERT_START:
        return {"format": "gbz-alert", **parse_gbz_alert(content, base)}
    if content[:1] == bytes([TAG_DATA_NOTIFICATION]):
        return {"format": "dlms-data-notification", **parse_data_notification(content, base)}
    return None


def alert_code(message_code, content):
    """The alert code (int) of an Alert's content, whatever the device; None when the
    message is no alert or its content does not say."""
    if message_code not in ALERT_CODES:
        return None
    try:
        d = decode_alert(content)
    except DecodeError:
        return None
    code = d and d.get("alert_code")
    return int(code, 16) if code else None


GBCS_EPOCH = 946684800   # 2000-01-01T00:00:00Z in Unix seconds


def gbcs_time_text(seconds):
    """UTC seconds since 2000-01-01 as ISO 8601."""
    t = datetime.datetime.fromtimestamp(GBCS_EPOCH + seconds, datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")
