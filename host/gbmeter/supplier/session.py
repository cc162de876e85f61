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
from gbmeter.supplier.answer import (
    is_critical, check_answer, RAW_HINT, refuse_unfit, raw_answer, pending_fault, explain_8f53)

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
