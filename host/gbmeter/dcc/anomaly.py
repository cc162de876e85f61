"""The DCC's anomaly detection on Signed Pre-Commands: packet inspection and volume
threshold ADTs, with a quarantine that survives restarts.

Where the state lives (the "DCC folder"): `--dcc-dir DIR`, else $GBMETER_DCC_DIR,
else `dcc/` in gbmeter's home ($GBMETER_HOME, else $XDG_DATA_HOME/gbmeter, else
~/.local/share/gbmeter: one per user, whatever folder a command runs in). It holds:

  adt.json        the configuration (created with the defaults below when absent)
  dcc.sqlite      quarantine, notifications and volume counts (see store.py)
  inventory.json  optional: {"<16 hex digits>": "esme" | "gsme"} for targets the
                  built-in inventory (the two ZAZ1 test meters) does not know

adt.json:

  {
    "thresholds": [
      {"use_case": "ECS07a", "limit": 10, "window_seconds": 3600},
      {"use_case": "*",      "limit": 50, "window_seconds": 3600}
    ],
    "gcs04_limits": {
      "max_debt_amount": 100000000,
      "max_recovery_amount": 5000000,
      "max_recovery_balance_percentage": 10000
    }
  }

  thresholds: per User (originator) and use case, at most `limit` Commands are
      released in any sliding window of `window_seconds` ending now; the next one is
      quarantined and a notification recorded. The first entry naming the use case
      applies, else the "*" entry (each use case counted on its own); no entry: no
      threshold. Only released Commands count, so a quarantined one does not use up
      the allowance.
  gcs04_limits: packet inspection of Manage Debt on both fuels (the name is kept
      from when only GCS04 was inspected): per GCS04 Change Debt component,
      |debt amount| <= max_debt_amount, 0 <= recovery amount <=
      max_recovery_amount, recovery balance percentage <=
      max_recovery_balance_percentage (0.01 % units); recovery frequency must be
      hourly or daily. ECS07 gets the same limits: each amount added to a debt
      register is a debt amount, each time debt's unit charge (per_unit * 10 **
      (price scale + 5)) a recovery amount, the payment debt's proportion the
      recovery balance percentage, and each period must be 3600 or 86400 s. Money in
      units of 0.00001 GBP (the defaults: GBP 1000 of debt, GBP 50 recovered per
      period, 100 %).

Packet inspection (NOTES 5): GCS04a must be one Change Debt with debt amount 0 and
an absolute debt amount type; GCS04 and ECS07 as above; a message code the use-case
table does not know is quarantined; the other ESME Commands are not inspected.
Inspection runs first; a Command it quarantines is not counted for the thresholds.
Components and specifications are numbered from 1, as send results number them.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from gbmeter import paths
from gbmeter.gbcs import codec
from gbmeter.dcc import precommand as tf
from gbmeter.dcc.inspection import inspect_packet
from gbmeter.dcc.store import Store
from gbmeter.errors import UserError

ENV_DIR = "GBMETER_DCC_DIR"
DEFAULT_DIR = "dcc"            # under gbmeter's home
CONFIG_FILE = "adt.json"
DB_FILE = "dcc.sqlite"
INVENTORY_FILE = "inventory.json"

DEFAULT_CONFIG = {
    "about": "gbmeter DCC anomaly detection: see host/gbmeter/dcc/anomaly.py for the shape",
    "thresholds": [
        {"use_case": "ECS07a", "limit": 10, "window_seconds": 3600},
        {"use_case": "GCS04a", "limit": 10, "window_seconds": 3600},
        {"use_case": "*", "limit": 50, "window_seconds": 3600},
    ],
    "gcs04_limits": {
        "max_debt_amount": 100_000_000,
        "max_recovery_amount": 5_000_000,
        "max_recovery_balance_percentage": 10_000,
    },
}
LIMIT_KEYS = tuple(DEFAULT_CONFIG["gcs04_limits"])

QUARANTINE_EXIT = 3     # what `gbmeter inspect` exits with when it would quarantine


def dcc_dir(path=None):
    """The DCC folder: path, else $GBMETER_DCC_DIR, else dcc/ in gbmeter's home (one
    per user, whatever folder a command runs in: gbmeter.paths.home)."""
    if path:
        return Path(path)
    env = os.environ.get(ENV_DIR)
    return Path(env) if env else paths.home() / DEFAULT_DIR


# --- configuration -------------------------------------------------------------------

def _whole(value, where, minimum=0):
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserError(f"{where}: {value!r} is not a whole number >= {minimum}")
    return value


def check_config(cfg, where=CONFIG_FILE):
    """The configuration with every key checked; raises UserError naming the key."""
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: expected a JSON object")
    extra = set(cfg) - {"about", "thresholds", "gcs04_limits"}
    if extra:
        raise UserError(f"{where}: unknown key {sorted(extra)[0]!r}")
    thresholds = cfg.get("thresholds", [])
    if not isinstance(thresholds, list):
        raise UserError(f"{where}: thresholds must be a list")
    seen = set()
    for i, t in enumerate(thresholds):
        w = f"{where}: thresholds[{i}]"
        if not isinstance(t, dict) or set(t) != {"use_case", "limit", "window_seconds"}:
            raise UserError(f"{w} needs exactly use_case, limit and window_seconds")
        if not isinstance(t["use_case"], str) or not t["use_case"]:
            raise UserError(f"{w}.use_case must be a use case name or *")
        if t["use_case"] in seen:
            raise UserError(f"{w}.use_case {t['use_case']} is listed twice")
        seen.add(t["use_case"])
        _whole(t["limit"], f"{w}.limit")
        _whole(t["window_seconds"], f"{w}.window_seconds", 1)
    limits = cfg.get("gcs04_limits", DEFAULT_CONFIG["gcs04_limits"])
    if not isinstance(limits, dict):
        raise UserError(f"{where}: gcs04_limits must be an object")
    extra = set(limits) - set(LIMIT_KEYS)
    if extra:
        raise UserError(f"{where}: gcs04_limits has unknown key {sorted(extra)[0]!r}")
    merged = dict(DEFAULT_CONFIG["gcs04_limits"])
    for k, v in limits.items():
        merged[k] = _whole(v, f"{where}: gcs04_limits.{k}")
    return {"thresholds": thresholds, "gcs04_limits": merged}


def load_json(path, what):
    try:
        return json.loads(Path(path).read_text())
    except json.JSONDecodeError as e:
        raise UserError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}, column "
                        f"{e.colno})") from None
    except OSError as e:
        raise UserError(f"cannot read {what} {path}: {e.strerror}") from None


def threshold_for(cfg, use_case):
    """(limit, window_seconds) of the entry that applies, or None."""
    star = None
    for t in cfg["thresholds"]:
        if t["use_case"] == use_case:
            return t["limit"], t["window_seconds"]
        if t["use_case"] == "*":
            star = (t["limit"], t["window_seconds"])
    return star


# --- the verdict ------------------------------------------------------------------------

@dataclass
class Verdict:
    """What the DCC decided. The send path sends only when `release` is true."""
    release: bool
    reasons: list
    use_case: str
    message_code: int
    originator: str
    target: str
    counter: int
    signature: str                  # "present" or "absent" (a bare PRECOMMAND)
    inspection: str                 # "passed", "failed" or "not inspected"
    volume: dict = None             # {count, limit, window_seconds} or None
    check: str = None               # what quarantined it: "inspection" / "threshold"
    quarantine_id: int = None
    notification_id: int = None
    dry_run: bool = False
    time: str = None

    @property
    def verdict(self):
        return "pass" if self.release else "quarantine"

    def as_json(self):
        d = asdict(self)
        d["verdict"] = self.verdict
        d["message_code"] = f"{self.message_code:04X}"
        return d

    def text(self):
        what = (f"{self.use_case} from {self.originator} to {self.target}, counter "
                f"{self.counter}")
        if self.release:
            vol = ""
            if self.volume:
                vol = (f"; volume {self.volume['count']} of {self.volume['limit']} in "
                       f"{self.volume['window_seconds']} s")
            return f"pass: {what} (inspection {self.inspection}{vol})"
        return f"quarantine: {what}: " + "; ".join(self.reasons)

    def require_release(self, dcc_dir=None):
        """Raise the UserError (exit 3) a send path stops with when not released,
        naming the DCC folder (dcc_dir) and how to release or clear the Command."""
        if not self.release:
            where = ""
            if self.quarantine_id is not None:
                opt = f" --dcc-dir {dcc_dir}" if dcc_dir is not None else ""
                where = (f". It is quarantined as {self.quarantine_id}"
                         f"{f' in {dcc_dir}' if dcc_dir is not None else ''}: "
                         f"`gbmeter quarantine list{opt}` shows it, `gbmeter quarantine "
                         f"release {self.quarantine_id}{opt} --port PORT` sends it, "
                         f"`gbmeter quarantine clear {self.quarantine_id}{opt}` drops it")
            raise UserError(f"the DCC quarantined the Command, not sent: "
                            f"{'; '.join(self.reasons)}{where}", exit_code=QUARANTINE_EXIT)


def read_signed_precommand(data, allow_command=False):
    """parse_apdu of a Signed Pre-Command (or a bare PRECOMMAND); UserError when the
    bytes are not one. allow_command: a COMMAND's MAC header and MAC are dropped
    (not checked) and its Signed Pre-Command read."""
    data = bytes(data)
    if data[:1] == bytes([codec.TAG_GENERAL_CIPHERING]):
        if not allow_command:
            raise UserError("this is a COMMAND (MAC header): give the Signed Pre-Command "
                            "inside it, as the Supplier hands it to the DCC")
        try:
            data = codec.parse_message(data)["apdu"]
        except codec.DecodeError as e:
            raise UserError(f"not a COMMAND: {e}") from None
    try:
        m = codec.parse_apdu(data)
    except codec.DecodeError as e:
        raise UserError(f"not a Signed Pre-Command: {e}") from None
    if m["cra"] != codec.CRA_COMMAND:
        raise UserError(f"not a Command: CRA flag {m['cra']:02X} "
                        f"({codec.CRA_NAMES.get(m['cra'], 'unknown')}), a Command has 01")
    if m["signature_length"] == 0:
        raise UserError("signature length is 00: a Signed Pre-Command carries 40 + 64 bytes")
    return m


# --- the DCC ----------------------------------------------------------------------------------

class Dcc:
    """The DCC's anomaly detection over one DCC folder (see the module docstring)."""

    def __init__(self, path=None):
        self.path = dcc_dir(path)

    @property
    def config_path(self):
        return self.path / CONFIG_FILE

    @property
    def db_path(self):
        return self.path / DB_FILE

    def config(self, create=True):
        """The checked configuration; writes the default file when absent (unless
        create is false: then the defaults are used and nothing is written)."""
        if not self.config_path.exists():
            if create:
                try:
                    self.path.mkdir(parents=True, exist_ok=True)
                    self.config_path.write_text(json.dumps(DEFAULT_CONFIG, indent=2) + "\n")
                except OSError as e:
                    raise UserError(f"cannot write {self.config_path}: {e.strerror}") from None
            return check_config(DEFAULT_CONFIG)
        return check_config(load_json(self.config_path, "configuration"),
                            str(self.config_path))

    def inventory(self):
        """The built-in inventory plus inventory.json when present."""
        from gbmeter.dcc import duis
        inv = dict(duis.DEFAULT_INVENTORY)
        p = self.path / INVENTORY_FILE
        if p.exists():
            data = load_json(p, "inventory")
            if not isinstance(data, dict):
                raise UserError(f"{p}: expected an object of system title -> esme/gsme")
            for k, v in data.items():
                title = k.lower().replace("-", "")
                if len(title) != 16 or any(c not in "0123456789abcdef" for c in title):
                    raise UserError(f"{p}: {k!r} is not a system title")
                if v not in duis.DEVICES:
                    raise UserError(f"{p}: {k}: {v!r} is neither esme nor gsme")
                inv[title] = v
        return inv

    def store(self, read_only=False):
        return Store(self.db_path, read_only=read_only)

    def check(self, data, now=None, dry_run=False):
        """Run packet inspection and the threshold ADTs on a Signed Pre-Command (or a
        bare PRECOMMAND) and return a Verdict. Unless dry_run, a released Command is
        counted and a quarantined one recorded with a notification, all in one
        transaction. dry_run writes nothing (not even the default adt.json)."""
        data = bytes(data)
        m = read_signed_precommand(data)
        now = tf.parse_now(now)
        at = int(now.timestamp())
        when = tf.iso(now)
        cfg = self.config(create=not dry_run)
        code = m["message_code"]
        row = codec.load_usecases().find(code)
        use_case = row[1] if row else f"{code:04X}"
        orig, target = m["originator"].hex().upper(), m["recipient"].hex().upper()
        v = Verdict(release=True, reasons=[], use_case=use_case, message_code=code,
                    originator=orig, target=target, counter=m["counter"],
                    signature="present" if m["signature"] else "absent",
                    inspection="not inspected", dry_run=dry_run, time=when)
        if row is None:
            v.inspection = "failed"
            v.reasons = [f"message code {code:04X} is not a use case this DCC knows"]
        else:
            v.inspection, v.reasons = inspect_packet(use_case, m["content"],
                                                     cfg["gcs04_limits"], m["content_offset"])
        if v.reasons:
            v.release, v.check = False, "inspection"
        with self.store(read_only=dry_run) as st, st.transaction():
            if v.release:
                limit = threshold_for(cfg, use_case)
                if limit is not None:
                    n, window = limit
                    count = st.count(orig, use_case, at - window)
                    v.volume = {"count": count + 1, "limit": n, "window_seconds": window}
                    if count >= n:
                        v.release, v.check = False, "threshold"
                        v.volume["count"] = count
                        v.reasons = [f"volume threshold: {count} {use_case} Commands from "
                                     f"User {orig} in the last {window} s, the limit is {n}"]
            if dry_run:
                return v
            if v.release:
                st.add_volume(at, orig, use_case, target, m["counter"])
            else:
                v.quarantine_id = st.add_quarantine(
                    when, orig, target, m["counter"], use_case, f"{code:04X}", v.check,
                    "; ".join(v.reasons), data.hex().upper())
                v.notification_id = st.add_notification(
                    when, orig, use_case, v.check,
                    f"Command {use_case} to {target} counter {m['counter']} quarantined: "
                    + "; ".join(v.reasons), v.quarantine_id)
        return v

    def quarantined(self):
        with self.store(read_only=True) as st:
            return st.quarantined()

    def quarantined_command(self, qid):
        """One quarantined Command (its row) by id; a UserError naming the folder when
        there is none."""
        with self.store(read_only=True) as st:
            row = st.quarantine_row(qid)
        if row is None:
            raise UserError(f"no quarantined Command {qid} in {self.db_path} (`gbmeter "
                            f"quarantine list --dcc-dir {self.path}` lists them)")
        return row

    def settle(self, qid, how, text, now=None):
        """Take Command qid out of the quarantine, in one transaction: how is
        "released" (the User had it sent: it counts for the thresholds from now) or
        "cleared" (dropped, never sent); a notification of that kind records it.
        Returns the notification id."""
        now = tf.parse_now(now)
        with self.store() as st, st.transaction():
            row = st.quarantine_row(qid)
            if row is None:
                raise UserError(f"no quarantined Command {qid} in {self.db_path}")
            st.remove_quarantine(qid)
            if how == "released":
                st.add_volume(int(now.timestamp()), row["originator"], row["use_case"],
                              row["target"], row["counter"])
            return st.add_notification(tf.iso(now), row["originator"], row["use_case"], how,
                                       text, qid)

    def notifications(self):
        with self.store(read_only=True) as st:
            return st.notifications()
