"""hawserd's metadata in SQLite (WAL) under --root: one row per container with its task's state.
Every change is committed before the caller reports it."""
import json
import sqlite3
import threading
import time

from supervisor import sqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS containers (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,          -- JSON: the ContainerConfig fields
    rootfs TEXT NOT NULL,
    runtime TEXT NOT NULL,
    labels TEXT NOT NULL,          -- JSON object
    created REAL NOT NULL,
    bundle TEXT NOT NULL,
    status TEXT NOT NULL,          -- created | running | paused | stopped
    pid INTEGER NOT NULL DEFAULT 0,
    exit_status INTEGER NOT NULL DEFAULT 0,
    exited_at REAL NOT NULL DEFAULT 0,
    shim_address TEXT NOT NULL DEFAULT '',
    shim_pid INTEGER NOT NULL DEFAULT 0,
    restart_count INTEGER NOT NULL DEFAULT 0,
    stop_requested INTEGER NOT NULL DEFAULT 0,  -- 1: stopped by a user, no restart
    image TEXT NOT NULL DEFAULT '',             -- the image reference it was made from
    image_id TEXT NOT NULL DEFAULT '',          -- that image's config digest
    image_target TEXT NOT NULL DEFAULT '',      -- the platform manifest it came from (GC root)
    snapshot TEXT NOT NULL DEFAULT '',          -- its writable snapshot's key
    started_at REAL NOT NULL DEFAULT 0          -- its task's last start
);
"""
# Columns added after the first schema: (name, declaration) added to an older database.
ADDED = (("restart_count", "INTEGER NOT NULL DEFAULT 0"),
         ("stop_requested", "INTEGER NOT NULL DEFAULT 0"),
         ("image", "TEXT NOT NULL DEFAULT ''"), ("image_id", "TEXT NOT NULL DEFAULT ''"),
         ("image_target", "TEXT NOT NULL DEFAULT ''"), ("snapshot", "TEXT NOT NULL DEFAULT ''"),
         ("started_at", "REAL NOT NULL DEFAULT 0"))
FIELDS = ("id", "name", "config", "rootfs", "runtime", "labels", "created", "bundle", "status",
          "pid", "exit_status", "exited_at", "shim_address", "shim_pid", "restart_count",
          "stop_requested", "image", "image_id", "image_target", "snapshot", "started_at")
JSON_FIELDS = ("config", "labels")
# Absent text columns are "", never 0: SQLite would store the 0 as the (true) string "0".
TEXT_DEFAULTS = {"shim_address": "", "image": "", "image_id": "", "image_target": "",
                 "snapshot": ""}


class NameTaken(Exception):
    pass


class Store:
    def __init__(self, path: str):
        self.db = sqlite.connect(path)
        self.db.executescript(SCHEMA)
        have = {row[1] for row in self.db.execute("PRAGMA table_info(containers)")}
        for column, decl in ADDED:
            if column not in have:
                self.db.execute(f"ALTER TABLE containers ADD COLUMN {column} {decl}")
        self.lock = threading.Lock()

    def add(self, record: dict) -> dict:
        row = dict(record, created=record.get("created") or time.time())
        values = [json.dumps(row[f]) if f in JSON_FIELDS else row.get(f, TEXT_DEFAULTS.get(f, 0))
                  for f in FIELDS]
        with self.lock:
            try:
                self.db.execute(f"INSERT INTO containers ({','.join(FIELDS)}) VALUES "
                                f"({','.join('?' * len(FIELDS))})", values)
            except sqlite3.IntegrityError as e:
                raise NameTaken(str(e)) from None
        return self.get(row["id"])

    def update(self, cid: str, **changes) -> dict | None:
        if changes:
            sets = ", ".join(f"{k} = ?" for k in changes)
            values = [json.dumps(v) if k in JSON_FIELDS else v for k, v in changes.items()]
            with self.lock:
                self.db.execute(f"UPDATE containers SET {sets} WHERE id = ?", values + [cid])
        return self.get(cid)

    def remove(self, cid: str) -> None:
        with self.lock:
            self.db.execute("DELETE FROM containers WHERE id = ?", (cid,))

    def get(self, cid: str) -> dict | None:
        rows = self._select("WHERE id = ?", (cid,))
        return rows[0] if rows else None

    def find(self, ref: str) -> list[dict]:
        """Containers an id, a name or an id prefix names (exact id, then name, then prefix)."""
        for where in ("WHERE id = ?", "WHERE name = ?"):
            rows = self._select(where, (ref,))
            if rows:
                return rows
        return self._select("WHERE id LIKE ? ESCAPE '\\'", (_like_prefix(ref),)) if ref else []

    def all(self) -> list[dict]:
        return self._select("ORDER BY created", ())

    def _select(self, where: str, args) -> list[dict]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(FIELDS)} FROM containers {where}",
                                   args).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(FIELDS, row))
            for f in JSON_FIELDS:
                rec[f] = json.loads(rec[f])
            out.append(rec)
        return out

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _like_prefix(s: str) -> str:
    return s.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
