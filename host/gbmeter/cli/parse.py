"""gbmeter parse: decode any GBCS message (COMMAND, PRECOMMAND, Signed Pre-Command,
RESPONSE, alert) into a readable tree or JSON, checking signatures and MACs when a
key folder is given. Field names follow ../shared/gbcs/NOTES.md."""

import json

from gbmeter.cli._common import read_hex_arg
from gbmeter.gbcs import codec, crypto
from gbmeter.errors import UserError

ROLE_NOTE = "Supplier for Commands, the meter for Responses and Alerts"


def register(sub):
    p = sub.add_parser(
        "parse", help="decode a GBCS message (hex or file of hex) into a tree or JSON",
        description="Decode a GBCS message: MAC header, General-Signing APDU, GBZ/ZCL or "
                    "DLMS content. With --keys, check the signature (" + ROLE_NOTE + ") "
                    "and the MAC (ACB and meter KA keys for Commands; meter KA certificate "
                    "and Supplier KA private key for non-critical alerts).")
    p.add_argument("message", metavar="HEX|FILE", help="hex string, a file holding hex, or -")
    p.add_argument("--json", action="store_true", help="one JSON object")
    p.add_argument("--keys", metavar="DIR", help="key folder (ZAZ1 naming) to check "
                                                  "signatures and MACs")
    p.set_defaults(func=run)


def _title(b):
    return bytes(b).hex().upper()


def _kind(m):
    cra = m["cra"]
    if cra == codec.CRA_COMMAND:
        if m["mac"] is not None:
            return "COMMAND"
        return "SIGNED PRE-COMMAND" if m["signature_length"] else "PRECOMMAND"
    if cra == codec.CRA_RESPONSE:
        return "RESPONSE"
    if cra == codec.CRA_ALERT:
        return "ALERT"
    return "UNKNOWN"


def _checks(m, folder):
    """(signature_valid, mac_valid, notes) with the key folder, None where absent or
    no key."""
    notes = []
    sig_ok = None
    mac_ok = None
    if folder is None:
        return sig_ok, mac_ok, notes
    signer = folder.parties.get(m["originator"].hex())
    if m["signature"] is not None:
        if signer is None or signer.ds_pub is None:
            notes.append(f"no DS certificate for originator {_title(m['originator'])}")
        else:
            sig_ok = crypto.verify(signer.ds_pub, m["signed_part"], m["signature"])
    if m["mac"] is not None:
        if m["cra"] == codec.CRA_COMMAND:
            # ACB KA private key with the meter's (recipient's) KA certificate
            meter = folder.parties.get(m["recipient"].hex())
            acbs = [p for p in folder.by_role("acb") if p.ka_priv is not None]
            if meter is None or meter.ka_pub is None:
                notes.append(f"no KA certificate for recipient {_title(m['recipient'])}")
            elif not acbs:
                notes.append("no ACB KA private key")
            else:
                mac_ok = any(crypto.check_mac_keys(a.ka_priv, meter.ka_pub, m["message"])
                             for a in acbs)
        else:
            # a meter's MAC'd alert: its KA certificate and the recipient's KA private key
            meter = signer
            remote = folder.parties.get(m["recipient"].hex())
            if meter is None or meter.ka_pub is None:
                notes.append(f"no KA certificate for originator {_title(m['originator'])}")
            elif remote is None or remote.ka_priv is None:
                notes.append(f"no KA private key for recipient {_title(m['recipient'])}")
            else:
                mac_ok = crypto.check_mac_keys(remote.ka_priv, meter.ka_pub, m["message"])
    return sig_ok, mac_ok, notes


def decode(data, folder=None):
    """The JSON-ready description of one message (raises codec.DecodeError)."""
    m = codec.parse_message(data)
    m["message"] = data
    try:
        payload = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
    except codec.DecodeError as e:
        payload = {"format": "unknown", "raw": m["content"],
                   "decode_error": f"content does not parse: {e}"}
    sig_ok, mac_ok, notes = _checks(m, folder)
    out = {
        "kind": _kind(m),
        "message_code": m["message_code"],
        "message_code_hex": f"{m['message_code']:04X}",
        "use_case": codec.use_case_name(m["message_code"]),
        "cra": codec.CRA_NAMES.get(m["cra"], f"unknown ({m['cra']:02X})"),
        "counter": m["counter"],
        "originator": _title(m["originator"]),
        "recipient": _title(m["recipient"]),
        "date_time": m["date_time"],
        "mac_header": m["mac_header"],
        "content_length": len(m["content"]),
        "signature": m["signature"],
        "signature_valid": sig_ok,
        "mac": m["mac"],
        "mac_valid": mac_ok,
        "payload": payload,
    }
    if folder is not None:
        for key in ("originator", "recipient"):
            p = folder.parties.get(m[key].hex())
            out[f"{key}_role"] = p.role_name if p else None
    if notes:
        out["key_notes"] = notes
    return codec.to_json(out)


# --- the readable tree ------------------------------------------------------------

def _is_axdr(node):
    return isinstance(node, dict) and set(node) == {"type", "value"}


def _axdr_line(node):
    if node["type"] in ("structure", "array"):
        return f"{node['type']} ({len(node['value'])})"
    if node["value"] is None:
        return node["type"]
    v = node["value"]
    return f"{node['type']} {v if v != '' else '(empty)'}"


# shown in hex in the tree (JSON keeps integers)
HEX_FIELDS = {"cluster_id": 4, "frame_control": 2, "command_id": 2, "invoke_id": 8,
              "status": 2, "result": 2, "control": 2}


def _tree(obj, indent, lines, label=None):
    pad = "  " * indent
    if _is_axdr(obj):
        lines.append(f"{pad}{label + ': ' if label else ''}{_axdr_line(obj)}")
        if obj["type"] in ("structure", "array"):
            for i, item in enumerate(obj["value"]):
                _tree(item, indent + 1, lines, f"[{i}]")
        return
    if isinstance(obj, dict):
        if label:
            lines.append(f"{pad}{label}:")
            indent += 1
        for k, v in obj.items():
            _tree(v, indent, lines, k)
        return
    if isinstance(obj, list):
        lines.append(f"{pad}{label}: ({len(obj)})" if label else f"{pad}({len(obj)})")
        for i, item in enumerate(obj):
            _tree(item, indent + 1, lines, f"[{i}]")
        return
    if label in HEX_FIELDS and isinstance(obj, int) and not isinstance(obj, bool):
        lines.append(f"{pad}{label}: {obj:0{HEX_FIELDS[label]}X}")
        return
    text = "null" if obj is None else ("true" if obj is True else
                                       "false" if obj is False else str(obj))
    if text == "":
        text = "(empty)"
    lines.append(f"{pad}{label}: {text}" if label else f"{pad}{text}")


def _validity(v):
    return {True: "valid", False: "INVALID", None: "not checked"}[v]


def render(d):
    lines = []
    uc = f" {d['use_case']}" if d["use_case"] else ""
    lines.append(f"{d['kind']}  message code {d['message_code_hex']}{uc}, "
                 f"{d['cra']}, counter {d['counter']}")
    if d["mac_header"] is not None:
        lines.append("mac_header:")
        lines.append(f"  length: {d['mac_header']['length']}")
    lines.append("general_signing:")
    for k in ("cra", "counter", "originator", "recipient", "date_time", "message_code"):
        v = d[k]
        if k == "message_code":
            v = f"{d['message_code_hex']}{uc}"
        if k == "date_time" and v is None:
            v = "absent"
        role = d.get(f"{k}_role")
        lines.append(f"  {k}: {v}" + (f" ({role})" if role else ""))
    lines.append(f"  content: {d['content_length']} bytes")
    if d["signature"] is not None:
        lines.append(f"  signature: {d['signature']} ({_validity(d['signature_valid'])})")
    elif d["kind"] == "PRECOMMAND":
        lines.append("  signature: none (a PRECOMMAND ends after the content)")
    else:
        lines.append("  signature: none (length 00)")
    if d["mac"] is not None:
        lines.append(f"mac: {d['mac']} ({_validity(d['mac_valid'])})")
    payload = dict(d["payload"])
    fmt = payload.pop("format", "unknown")
    lines.append(f"payload ({fmt}):")
    _tree(payload, 1, lines)
    for n in d.get("key_notes", ()):
        lines.append(f"note: {n}")
    return "\n".join(lines)


def run(args):
    data = read_hex_arg(args.message)
    folder = None
    if args.keys:
        from gbmeter.gbcs.keys import KeyFolder
        folder = KeyFolder(args.keys)
    try:
        d = decode(data, folder)
    except codec.DecodeError as e:
        raise UserError(f"not a GBCS message: {e}") from None
    if args.json:
        print(json.dumps(d))
    else:
        print(render(d))
    return 0
