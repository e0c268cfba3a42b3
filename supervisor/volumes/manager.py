"""Volumes: a row in meta.db (store.py) and a directory, in docker's layout:
<root>/volumes/<name>/_data, the volumes dir 0701 and each volume's 0755, owned by root.

Crash safety, by the order of the steps (cleanup() at start-up finishes or undoes each):
- create makes the directory, then the row: a directory without a row and without data is a
  create that never answered (removed); one with data is adopted, as docker's local driver
  adopts the directories it finds;
- delete renames the directory into volumes/.trash/<name>.<token>, removes the row, then the
  files: a row whose directory is in the trash is a delete that was under way (finished);
- seed copies into <volume>/_seeding/_data (the whole removed if a crash leaves it), gives
  _seeding the source directory's times, renames it _seeded once complete, then moves the
  copy's entries into _data one by one (a _seeded left is moved on); _data takes the copy's
  owner, mode and xattrs, and _seeded's times (moving the entries out changes the copy's own).
A row without any directory (removed by hand) gets an empty one again. What cleanup cannot
remove (a mount inside a trashed volume) is logged and left for the next start.

Trees are walked by openat2 from the top's fd, one directory open at a time, never through a
symlink nor onto another mount (RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV): removing a volume
cannot delete what a link or a mount inside it shows. A volume with a mount inside (as the
host's /proc/self/mountinfo shows) is not removed at all: delete refuses, prune skips it."""
from __future__ import annotations

import ctypes
import errno
import logging
import os
import re
import stat
import threading

from runtime import syscall
from runtime.syscall.consts import (RESOLVE_BENEATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
                                    RESOLVE_NO_SYMLINKS, RESOLVE_NO_XDEV)
from supervisor.errors import ApiError
from supervisor.snapshots import copyup, layered
from supervisor.volumes.mounts import volume_name_error
from supervisor.volumes.store import VolumeStore

DATA, SEEDING, SEEDED, TRASH = "_data", "_seeding", "_seeded", ".trash"
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
WALK = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV
RENAME_NOREPLACE = 1
_libc = ctypes.CDLL(None, use_errno=True)
logger = logging.getLogger("hawserd")


class VolumeManager:
    def __init__(self, root: str, db_path: str):
        self.dir = os.path.join(root, "volumes")
        self.trash = os.path.join(self.dir, TRASH)
        os.makedirs(self.trash, 0o700, exist_ok=True)
        os.chmod(self.dir, 0o701)          # others may reach a volume's _data, not list them
        self.store = VolumeStore(db_path)
        self.lock = threading.RLock()      # create, delete and cleanup, one at a time
        self._seed_locks: dict[str, threading.Lock] = {}

    def close(self) -> None:
        self.store.close()

    def _step(self, what: str) -> None:
        """A point between two steps of a change: where the crash tests stop the process."""

    # -- the table and the directories ---------------------------------------------------------
    def create(self, name: str = "", labels=None, anonymous: bool = False) -> dict:
        """A new volume (an empty name: 64 hex digits, anonymous); an existing name is returned
        as it is, as docker does."""
        if not name:
            name, anonymous = os.urandom(32).hex(), True
        problem = volume_name_error(name)
        if problem:
            raise ApiError("INVALID_ARGUMENT", problem)
        with self.lock:
            rec = self.store.get(name)
            if rec is not None:
                return self.describe(rec)
            self._make_dir(name)
            self._step("directory made")
            rec, _ = self.store.add(name, labels or {}, anonymous)
        return self.describe(rec)

    def get(self, name: str) -> dict:
        rec = self.store.get(name)
        if rec is None:
            raise ApiError("NOT_FOUND", f"get {name}: no such volume")
        return self.describe(rec)

    def list(self) -> list[dict]:
        return [self.describe(rec) for rec in self.store.all()]

    def describe(self, rec: dict) -> dict:
        return dict(rec, mountpoint=os.path.join(self.dir, rec["name"], DATA))

    def path(self, name: str) -> str:
        """The directory a container mounts (NOT_FOUND for a volume that is not there)."""
        return self.get(name)["mountpoint"]

    def delete(self, name: str, in_use) -> None:
        """in_use: true (or the ids of the containers that have it) refuses the removal."""
        with self.lock:
            self.get(name)
            if in_use:
                ids = f" - [{', '.join(in_use)}]" if isinstance(in_use, (list, tuple, set)) else ""
                raise ApiError("FAILED_PRECONDITION", f"remove {name}: volume is in use{ids}")
            self._discard(name)

    def prune(self, in_use: set, all_: bool = False) -> tuple[list[str], int]:
        """Remove the volumes no container has: anonymous ones, named ones too with all_;
        (their names, the bytes their files took)."""
        names, reclaimed = [], 0
        for rec in self.store.all():
            name = rec["name"]
            if name in in_use or not (rec["anonymous"] or all_):
                continue
            try:
                size = self.usage(name)
            except ApiError:
                continue                   # removed meanwhile
            except OSError:
                size = 0                   # its _data is not a directory any more
            with self.lock:
                if self.store.get(name) is None:
                    continue               # removed meanwhile
                try:
                    self._discard(name)
                except ApiError as e:
                    if e.code != "FAILED_PRECONDITION":
                        raise
                    continue               # a mount inside: kept, as docker keeps what fails
            names.append(name)
            reclaimed += size
        return names, reclaimed

    def usage(self, name: str) -> int:
        """Bytes of the volume's files (a file with several links counted once, what a mount
        inside it shows not at all), as docker's `system df` counts them; 0 when its directory
        was removed by hand."""
        try:
            top = os.open(self.path(name), DIR_FLAGS)
        except FileNotFoundError:
            return 0
        try:
            seen, total = set(), 0
            for _, _, entries in _walk(top, skip_mounts=True):
                for _, st in entries:
                    if not stat.S_ISDIR(st.st_mode) and (st.st_dev, st.st_ino) not in seen:
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_size
            return total
        finally:
            os.close(top)

    def cleanup(self) -> None:
        """At start-up: every change a crash cut short finished or undone (see the docstring)."""
        with self.lock:
            rows = {rec["name"] for rec in self.store.all()}
            for entry in os.listdir(self.trash):
                name = entry.rpartition(".")[0]
                if name in rows and not os.path.isdir(os.path.join(self.dir, name)):
                    self.store.remove(name)    # the delete had renamed it: it goes on
                    rows.discard(name)
                _try(_remove_tree, self.trash, entry, what=f"removing {self.trash}/{entry}")
            for name in rows:                  # before the seeds are finished into them
                self._make_dir(name)
            for name in os.listdir(self.dir):
                vol = os.path.join(self.dir, name)
                if name == TRASH or volume_name_error(name) or not os.path.isdir(vol):
                    continue
                if not _try(self._finish_seed, vol, what=f"seeding {vol}"):
                    continue
                if name not in rows:
                    if _is_empty(os.path.join(vol, DATA)):
                        _try(_remove_tree, self.dir, name, what=f"removing {vol}")
                    else:
                        self.store.add(name, {}, False)

    def _make_dir(self, name: str) -> None:
        vol = os.path.join(self.dir, name)
        for path in (vol, os.path.join(vol, DATA)):
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                continue
            os.chmod(path, 0o755)          # mkdir's mode went through the umask
            os.chown(path, 0, 0)

    def _discard(self, name: str) -> None:
        vol = os.path.join(self.dir, name)
        inside = _below(_mount_points(), vol)
        if inside:
            raise ApiError("FAILED_PRECONDITION", f"remove {name}: volume has a mount at "
                                                  f"{inside[0]}: unmount it first")
        gone = os.path.join(self.trash, f"{name}.{os.urandom(8).hex()}")
        try:
            os.rename(vol, gone)
        except FileNotFoundError:
            gone = ""
        self._step("directory renamed")
        self.store.remove(name)
        self._step("row removed")
        self._seed_locks.pop(name, None)
        if gone:
            try:
                _remove_tree(self.trash, os.path.basename(gone))
            except OSError as e:
                # the volume is gone; its files go at the next start
                raise ApiError("INTERNAL", f"remove {name}: its files in {gone} are not all "
                               f"removed: {e.strerror or e}") from None

    # -- seeding -------------------------------------------------------------------------------
    def seed(self, name: str, source_dir: str, root: str | None = None) -> bool:
        """The image's content at a mount point copied into the volume if it is still empty
        (docker copies only then): files, dirs, symlinks, hard links, devices, owners, modes,
        times, xattrs, and the directory's own owner and mode. With root, source_dir is a path
        inside it, its symlinks resolved inside root. Whether anything was copied."""
        vol = os.path.dirname(self.path(name))
        with self.lock:
            lock = self._seed_locks.setdefault(name, threading.Lock())
        with lock:
            self._finish_seed(vol)             # what an earlier one that failed left
            if not _is_empty(os.path.join(vol, DATA)):
                return False
            src = _open_source(source_dir, root)
            if src is None:
                return False
            staging = os.path.join(vol, SEEDING)
            try:
                os.mkdir(staging, 0o700)
                os.mkdir(os.path.join(staging, DATA), 0o700)
                st = os.fstat(src)
                dst = os.open(os.path.join(staging, DATA), DIR_FLAGS)
                try:
                    _copy_tree(src, dst)
                finally:
                    os.close(dst)
                os.utime(staging, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(src)
            self._step("copied")
            os.rename(staging, os.path.join(vol, SEEDED))
            self._step("complete")
            self._finish_seed(vol)
            return True

    def _finish_seed(self, vol: str) -> None:
        """A complete copy's entries moved into _data (what _data has already is kept), then
        the copied directory's owner, mode and xattrs, and the source's times, given to _data;
        an incomplete copy removed."""
        if os.path.lexists(os.path.join(vol, SEEDING)):
            _remove_tree(vol, SEEDING)
        seeded = os.path.join(vol, SEEDED)
        if not os.path.lexists(seeded):
            return
        copy = os.path.join(seeded, DATA)
        if os.path.lexists(copy):          # else: all done but the last rmdir
            done, data = os.open(copy, DIR_FLAGS), os.open(os.path.join(vol, DATA), DIR_FLAGS)
            try:
                for entry in os.listdir(done):
                    if _rename_noreplace(done, entry, data) == errno.EEXIST:
                        _remove_tree(copy, entry)
                    self._step("entry moved")
                _copy_dir_meta(done, data, os.fstat(done),
                               os.stat(seeded, follow_symlinks=False))
            finally:
                os.close(done)
                os.close(data)
            os.rmdir(copy)
        os.rmdir(seeded)


def _open_source(source_dir: str, root: str | None) -> int | None:
    """A dir fd of what to copy, or None when there is no directory there."""
    try:
        if root is None:
            return os.open(source_dir, DIR_FLAGS & ~os.O_NOFOLLOW)
        rootfd = os.open(root, DIR_FLAGS)
        try:                               # a symlink (the last part too) resolved in root
            return syscall.get().openat2(rootfd, source_dir.lstrip("/") or ".",
                                         DIR_FLAGS & ~os.O_NOFOLLOW, 0,
                                         RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
        finally:
            os.close(rootfd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise


def _copy_tree(src: int, dst: int) -> None:
    links: dict = {}                       # (dev, ino) -> where the copy of that inode is
    dirs = [("", os.fstat(src))]
    for sfd, rel, entries in _walk(src):
        dfd = syscall.get().openat2(dst, rel or ".", DIR_FLAGS, 0, WALK)
        try:
            for name, st in entries:
                child = f"{rel}/{name}" if rel else name
                if stat.S_ISDIR(st.st_mode):
                    os.mkdir(name, 0o700, dir_fd=dfd)
                    dirs.append((child, st))
                elif st.st_nlink > 1 and (st.st_dev, st.st_ino) in links:
                    os.link(links[st.st_dev, st.st_ino], name, src_dir_fd=dst, dst_dir_fd=dfd,
                            follow_symlinks=False)
                else:
                    copyup.copy_up(sfd, os.fsencode(name), st, dfd, os.fsencode(name))
                    if st.st_nlink > 1:
                        links[st.st_dev, st.st_ino] = child
        finally:
            os.close(dfd)
    # directories' metadata last: their content is written, their mtimes are final
    for rel, st in reversed(dirs):
        sfd = syscall.get().openat2(src, rel or ".", DIR_FLAGS, 0, WALK)
        dfd = syscall.get().openat2(dst, rel or ".", DIR_FLAGS, 0, WALK)
        try:
            _copy_dir_meta(sfd, dfd, st, st)
        finally:
            os.close(sfd)
            os.close(dfd)


def _copy_dir_meta(sfd: int, dfd: int, st, times) -> None:
    """A directory's owner, mode (in that order: chown clears setgid) and xattrs from sfd of
    lstat st, its times from times."""
    os.fchown(dfd, st.st_uid, st.st_gid)
    os.fchmod(dfd, stat.S_IMODE(st.st_mode))
    layered.copy_xattrs(sfd, dfd)
    os.utime(dfd, ns=(times.st_atime_ns, times.st_mtime_ns))


def _walk(top: int, skip_mounts: bool = False):
    """(a dir fd, its path below top, [(name, lstat)...]) for top and every directory under
    it, each opened from top: one fd open at a time, no symlink followed, no mount crossed
    (EXDEV, or with skip_mounts what is mounted is left out)."""
    stack = [""]
    while stack:
        rel = stack.pop()
        try:
            fd = syscall.get().openat2(top, rel or ".", DIR_FLAGS, 0, WALK)
        except OSError as e:
            if skip_mounts and rel and e.errno == errno.EXDEV:
                continue
            raise
        try:
            entries = [(n, os.stat(n, dir_fd=fd, follow_symlinks=False))
                       for n in sorted(os.listdir(fd))]
            stack.extend(f"{rel}/{n}" if rel else n for n, st in reversed(entries)
                         if stat.S_ISDIR(st.st_mode))
            yield fd, rel, entries
        finally:
            os.close(fd)


def _remove_tree(parent: str, name: str) -> None:
    """parent/name and all under it; the directories are emptied from the deepest up."""
    pfd = os.open(parent, DIR_FLAGS)
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=pfd)
            return
        top = syscall.get().openat2(pfd, name, DIR_FLAGS, 0, WALK)
        try:
            dirs = []
            for fd, rel, entries in _walk(top):
                dirs.append(rel)
                for entry, st in entries:
                    if not stat.S_ISDIR(st.st_mode):
                        os.unlink(entry, dir_fd=fd)
            for rel in reversed(dirs[1:]):     # children were listed after their parents
                head, _, base = rel.rpartition("/")
                fd = syscall.get().openat2(top, head or ".", DIR_FLAGS, 0, WALK)
                try:
                    os.rmdir(base, dir_fd=fd)
                finally:
                    os.close(fd)
        finally:
            os.close(top)
        os.rmdir(name, dir_fd=pfd)
    finally:
        os.close(pfd)


def _rename_noreplace(src_dir: int, name: str, dst_dir: int) -> int:
    """renameat2(RENAME_NOREPLACE): 0, or EEXIST when dst_dir has the name already."""
    b = os.fsencode(name)
    if _libc.renameat2(src_dir, b, dst_dir, b, RENAME_NOREPLACE) == 0:
        return 0
    err = ctypes.get_errno()
    if err == errno.EEXIST:
        return err
    raise OSError(err, f"rename {name}: {os.strerror(err)}")


def _mount_points() -> list[str]:
    """Where something is mounted, in hawserd's mount namespace."""
    with open("/proc/self/mountinfo", "rb") as f:
        return [os.fsdecode(re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]),
                                   line.split(b" ", 5)[4])) for line in f]


def _below(points: list[str], path: str) -> list[str]:
    """The mount points at path or under it."""
    real = os.path.realpath(path)
    return sorted(p for p in points if p == real or p.startswith(real + "/"))


def _try(fn, *args, what: str) -> bool:
    """fn(*args) at start-up: an error logged, not raised (one volume must not stop hawserd)."""
    try:
        fn(*args)
        return True
    except OSError as e:
        logger.warning("volumes: %s: %s (left for the next start)", what, e.strerror or e)
        return False


def _is_empty(path: str) -> bool:
    try:
        with os.scandir(path) as it:
            return next(it, None) is None
    except FileNotFoundError:
        return True
