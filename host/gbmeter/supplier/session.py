"""Playing Supplier and ACB against a meter: sign PRECOMMANDs, wrap them, send them,
check what comes back, and keep the originator counters that make each Command new.

Where things live (all overridable):
  --keys DIR       the PKI: ZAZ1 naming, <eui>-ds.pem / -ka.pem / -ds.key / -ka.key.
                   Default: keys/ in gbmeter's home, one per user whatever folder
                   a command runs in (gbmeter.paths.home: $GBMETER_HOME, else
                   $XDG_DATA_HOME/gbmeter, else ~/.local/share/gbmeter), made with
                   `gbmeter keys init` on first use.
  state folder     next originator counters (counters.json) and what provisioning
                   learnt of each meter (meters/<id>.json: its DS and KA public
                   keys). It is the key folder itself when that is writable, else
                   state/<folder name>-<hash> in gbmeter's home (../shared is
                   read-only). counters.json is read and written under a lock
                   (counters.lock) and replaced whole, so processes share it safely.
A meter's own public keys come from meters/<id>.json first: an emulated meter makes
its own key pairs, so a ZAZ1 certificate of the same system title is not its key.
"""

import fcntl
import hashlib
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from gbmeter.gbcs import codec, crypto, keys, pki
from gbmeter import paths
from gbmeter.errors import UserError
from gbmeter.board.link import T_ALERT, T_NAK, T_RESPONSE, nak_reason

SUPPLIER, NETWORK_OPERATOR, ACB = 2, 3, 4


def home():
    return paths.home()


def default_keys():
    return home() / "keys"


def open_keys(path=None, init_default=True):
    """The key folder; the default one is made on first use (and said so on stderr,
    naming it: a new PKI is trusted by no meter yet)."""
    if path is None:
        path = default_keys()
        if init_default and not path.exists():
            pki.init(path)
            print(f"gbmeter: made a new test PKI in {path} (the default key folder; "
                  "--keys names another)", file=sys.stderr)
    return keys.KeyFolder(path)


def _writable(path):
    """Whether gbmeter may write in this folder: not ../shared (reference data stays as
    it is) and not a folder whose mode says read-only (root would ignore that)."""
    shared = paths.shared()
    if shared is not None and (path == shared.resolve() or shared.resolve() in path.parents):
        return False
    return bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK)


def state_folder(keys_path):
    """Where gbmeter keeps what it learns with a key folder (counters.json,
    meters/<id>.json): the folder itself when writable, else
    state/<folder name>-<hash of its path> in gbmeter's home (paths.home)."""
    kp = Path(keys_path).resolve()
    if _writable(kp):
        return kp
    tag = hashlib.sha256(str(kp).encode()).hexdigest()[:8]
    return home() / "state" / f"{kp.name}-{tag}"


def saved_meter(state, meter_id):
    """What provisioning saved for a meter in a state folder (None if nothing)."""
    f = Path(state) / "meters" / f"{keys.normalise_title(meter_id)}.json"
    if f.exists():
        return json.loads(f.read_text())
    return None


def saved_meter_key(state, meter_id, usage):
    """The DS or KA public key a meter made at provisioning, as saved in a state
    folder, or None."""
    rec = saved_meter(state, meter_id)
    if rec and usage in rec:
        return crypto.load_public_key(bytes.fromhex("04" + rec[usage]))
    return None


class Session:
    def __init__(self, keys_dir=None, supplier=None, acb=None):
        self.keys = open_keys(Path(keys_dir) if keys_dir else None)
        self.supplier = self.keys.pick(SUPPLIER, supplier)
        self.acb_eui = acb
        self.state = state_folder(self.keys.path)
        if self.supplier.ds_priv is None:
            raise UserError(f"no private signing key for Supplier {self.supplier.eui} "
                            f"in {self.keys.path}")

    # -- parties ---------------------------------------------------------------------
    def acb(self):
        p = self.keys.pick(ACB, self.acb_eui)
        if p.ka_priv is None:
            raise UserError(f"no private KA key for ACB {p.eui} in {self.keys.path}")
        return p

    def meter_record(self, meter_id):
        return saved_meter(self.state, meter_id)

    def save_meter(self, meter_id, record):
        d = self.state / "meters"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{keys.normalise_title(meter_id)}.json").write_text(json.dumps(record, indent=1))

    def meter_key(self, meter_id, usage):
        """The meter's DS or KA public key: from provisioning, else its certificate."""
        pub = saved_meter_key(self.state, meter_id, usage)
        if pub is not None:
            return pub
        eui = keys.normalise_title(meter_id)
        party = self.keys.parties.get(eui)
        if party and party.certs.get(usage):
            return party.certs[usage].public_key()
        raise UserError(f"no {usage.upper()} key known for meter {eui} with the key folder "
                        f"{self.keys.path}: provision it with `gbmeter provision --keys "
                        f"{self.keys.path}`")

    # -- originator counters ---------------------------------------------------------
    # counters.json holds, per "<supplier>:<meter>", the next counter to use. Every
    # read-modify-write of it runs under an exclusive lock on counters.lock, and the
    # file is replaced whole (write a temporary, fsync, rename), so processes sharing
    # a key folder never take the same counter and a kill never leaves half a file.
    def _counters_file(self):
        return self.state / "counters.json"

    def _counters(self):
        f = self._counters_file()
        if not f.exists():
            return {}
        try:
            return json.loads(f.read_text())
        except ValueError:
            raise UserError(f"{f} is not valid JSON: fix or remove it (the meter's own "
                            "last counter is read before each Command, so none is reused)") from None

    @contextmanager
    def _counter_lock(self):
        try:
            self.state.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state / "counters.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise UserError(f"cannot lock the counters in {self.state}: {e.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _save_counters(self, c):
        f = self._counters_file()
        tmp = f.with_name(f"{f.name}.{os.getpid()}.tmp")
        with open(tmp, "w") as out:
            out.write(json.dumps(c, indent=1, sort_keys=True))
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, f)

    def _counter_key(self, meter_id):
        return f"{self.supplier.eui}:{keys.normalise_title(meter_id)}"

    def next_counter(self, meter_id, floor=0):
        """The next originator counter for this Supplier and meter, above floor (a
        look only: take_counter is what a sender uses)."""
        return max(self._counters().get(self._counter_key(meter_id), 1), floor + 1)

    def take_counter(self, meter_id, floor=0):
        """Take the next originator counter for this Supplier and meter, above floor
        (the last one the meter accepted), and save the one after it, atomically: no
        other process or call gets the same counter."""
        k = self._counter_key(meter_id)
        with self._counter_lock():
            c = self._counters()
            counter = max(c.get(k, 1), floor + 1)
            c[k] = counter + 1
            self._save_counters(c)
        return counter

    def used_counter(self, meter_id, counter):
        """Note that `counter` went to the meter: the next one taken is above it."""
        k = self._counter_key(meter_id)
        with self._counter_lock():
            c = self._counters()
            if c.get(k, 1) > counter:
                return
            c[k] = counter + 1
            self._save_counters(c)

    # -- Commands ----------------------------------------------------------------------
    def sign(self, precommand):
        return crypto.sign_precommand(self.supplier.ds_priv, precommand)

    def wrap(self, signed, meter_id):
        return crypto.wrap(self.acb().ka_priv, self.meter_key(meter_id, "ka"), signed)

    def command(self, precommand):
        """Sign a PRECOMMAND as the Supplier and wrap it as the ACB for its recipient.
        A non-critical use case (the reads of SR 4.3) is not signed: the ACB MACs it
        with signature length 00 (NOTES 7)."""
        signed = self.sign_if_critical(precommand)
        a = codec.parse_apdu(signed)
        return self.wrap(signed, a["recipient"].hex()), a

    def sign_if_critical(self, precommand):
        """A Signed Pre-Command for a critical use case; for a non-critical one the
        PRECOMMAND with signature length 00, as the ACB MACs it."""
        if is_critical(precommand):
            return self.sign(precommand)
        return bytes(precommand) + b"\x00"

    def read_key(self, meter_id):
        """Z of the Supplier's KA key and the meter's: what the meter MACs a
        non-critical Response and seals its personal data with (NOTES 7)."""
        if self.supplier.ka_priv is None:
            raise UserError(f"no private KA key for Supplier {self.supplier.eui} in "
                            f"{self.keys.path}: a non-critical Response cannot be checked")
        return crypto.ecdh(self.supplier.ka_priv, self.meter_key(meter_id, "ka"))

    def send(self, link, command, force=False, raw=False):
        """Send a COMMAND (MAC-headed bytes) and check the answer. Returns the result
        dict of `gbmeter send --json`. Bytes that are not a COMMAND for the meter on
        `link` (refuse_unfit) are refused before anything is sent, and so is a use
        case the meter's profile does not know, unless forced. `raw` sends the bytes
        exactly as given, with no check at all, and reports what the meter answered
        (raw_answer)."""
        if raw:
            return raw_answer(self, command, link.gbcs(command, naks=True))
        try:
            msg = codec.parse_message(command)
        except codec.DecodeError as e:
            raise UserError(f"not a GBCS COMMAND: {e}. Nothing was sent ({RAW_HINT})") from None
        hello = link.ping()
        row = refuse_unfit(hello, msg)
        if not force:
            from gbmeter import profiles
            profiles.check_known(hello, row)
        fault = pending_fault(link)
        frames = link.gbcs(command)
        result = check_answer(self, msg["apdu"], frames, command)
        if result.get("alert") == "8F53":
            result["likely_causes"] = explain_8f53(self, link, hello, msg["apdu"])
        if fault and "results" in result:
            # the meter executed it, so it used the fault up, reached or not
            result["fault"] = dict(fault, reached=fault.get("at", 0) <= len(result["results"]))
        return result


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
