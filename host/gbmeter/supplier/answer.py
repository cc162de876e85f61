"""What goes to a meter and what comes back, for the Supplier and ACB of
gbmeter.supplier.session: what the host refuses before sending (refuse_unfit,
refuse_unknown), the meter's answer checked against its Command (check_answer,
raw_answer: signature or MAC, counter, message code, every part's result, a read's
registers decrypted), in plain words (describe), and what an 8F53 most likely means
(explain_8f53)."""


from gbmeter.gbcs import codec, crypto
from gbmeter.errors import UserError
from gbmeter.board.link import T_ALERT, T_NAK, T_RESPONSE, nak_reason


def is_critical(apdu):
    """Whether an APDU's use case is critical (firmware/usecases.py; an unknown one
    is taken as critical: signed, as any Command before SR 4.3)."""
    row = codec.load_usecases().find(codec.parse_apdu(apdu)["message_code"])
    return row is None or row[3]


# ZCL answers that are a success in themselves (no Default Response): a read's
# Read Attributes Response (its records say more; encrypted ones once opened), a
# payment mode's Change Payment Mode Response
ANSWERS = ("read_attributes_response", "change_payment_mode_response")


def outcome(message_code, content):
    """Per component / specification results of a Response's content, and whether
    all succeeded: (list of (what, status name), all_ok)."""
    tree = codec.to_json(codec.decode_content(message_code, content))
    out = []
    if tree.get("format") == "gbz":
        for c in tree.get("components", []):
            what = f"component {c.get('sequence_number', len(out)) + 1}"
            if c.get("command") in ANSWERS:
                recs = (c.get("read_attributes_response") or {}).get("records", [])
                bad = [r for r in recs if r.get("status") != 0]
                out.append((what, bad[0]["status_name"] if bad else
                            "encrypted" if c.get("encrypted") else "SUCCESS", not bad))
                continue
            dr = c.get("default_response") or {}
            out.append((what, dr.get("status_name", "?"), dr.get("status") == 0))
    elif tree.get("format") == "dlms-access-response":
        for i, r in enumerate(tree.get("results", [])):
            out.append((f"{r.get('kind')} {i + 1}", r.get("result_name", "?"), r.get("result") == 0))
    return out, bool(out) and all(ok for _, _, ok in out)


def alert_code(apdu):
    """The alert code of an Alert APDU, GSME (GBZ) or ESME (DLMS) content alike."""
    a = codec.parse_apdu(apdu)
    return codec.alert_code(a["message_code"], a["content"])


def frame_alert_code(payload):
    """The alert code of an Alert frame's payload, MAC-headed (non-critical) or not,
    as four hex digits ("?" when it does not say)."""
    apdu = codec.parse_message(payload).get("apdu", payload) if payload[:1] == b"\xdd" else payload
    code = alert_code(apdu)
    return "%04X" % code if code is not None else "?"


RUN_ALERT = "8F60"   # the meter's "unusual numbers of rejected Commands" alert


def check_answer(session, cmd_apdu, frames, command=None):
    """Turn the frames answering a Command into the result of `send --json`:
    `command` (the bytes sent, when given), `response` and `alert_messages` (every
    alert frame) in hex, exactly as on the wire, besides what they mean."""
    cmd = codec.parse_apdu(cmd_apdu)
    meter_id = cmd["recipient"].hex()
    result = {"ok": False, "use_case": codec.use_case_name(cmd["message_code"]),
              "counter": cmd["counter"], "meter": meter_id}
    if command is not None:
        result["command"] = bytes(command).hex()
    alerts = [frame_alert_code(f.payload) for f in frames if f.type == T_ALERT]
    result["alerts"] = alerts
    result["alert_messages"] = [f.payload.hex() for f in frames if f.type == T_ALERT]
    last = frames[-1]
    if last.type == T_ALERT:
        # the refusal's own alert; an 8F60 after it (a run of refused Commands) is added
        # to the words, never put in its place
        cause = [a for a in alerts if a != RUN_ALERT] or alerts
        result["alert"] = cause[-1]
        result["reason"] = f"the meter refused the Command with alert {cause[-1]}"
        if RUN_ALERT in alerts and cause[-1] != RUN_ALERT:
            result["reason"] += (f" and then raised {RUN_ALERT} (a run of refused "
                                 "Commands)")
        return result
    if last.type != T_RESPONSE:
        result["reason"] = "the meter answered with something that is not a Response"
        return result
    resp = last.payload
    result["response"] = resp.hex()
    try:
        r = codec.parse_message(resp)
    except codec.DecodeError as e:
        result["reason"] = f"the Response does not decode: {e}"
        return result
    problems = []
    if not is_critical(cmd_apdu):
        # a non-critical Command's Response: MAC'd by the meter for the Supplier, its
        # personal data encrypted (NOTES 7), no signature
        _check_read(session, meter_id, r, resp, result, problems)
    else:
        try:
            pub = session.meter_key(meter_id, "ds")
        except UserError as e:   # the answer is still reported, but not called a success
            sig_ok = None
            problems.append(f"the Response's signature was not checked: {e}")
        else:
            sig_ok = crypto.verify_apdu(pub, resp)
            if not sig_ok:
                problems.append("the Response's signature does not verify with the meter's key")
        result["signature_valid"] = sig_ok
    if r["cra"] != 2:
        problems.append("CRA flag is not Response")
    if r["counter"] != cmd["counter"]:
        problems.append(f"counter {r['counter']} is not the Command's {cmd['counter']}")
    if r["message_code"] != cmd["message_code"]:
        problems.append(f"message code {r['message_code']:04X} is not the Command's")
    if r["originator"] != cmd["recipient"] or r["recipient"] != cmd["originator"]:
        problems.append("originator / recipient do not mirror the Command's")
    parts, all_ok = outcome(r["message_code"], r["content"])
    result["results"] = [{"part": p, "status": "SUCCESS (decrypted)" if s == "encrypted"
                          and result.get("decrypted") else s} for p, s, _ in parts]
    if not all_ok:
        failed = [f"{p}: {s}" for p, s, ok in parts if not ok]
        problems.append("not every part succeeded (" + ", ".join(failed) + ")")
    result["ok"] = not problems
    if problems:
        result["reason"] = "; ".join(problems)
    return result


def _check_read(session, meter_id, r, resp, result, problems):
    """check_answer for the Response to a non-critical Command: its MAC (the meter's
    KA key with the Supplier's), then its encrypted personal data opened into
    result["registers"]; a MAC or ciphertext that does not verify is a failure and
    nothing of it is decoded."""
    from gbmeter.gbcs import protected
    try:
        z = session.read_key(meter_id)
    except UserError as e:
        result["mac_valid"] = None
        problems.append(f"the Response's MAC was not checked: {e}")
        return
    if r["mac"] is None:
        result["mac_valid"] = False
        problems.append("the Response to a non-critical Command carries no MAC header")
        return
    result["mac_valid"] = crypto.check_mac(z, resp)
    if not result["mac_valid"]:
        problems.append("the Response's MAC does not verify with the meter's and the "
                        "Supplier's KA keys")
        return
    if r["message_code"] not in protected.READS:
        return
    decoded = codec.decode_content(r["message_code"], r["content"], r["content_offset"])
    if not protected.sealed_parts(r["message_code"], decoded):
        return      # the read failed (an error Response): nothing sealed, the results say
    try:
        opened = protected.open_read(r["message_code"], decoded, z, r["originator"],
                                     r["counter"], r["recipient"])
    except crypto.SealError as e:
        result["decrypted"] = False
        problems.append(f"the Response's encrypted registers do not open: {e}")
        return
    except codec.DecodeError as e:
        result["decrypted"] = False
        problems.append(f"the Response's decrypted registers do not decode: {e}")
        return
    result["decrypted"] = True
    result["registers"] = opened["registers"]
    for k in ("currency", "trailing_digits"):
        if k in opened:
            result[k] = opened[k]
    for where, recs in opened["values"].items():
        if isinstance(recs, list):
            bad = [rec for rec in recs if rec["status"] != 0]
            if bad:
                problems.append(f"{where}: attribute {bad[0]['attribute']:04X} answered "
                                f"{bad[0]['status_name']}")


RAW_HINT = "`gbmeter send --raw` delivers any bytes as given, for negative testing"


def _kind(msg):
    if msg["cra"] == codec.CRA_COMMAND:
        if msg["mac"] is not None:
            return "a COMMAND"
        return "a Signed Pre-Command" if msg["signature"] is not None else "a PRECOMMAND"
    return {codec.CRA_RESPONSE: "a Response", codec.CRA_ALERT: "an Alert"}.get(
        msg["cra"], f"a message with CRA flag {msg['cra']:02X}")


def refuse_unfit(hello, msg):
    """Refuse (UserError; nothing is sent) a parsed message (codec.parse_message)
    that is not a COMMAND for the meter that answered `hello` (ping): a MAC header
    and a General-Signing APDU with CRA 01 (exit 1), addressed to this meter
    (recipient = its id; exit 1), for a use case of its device type in
    firmware/usecases.py (exit 4), signed when the use case is critical (exit 1).
    Sent anyway, each would only make the meter alert and count towards 8F60.
    Returns the use case's row."""
    kind = _kind(msg)
    if kind != "a COMMAND":
        extra = ""
        if kind in ("a PRECOMMAND", "a Signed Pre-Command"):
            extra = (": the Supplier signs a PRECOMMAND and the ACB wraps it in a MAC "
                     "header (`gbmeter wrap`)")
        raise UserError(f"this is {kind}, not a COMMAND (a MAC header and a General-Signing "
                        f"APDU with CRA 01){extra}. Nothing was sent ({RAW_HINT})")
    meter_id = hello.get("id") or ""
    recipient = msg["recipient"].hex()
    if recipient != meter_id.lower():
        who = f"meter {meter_id}" if meter_id else "an unprovisioned meter"
        raise UserError(f"the COMMAND is addressed to {recipient}, but the port has {who}. "
                        f"Nothing was sent ({RAW_HINT})")
    code = msg["message_code"]
    row = codec.load_usecases().find(code)
    device = (hello.get("device") or "?").upper()
    if row is None:
        raise UserError(f"message code {code:04X} is not a use case of any gbmeter meter "
                        f"(firmware/usecases.py): the {device} would refuse it (8F1E). "
                        f"Nothing was sent ({RAW_HINT})", exit_code=4)
    if row[2].upper() != device:
        raise UserError(f"{row[1]} ({code:04X}) is an {row[2].upper()} use case and the meter "
                        f"{meter_id} is a {device}: it would refuse it (8F1E). Nothing was "
                        f"sent ({RAW_HINT})", exit_code=4)
    if row[3] and msg["signature"] is None:
        raise UserError(f"{row[1]} is critical and this COMMAND carries no Supplier "
                        f"signature. Nothing was sent ({RAW_HINT})")
    return row


def raw_answer(session, command, frames):
    """The result of `send --raw`: what the meter answered bytes sent exactly as given
    (frames may end with a NAK). When they parse as a Command and the meter answered
    a Response, it is checked as check_answer checks one (ok true only if it
    verifies). A Response to anything else cannot be checked against what was sent:
    ok is None (cannot tell), never true."""
    try:
        msg = codec.parse_message(command)
    except codec.DecodeError:
        msg = None
    last = frames[-1]
    if msg is None:
        sent = f"{len(command)} bytes that are not a GBCS message"
    else:
        sent = (f"{_kind(msg)} ({codec.use_case_name(msg['message_code']) or 'message code'}"
                f" {msg['message_code']:04X}, counter {msg['counter']}), {len(command)} bytes")
    if msg is not None and msg["cra"] == codec.CRA_COMMAND and last.type == T_RESPONSE:
        result = check_answer(session, msg["apdu"], frames, command)
        result.update(raw=True, sent=sent)
        return result
    result = {"ok": False, "raw": True, "sent": sent, "use_case": None, "counter": None,
              "meter": None}
    if msg is not None:
        result.update(use_case=codec.use_case_name(msg["message_code"]), counter=msg["counter"])
        if msg["cra"] == codec.CRA_COMMAND:
            result["meter"] = msg["recipient"].hex()
    result["command"] = bytes(command).hex()
    alert_frames = [f.payload for f in frames if f.type == T_ALERT]
    result["alerts"] = [frame_alert_code(p) for p in alert_frames]
    result["alert_messages"] = [p.hex() for p in alert_frames]
    if last.type == T_NAK:
        result["nak"] = nak_reason(last.payload)
        result["reason"] = f"the meter rejected the frame: {result['nak']}"
    elif last.type == T_ALERT:
        result["alert"] = result["alerts"][-1]
        result["reason"] = f"the meter refused it with alert {', then '.join(result['alerts'])}"
    elif last.type == T_RESPONSE:
        resp = last.payload
        result["response"] = resp.hex()
        result["ok"] = None
        result["reason"] = ("the meter answered with a Response, but what was sent is not "
                            "a Command to check it against: cannot tell whether it succeeded")
        try:
            r = codec.parse_apdu(resp)
            result["meter"] = result["meter"] or r["originator"].hex()
            result["signature_valid"] = crypto.verify_apdu(
                session.meter_key(r["originator"].hex(), "ds"), resp)
        except (codec.DecodeError, UserError) as e:
            result["reason"] += f" (the Response's signature was not checked: {e})"
    else:
        result["reason"] = "the meter answered with something that is not a Response"
    return result


def describe(result):
    """Plain words for a send result."""
    head = f"{result.get('use_case') or 'Command'} #{result.get('counter')} to {result.get('meter')}: "
    if result.get("raw"):
        head = f"sent raw, {result.get('sent')}: "
    if result["ok"] is None:
        return head + "CANNOT TELL: " + result.get("reason", "unknown")
    if result["ok"]:
        parts = ", ".join(f"{r['part']} {r['status']}" for r in result.get("results", []))
        checked = ("Response MAC verified" + (", registers decrypted" if result.get("decrypted")
                                              else "")
                   if "mac_valid" in result else "Response signature verified")
        return head + f"success, {checked} ({parts})" + _fault_words(result)
    causes = result.get("likely_causes")
    more = ("; likely cause: " + "; or ".join(causes)) if causes else ""
    return head + "FAILED: " + result.get("reason", "unknown") + more + _fault_words(result)


def _fault_words(result):
    f = result.get("fault")
    if not f or f.get("reached"):
        return ""
    n = len(result.get("results", []))
    return (f"; the fault armed at part {f.get('at')} was not reached (this Command has "
            f"{n} part{'' if n == 1 else 's'}) and is used up")


def pending_fault(link):
    """The injected fault waiting for the next Command ({at, status}), or None (none,
    or the board's diagnostics are off)."""
    from gbmeter.board.link import MeterError
    try:
        return link.diag("registers").get("fault")
    except MeterError:
        return None


def explain_8f53(session, link, hello, apdu):
    """The likely causes of an 8F53 (the meter found the recipient, the counter or
    the MAC wrong), from what the host knows: the meter's id, the last counter it
    accepted from this Supplier, and what provisioning saved of it."""
    cmd = codec.parse_apdu(apdu)
    supplier = cmd["originator"].hex()
    meter_id = cmd["recipient"].hex()
    causes = []
    if hello.get("id") and hello["id"] != meter_id:
        causes.append(f"the Command is addressed to {meter_id}, but the meter on "
                      f"{link.port} is {hello['id']}")
    last = meter_floor(link, supplier, None)
    if last is not None and cmd["counter"] <= last:
        causes.append(f"counter {cmd['counter']} is not above {last}, the last one the "
                      f"meter accepted from {supplier} (`sr` takes the next one unless "
                      "--keep-counter)")
    rec = session.meter_record(meter_id)
    if rec is None:
        causes.append(f"this host has no provisioning record of {meter_id} in "
                      f"{session.state}, so the MAC was made with the key of a certificate, "
                      "not the one the meter made: provision it with this key folder")
    elif rec.get("acb") and rec["acb"] != session.acb().eui:
        causes.append(f"the MAC is the ACB {session.acb().eui}'s, but the meter was "
                      f"provisioned to trust ACB {rec['acb']}")
    if not causes:
        causes.append("recipient and counter look right to the host, so the MAC: the "
                      "Command was altered, or the meter has new key pairs since this "
                      f"host saved them in {session.state} (provision it again)")
    return causes


def refuse_unknown(link, apdu):
    """Refuse (UserError, exit 4) a General-Signing APDU whose use case the profile of
    the meter on `link` does not know (profiles.check_known); nothing is sent."""
    from gbmeter import profiles
    row = codec.load_usecases().find(codec.parse_apdu(apdu)["message_code"])
    if row is not None:
        profiles.check_known(link.ping(), row)


def meter_floor(link, supplier_eui, unknown=0):
    """The last counter the meter accepted from this Supplier (0 if none; `unknown` if
    the board's diagnostics are off), so counters stay new after the host lost its
    file."""
    from gbmeter.board.link import MeterError
    try:
        return link.diag("registers").get("counters", {}).get(supplier_eui, 0)
    except MeterError:
        return unknown
