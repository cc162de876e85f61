"""gbmeter parse: decode any GBCS message (COMMAND, PRECOMMAND, Signed Pre-Command,
RESPONSE, alert) into a readable tree or JSON, checking signatures and MACs when a
key folder is given. Field names follow ../shared/gbcs/NOTES.md."""

import json

from gbmeter.cli._common import read_hex_arg
from gbmeter.gbcs import codec, crypto
from gbmeter.errors import UserError
from gbmeter.supplier.session import saved_meter, saved_meter_key, state_folder

ROLE_NOTE = "Supplier for Commands, the meter for Responses and Alerts"


def register(sub):
    p = sub.add_parser(
        "parse", help="decode a GBCS message (hex or file of hex) into a tree or JSON",
        description="Decode a GBCS message: MAC header, General-Signing APDU, GBZ/ZCL or "
                    "DLMS content. With --keys, check the signature (" + ROLE_NOTE + ") "
                    "and the MAC (ACB and meter KA keys for Commands; meter KA key "
                    "and Supplier KA private key for non-critical alerts). A meter's keys "
                    "are the ones it made when provisioned with this folder (saved in "
                    "its state folder, meters/<id>.json), else its certificates.")
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


class TrustedKeys:
    """What `parse --keys DIR` checks with: the folder's certificates and private
    keys, and the public keys each meter made at provisioning, which the host saved
    in the folder's state folder (meters/<id>.json, as the sending verbs use them).
    An emulated meter makes its own key pairs, so a certificate of the same system
    title (ZAZ1's test meters) is not its key: the provisioned key is tried first,
    then the certificate, and a message is valid when either verifies it (the RTDS
    messages of ZAZ1's own meters stay valid after a virtual meter took the title)."""

    def __init__(self, folder):
        self.folder = folder
        self.state = state_folder(folder.path)

    def party(self, eui):
        return self.folder.parties.get(eui)

    def public(self, eui, usage):
        """[(source, public key)] to try for a party's DS or KA key, best first."""
        out = []
        pub = saved_meter_key(self.state, eui, usage)
        if pub is not None:
            out.append(("provisioned", pub))
        p = self.folder.parties.get(eui)
        if p is not None and p.certs.get(usage):
            out.append(("certificate", p.certs[usage].public_key()))
        return out

    def role_name(self, eui):
        p = self.folder.parties.get(eui)
        if p is not None:
            return p.role_name
        return "device" if saved_meter(self.state, eui) else None


def _first(candidates, check):
    """(True, source) for the first key that passes check, else (False, None)."""
    for source, key in candidates:
        if check(key):
            return True, source
    return False, None


def _checks(m, trusted):
    """(signature_valid, mac_valid, notes, sources) with the trusted keys, None where
    absent or no key; sources names the key that verified each."""
    notes = []
    sig_ok = None
    mac_ok = None
    sources = {}
    if trusted is None:
        return sig_ok, mac_ok, notes, sources
    originator = m["originator"].hex()
    recipient = m["recipient"].hex()
    if m["signature"] is not None:
        pubs = trusted.public(originator, "ds")
        if not pubs:
            notes.append(f"no DS key (certificate or provisioned) for originator "
                         f"{_title(m['originator'])}")
        else:
            sig_ok, sources["signature_key"] = _first(
                pubs, lambda pub: crypto.verify(pub, m["signed_part"], m["signature"]))
    if m["mac"] is not None:
        if m["cra"] == codec.CRA_COMMAND:
            # ACB KA private key with the meter's (recipient's) KA key
            pubs = trusted.public(recipient, "ka")
            acbs = [p for p in trusted.folder.by_role("acb") if p.ka_priv is not None]
            if not pubs:
                notes.append(f"no KA key (certificate or provisioned) for recipient "
                             f"{_title(m['recipient'])}")
            elif not acbs:
                notes.append("no ACB KA private key")
            else:
                mac_ok, sources["mac_key"] = _first(
                    pubs, lambda pub: any(crypto.check_mac_keys(a.ka_priv, pub, m["message"])
                                          for a in acbs))
        else:
            # a meter's MAC'd alert: its KA key and the recipient's KA private key
            pubs = trusted.public(originator, "ka")
            remote = trusted.party(recipient)
            if not pubs:
                notes.append(f"no KA key (certificate or provisioned) for originator "
                             f"{_title(m['originator'])}")
            elif remote is None or remote.ka_priv is None:
                notes.append(f"no KA private key for recipient {_title(m['recipient'])}")
            else:
                mac_ok, sources["mac_key"] = _first(
                    pubs, lambda pub: crypto.check_mac_keys(remote.ka_priv, pub, m["message"]))
    return sig_ok, mac_ok, notes, sources


def _decrypt(m, payload, trusted, notes):
    """(valid, opened) for a read Response's encrypted registers (NOTES 7), opened
    with the recipient's (the Supplier's) KA private key and the meter's KA key
    (protected.open_read); (None, None) when there is nothing sealed or no key to
    open it with, (False, None) when it does not open with any of the meter's keys."""
    from gbmeter.gbcs import protected
    if trusted is None or m["cra"] != codec.CRA_RESPONSE or not isinstance(payload, dict) \
            or not protected.sealed_parts(m["message_code"], payload):
        return None, None
    remote = trusted.party(m["recipient"].hex())
    pubs = trusted.public(m["originator"].hex(), "ka")
    if remote is None or remote.ka_priv is None or not pubs:
        notes.append(f"encrypted registers not opened: no KA private key for recipient "
                     f"{_title(m['recipient'])} or no KA key for {_title(m['originator'])}")
        return None, None
    for _, pub in pubs:
        try:
            return True, protected.open_read(m["message_code"], payload,
                                             crypto.ecdh(remote.ka_priv, pub), m["originator"],
                                             m["counter"], m["recipient"])
        except crypto.SealError:
            continue
        except codec.DecodeError as e:
            notes.append(f"the encrypted registers opened but do not decode: {e}")
            return False, None
    return False, None


def decode(data, folder=None):
    """The JSON-ready description of one message (raises codec.DecodeError).
    `folder`: a KeyFolder, or TrustedKeys (a KeyFolder is taken with its state
    folder's provisioned meter keys)."""
    if folder is not None and not isinstance(folder, TrustedKeys):
        folder = TrustedKeys(folder)
    m = codec.parse_message(data)
    m["message"] = data
    try:
        payload = codec.decode_content(m["message_code"], m["content"], m["content_offset"])
    except codec.DecodeError as e:
        payload = {"format": "unknown", "raw": m["content"],
                   "decode_error": f"content does not parse: {e}"}
    sig_ok, mac_ok, notes, sources = _checks(m, folder)
    opened_ok, opened = _decrypt(m, payload, folder, notes)
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
            out[f"{key}_role"] = folder.role_name(m[key].hex())
        out.update(sources)
    if opened_ok is not None:
        # a read's encrypted registers (NOTES 7): opened, or reported as failing
        out["decryption_valid"] = opened_ok
        out["decrypted"] = opened
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


def _source(source):
    return {"provisioned": " with the key the meter made at provisioning",
            "certificate": " with its certificate's key"}.get(source, "")


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
        lines.append(f"  signature: {d['signature']} ({_validity(d['signature_valid'])})"
                     f"{_source(d.get('signature_key'))}")
    elif d["kind"] == "PRECOMMAND":
        lines.append("  signature: none (a PRECOMMAND ends after the content)")
    else:
        lines.append("  signature: none (length 00)")
    if d["mac"] is not None:
        lines.append(f"mac: {d['mac']} ({_validity(d['mac_valid'])}){_source(d.get('mac_key'))}")
    if "decryption_valid" in d:
        if d["decryption_valid"]:
            lines.append("decrypted (the encrypted registers opened with the recipient's KA key):")
            for k, v in d["decrypted"]["registers"].items():
                lines.append(f"  {k}: {v}")
            for k in ("currency", "trailing_digits"):
                if k in d["decrypted"]:
                    lines.append(f"  {k}: {d['decrypted'][k]}")
        else:
            lines.append("decrypted: INVALID (the ciphertext or its tag does not verify: "
                         "nothing of it is decoded)")
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
