"""Playing Supplier and ACB against a meter: sign PRECOMMANDs, wrap them, send them,
check what comes back, and keep the originator counters that make each Command new.

Where things live (all overridable):
  --keys DIR       the PKI: ZAZ1 naming, <eui>-ds.pem / -ka.pem / -ds.key / -ka.key.
                   Default: .gbmeter/keys under the current folder ($GBMETER_HOME
                   moves .gbmeter), made with `gbmeter keys init` on first use.
  state folder     next originator counters (counters.json) and what provisioning
                   learnt of each meter (meters/<id>.json: its DS and KA public
                   keys). It is the key folder itself when that is writable, else
                   $GBMETER_HOME/state/<folder name>-<hash> (../shared is read-only).
A meter's own public keys come from meters/<id>.json first: an emulated meter makes
its own key pairs, so a ZAZ1 certificate of the same system title is not its key.
"""

import hashlib
import json
import os
from pathlib import Path

from gbmeter.gbcs import codec, crypto, keys, pki
from gbmeter import paths
from gbmeter.errors import UserError
from gbmeter.board.link import T_ALERT, T_RESPONSE

SUPPLIER, NETWORK_OPERATOR, ACB = 2, 3, 4


def home():
    return Path(os.environ.get("GBMETER_HOME", ".gbmeter"))


def default_keys():
    return home() / "keys"


def open_keys(path=None, init_default=True):
    """The key folder; the default one is made on first use."""
    if path is None:
        path = default_keys()
        if init_default and not path.exists():
            pki.init(path)
    return keys.KeyFolder(path)


def _writable(path):
    """Whether gbmeter may write in this folder: not ../shared (reference data stays as
    it is) and not a folder whose mode says read-only (root would ignore that)."""
    shared = paths.shared()
    if shared is not None and (path == shared.resolve() or shared.resolve() in path.parents):
        return False
    return bool(path.stat().st_mode & 0o222) and os.access(path, os.W_OK)


class Session:
    def __init__(self, keys_dir=None, supplier=None, acb=None):
        self.keys = open_keys(Path(keys_dir) if keys_dir else None)
        self.supplier = self.keys.pick(SUPPLIER, supplier)
        self.acb_eui = acb
        kp = self.keys.path.resolve()
        if _writable(kp):
            self.state = kp
        else:
            tag = hashlib.sha256(str(kp).encode()).hexdigest()[:8]
            self.state = home() / "state" / f"{kp.name}-{tag}"
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
        f = self.state / "meters" / f"{keys.normalise_title(meter_id)}.json"
        if f.exists():
            return json.loads(f.read_text())
        return None

    def save_meter(self, meter_id, record):
        d = self.state / "meters"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"{keys.normalise_title(meter_id)}.json").write_text(json.dumps(record, indent=1))

    def meter_key(self, meter_id, usage):
        """The meter's DS or KA public key: from provisioning, else its certificate."""
        rec = self.meter_record(meter_id)
        if rec and usage in rec:
            return crypto.load_public_key(bytes.fromhex("04" + rec[usage]))
        eui = keys.normalise_title(meter_id)
        party = self.keys.parties.get(eui)
        if party and party.certs.get(usage):
            return party.certs[usage].public_key()
        raise UserError(f"no {usage.upper()} key known for meter {eui}: provision it with "
                        "`gbmeter provision` using this key folder")

    # -- originator counters ---------------------------------------------------------
    def _counters_file(self):
        return self.state / "counters.json"

    def _counters(self):
        f = self._counters_file()
        return json.loads(f.read_text()) if f.exists() else {}

    def next_counter(self, meter_id, floor=0):
        """The next originator counter for this Supplier and meter, above floor."""
        key = f"{self.supplier.eui}:{keys.normalise_title(meter_id)}"
        return max(self._counters().get(key, 1), floor + 1)

    def used_counter(self, meter_id, counter):
        key = f"{self.supplier.eui}:{keys.normalise_title(meter_id)}"
        c = self._counters()
        c[key] = max(c.get(key, 1), counter + 1)
        self.state.mkdir(parents=True, exist_ok=True)
        tmp = self._counters_file().with_suffix(".tmp")
        tmp.write_text(json.dumps(c, indent=1, sort_keys=True))
        os.replace(tmp, self._counters_file())

    # -- Commands ----------------------------------------------------------------------
    def sign(self, precommand):
        return crypto.sign_precommand(self.supplier.ds_priv, precommand)

    def wrap(self, signed, meter_id):
        return crypto.wrap(self.acb().ka_priv, self.meter_key(meter_id, "ka"), signed)

    def command(self, precommand):
        """Sign a PRECOMMAND as the Supplier and wrap it as the ACB for its recipient."""
        signed = self.sign(precommand)
        a = codec.parse_apdu(signed)
        return self.wrap(signed, a["recipient"].hex()), a

    def send(self, link, command, force=False):
        """Send a COMMAND (MAC-headed bytes) and check the answer. Returns the result
        dict of `gbmeter send --json`. A use case the meter's profile does not know
        is refused before anything is sent, unless forced."""
        try:
            msg = codec.parse_message(command)
        except codec.DecodeError as e:
            raise UserError(f"not a GBCS COMMAND: {e}") from None
        apdu = msg.get("apdu", msg)
        if not force:
            refuse_unknown(link, apdu)
        frames = link.gbcs(command)
        return check_answer(self, apdu, frames)


def outcome(message_code, content):
    """Per component / specification results of a Response's content, and whether
    all succeeded: (list of (what, status name), all_ok)."""
    tree = codec.to_json(codec.decode_content(message_code, content))
    out = []
    if tree.get("format") == "gbz":
        for c in tree.get("components", []):
            dr = c.get("default_response") or {}
            out.append((f"component {c.get('sequence_number', len(out)) + 1}",
                        dr.get("status_name", "?"), dr.get("status") == 0))
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


def check_answer(session, cmd_apdu, frames):
    """Turn the frames answering a Command into the result of `send --json`."""
    cmd = codec.parse_apdu(cmd_apdu)
    meter_id = cmd["recipient"].hex()
    result = {"ok": False, "use_case": codec.use_case_name(cmd["message_code"]),
              "counter": cmd["counter"], "meter": meter_id}
    alerts = [frame_alert_code(f.payload) for f in frames if f.type == T_ALERT]
    result["alerts"] = alerts
    last = frames[-1]
    if last.type == T_ALERT:
        result["alert"] = alerts[-1]
        result["reason"] = f"the meter refused the Command with alert {alerts[-1]}"
        return result
    if last.type != T_RESPONSE:
        result["reason"] = "the meter answered with something that is not a Response"
        return result
    resp = last.payload
    result["response"] = resp.hex()
    try:
        r = codec.parse_apdu(resp)
    except codec.DecodeError as e:
        result["reason"] = f"the Response does not decode: {e}"
        return result
    pub = session.meter_key(meter_id, "ds")
    sig_ok = crypto.verify_apdu(pub, resp)
    result["signature_valid"] = sig_ok
    problems = []
    if not sig_ok:
        problems.append("the Response's signature does not verify with the meter's key")
    if r["cra"] != 2:
        problems.append("CRA flag is not Response")
    if r["counter"] != cmd["counter"]:
        problems.append(f"counter {r['counter']} is not the Command's {cmd['counter']}")
    if r["message_code"] != cmd["message_code"]:
        problems.append(f"message code {r['message_code']:04X} is not the Command's")
    if r["originator"] != cmd["recipient"] or r["recipient"] != cmd["originator"]:
        problems.append("originator / recipient do not mirror the Command's")
    parts, all_ok = outcome(r["message_code"], r["content"])
    result["results"] = [{"part": p, "status": s} for p, s, _ in parts]
    if not all_ok:
        failed = [f"{p}: {s}" for p, s, ok in parts if not ok]
        problems.append("not every part succeeded (" + ", ".join(failed) + ")")
    result["ok"] = not problems
    if problems:
        result["reason"] = "; ".join(problems)
    return result


def describe(result):
    """Plain words for a send result."""
    head = f"{result.get('use_case') or 'Command'} #{result.get('counter')} to {result.get('meter')}: "
    if result["ok"]:
        parts = ", ".join(f"{r['part']} {r['status']}" for r in result.get("results", []))
        return head + f"success, Response signature verified ({parts})"
    return head + "FAILED: " + result.get("reason", "unknown")


def refuse_unknown(link, apdu):
    """Refuse (UserError, exit 4) a General-Signing APDU whose use case the profile of
    the meter on `link` does not know (profiles.check_known); nothing is sent."""
    from gbmeter import profiles
    row = codec.load_usecases().find(codec.parse_apdu(apdu)["message_code"])
    if row is not None:
        profiles.check_known(link.ping(), row)


def meter_floor(link, supplier_eui):
    """The last counter the meter accepted from this Supplier (0 if unknown or the
    board's diagnostics are off), so counters stay new after the host lost its file."""
    from gbmeter.board.link import MeterError
    try:
        return link.diag("registers").get("counters", {}).get(supplier_eui, 0)
    except MeterError:
        return 0
