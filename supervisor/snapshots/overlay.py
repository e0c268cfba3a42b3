"""containerd's overlayfs snapshotter: committed snapshots are image layers (one directory of
files each, shared by every image and container on them), active ones a container's writable
upper directory over its image's layers, views read-only mounts of a layer chain.

Each snapshot is a row of the `snapshots` table (SQLite, WAL, in the db file other services keep
their tables in) and, when overlayfs needs one, a directory named by the row's id under
<root>/snapshots/: `<N>` holds its files (an upper dir, or a layer's content) and `<N>.work` is
the workdir of an active snapshot with parents. Nothing else is made: an empty directory costs
a 4 KiB block on ext4, so a committed layer keeps no workdir, a parentless active snapshot is
mounted as a bind of `<N>` and a view of layers has no directory at all. The numbers keep
lowerdir= lists short: an overlay's mount options must fit in one page.

Crash safety: the row is made before the directories and the directories are renamed away
before the row goes, ids are never reused (AUTOINCREMENT), so whatever a crash interrupts,
cleanup() at start-up finds rows without their directory, directories without a row, and
unpacks that never finished (active snapshots labelled hawser/extract), and removes them."""
from __future__ import annotations

import logging
import os
import shutil
import threading

from supervisor.snapshots import mountinfo
from supervisor.snapshots.table import AlreadyExists, Info, InUse, NotFound, SnapshotError, \
    Table

__all__ = ["AlreadyExists", "EXTRACT_LABEL", "Info", "InUse", "NotFound", "SnapshotError",
           "Snapshotter"]
logger = logging.getLogger("hawserd")
EXTRACT_LABEL = "hawser/extract"
MOUNT_DATA_MAX = 4095          # mount(2) copies one page of options, its last byte a NUL


class Snapshotter:
    def __init__(self, root: str, db_path: str):
        self.dir = os.path.join(os.path.abspath(root), "snapshots")
        # only root may reach the layers: they hold the images' setuid binaries (a user of
        # the host running one would gain what the image's root has)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        self.table = Table(db_path)
        self.lock = threading.Lock()

    def close(self) -> None:
        with self.lock:
            self.table.close()

    # -- paths --------------------------------------------------------------------------------
    def _fs(self, sid) -> str:
        return f"{self.dir}/{sid}"

    def _work(self, sid) -> str:
        return f"{self.dir}/{sid}.work"

    @staticmethod
    def _dirs_of(info: Info) -> list[str]:
        """The directory names a snapshot has: its files' (when it has some), and a workdir
        for an active one with parents."""
        if info.kind == "view" and info.parent:
            return []
        if info.kind == "active" and info.parent:
            return [f"{info.id}.work", info.id]
        return [info.id]

    # -- making -------------------------------------------------------------------------------
    def prepare(self, key: str, parent: str = "", labels: dict | None = None) -> list[dict]:
        """A writable snapshot on the committed parent; its mounts."""
        return self._create("active", key, parent, labels)

    def view(self, key: str, parent: str, labels: dict | None = None) -> list[dict]:
        """A read-only snapshot of the committed parent; its mounts."""
        return self._create("view", key, parent, labels)

    def _create(self, kind: str, key: str, parent: str, labels) -> list[dict]:
        _check_key(key)
        labels = _check_labels(labels)
        with self.lock:
            chain = self._parent_chain(parent)
            with self.table.transaction():
                sid = self.table.insert(key, parent, kind, labels)
                mounts = self._mounts(kind, sid, chain)     # too many layers: nothing made
            info = Info(key, parent, kind, sid, 0.0)
            made = []
            try:
                for name in self._dirs_of(info):      # the files' dir last: cleanup looks there
                    os.mkdir(f"{self.dir}/{name}", 0o700 if name.endswith(".work") else 0o755)
                    made.append(name)
                if kind == "active" and chain:
                    # the container's / is the upper dir's root: the image's owner and mode
                    st = os.stat(self._fs(chain[0]))
                    os.chown(self._fs(sid), st.st_uid, st.st_gid)
                    os.chmod(self._fs(sid), st.st_mode & 0o7777)
            except OSError as e:
                self.table.delete(sid)
                for name in made:
                    shutil.rmtree(f"{self.dir}/{name}", ignore_errors=True)
                raise SnapshotError(f"snapshot {key}: {e}") from None
        return mounts

    def _parent_chain(self, parent: str) -> list[str]:
        if not parent:
            return []
        row = self.table.get(parent)
        if row is None:
            raise NotFound(f"parent snapshot {parent}: not found")
        if row.kind != "committed":
            raise SnapshotError(f"parent snapshot {parent} is {row.kind}: only a committed "
                                "snapshot can be a parent")
        return self.table.chain(parent)

    def commit(self, name: str, key: str, labels: dict | None = None,
               parent: str | None = None) -> None:
        """The active snapshot key becomes the committed (immutable) snapshot name, with these
        labels (only), on its parent or, when given, on parent instead (a layer unpacked
        without its parents, as hawser's unpacker does, does not depend on them)."""
        _check_key(name)
        labels = _check_labels(labels)
        with self.lock:
            info = self.table.get(key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            if info.kind != "active":
                raise SnapshotError(f"snapshot {key} is {info.kind}: only an active snapshot "
                                    "can be committed")
            if parent is not None:
                self._parent_chain(parent)
            using = mountinfo.users([self._fs(info.id)])
            if using:
                raise InUse(f"snapshot {key}: mounted ({using[0]}), unmount it first")
            self.table.commit(info.id, name, info.parent if parent is None else parent, labels)
        shutil.rmtree(self._work(info.id), ignore_errors=True)   # a layer needs no workdir

    def remove(self, key: str) -> None:
        """Refused (InUse) while it has children or is mounted."""
        with self.lock:
            info = self.table.get(key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            children = self.table.children(key, 3)
            if children:
                raise InUse(f"snapshot {key}: in use by {', '.join(children)}"
                            f"{' and more' if len(children) == 3 else ''}")
            dirs = [f"{self.dir}/{n}" for n in self._dirs_of(info)]
            using = mountinfo.users(dirs)
            if using:
                raise InUse(f"snapshot {key}: mounted ({using[0]}), unmount it first")
            trash = self._rename_away(dirs)
            self.table.delete(info.id)
        for path in trash:
            shutil.rmtree(path, ignore_errors=True)

    def _rename_away(self, dirs: list[str]) -> list[str]:
        """The dirs renamed to names no row has (a crash before their rmtree leaves a dir
        cleanup() removes, never a half-removed snapshot that still has its row)."""
        trash = []
        for path in reversed(dirs):          # the files' dir first: its row is then broken
            try:
                os.rename(path, path + ".removing")
                trash.append(path + ".removing")
            except FileNotFoundError:
                pass
        return trash

    # -- reading ------------------------------------------------------------------------------
    def stat(self, key: str) -> Info | None:
        with self.lock:
            return self.table.get(key)

    def list(self) -> list[Info]:
        with self.lock:
            return self.table.all()

    def _get(self, key: str) -> tuple[Info, list[str]]:
        """(info, ids of its parents nearest first)."""
        with self.lock:
            info = self.table.get(key)
            if info is None:
                raise NotFound(f"snapshot {key}: not found")
            chain = self.table.chain(info.parent) if info.parent else []
        return info, chain

    def mounts(self, key: str) -> list[dict]:
        info, chain = self._get(key)
        return self._mounts(info.kind, info.id, chain)

    def upper(self, key: str) -> str:
        """The directory of the snapshot's own files (an active one's upper dir, a committed
        one's layer)."""
        info, _ = self._get(key)
        if info.kind == "view" and info.parent:
            raise SnapshotError(f"snapshot {key} is a view: it has no files of its own")
        return self._fs(info.id)

    def lowers(self, key: str) -> list[str]:
        """The fs dirs of its parents, nearest first."""
        _, chain = self._get(key)
        return [self._fs(sid) for sid in chain]

    def usage(self, key: str) -> tuple[int, int]:
        """(bytes, inodes) its own files take on disk, each inode once (as containerd's)."""
        info, _ = self._get(key)
        if not self._dirs_of(info):
            return 0, 0
        return _disk_usage(self._fs(info.id))

    def _mounts(self, kind: str, sid: str, chain: list[str]) -> list[dict]:
        fs = self._fs(sid)
        if kind == "active" and not chain:
            return [{"type": "bind", "source": fs, "options": ["rw", "rbind"]}]
        if kind == "view" and len(chain) <= 1:
            return [{"type": "bind", "source": self._fs(chain[0]) if chain else fs,
                     "options": ["ro", "rbind"]}]
        lowerdir = "lowerdir=" + ":".join(self._fs(p) for p in chain)
        # an overlay with only lowers is read-only: a view of more than one layer
        options = [lowerdir] if kind == "view" else \
            ["index=off", f"workdir={self._work(sid)}", f"upperdir={fs}", lowerdir]
        size = len(",".join(options).encode())
        if size > MOUNT_DATA_MAX:
            raise SnapshotError(f"{len(chain)} layers are too many for one overlay mount: "
                                f"its options would take {size} bytes, mount(2) takes at most "
                                f"{MOUNT_DATA_MAX} (one page)")
        return [{"type": "overlay", "source": "overlay", "options": options}]

    # -- start-up -------------------------------------------------------------------------------
    def cleanup(self) -> list[str]:
        """What a crash left, made consistent (call before serving): unfinished unpacks and
        rows whose directory is gone are removed (with the snapshots on them), directories
        no row has are deleted. The keys removed."""
        with self.lock:
            rows = self.table.all()
            doomed = {i.key for i in rows
                      if i.kind == "active" and EXTRACT_LABEL in i.labels
                      or any(not n.endswith(".work") and not os.path.isdir(f"{self.dir}/{n}")
                             for n in self._dirs_of(i))}
            grew = True
            while grew:              # what is on a removed snapshot cannot stand either
                more = {i.key for i in rows if i.parent in doomed} - doomed
                doomed |= more
                grew = bool(more)
            keep = [i for i in rows if i.key not in doomed]
            expected = {n for i in keep for n in self._dirs_of(i)}
            for name in expected:
                if name.endswith(".work") and not os.path.isdir(f"{self.dir}/{name}"):
                    os.mkdir(f"{self.dir}/{name}", 0o700)
            with self.table.transaction():
                for info in rows:
                    if info.key in doomed:
                        self.table.delete(info.id)
            leftovers = [f"{self.dir}/{n}" for n in os.listdir(self.dir) if n not in expected]
        for path in leftovers:
            using = mountinfo.users([path])
            if using:
                logger.warning("snapshots: %s stays, it is mounted (%s)", path, using[0])
                continue
            shutil.rmtree(path, ignore_errors=True)
        if doomed:
            logger.info("snapshots: removed %d left by a crash: %s", len(doomed),
                        ", ".join(sorted(doomed)))
        return sorted(doomed)


def _check_key(key) -> None:
    if not isinstance(key, str) or not key or "\0" in key:
        raise SnapshotError(f"invalid snapshot key {key!r}: a non-empty string is needed")


def _check_labels(labels) -> dict:
    labels = dict(labels or {})
    for k, v in labels.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise SnapshotError(f"invalid label {k!r}={v!r}: labels map strings to strings")
    return labels


def _disk_usage(top: str) -> tuple[int, int]:
    seen, size = set(), 0
    todo = [top]
    st = os.lstat(top)
    seen.add(st.st_ino)
    size += st.st_blocks * 512
    while todo:
        with os.scandir(todo.pop()) as it:
            for entry in it:
                st = entry.stat(follow_symlinks=False)
                if st.st_ino not in seen:
                    seen.add(st.st_ino)
                    size += st.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    todo.append(entry.path)
    return size, len(seen)
