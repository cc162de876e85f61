# The Alerts the meter raises on its own (../shared/gbcs/NOTES.md section 2.3): a
# signed critical Alert when it refuses a Command, and a MAC'd non-critical Alert for
# an event such as Debt Collection Completed. envelope.Security loads this module for
# one call and drops it again, so a board serving good Commands holds none of it.
# The wrapping follows the category, the content follows the device, as in
# rtds/NA_GCA-ZigBee, NA_GCA-DLMS, NA_GNCA-ZigBee and NA_GNCA-DLMS:
#   critical (1000)      General-Signing APDU signed by the meter, no MAC header
#   non-critical (1001)  MAC header, signature length 00, MAC of the meter's and the
#                        Supplier's KA keys
#   GSME content (GBZ)   01 09 | 00 | alert code (2) | UTC seconds since 2000 (4)
#   ESME content (DLMS)  0F | invoke id (4) | 00 | 02 02 | 12 alert code (2)
#                        | 09 0C COSEM date-time (12)
# Each uses up one value of the meter's alert counter (st["alert_ctr"], the Alert's
# originator counter), which must never be used twice, across restarts and power
# cuts too. Values are reserved RESERVE at a time so that refused Commands do not
# each rewrite the state (flash wear): st["alert_resv"] is the highest value
# reserved, and taking a value above it first moves it RESERVE values on. The
# caller commits the state before the Alert leaves whenever alert_resv moved
# (app.Meter._refuse); otherwise it need not commit at all. A meter starting from a
# stored state skips past the reservation (app.Meter), so values up to alert_resv
# that were used but not committed one by one are never used again.
import struct

from micropython import const

import envelope
import gbcsmac
import usecases

_CRA_ALERT = const(3)
# 64 refused Commands' worth: a refusal takes at most two values (its alert and, after
# a run of them, 8F60), so refused Commands write the state at most once per 64.
RESERVE = const(128)
_INVOKE = const(0x20000000)   # invoke-id-and-priority of RTDS; low 24 bits: the counter


def critical(sec, st, code):
    """Security.critical_alert: a signed critical Alert (message code 1000) to the
    Supplier; unsigned from a meter not yet provisioned (no key to sign with)."""
    ctr = take(st)
    key = st["keys"]["ds"] if "keys" in st else None
    return envelope.build_apdu(
        _CRA_ALERT, ctr, bytes.fromhex(st["id"]),
        bytes.fromhex(envelope._lowest(st, usecases.SUPPLIER) or "00" * 8),
        usecases.ALERT_CRITICAL, content(st, code, ctr), key and bytes.fromhex(key))


def non_critical(sec, st, code):
    """Security.non_critical_alert: a MAC'd non-critical Alert (message code 1001) for
    the Supplier; only the APDU, unwrapped, when there is no Supplier KA key to MAC
    with."""
    ctr = take(st)
    sup = envelope._lowest(st, usecases.SUPPLIER)
    apdu = envelope.build_apdu(_CRA_ALERT, ctr, bytes.fromhex(st["id"]),
                               bytes.fromhex(sup or "00" * 8), usecases.ALERT_NON_CRITICAL,
                               content(st, code, ctr))
    if sup is None or "ka" not in st["anchors"][sup]:
        return apdu
    return gbcsmac.wrap(sec._z(st, sup), apdu)


def take(st):
    """The next alert counter value; moves the reservation on (st["alert_resv"]) when
    the value lies beyond it, and then st must be committed before the value is used."""
    ctr = st["alert_ctr"] + 1
    if ctr > st.get("alert_resv", 0):
        st["alert_resv"] = ctr + RESERVE - 1
    st["alert_ctr"] = ctr
    return ctr


def content(st, code, ctr):
    """The content of alert `code` with alert counter ctr, in the device's own
    protocol whatever the category: GBZ on a GSME, a DLMS data-notification (invoke
    id from the counter) on an ESME; both carry the meter's clock."""
    if st["device"] == "gsme":
        return struct.pack(">BBBHI", 0x01, 0x09, 0, code, st["clock"])
    return (struct.pack(">BIBBBBH", 0x0F, _INVOKE | (ctr & 0xFFFFFF), 0, 2, 2, 0x12, code)
            + b"\x09\x0c" + cosem_datetime(st["clock"]))


def cosem_datetime(t):
    """12-byte COSEM date-time of UTC seconds since 2000-01-01 (day of week, hundredths
    and deviation not specified, as in RTDS)."""
    days, rem = divmod(t, 86400)
    # civil date from days since 2000-03-01 (a leap cycle starts there)
    d = days - 60 + 146097 * 4  # keep it positive for dates before 2000-03-01
    era, doe = divmod(d, 146097)
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = 2000 - 1600 + 400 * era + yoe + (1 if month <= 2 else 0)
    return struct.pack(">HBBBBBBBHB", year, month, day, 0xFF, rem // 3600, rem // 60 % 60,
                       rem % 60, 0, 0x8000, 0xFF)
