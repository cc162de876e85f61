"""The outer layers of every GBCS message (NOTES 2): the MAC header
(General-Ciphering, authentication only) and the General-Signing APDU."""

from construct import Bytes, Const, ConstructError, GreedyBytes, Int8ub, Int16ub, Int64ub, Prefixed

from gbmeter.gbcs.fields import (
    DecodeError, DerLength, _build, _parse_exact, _reason, _stream, table)

# --- protocol numbers --------------------------------------------------------

CRA_COMMAND = 0x01
CRA_RESPONSE = 0x02
CRA_ALERT = 0x03
CRA_NAMES = {CRA_COMMAND: "command", CRA_RESPONSE: "response", CRA_ALERT: "alert"}

MSG_ALERT_CRITICAL = 0x1000
MSG_ALERT_NON_CRITICAL = 0x1001

SIGNATURE_LEN = 64
MAC_LEN = 12

TAG_GENERAL_SIGNING = 0xDF
TAG_GENERAL_CIPHERING = 0xDD


# --- 2.2 MAC header (General-Ciphering, authentication only) -------------------

MAC_HEADER = table(
    "tag" / Const(bytes([TAG_GENERAL_CIPHERING])),
    # transaction id, originator and recipient system titles, date-time,
    # other-information and key-info: all empty in GBCS
    "ciphering_fields_fixed" / Const(bytes(6)),
    "length" / DerLength(),                       # 5 + len(APDU) + 12
    "security_control_fixed" / Const(b"\x11"),    # authentication only
    "invocation_counter_fixed" / Const(bytes(4)),
)

# --- 2.1 General-Signing APDU -------------------------------------------------

GENERAL_SIGNING = table(
    "tag" / Const(bytes([TAG_GENERAL_SIGNING])),
    "transaction_id_length_fixed" / Const(b"\x09"),
    "cra" / Int8ub,                               # 01 command, 02 response, 03 alert
    "counter" / Int64ub,                          # originator counter
    "originator_length_fixed" / Const(b"\x08"),
    "originator" / Bytes(8),
    "recipient_length_fixed" / Const(b"\x08"),
    "recipient" / Bytes(8),
    "date_time" / Prefixed(Int8ub, GreedyBytes),  # 00 absent, or 0C + 12 bytes
    "other_info_length_fixed" / Const(b"\x02"),
    "message_code" / Int16ub,
    "content" / Prefixed(DerLength(), GreedyBytes),
)

SIGNATURE = table(
    "signature" / Prefixed(Int8ub, GreedyBytes),  # 00, or 40 + r||s
)


def _check8(name, value):
    value = bytes(value)
    if len(value) != 8:
        raise ValueError(f"{name} must be 8 bytes (a system title), got {len(value)}")
    return value


def build_apdu(cra, counter, originator, recipient, message_code, content,
               signature=None, date_time=None):
    """A General-Signing APDU. signature None: a PRECOMMAND (ends after the content);
    b"": signature length 00 (a MAC'd alert); 64 bytes: 40 + r||s."""
    if isinstance(cra, str):
        cra = {v: k for k, v in CRA_NAMES.items()}[cra]
    date_time = b"" if date_time is None else bytes(date_time)
    if len(date_time) not in (0, 12):
        raise ValueError("date_time must be 12 bytes (COSEM date-time) or absent")
    apdu = _build(GENERAL_SIGNING, dict(
        cra=cra, counter=counter, originator=_check8("originator", originator),
        recipient=_check8("recipient", recipient), date_time=date_time,
        message_code=message_code, content=bytes(content)), "the General-Signing APDU")
    if signature is None:
        return apdu
    signature = bytes(signature)
    if len(signature) not in (0, SIGNATURE_LEN):
        raise ValueError(f"signature must be {SIGNATURE_LEN} bytes (r||s) or empty")
    return apdu + _build(SIGNATURE, dict(signature=signature), "the signature")


def parse_apdu(data, base=0):
    """Decode a General-Signing APDU (PRECOMMAND, Signed Pre-Command, Response or
    Alert). `base` is where it starts in an enclosing message, for error offsets."""
    data = bytes(data)
    if not data:
        raise DecodeError(base, "general_signing", "message is empty")
    stream = _stream(data, base)
    try:
        head = GENERAL_SIGNING.parse_stream(stream)
    except ConstructError as e:  # pragma: no cover - _Located converts them
        raise DecodeError(stream.tell(), "general_signing", _reason(e)) from None
    end_of_content = stream.tell() - base
    signature = None
    signature_length = None
    rest = data[end_of_content:]
    if rest:
        sig = _parse_exact(SIGNATURE, rest, base + end_of_content, "signature")
        signature_length = len(sig.signature)
        if signature_length not in (0, SIGNATURE_LEN):
            raise DecodeError(base + end_of_content, "signature",
                              f"signature length {signature_length} is neither 00 nor 40")
        signature = sig.signature or None
    content_len = len(head.content)
    return {
        "cra": head.cra,
        "counter": head.counter,
        "originator": head.originator,
        "recipient": head.recipient,
        "date_time": head.date_time or None,
        "message_code": head.message_code,
        "content": head.content,
        "content_offset": base + end_of_content - content_len,
        "signature": signature,
        "signature_length": signature_length,   # None: PRECOMMAND (no length byte)
        "signed_part": data[1:end_of_content],
        "precommand": data[:end_of_content],
    }


def build_message(apdu, mac):
    """MAC header + APDU + 12-byte MAC (what the ACB sends and what a meter sends
    for a non-critical alert)."""
    mac = bytes(mac)
    if len(mac) != MAC_LEN:
        raise ValueError(f"MAC must be {MAC_LEN} bytes")
    header = _build(MAC_HEADER, dict(length=5 + len(apdu) + MAC_LEN), "the MAC header")
    return header + bytes(apdu) + mac


def parse_message(data):
    """Decode a COMMAND (MAC header + APDU + MAC), a MAC'd alert, or a bare APDU.
    Returns parse_apdu's fields plus `apdu` (bytes), `mac` (bytes or None) and
    `mac_header` (dict or None)."""
    data = bytes(data)
    if not data:
        raise DecodeError(0, "message", "message is empty")
    if data[0] != TAG_GENERAL_CIPHERING:
        if data[0] != TAG_GENERAL_SIGNING:
            raise DecodeError(0, "tag", f"starts with {data[0]:02X}, expected DD (MAC header)"
                                        " or DF (General-Signing)")
        out = parse_apdu(data)
        out.update(apdu=data, mac=None, mac_header=None)
        return out
    stream = _stream(data)
    header = MAC_HEADER.parse_stream(stream)
    start = stream.tell()
    if header.length != len(data) - (start - 5):
        # L counts the 5 security bytes, the APDU and the MAC
        raise DecodeError(7, "mac_header.length",
                          f"says {header.length} bytes follow but {len(data) - start + 5} do"
                          + (" (message cut short)" if header.length > len(data) - start + 5
                             else ""))
    if header.length < 5 + MAC_LEN:
        raise DecodeError(7, "mac_header.length", f"{header.length} is too short for a MAC")
    apdu = data[start:len(data) - MAC_LEN]
    out = parse_apdu(apdu, base=start)
    out.update(apdu=apdu, mac=data[-MAC_LEN:], mac_header={"length": header.length},
               mac_offset=len(data) - MAC_LEN)
    return out
