"""The entries of a layer tar made in its directory, one by one, in overlayfs' terms, each
with *at() calls relative to its parent's dir fd (apply.py is the public side: the stream, the
emptying of dest on a failure). A parent's fd comes from a walk from dest's root that opens
every component with O_NOFOLLOW; the fds of the last directories used are kept, as tars list
a directory's entries together."""
import errno
import os
import shutil
import stat

from supervisor.snapshots import copyup, layered
from supervisor.snapshots.layered import DIR_FLAGS, FILE_FLAGS, OPAQUE_XATTR, PRIVATE_XATTRS
from supervisor.snapshots.layerstream import LayerError

WHITEOUT = b".wh."
OPAQUE_MARKER = b".wh..wh..opq"
AUFS_META = b".wh..wh."
# open dir fds kept for the next entries (tars list a dir's entries together); unpacks run in
# threads of one process: they share its fd limit (1024, soft, as hawserd is started). The fds
# of a walk past a full cache are closed as the walk goes on, or once the entry is made: a path
# 2000 directories deep costs no more fds than a shallow one
DIR_CACHE = 64
DIR, LINK, SYMLINK, FIFO = ord("5"), ord("1"), ord("2"), ord("6")
FILE_TYPES = frozenset(b"07")
# what a layer can hold (the reader made v7's "\0" a "0" or "5", a GNU dumpdir a "5")
SUPPORTED = frozenset(b"01234567")
DEVICES = {ord("3"): stat.S_IFCHR, ord("4"): stat.S_IFBLK}


class MissingLinkTarget(LayerError):
    """A hard link to a file that is neither earlier in the layer nor in the lowers given."""


def _parts(name: bytes, entry, what: str = "path") -> list[bytes]:
    if name.startswith(b"/"):
        raise LayerError(f"layer entry {entry.label()!r}: {what} {_text(name)!r} is absolute")
    parts = [p for p in name.split(b"/") if p and p != b"."]
    if b".." in parts:
        raise LayerError(f"layer entry {entry.label()!r}: {what} {_text(name)!r} has a '..' "
                         "component (it would leave the layer)")
    if b"\0" in name:
        raise LayerError(f"layer entry {entry.label()!r}: NUL byte in its {what}")
    return parts


def _text(b: bytes) -> str:
    return b.decode(errors="backslashreplace")


class Extraction:
    def __init__(self, root: int, lowers):
        self.root = root
        self.lowers = list(lowers)
        self.layer_fds = None            # [root] + the lowers' fds, opened on first need
        self.dirs = {b"": root}          # path -> an open fd of that directory in dest
        self.transient: list[int] = []   # fds the cache had no room for: closed between entries
        self.dir_times = {}              # path -> (atime, mtime) ns, set once all is written
        self.size = 0

    def close(self) -> None:
        self._release()
        self._evict()
        for fd in (self.layer_fds or [None])[1:]:
            os.close(fd)
        self.layer_fds = None

    def apply(self, e, reader) -> None:
        if e.type not in SUPPORTED:
            raise LayerError(f"layer entry {e.label()!r}: unsupported tar entry type "
                             f"{chr(e.type)!r}")
        parts = _parts(e.name, e)
        if self.transient or len(self.dirs) >= DIR_CACHE:
            self._release()        # between entries: no fd is in use then
        try:
            self._apply(e, parts, reader)
        except layered.ThroughSymlink as err:
            raise LayerError(f"layer entry {e.label()!r}: {_text(err.path)!r} on its way is a "
                             "symlink (a layer cannot write through one)") from None
        except OSError as err:
            raise LayerError(f"layer entry {e.label()!r}: {err.strerror or err}") from None
        except (ValueError, OverflowError) as err:
            raise LayerError(f"layer entry {e.label()!r}: {err}") from None

    def _apply(self, e, parts, reader) -> None:
        if not parts:
            if e.type != DIR:
                raise LayerError(f"layer entry {e.label()!r}: names the root, not a directory")
            self._meta_fd(self.root, e)
            self.dir_times[b""] = (e.atime_ns, e.mtime_ns)
            return
        base = parts[-1]
        if parts[0].startswith(AUFS_META) and parts != [OPAQUE_MARKER]:
            return                 # AUFS' own metadata (.wh..wh.plnk/, .wh..wh.aufs): no content
        if base.startswith(WHITEOUT):
            return self._whiteout(e, parts)
        parent = self._dir_fd(parts[:-1], e)
        if e.type == DIR:
            self._dir(e, parts, parent)
        elif e.type in FILE_TYPES:
            fd = self._create(parent, parts, lambda: os.open(base, FILE_FLAGS, 0o600,
                                                                 dir_fd=parent))
            try:
                for piece in reader.chunks(e):
                    while piece:
                        piece = piece[os.write(fd, piece):]
                self.size += e.size
                self._meta_fd(fd, e)
                os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
            finally:
                os.close(fd)
        elif e.type == LINK:
            self._hardlink(e, parts, parent)
        else:
            if e.type == SYMLINK:
                if b"\0" in e.linkname or not e.linkname:
                    raise LayerError(f"layer entry {e.label()!r}: empty or NUL symlink target")
                make = lambda: os.symlink(e.linkname, base, dir_fd=parent)  # noqa: E731
            elif e.type == FIFO:
                make = lambda: os.mkfifo(base, 0o600, dir_fd=parent)  # noqa: E731
            else:
                dev = os.makedev(e.devmajor, e.devminor)
                make = lambda: os.mknod(base, DEVICES[e.type] | 0o600, dev,  # noqa: E731
                                        dir_fd=parent)
            self._create(parent, parts, make)
            self._meta_at(parent, base, e)

    # -- metadata: owner before mode (chown clears setuid bits), xattrs after the owner
    # (chown clears security.capability)
    def _meta_fd(self, fd: int, e) -> None:
        os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        self._xattrs(fd, e)

    def _meta_at(self, parent: int, base: bytes, e) -> None:
        os.chown(base, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        if e.type != SYMLINK:            # a symlink's mode is always 0777
            os.chmod(base, e.mode, dir_fd=parent, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(b"/proc/self/fd/%d/%s" % (parent, base), e)
        os.utime(base, ns=(e.atime_ns, e.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _xattrs(self, target, e) -> None:
        kw = {} if isinstance(target, int) else {"follow_symlinks": False}
        for key, value in e.xattrs.items():
            if key.startswith(PRIVATE_XATTRS):
                continue
            try:
                os.setxattr(target, key, value, **kw)
            except OSError as err:
                # as containerd: an attribute this file system or file type refuses is dropped
                if err.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    # -- entries --------------------------------------------------------------------------------
    def _dir(self, e, parts, parent) -> None:
        key, base = b"/".join(parts), parts[-1]
        try:
            os.mkdir(base, 0o700, dir_fd=parent)
            fd = None
        except FileExistsError:
            fd = self.dirs.get(key)
            if fd is None:
                st = os.stat(base, dir_fd=parent, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    self._replace_with_dir(parent, parts, st)
        if fd is None:
            fd = self._cache(key, os.open(base, DIR_FLAGS, dir_fd=parent))
        self._meta_fd(fd, e)
        self.dir_times[key] = (e.atime_ns, e.mtime_ns)

    def _replace_with_dir(self, parent, parts, st) -> None:
        self._remove(parent, parts)
        os.mkdir(parts[-1], 0o755, dir_fd=parent)
        if layered.is_whiteout(st):
            # deleted below, then made again in this layer: nothing of the old one shows
            fd = os.open(parts[-1], DIR_FLAGS, dir_fd=parent)
            try:
                os.setxattr(fd, OPAQUE_XATTR, b"y")
            finally:
                os.close(fd)

    def _whiteout(self, e, parts) -> None:
        base = parts[-1]
        if base == OPAQUE_MARKER:
            os.setxattr(self._dir_fd(parts[:-1], e), OPAQUE_XATTR, b"y")
            return
        if base.startswith(AUFS_META):
            return
        name = base[len(WHITEOUT):]
        if name in (b"", b".", b".."):      # ".wh..." would name the parent's parent
            raise LayerError(f"layer entry {e.label()!r}: a whiteout of {_text(name)!r} is no "
                             "whiteout of a name")
        parent = self._dir_fd(parts[:-1], e)
        try:
            os.mknod(name, stat.S_IFCHR, 0, dir_fd=parent)
        except FileExistsError:
            # this layer has the name itself: a whiteout hides only what is below, so a dir of
            # this layer becomes opaque and anything else already hides the lower one
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                os.setxattr(self._dir_fd(parts[:-1] + [name], e), OPAQUE_XATTR, b"y")

    def _hardlink(self, e, parts, parent) -> None:
        target = _parts(e.linkname, e, "link target")
        if not target:
            raise LayerError(f"layer entry {e.label()!r}: a hard link to the root")
        if target[:len(parts)] == parts:      # the link would first remove its own target
            raise LayerError(f"layer entry {e.label()!r}: a hard link to "
                             f"{_text(e.linkname)!r}, inside what it replaces")
        found = layered.lookup(self._layers(), target)
        if found is None:
            raise MissingLinkTarget(
                f"layer entry {e.label()!r}: hard link to {_text(e.linkname)!r}, which is "
                f"neither earlier in the layer nor in {'its lowers' if self.lowers else 'it'}")
        index, src_dir, name, st = found
        try:
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {e.label()!r}: a hard link to a directory")
            src_parent = self._dir_fd(target[:-1], e)
            if index:            # in a lower layer: copied up first, as overlayfs would
                self.size += copyup.copy_up(src_dir, name, st, src_parent, target[-1])
        finally:
            os.close(src_dir)
        self._create(parent, parts, lambda: os.link(
            target[-1], parts[-1], src_dir_fd=src_parent, dst_dir_fd=parent,
            follow_symlinks=False))
        # the link's header speaks for the inode it shares (its owner and mode), as in
        # containerd's and docker's appliers; its times do not
        os.chown(parts[-1], e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
        if not stat.S_ISLNK(st.st_mode):
            os.chmod(parts[-1], e.mode, dir_fd=parent, follow_symlinks=False)

    def _create(self, parent: int, parts, make):
        """make() in parent; what an earlier entry left at that name goes first."""
        try:
            return make()
        except FileExistsError:
            self._remove(parent, parts)
            return make()

    def _remove(self, parent: int, parts) -> None:
        key, base = b"/".join(parts), parts[-1]
        if stat.S_ISDIR(os.stat(base, dir_fd=parent, follow_symlinks=False).st_mode):
            self._forget(key)
            shutil.rmtree(base, dir_fd=parent)
        else:
            os.unlink(base, dir_fd=parent)

    def _forget(self, key: bytes) -> None:
        below = key + b"/"
        for k in [k for k in self.dirs if k == key or k.startswith(below)]:
            os.close(self.dirs.pop(k))
        for k in [k for k in self.dir_times if k == key or k.startswith(below)]:
            del self.dir_times[k]

    # -- directories ------------------------------------------------------------------------------
    def _layers(self) -> list[int]:
        if self.layer_fds is None:
            self.layer_fds = [self.root]
            for path in self.lowers:
                self.layer_fds.append(os.open(path, os.O_RDONLY | os.O_DIRECTORY |
                                              os.O_CLOEXEC))
        return self.layer_fds

    def _release(self) -> None:
        for fd in self.transient:
            os.close(fd)
        self.transient = []
        if len(self.dirs) >= DIR_CACHE:
            self._evict()

    def _evict(self) -> None:
        for key, fd in self.dirs.items():
            if key:
                os.close(fd)
        self.dirs = {b"": self.root}

    def _cache(self, key: bytes, fd: int) -> int:
        """fd, kept for later entries while the cache has room, else until this one is made
        (an fd a caller holds is never closed under it in the middle of an entry)."""
        if len(self.dirs) < DIR_CACHE:
            self.dirs[key] = fd
        else:
            self.transient.append(fd)
        return fd

    def _dir_fd(self, dparts: list[bytes], e) -> int:
        """The fd of the directory dparts in dest; missing parents are made (as containerd's
        mkparent: with the metadata of the directory below when there is one)."""
        key = b"/".join(dparts)
        fd = self.dirs.get(key)
        if fd is not None:
            return fd
        i = len(dparts) - 1
        while i and b"/".join(dparts[:i]) not in self.dirs:
            i -= 1
        fd = self.dirs[b"/".join(dparts[:i])]
        for j in range(i, len(dparts)):
            child = self._open_dir(fd, dparts[:j + 1], e)
            if j > i and fd in self.transient:    # opened by this walk, passed, uncached
                self.transient.remove(fd)
                os.close(fd)
            fd = child
        return fd

    def _open_dir(self, parent: int, dparts: list[bytes], e) -> int:
        key, name = b"/".join(dparts), dparts[-1]
        try:
            return self._cache(key, os.open(name, DIR_FLAGS, dir_fd=parent))
        except FileNotFoundError:
            pass
        except OSError as err:
            if err.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                raise layered.ThroughSymlink(key) from None
            if not layered.is_whiteout(st):
                raise LayerError(f"layer entry {e.label()!r}: {_text(key)!r} on its way is "
                                 "not a directory") from None
            self._replace_with_dir(parent, dparts, st)
            return self._cache(key, os.open(name, DIR_FLAGS, dir_fd=parent))
        try:
            fd, times = copyup.make_parent(self._layers() if self.lowers else [], dparts,
                                           parent)
        except copyup.NotADirectoryBelow:
            raise LayerError(f"layer entry {e.label()!r}: {_text(key)!r} on its way is not a "
                             "directory in the layers below") from None
        if times:
            self.dir_times[key] = times
        return self._cache(key, fd)

    def set_dir_times(self) -> None:
        """Directories' times last: every entry made inside one changed its mtime."""
        for key in sorted(self.dir_times):
            self._release()
            atime, mtime = self.dir_times[key]
            if not key:
                os.utime(self.root, ns=(atime, mtime))
                continue
            parts = key.split(b"/")
            parent = self._dir_fd(parts[:-1], _Named(key))
            os.utime(parts[-1], ns=(atime, mtime), dir_fd=parent, follow_symlinks=False)


class _Named:
    """What error messages name when no tar entry is at hand."""

    def __init__(self, name: bytes):
        self.name = name

    def label(self) -> str:
        return _text(self.name)
