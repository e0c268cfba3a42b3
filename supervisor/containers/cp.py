"""docker cp: a tar of a path in a container's root filesystem (tar_out, tar_stream), a tar
unpacked into a directory in it (tar_in).

`root` is the container's root directory on the host, which the container owns: any symlink in
it may be hostile (/etc -> /, /data/x -> /etc/shadow). The path asked for is resolved with
openat2(RESOLVE_IN_ROOT), so the kernel reads every absolute link and `..` as inside root;
below it, a tar's tree is walked by dir fds that never follow a symlink (tar_out stores links
as links), and an unpacked entry's parents are resolved RESOLVE_BENEATH the directory it goes
into, so no entry reaches past it, through a link or otherwise."""
import errno
import os
import shutil
import stat
import tarfile

from runtime import syscall
from runtime.syscall.consts import (O_PATH, RESOLVE_BENEATH, RESOLVE_IN_ROOT,
                                    RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS)
from supervisor.archive import compression
from supervisor.archive.tar import (BLOCKDEV, CHAR, DIR, FIFO, LINK, SYMLINK, TarError,
                                    TarReader)
from supervisor.errors import ApiError

IN_ROOT = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
WALK = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS   # below a copied dir
BENEATH = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS                     # below the extraction dir
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC
CHUNK = 256 << 10          # what tar_stream gathers before it gives a piece
# overlayfs' own attributes: not the file's
PRIVATE_XATTRS = ("trusted.overlay.", "user.overlay.")
TYPES = {stat.S_IFREG: tarfile.REGTYPE, stat.S_IFDIR: tarfile.DIRTYPE,
         stat.S_IFLNK: tarfile.SYMTYPE, stat.S_IFCHR: tarfile.CHRTYPE,
         stat.S_IFBLK: tarfile.BLKTYPE, stat.S_IFIFO: tarfile.FIFOTYPE}


def tar_out(root: str, path: str, out) -> None:
    """Write the tar of path (inside root) to out (anything with write())."""
    for piece in tar_stream(root, path):
        out.write(piece)


def tar_stream(root: str, path: str):
    """The tar of path inside root, in pieces of bytes. The path is resolved now (its errors
    are raised by this call); the tar is read as the pieces are asked for. Its top entry is
    named like path's last component; "/" and "DIR/." give what the directory holds."""
    clean = _clean(path)
    content = clean == "/" or path.endswith("/.")
    rootfd = os.open(root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if content or path.endswith("/"):     # the directory a trailing / names, links followed
            fd = _resolve(rootfd, clean, DIR_FLAGS, path)
            top = None if content else (os.path.basename(clean), os.fstat(fd))
        else:                                 # the entry itself: a symlink is one
            parent = _resolve(rootfd, os.path.dirname(clean), O_PATH | os.O_DIRECTORY, path)
            try:
                base = os.path.basename(clean)
                st = _lstat(parent, base, path)
                fd = os.open(base, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent) \
                    if stat.S_ISDIR(st.st_mode) else os.dup(parent)
                top = (base, st)
            finally:
                os.close(parent)
    finally:
        os.close(rootfd)
    return _pieces(_Writer(fd, top))


def tar_in(root: str, path: str, stream) -> None:
    """Unpack a tar (plain, gzip, zstd, xz or bzip2: stream has read() or readinto()) into the
    existing directory path inside root. Owners are kept when hawserd runs as root; modes,
    times and xattrs always. An entry that would land outside path is refused: the ones before
    it stay, nothing is ever written outside."""
    rootfd = os.open(root, O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dest = _resolve(rootfd, _clean(path), O_PATH | os.O_DIRECTORY, path)
    finally:
        os.close(rootfd)
    try:
        reader = TarReader(compression.open_stream(stream, compression.ARCHIVE))
        unpack = _Unpack(dest, reader, os.geteuid() == 0)
        for entry in reader:
            unpack.entry(entry)
        unpack.finish()
    except (TarError, compression.CompressionError) as e:
        raise ApiError("INVALID_ARGUMENT", f"copy into {path}: {e}") from None
    finally:
        os.close(dest)


def _pieces(writer):
    try:
        yield from writer.pieces()
    finally:
        writer.close()


# -- out ----------------------------------------------------------------------------------------
class _Writer:
    def __init__(self, fd: int, top):
        self.fd, self.top = fd, top       # top: (name, lstat) or None for the content only
        self.links: dict = {}             # (dev, ino) -> the entry name that has it first
        self.buf = bytearray()

    def close(self) -> None:
        os.close(self.fd)

    def pieces(self):
        prefix = ""
        if self.top is not None:
            name, st = self.top
            if not stat.S_ISDIR(st.st_mode):
                yield from self._entry(self.fd, name, name, st)
                yield from self._end()
                return
            yield from self._entry(self.fd, "", name, st)
            prefix = name + "/"
        stack = [""]
        while stack:                       # one dir fd open at a time, however deep the tree
            rel = stack.pop()
            dfd = os.dup(self.fd) if not rel else \
                syscall.get().openat2(self.fd, rel, DIR_FLAGS, 0, WALK)
            try:
                subdirs = []
                for name in sorted(os.listdir(dfd)):
                    st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                    child = rel + "/" + name if rel else name
                    yield from self._entry(dfd, name, prefix + child, st)
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(child)
            finally:
                os.close(dfd)
            stack.extend(reversed(subdirs))
        yield from self._end()

    def _entry(self, dfd: int, name: str, arcname: str, st):
        kind = TYPES.get(stat.S_IFMT(st.st_mode))
        if kind is None:
            return                         # a socket: tar has no such entry (nor docker's)
        info = tarfile.TarInfo(arcname + ("/" if kind == tarfile.DIRTYPE else ""))
        info.type, info.mode = kind, stat.S_IMODE(st.st_mode)
        info.uid, info.gid, info.mtime = st.st_uid, st.st_gid, st.st_mtime
        if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        key = (st.st_dev, st.st_ino)
        if kind != tarfile.DIRTYPE and st.st_nlink > 1:
            if key in self.links:
                info.type, info.linkname = tarfile.LNKTYPE, self.links[key]
                kind = tarfile.LNKTYPE
            else:
                self.links[key] = arcname
        if kind == tarfile.SYMTYPE:
            info.linkname = os.readlink(name, dir_fd=dfd)
        # by the fd, or by a path whose last link is not followed: never a file a link names
        info.pax_headers = _xattrs(f"/proc/self/fd/{dfd}/{name}" if name else dfd)
        if kind != tarfile.REGTYPE:
            yield from self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            return
        # O_NONBLOCK: a file swapped for a fifo after the lstat cannot hang the copy
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                     dir_fd=dfd) if name else os.dup(dfd)
        try:
            now = os.fstat(fd)
            if (now.st_dev, now.st_ino) != key or not stat.S_ISREG(now.st_mode):
                raise ApiError("ABORTED", f"{arcname} changed while it was copied")
            info.size = st.st_size
            yield from self._put(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))
            left = st.st_size
            while left:
                data = os.read(fd, min(left, 1 << 20))
                if not data:               # the file shrank: the tar keeps the size it said
                    data = bytes(min(left, 1 << 20))
                left -= len(data)
                yield from self._put(data)
            yield from self._put(bytes(-st.st_size % tarfile.BLOCKSIZE))
        finally:
            os.close(fd)

    def _put(self, data: bytes):
        self.buf += data
        if len(self.buf) >= CHUNK:
            yield bytes(self.buf)
            self.buf.clear()

    def _end(self):
        yield from self._put(bytes(2 * tarfile.BLOCKSIZE))
        if self.buf:
            yield bytes(self.buf)
            self.buf.clear()


def _xattrs(target) -> dict:
    kw = {} if isinstance(target, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(target, **kw)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.EPERM):
            return {}
        raise
    out = {}
    for key in names:
        if not key.startswith(PRIVATE_XATTRS):
            value = os.getxattr(target, key, **kw)
            out["SCHILY.xattr." + key] = value.decode("utf-8", "surrogateescape")
    return out


# -- in -----------------------------------------------------------------------------------------
class _Unpack:
    def __init__(self, dest: int, reader, as_root: bool):
        self.dest, self.reader, self.as_root = dest, reader, as_root
        self.dir_times: list = []          # (relative path, atime, mtime): set once all is in

    def entry(self, e) -> None:
        parts = _entry_parts(e.name, e, "name")
        if not parts:
            return                         # "./": the destination itself stays as it is
        try:
            parent = self._parent(parts[:-1])
            try:
                self._make(e, parent, parts)
            finally:
                os.close(parent)
        except OSError as err:
            if err.errno == errno.EXDEV:
                raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: a symlink on its "
                               "way leads out of the directory it is copied into") from None
            raise ApiError("INVALID_ARGUMENT",
                           f"tar entry {e.label()!r}: {err.strerror or err}") from None

    def _parent(self, dparts: list[bytes]) -> int:
        """An O_PATH fd of the entry's parent below dest (links inside dest followed, none
        out of it); missing directories are made."""
        sc = syscall.get()
        flags = O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
        try:
            return sc.openat2(self.dest, b"/".join(dparts) or b".", flags, 0, BENEATH)
        except FileNotFoundError:
            pass
        fd = os.dup(self.dest)
        try:
            for i, name in enumerate(dparts):
                try:
                    nxt = sc.openat2(self.dest, b"/".join(dparts[:i + 1]), flags, 0, BENEATH)
                except FileNotFoundError:
                    os.mkdir(name, 0o755, dir_fd=fd)
                    nxt = sc.openat2(fd, name, flags, 0, WALK)
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _make(self, e, parent: int, parts: list[bytes]) -> None:
        base = parts[-1]
        try:
            old = os.stat(base, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            old = None
        if old is not None and not (e.type == DIR and stat.S_ISDIR(old.st_mode)):
            # a tar's entry replaces what is there (a symlink itself, never what it names)
            if stat.S_ISDIR(old.st_mode):
                shutil.rmtree(base, dir_fd=parent)
            else:
                os.unlink(base, dir_fd=parent)
        if e.type == DIR:
            if old is None:
                os.mkdir(base, 0o700, dir_fd=parent)
            fd = os.open(base, DIR_FLAGS | os.O_NOFOLLOW, dir_fd=parent)
            try:
                self._meta_fd(fd, e)
            finally:
                os.close(fd)
            self.dir_times.append((b"/".join(parts), e.atime_ns, e.mtime_ns))
        elif e.is_regular:
            fd = os.open(base, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                         os.O_CLOEXEC, 0o600, dir_fd=parent)
            try:
                for piece in self.reader.chunks(e):
                    while piece:
                        piece = piece[os.write(fd, piece):]
                self._meta_fd(fd, e)
                os.utime(fd, ns=(e.atime_ns, e.mtime_ns))
            finally:
                os.close(fd)
        elif e.type == LINK:
            self._hardlink(e, parent, base)
        else:
            if e.type == SYMLINK:
                os.symlink(e.linkname, base, dir_fd=parent)
            elif e.type == FIFO:
                os.mkfifo(base, 0o600, dir_fd=parent)
            elif e.type in (CHAR, BLOCKDEV):
                kind = stat.S_IFCHR if e.type == CHAR else stat.S_IFBLK
                os.mknod(base, kind | 0o600, os.makedev(e.devmajor, e.devminor), dir_fd=parent)
            else:
                raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: unsupported "
                               f"entry type {chr(e.type)!r}")
            if self.as_root:
                os.chown(base, e.uid, e.gid, dir_fd=parent, follow_symlinks=False)
            if e.type != SYMLINK:
                os.chmod(base, e.mode, dir_fd=parent, follow_symlinks=False)
            self._set_xattrs(b"/proc/self/fd/%d/%s" % (parent, base), e)
            os.utime(base, ns=(e.atime_ns, e.mtime_ns), dir_fd=parent, follow_symlinks=False)

    def _hardlink(self, e, parent: int, base: bytes) -> None:
        target = _entry_parts(e.linkname, e, "link target")
        if not target:
            raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: a hard link to "
                           "the directory copied into")
        tparent = self._existing(target[:-1])
        try:
            st = os.stat(target[-1], dir_fd=tparent, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: a hard link to "
                               "a directory")
            os.link(target[-1], base, src_dir_fd=tparent, dst_dir_fd=parent,
                    follow_symlinks=False)
        finally:
            os.close(tparent)

    def _existing(self, dparts: list[bytes]) -> int:
        return syscall.get().openat2(self.dest, b"/".join(dparts) or b".",
                                     O_PATH | os.O_DIRECTORY | os.O_CLOEXEC, 0, BENEATH)

    # owner before mode (chown clears setuid bits), xattrs after the owner (chown clears
    # security.capability)
    def _meta_fd(self, fd: int, e) -> None:
        if self.as_root:
            os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        self._set_xattrs(fd, e)

    def _set_xattrs(self, target, e) -> None:
        kw = {} if isinstance(target, int) else {"follow_symlinks": False}
        for key, value in e.xattrs.items():
            if key.decode(errors="replace").startswith(PRIVATE_XATTRS):
                continue
            try:
                os.setxattr(target, key, value, **kw)
            except OSError as err:
                # an attribute this file system or file type refuses is dropped, as docker does
                if err.errno not in (errno.ENOTSUP, errno.EPERM):
                    raise

    def finish(self) -> None:
        """Directories' times last: every entry made in one changed its mtime."""
        for rel, atime, mtime in reversed(self.dir_times):
            try:
                fd = syscall.get().openat2(self.dest, rel, DIR_FLAGS, 0, WALK)
            except OSError:
                continue                   # replaced or removed by a later entry
            try:
                os.utime(fd, ns=(atime, mtime))
            finally:
                os.close(fd)


# -- paths --------------------------------------------------------------------------------------
def _entry_parts(name: bytes, e, what: str) -> list[bytes]:
    if name.startswith(b"/"):
        raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: its {what} is absolute")
    if b"\0" in name:
        raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: a NUL byte in its {what}")
    parts = [p for p in name.split(b"/") if p and p != b"."]
    if b".." in parts:
        raise ApiError("INVALID_ARGUMENT", f"tar entry {e.label()!r}: its {what} has a '..' "
                       "(it would leave the directory it is copied into)")
    return parts


def _clean(path: str) -> str:
    """The path made absolute and cleaned as docker cleans it (lexically)."""
    if not path:
        raise ApiError("INVALID_ARGUMENT", "no path given in the container")
    clean = os.path.normpath("/" + path)
    return "/" + clean.lstrip("/")


def _resolve(rootfd: int, clean: str, flags: int, asked: str) -> int:
    try:
        return syscall.get().openat2(rootfd, clean.lstrip("/") or ".", flags | os.O_CLOEXEC, 0,
                                     IN_ROOT)
    except OSError as e:
        raise _path_error(e, asked) from None


def _lstat(parent: int, base: str, asked: str):
    try:
        return os.stat(base, dir_fd=parent, follow_symlinks=False)
    except OSError as e:
        raise _path_error(e, asked) from None


def _path_error(e: OSError, asked: str) -> ApiError:
    if e.errno == errno.ENOENT:
        return ApiError("NOT_FOUND", f"no such file or directory: {asked} in the container")
    if e.errno == errno.ENOTDIR:
        return ApiError("INVALID_ARGUMENT", f"not a directory: {asked} in the container")
    return ApiError("FAILED_PRECONDITION", f"{asked} in the container: {e.strerror or e}")
