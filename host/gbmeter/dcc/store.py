"""The DCC's state on disk: one SQLite file (stdlib sqlite3) that survives restarts.

Tables:
  quarantine      one row per quarantined Command: time (ISO 8601 UTC), originator,
                  target (16 hex digits), counter, use case, message code, check
                  ("inspection" or "threshold"), reason, and the Command as hex
  notifications   what the DCC tells the User about: time, originator, use case,
                  kind ("inspection" / "threshold": quarantined; "released" / "cleared":
                  taken out of the quarantine, sent or dropped), text, the quarantine
                  row it is about (a released or cleared row is deleted; its
                  notifications keep its id)
  volume          one row per Command released, for the threshold ADTs: at (Unix
                  seconds), originator, use case, target, counter

Counters are stored as decimal text: an 8-byte originator counter does not fit
SQLite's signed 64-bit INTEGER. A check and the rows it writes run in one
BEGIN IMMEDIATE transaction, so two processes sharing the folder cannot both take
the last place under a threshold. WAL mode, synchronous NORMAL: a committed check
survives kill -9 of the process (not a power cut of the machine itself); a process
that checks many Commands (gbmeter dcc serve) keeps a connection open, so closing
each check's connection does not checkpoint (and fsync) every time.
"""

import sqlite3
from contextlib import contextmanager
from pathlib import Path

from gbmeter.errors import UserError

SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS quarantine (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    originator TEXT NOT NULL,
    target TEXT NOT NULL,
    counter TEXT NOT NULL,
    use_case TEXT NOT NULL,
    message_code TEXT NOT NULL,
    check_name TEXT NOT NULL,
    reason TEXT NOT NULL,
    hex TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    originator TEXT NOT NULL,
    use_case TEXT NOT NULL,
    kind TEXT NOT NULL,
    text TEXT NOT NULL,
    quarantine_id INTEGER REFERENCES quarantine(id)
);
CREATE TABLE IF NOT EXISTS volume (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    originator TEXT NOT NULL,
    use_case TEXT NOT NULL,
    target TEXT NOT NULL,
    counter TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS volume_by_user ON volume (originator, use_case, at);
"""


class Store:
    """The SQLite file at `path`. read_only: never create or write it (a missing
    file reads as empty)."""

    def __init__(self, path, read_only=False):
        self.path = Path(path)
        self.read_only = read_only
        self.db = None
        try:
            if read_only:
                if self.path.exists():
                    self.db = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                              isolation_level=None)
            else:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self.db = sqlite3.connect(self.path, isolation_level=None, timeout=10)
                # WAL + NORMAL (as duis.sqlite): a commit is in the WAL when it returns,
                # so it survives kill -9, without an fsync per Command checked
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            if self.db is not None:
                self.db.row_factory = sqlite3.Row
                self._check_version()
        except sqlite3.DatabaseError as e:
            raise UserError(f"{self.path} is not a gbmeter DCC database ({e})") from None
        except OSError as e:
            raise UserError(f"cannot open {self.path}: {e.strerror}") from None

    def _migrate(self):
        if self.db.execute("PRAGMA user_version").fetchone()[0] == 0:
            self.db.executescript(SCHEMA)
            self.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _check_version(self):
        v = self.db.execute("PRAGMA user_version").fetchone()[0]
        if v != SCHEMA_VERSION:
            raise UserError(f"{self.path} has schema version {v}, this gbmeter reads "
                            f"{SCHEMA_VERSION}")

    def close(self):
        if self.db is not None:
            self.db.close()
            self.db = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def transaction(self):
        """BEGIN IMMEDIATE ... COMMIT (rolled back on error); a no-op read-only."""
        if self.read_only or self.db is None:
            yield self
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # --- volume ---------------------------------------------------------------------

    def count(self, originator, use_case, since):
        """Commands released for this User and use case with at > since."""
        if self.db is None:
            return 0
        return self.db.execute(
            "SELECT COUNT(*) FROM volume WHERE originator = ? AND use_case = ? AND at > ?",
            (originator, use_case, int(since))).fetchone()[0]

    def add_volume(self, at, originator, use_case, target, counter):
        self._writable()
        self.db.execute("INSERT INTO volume (at, originator, use_case, target, counter) "
                        "VALUES (?, ?, ?, ?, ?)",
                        (int(at), originator, use_case, target, str(counter)))

    # --- quarantine and notifications -------------------------------------------------

    def add_quarantine(self, time, originator, target, counter, use_case, message_code,
                       check_name, reason, hex_text):
        self._writable()
        cur = self.db.execute(
            "INSERT INTO quarantine (time, originator, target, counter, use_case, "
            "message_code, check_name, reason, hex) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (time, originator, target, str(counter), use_case, message_code, check_name,
             reason, hex_text))
        return cur.lastrowid

    def add_notification(self, time, originator, use_case, kind, text, quarantine_id=None):
        self._writable()
        cur = self.db.execute(
            "INSERT INTO notifications (time, originator, use_case, kind, text, "
            "quarantine_id) VALUES (?, ?, ?, ?, ?, ?)",
            (time, originator, use_case, kind, text, quarantine_id))
        return cur.lastrowid

    def quarantined(self):
        return self._rows("SELECT * FROM quarantine ORDER BY id", counter=True)

    def quarantine_row(self, qid):
        """One quarantined Command by id, or None."""
        rows = self._rows("SELECT * FROM quarantine WHERE id = ?", counter=True, args=(qid,))
        return rows[0] if rows else None

    def remove_quarantine(self, qid):
        """Take a Command out of the quarantine (released or cleared); its
        notifications stay, with the id they were about."""
        self._writable()
        self.db.execute("DELETE FROM quarantine WHERE id = ?", (qid,))

    def notifications(self):
        return self._rows("SELECT * FROM notifications ORDER BY id")

    def volume(self):
        return self._rows("SELECT * FROM volume ORDER BY id", counter=True)

    def _rows(self, sql, counter=False, args=()):
        if self.db is None:
            return []
        out = []
        for row in self.db.execute(sql, args):
            d = dict(row)
            if counter:
                d["counter"] = int(d["counter"])
            if "check_name" in d:
                d["check"] = d.pop("check_name")
            out.append(d)
        return out

    def _writable(self):
        if self.read_only or self.db is None:
            raise RuntimeError("the DCC store is open read-only")
