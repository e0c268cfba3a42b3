"""The volumes table in hawserd's meta.db: one row per volume (its data is a directory that
manager.py keeps). Every change is committed before the caller reports it."""
import json
import threading
import time

from supervisor import sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS volumes (
    name TEXT PRIMARY KEY,
    driver TEXT NOT NULL DEFAULT 'local',
    created REAL NOT NULL,
    labels TEXT NOT NULL,          -- JSON object
    anonymous INTEGER NOT NULL DEFAULT 0
);
"""
FIELDS = ("name", "driver", "created", "labels", "anonymous")


class VolumeStore:
    def __init__(self, db_path: str):
        self.db = sqlite.connect(db_path)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def add(self, name: str, labels: dict, anonymous: bool) -> tuple[dict, bool]:
        """(the row named name, whether this call made it): a name that is taken keeps its row,
        as docker returns an existing volume to a second create."""
        with self.lock:
            cur = self.db.execute(
                "INSERT OR IGNORE INTO volumes (name, driver, created, labels, anonymous) "
                "VALUES (?, 'local', ?, ?, ?)",
                (name, time.time(), json.dumps(labels or {}, sort_keys=True), int(anonymous)))
            made = cur.rowcount == 1
        return self.get(name), made

    def remove(self, name: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM volumes WHERE name = ?", (name,))

    def get(self, name: str) -> dict | None:
        rows = self._select("WHERE name = ?", (name,))
        return rows[0] if rows else None

    def all(self) -> list[dict]:
        return self._select("ORDER BY name", ())

    def _select(self, where: str, args) -> list[dict]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(FIELDS)} FROM volumes {where}",
                                   args).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(FIELDS, row))
            rec["labels"] = json.loads(rec["labels"])
            rec["anonymous"] = bool(rec["anonymous"])
            out.append(rec)
        return out

    def close(self) -> None:
        with self.lock:
            self.db.close()
