"""The snapshotter's metadata: its own table `snapshots` in the SQLite db file other services
keep their tables in (WAL: each service has its own connection). A row's id names the
snapshot's directories and is never reused (AUTOINCREMENT), so a directory a crash left behind
can never be taken for a new snapshot's. Not locked here: the snapshotter holds its lock
around a row's change and the directory work that goes with it."""
from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from dataclasses import dataclass, field

from supervisor import sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- its directories' name: never reused
    key TEXT NOT NULL UNIQUE,
    parent TEXT NOT NULL DEFAULT '',        -- key of a committed snapshot, '' for none
    kind TEXT NOT NULL CHECK (kind IN ('active', 'view', 'committed')),
    created REAL NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}'       -- JSON object of strings
);
CREATE INDEX IF NOT EXISTS snapshots_parent ON snapshots (parent);
"""
FIELDS = "id, key, parent, kind, created, labels"
# the chain from a snapshot down to its base layer, nearest first
CHAIN = """
WITH RECURSIVE chain (id, parent, depth) AS (
    SELECT id, parent, 0 FROM snapshots WHERE key = ?
    UNION ALL
    SELECT s.id, s.parent, chain.depth + 1 FROM snapshots s JOIN chain ON s.key = chain.parent
) SELECT id FROM chain ORDER BY depth
"""


class SnapshotError(Exception):
    pass


class NotFound(SnapshotError):
    pass


class AlreadyExists(SnapshotError):
    pass


class InUse(SnapshotError):
    pass


@dataclass(frozen=True)
class Info:
    key: str
    parent: str
    kind: str               # active | view | committed
    id: str
    created: float
    labels: dict = field(default_factory=dict)


class Table:
    def __init__(self, db_path: str):
        self.db = sqlite.connect(db_path)
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    @contextlib.contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def get(self, key: str) -> Info | None:
        r = self.db.execute(f"SELECT {FIELDS} FROM snapshots WHERE key = ?", (key,)).fetchone()
        return _info(r) if r else None

    def all(self) -> list[Info]:
        return [_info(r) for r in self.db.execute(f"SELECT {FIELDS} FROM snapshots ORDER BY id")]

    def chain(self, key: str) -> list[str]:
        """The ids of key and its parents, nearest first."""
        return [str(r[0]) for r in self.db.execute(CHAIN, (key,))]

    def children(self, key: str, limit: int) -> list[str]:
        return [r[0] for r in self.db.execute(
            "SELECT key FROM snapshots WHERE parent = ? LIMIT ?", (key, limit))]

    def insert(self, key: str, parent: str, kind: str, labels: dict) -> str:
        try:
            return str(self.db.execute(
                "INSERT INTO snapshots (key, parent, kind, created, labels) VALUES (?, ?, ?, ?, ?)",
                (key, parent, kind, time.time(), json.dumps(labels))).lastrowid)
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"snapshot {key}: already exists") from None

    def commit(self, sid: str, name: str, parent: str, labels: dict) -> None:
        try:
            self.db.execute("UPDATE snapshots SET key = ?, kind = 'committed', parent = ?, "
                            "labels = ? WHERE id = ?", (name, parent, json.dumps(labels), sid))
        except sqlite3.IntegrityError:
            raise AlreadyExists(f"snapshot {name}: already exists") from None

    def delete(self, sid: str) -> None:
        self.db.execute("DELETE FROM snapshots WHERE id = ?", (sid,))


def _info(row) -> Info:
    sid, key, parent, kind, created, labels = row
    return Info(key, parent, kind, str(sid), created, json.loads(labels))
