"""The image table in hawserd's meta.db (SQLite, WAL): a normalized name -> the digest of what
it points at (an index or a manifest), as containerd's images store. The blobs themselves are in
the content store; a name moves when put() is given another target (a tag that moves)."""
from __future__ import annotations

import json
import threading
import time

from supervisor import sqlite
from supervisor.content.store import ContentError, check_digest
from supervisor.images.refs import ReferenceError, parse

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    name TEXT PRIMARY KEY,         -- normalized: docker.io/library/busybox:latest
    target TEXT NOT NULL,          -- sha256:... of the index or the manifest
    media_type TEXT NOT NULL,
    size INTEGER NOT NULL,         -- of the target blob
    created REAL NOT NULL,         -- when the name was first put
    updated REAL NOT NULL,
    labels TEXT NOT NULL           -- JSON object
);
CREATE INDEX IF NOT EXISTS images_target ON images (target);
"""
FIELDS = ("name", "target", "media_type", "size", "created", "updated", "labels")


class ImageStore:
    def __init__(self, db_path: str):
        self.db = sqlite.connect(db_path)
        self.db.executescript(SCHEMA)
        self.lock = threading.Lock()

    def put(self, name: str, target: str, media_type: str, size: int,
            labels: dict | None = None) -> dict:
        """Insert the name, or move it to `target` (its created time stays)."""
        _check(name, target, media_type, size, labels)
        now = time.time()
        with self.lock:
            self.db.execute(
                "INSERT INTO images (name, target, media_type, size, created, updated, labels) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET "
                "target = excluded.target, media_type = excluded.media_type, "
                "size = excluded.size, updated = excluded.updated, labels = excluded.labels",
                (name, target, media_type, size, now, now, json.dumps(labels or {})))
        return self.get(name)

    def get(self, name: str) -> dict | None:
        rows = self._select("WHERE name = ?", (name,))
        return rows[0] if rows else None

    def list(self) -> list[dict]:
        return self._select("ORDER BY created, name", ())

    def delete(self, name: str) -> bool:
        with self.lock:
            return self.db.execute("DELETE FROM images WHERE name = ?", (name,)).rowcount > 0

    def names_for(self, target: str) -> list[str]:
        return [r["name"] for r in self._select("WHERE target = ? ORDER BY name", (target,))]

    def targets(self) -> set[str]:
        """Every digest a name points at: the garbage collector's roots."""
        with self.lock:
            return {row[0] for row in self.db.execute("SELECT DISTINCT target FROM images")}

    def _select(self, where: str, args) -> list[dict]:
        with self.lock:
            rows = self.db.execute(f"SELECT {','.join(FIELDS)} FROM images {where}",
                                   args).fetchall()
        out = []
        for row in rows:
            rec = dict(zip(FIELDS, row))
            rec["labels"] = json.loads(rec["labels"])
            out.append(rec)
        return out

    def close(self) -> None:
        with self.lock:
            self.db.close()


def _check(name, target, media_type, size, labels) -> None:
    """A row that every reader can trust: a normalized name (or a digest: the record of an
    image without a name, docker's <none>), a real digest."""
    if isinstance(name, str) and name.startswith("sha256:"):
        try:
            check_digest(name)
        except ContentError as e:
            raise ValueError(f"image name: {e}") from None
    else:
        _check_name(name)
    _check_fields(name, target, media_type, size, labels)


def _check_name(name) -> None:
    try:
        normalized = parse(name).name
    except (ReferenceError, TypeError) as e:
        raise ValueError(f"image name: {e}") from None
    if normalized != name:
        raise ValueError(f"image name {name!r} is not normalized (it is {normalized!r})")


def _check_fields(name, target, media_type, size, labels) -> None:
    try:
        check_digest(target)
    except ContentError as e:
        raise ValueError(f"image {name}: target {e}") from None
    if not isinstance(media_type, str) or not media_type:
        raise ValueError(f"image {name}: no media type")
    if not isinstance(size, int) or size < 0:
        raise ValueError(f"image {name}: size {size!r} is not a byte count")
    if labels is not None and (not isinstance(labels, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in labels.items())):
        raise ValueError(f"image {name}: labels must map strings to strings")
