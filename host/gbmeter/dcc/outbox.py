"""The DUIS service's durable state: one SQLite file (duis.sqlite in the DCC folder,
beside the anomaly detection's dcc.sqlite) that survives kill -9.

Tables:
  counters  the last RequestID counter accepted per originator (decimal text: a
            64-bit unsigned counter does not fit SQLite's INTEGER)
  requests  each CV 4 Service Request, with the PRECOMMAND the DCC made for it and
            the GBCS time it was made at; state transformed -> completed (a CV 5
            took it: a Signed Pre-Command is accepted once per request); a CV 1
            (non-critical) request is completed at once, its Command released
  commands  each Signed Pre-Command accepted with a CV 5. state:
              received     accepted, anomaly detection not yet recorded
              released     passed: to be sent to its meter (in id order)
              quarantined  held by anomaly detection (the AD1 alert is in the outbox)
              sending      being sent: a restart finds it here only if the service
                           died mid-Command, and then never sends it again (the
                           meter may or may not have run it): the User gets E21
              done         answered (or E20 / E21): the outcome is in the outbox
              discarded    a quarantined one the User discarded
  outbox    each Service Response and alert, signed, stored before it is sent:
            pending (with attempts, the time of the next try, the last error) ->
            delivered when the User's endpoint answered 2xx. ResponseID is unique.

Every change is one BEGIN IMMEDIATE transaction; WAL mode, synchronous NORMAL (a
committed change survives kill -9 of the service; not a power cut of the machine).
"""

import json
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path

from gbmeter.errors import UserError

SCHEMA_VERSION = 1
FILE = "duis.sqlite"
SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    originator TEXT PRIMARY KEY,
    counter TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    request_id TEXT PRIMARY KEY,
    originator TEXT NOT NULL,
    target TEXT NOT NULL,
    counter TEXT NOT NULL,
    service_reference TEXT NOT NULL,
    service_reference_variant TEXT NOT NULL,
    use_case TEXT NOT NULL,
    xml BLOB NOT NULL,
    precommand TEXT NOT NULL,
    made_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS commands (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE REFERENCES requests(request_id),
    meter TEXT NOT NULL,
    signed TEXT NOT NULL,
    state TEXT NOT NULL,
    verdict TEXT,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS commands_by_state ON commands (state, id);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    response_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    xml BLOB NOT NULL,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    last_error TEXT,
    created REAL NOT NULL,
    delivered REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (state, next_at);
CREATE TABLE IF NOT EXISTS dcc_counter (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    counter TEXT NOT NULL
);
"""


class Replay(UserError):
    """A RequestID counter that does not rise, or a request completed before."""


class NoRequest(UserError):
    """A CV 5 with no CV 4 before it."""


class Outbox:
    def __init__(self, folder):
        self.path = Path(folder) / FILE
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL: a commit is in the WAL before the call returns, so it survives
            # the process being killed (kill -9); only a crash of the machine itself
            # could lose the last ones
            self.db.execute("PRAGMA synchronous=NORMAL")
            v = self.db.execute("PRAGMA user_version").fetchone()[0]
            if v == 0:
                self.db.executescript(SCHEMA)
                self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            elif v != SCHEMA_VERSION:
                raise UserError(f"{self.path} has schema version {v}, this gbmeter reads "
                                f"{SCHEMA_VERSION}")
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path} is not a gbmeter DUIS database ({e})") from None
        except OSError as e:
            raise UserError(f"cannot open {self.path}: {e.strerror}") from None

    def close(self):
        self.db.close()

    @contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- RequestID counters ------------------------------------------------------------

    def last_counter(self, originator):
        row = self.db.execute("SELECT counter FROM counters WHERE originator = ?",
                              (originator,)).fetchone()
        return int(row[0]) if row else None

    def _take_counter(self, db, originator, counter):
        row = db.execute("SELECT counter FROM counters WHERE originator = ?",
                         (originator,)).fetchone()
        if row is not None and counter <= int(row[0]):
            raise Replay(f"RequestID counter {counter} does not rise above {row[0]}, the last "
                         f"one accepted from {originator.upper()}")
        db.execute("INSERT INTO counters (originator, counter) VALUES (?, ?) ON CONFLICT"
                   "(originator) DO UPDATE SET counter = excluded.counter",
                   (originator, str(counter)))

    def take_counter(self, originator, counter):
        with self.transaction() as db:
            self._take_counter(db, originator, counter)

    # --- CV 4 requests and CV 5 commands ---------------------------------------------------

    def add_request(self, header, use_case, xml, precommand, made_at):
        """Record a CV 4 request and its PRECOMMAND, taking its counter."""
        with self.transaction() as db:
            self._take_counter(db, header.originator, header.counter)
            db.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'transformed', ?)",
                (header.request_id, header.originator, header.target, str(header.counter),
                 header.service_reference, header.service_reference_variant, use_case, xml,
                 precommand.hex(), int(made_at), time.time()))

    def add_direct(self, header, use_case, xml, precommand, made_at, meter, command):
        """Record a CV 1 (non-critical) request, taking its counter, and its Command
        released to its meter, in one transaction (nothing for the User to sign, no
        anomaly detection). `command` is what the ACB MACs (the PRECOMMAND with
        signature length 00). Returns the command id."""
        now = time.time()
        with self.transaction() as db:
            self._take_counter(db, header.originator, header.counter)
            db.execute(
                "INSERT INTO requests VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'completed', ?)",
                (header.request_id, header.originator, header.target, str(header.counter),
                 header.service_reference, header.service_reference_variant, use_case, xml,
                 precommand.hex(), int(made_at), now))
            cur = db.execute("INSERT INTO commands (request_id, meter, signed, state, verdict, "
                             "created, updated) VALUES (?, ?, ?, 'released', ?, ?, ?)",
                             (header.request_id, meter, bytes(command).hex(),
                              json.dumps({"release": True, "non_critical": True}), now, now))
            return cur.lastrowid

    def request(self, request_id):
        row = self.db.execute("SELECT * FROM requests WHERE request_id = ?",
                              (request_id,)).fetchone()
        return dict(row) if row else None

    def accept(self, request_id, meter, signed):
        """A CV 5's Signed Pre-Command: completes its CV 4 request, once. Returns the
        command id."""
        now = time.time()
        with self.transaction() as db:
            row = db.execute("SELECT state FROM requests WHERE request_id = ?",
                             (request_id,)).fetchone()
            if row is None:
                raise NoRequest(f"no CV 4 request {request_id} before this CV 5")
            if row[0] != "transformed":
                raise Replay(f"request {request_id} was completed by an earlier CV 5: a Signed "
                             "Pre-Command is accepted once")
            db.execute("UPDATE requests SET state = 'completed' WHERE request_id = ?",
                       (request_id,))
            cur = db.execute("INSERT INTO commands (request_id, meter, signed, state, created, "
                             "updated) VALUES (?, ?, ?, 'received', ?, ?)",
                             (request_id, meter, bytes(signed).hex(), now, now))
            return cur.lastrowid

    def command(self, command_id):
        row = self.db.execute("SELECT * FROM commands WHERE id = ?", (command_id,)).fetchone()
        return self._command(row) if row else None

    def commands(self, state=None):
        if state is None:
            rows = self.db.execute("SELECT * FROM commands ORDER BY id")
        else:
            rows = self.db.execute("SELECT * FROM commands WHERE state = ? ORDER BY id", (state,))
        return [self._command(r) for r in rows]

    @staticmethod
    def _command(row):
        d = dict(row)
        d["signed"] = bytes.fromhex(d["signed"])
        d["verdict"] = json.loads(d["verdict"]) if d["verdict"] else None
        return d

    def set_state(self, command_id, state, verdict=None, outgoing=(), expect=None):
        """Move a command to `state` (from `expect` when given, else raise Replay) and
        queue `outgoing` messages, in one transaction."""
        with self.transaction() as db:
            if expect is not None:
                row = db.execute("SELECT state FROM commands WHERE id = ?",
                                 (command_id,)).fetchone()
                if row is None or row[0] not in ((expect,) if isinstance(expect, str)
                                                 else tuple(expect)):
                    raise Replay(f"command {command_id} is {row[0] if row else 'unknown'}, "
                                 f"not {expect}")
            if verdict is not None:
                db.execute("UPDATE commands SET state = ?, verdict = ?, updated = ? WHERE id = ?",
                           (state, json.dumps(verdict), time.time(), command_id))
            else:
                db.execute("UPDATE commands SET state = ?, updated = ? WHERE id = ?",
                           (state, time.time(), command_id))
            self._queue(db, outgoing)

    def quarantined(self):
        """Commands held by anomaly detection, with their requests."""
        return [dict(c, use_case=self.request(c["request_id"])["use_case"])
                for c in self.commands("quarantined")]

    def release(self, command_id):
        """A quarantined command goes to its meter (the running service picks it up)."""
        self.set_state(command_id, "released", expect="quarantined")

    def discard(self, command_id):
        """A quarantined command is never sent."""
        self.set_state(command_id, "discarded", expect="quarantined")

    # --- the outbox ---------------------------------------------------------------------------

    def _queue(self, db, outgoing):
        now = time.time()
        for response_id, kind, xml in outgoing:
            db.execute("INSERT OR IGNORE INTO outbox (response_id, kind, xml, state, next_at, "
                       "created) VALUES (?, ?, ?, 'pending', ?, ?)",
                       (response_id, kind, xml, now, now))

    def queue(self, outgoing):
        """Store (response_id, kind, signed xml) messages to send; a ResponseID already
        stored is kept as it is (never sent twice)."""
        with self.transaction() as db:
            self._queue(db, outgoing)

    def has(self, response_id):
        return self.db.execute("SELECT 1 FROM outbox WHERE response_id = ?",
                               (response_id,)).fetchone() is not None

    def due(self, now=None, limit=50):
        now = time.time() if now is None else now
        return [dict(r) for r in self.db.execute(
            "SELECT * FROM outbox WHERE state = 'pending' AND next_at <= ? ORDER BY id LIMIT ?",
            (now, limit))]

    def next_due(self):
        row = self.db.execute("SELECT MIN(next_at) FROM outbox WHERE state = 'pending'").fetchone()
        return row[0]

    def delivered(self, outbox_id):
        with self.transaction() as db:
            db.execute("UPDATE outbox SET state = 'delivered', delivered = ?, attempts = "
                       "attempts + 1 WHERE id = ?", (time.time(), outbox_id))

    def failed(self, outbox_id, error, delay):
        with self.transaction() as db:
            db.execute("UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_at = ? "
                       "WHERE id = ?", (str(error)[:500], time.time() + delay, outbox_id))

    def messages(self, state=None):
        sql = "SELECT id, response_id, kind, state, attempts, last_error, created, delivered " \
              "FROM outbox"
        rows = self.db.execute(sql + (" WHERE state = ?" if state else "") + " ORDER BY id",
                               (state,) if state else ())
        return [dict(r) for r in rows]

    # --- the DCC's own counter (ResponseIDs of its alerts) ----------------------------------

    def dcc_counter(self):
        """A new counter for a DCC alert's ResponseID: the time in ms, always rising."""
        with self.transaction() as db:
            row = db.execute("SELECT counter FROM dcc_counter WHERE one = 1").fetchone()
            c = max(int(time.time() * 1000), int(row[0]) + 1 if row else 0)
            db.execute("INSERT INTO dcc_counter (one, counter) VALUES (1, ?) ON CONFLICT(one) "
                       "DO UPDATE SET counter = excluded.counter", (str(c),))
            return c
