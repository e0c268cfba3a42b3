"""A writable snapshot's changes against the layers below it, from its upper directory alone
(as docker's overlay2 driver does, no mount needed): `changes()` lists them as `docker diff`
does, `write_layer()` makes them an OCI layer tar (overlay whiteouts back to `.wh.` entries).

The upper dir may belong to a running container: it is walked through dir fds opened with
O_NOFOLLOW (a symlink swapped in for a directory is never followed out of the tree), and an
entry that goes away while it is walked is left out. The walk assumes what hawser mounts:
overlayfs without redirect_dir or metacopy (an upper dir that has their xattrs is refused: its
files alone would not say what the container sees)."""
import errno
import hashlib
import os
import stat
import tarfile

from supervisor.snapshots.layered import DIR_FLAGS, PRIVATE_XATTRS, is_opaque, is_whiteout, \
    merged_names

OPAQUE_MARKER = ".wh..wh..opq"
UNSUPPORTED_XATTRS = ("trusted.overlay.redirect", "trusted.overlay.metacopy")
COPY_CHUNK = 1 << 20


class DiffError(Exception):
    pass


class _Node:
    __slots__ = ("path", "name", "st", "below", "parent_fd", "fd", "opaque", "below_stack",
                 "hidden")

    def proc_path(self) -> str:
        """A path for the *xattr calls that have no dir_fd form; only the last component
        is looked up without following, the rest is the open dir fd itself."""
        return f"/proc/self/fd/{self.parent_fd}/{self.name}"


def _walk(upper: str, lowers):
    """The upper dir's entries in pre-order, names sorted, each with the lstat of what the
    lower layers show at its path (None when nothing). A directory's node has its fd open
    while it is yielded."""
    roots = [os.open(p, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC) for p in lowers]
    try:
        top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            yield from _children(top, roots, "", False)
        finally:
            os.close(top)
    finally:
        for fd in roots:
            os.close(fd)


def _children(ufd: int, stack: list[int], prefix: str, hidden: bool):
    """hidden: an opaque dir above hides the lowers here; they are looked at only to tell a
    re-made path (C) from a new one (A) and to list what they lost (D)."""
    for name in sorted(os.listdir(ufd)):
        try:
            st = os.stat(name, dir_fd=ufd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        node = _Node()
        node.path, node.name, node.st, node.parent_fd = f"{prefix}/{name}", name, st, ufd
        node.fd, node.opaque, node.hidden = -1, False, hidden
        is_dir = stat.S_ISDIR(st.st_mode)
        node.below, node.below_stack = _below(stack, name, is_dir)
        try:
            if not is_dir:
                yield node
                continue
            try:
                node.fd = os.open(name, DIR_FLAGS, dir_fd=ufd)
            except OSError as e:
                if e.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
                    continue           # replaced while we looked
                raise
            _refuse_unsupported(node.fd, node.path)
            node.opaque = is_opaque(node.fd)
            yield node
            yield from _children(node.fd, node.below_stack, node.path, hidden or node.opaque)
        finally:
            if node.fd >= 0:
                os.close(node.fd)
            for fd in node.below_stack:
                os.close(fd)


def _below(stack: list[int], name: str, want_dirs: bool):
    """(lstat of what the lowers show at name or None, fds of the name's merged directory in
    each lower that contributes to it when want_dirs)."""
    first, dirs = None, []
    for fd in stack:
        try:
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError:
            continue
        if first is None:
            if is_whiteout(st):
                break
            first = st
        if not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(first.st_mode) or not want_dirs:
            break
        child = os.open(name, DIR_FLAGS, dir_fd=fd)
        dirs.append(child)
        if is_opaque(child):
            break
    return first, dirs


def _refuse_unsupported(fd: int, path: str) -> None:
    for name in UNSUPPORTED_XATTRS:
        try:
            os.getxattr(fd, name)
        except OSError:
            continue
        raise DiffError(f"{path}: has {name} (an overlay mounted with redirect_dir or "
                        "metacopy): its upper directory alone does not say what changed")


# -- docker diff ------------------------------------------------------------------------------------
def changes(upper: str, lowers) -> list[tuple[str, str]]:
    """[(kind, path)] as `docker diff`: A added, C changed, D deleted; sorted by path. A
    directory that is there below is C when its own metadata changed, when it is opaque (what
    it hid below is D) or when anything inside it changed."""
    found: dict[str, str] = {}
    unchanged_dirs: set[str] = set()
    for node in _walk(upper, lowers):
        st, below = node.st, node.below
        if is_whiteout(st):
            if below is not None:
                found[node.path] = "D"
        elif below is None:
            found[node.path] = "A"
        elif not stat.S_ISDIR(st.st_mode) or not stat.S_ISDIR(below.st_mode):
            found[node.path] = "C"
        elif node.opaque or node.hidden:
            found[node.path] = "C"
            shown = set(os.listdir(node.fd))
            for name in merged_names(node.below_stack):
                if name not in shown:
                    found[f"{node.path}/{name}"] = "D"
        elif _same_meta(st, below):
            unchanged_dirs.add(node.path)
        else:
            found[node.path] = "C"
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent in unchanged_dirs:
            unchanged_dirs.discard(parent)
            found[parent] = "C"
            parent = parent.rpartition("/")[0]
    return sorted(((kind, path) for path, kind in found.items()), key=lambda c: c[1])


def _same_meta(a, b) -> bool:
    return (a.st_mode, a.st_uid, a.st_gid, a.st_mtime_ns) == \
        (b.st_mode, b.st_uid, b.st_gid, b.st_mtime_ns)


# -- the layer tar ----------------------------------------------------------------------------------
class _Hashing:
    """The tar's bytes to out, hashed on the way: the layer's diff id."""

    def __init__(self, out):
        self.out, self.sha, self.offset = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.sha.update(data)
        self.out.write(data)
        self.offset += len(data)
        return len(data)

    def tell(self) -> int:
        return self.offset


def write_layer(upper: str, lowers, out) -> str:
    """The upper dir as an uncompressed OCI layer tar written to out (an object with
    write()); its diff id. Mtimes are whole seconds, as in docker's and containerd's layers."""
    sink = _Hashing(out)
    links: dict[tuple[int, int], str] = {}
    with tarfile.open(fileobj=sink, mode="w", format=tarfile.PAX_FORMAT,
                      copybufsize=COPY_CHUNK) as tar:
        for node in _walk(upper, lowers):
            try:
                _add(tar, node, links)
            except FileNotFoundError:
                continue            # gone while we looked: a running container
    return "sha256:" + sink.sha.hexdigest()


def _add(tar: tarfile.TarFile, node: _Node, links: dict) -> None:
    st, path = node.st, node.path.lstrip("/")
    if is_whiteout(st):
        if node.below is not None:
            tar.addfile(_header(path.rpartition("/")[0], ".wh." + node.name, st,
                                tarfile.REGTYPE, mode=0))
        return
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        info = _header(path, "", st, tarfile.DIRTYPE)
        _xattrs(info, node.fd)
        tar.addfile(info)
        if node.opaque and node.below is not None:
            tar.addfile(_header(path, OPAQUE_MARKER, st, tarfile.REGTYPE, mode=0))
    elif stat.S_ISREG(mode):
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            info = _header(path, "", st, tarfile.LNKTYPE)
            info.linkname = links[key]
            tar.addfile(info)
            return
        fd = os.open(node.name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                     dir_fd=node.parent_fd)
        with os.fdopen(fd, "rb", buffering=0) as f:
            st = os.fstat(fd)         # the file as it is now, not as it was listed
            _refuse_unsupported(fd, node.path)
            info = _header(path, "", st, tarfile.REGTYPE)
            info.size = st.st_size
            _xattrs(info, fd)
            try:
                tar.addfile(info, f)
            except OSError as e:
                raise DiffError(f"{node.path}: {e} (changed while it was read)") from None
        if st.st_nlink > 1:
            links[key] = path
    elif stat.S_ISLNK(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
        kind = tarfile.SYMTYPE if stat.S_ISLNK(mode) else tarfile.CHRTYPE if stat.S_ISCHR(mode) \
            else tarfile.BLKTYPE if stat.S_ISBLK(mode) else tarfile.FIFOTYPE
        info = _header(path, "", st, kind)
        if kind == tarfile.SYMTYPE:
            info.linkname = os.readlink(node.name, dir_fd=node.parent_fd)
        elif kind != tarfile.FIFOTYPE:
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        _xattrs(info, node.proc_path())
        tar.addfile(info)
    # sockets are not in layers (docker leaves them out too)


def _header(dirpath: str, name: str, st, kind, mode: int | None = None) -> tarfile.TarInfo:
    path = f"{dirpath}/{name}" if dirpath and name else dirpath or name
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = stat.S_IMODE(st.st_mode) if mode is None else mode
    info.uid, info.gid = (st.st_uid, st.st_gid) if mode is None else (0, 0)
    info.uname = info.gname = ""
    info.mtime = st.st_mtime_ns // 1_000_000_000
    return info


def _xattrs(info: tarfile.TarInfo, target) -> None:
    kw = {} if isinstance(target, int) else {"follow_symlinks": False}
    try:
        names = os.listxattr(target, **kw)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENOENT):
            return
        raise
    for name in sorted(names):
        if name.encode().startswith(PRIVATE_XATTRS):
            continue
        try:
            value = os.getxattr(target, name, **kw)
        except OSError as e:
            if e.errno == errno.ENODATA:
                continue
            raise
        info.pax_headers["SCHILY.xattr." + name] = value.decode("utf-8", "surrogateescape")
