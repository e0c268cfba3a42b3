"""Layer tars built with tarfile for the snapshot, apply and diff tests, and a merged overlay
mount of snapshot dirs that is always unmounted again."""
from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import os
import tarfile
from types import SimpleNamespace

import zstandard

from shim import mount as shim_mount

MTIME = 1_600_000_000


def _info(name: str, kind: bytes, mode: int, uid: int, gid: int, mtime, xattrs) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.uid, info.gid, info.mtime = kind, mode, uid, gid, mtime
    for key, value in (xattrs or {}).items():
        info.pax_headers["SCHILY.xattr." + key] = (
            value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value)
    return info


def file(name, data: bytes = b"", mode=0o644, uid=0, gid=0, mtime=MTIME, xattrs=None):
    info = _info(name, tarfile.REGTYPE, mode, uid, gid, mtime, xattrs)
    info.size = len(data)
    return info, data


def dir(name, mode=0o755, uid=0, gid=0, mtime=MTIME, xattrs=None):
    return _info(name, tarfile.DIRTYPE, mode, uid, gid, mtime, xattrs), None


def symlink(name, target, uid=0, gid=0, mtime=MTIME):
    info = _info(name, tarfile.SYMTYPE, 0o777, uid, gid, mtime, None)
    info.linkname = target
    return info, None


def hardlink(name, target, mode=0o644, uid=0, gid=0, mtime=MTIME):
    """A link entry; its header's owner and mode are the inode's (tar writers copy the
    target's there, and appliers set them on the shared inode)."""
    info = _info(name, tarfile.LNKTYPE, mode, uid, gid, mtime, None)
    info.linkname = target
    return info, None


def device(name, kind=tarfile.CHRTYPE, major=1, minor=3, mode=0o666, uid=0, gid=0):
    info = _info(name, kind, mode, uid, gid, MTIME, None)
    info.devmajor, info.devminor = major, minor
    return info, None


def fifo(name, mode=0o644):
    return _info(name, tarfile.FIFOTYPE, mode, 0, 0, MTIME, None), None


def whiteout(path: str):
    head, _, base = path.rpartition("/")
    return file((head + "/" if head else "") + ".wh." + base)


def opaque(dirpath: str):
    return file(dirpath.rstrip("/") + "/.wh..wh..opq")


def tar_bytes(*entries, format=tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=format) as tar:
        for info, data in entries:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def diff_id(tar: bytes) -> str:
    return "sha256:" + hashlib.sha256(tar).hexdigest()


def gz(tar: bytes) -> bytes:
    return gzip.compress(tar, compresslevel=6)


def zst(tar: bytes) -> bytes:
    return zstandard.ZstdCompressor(write_checksum=True).compress(tar)


def write(path, data: bytes) -> str:
    with open(path, "wb") as f:
        f.write(data)
    return str(path)


def unmount(target) -> None:
    """Everything on target, lazily when busy (a failing test may hold a file open there)."""
    shim_mount.unmount_all(str(target))


@contextlib.contextmanager
def mounted(mounts: list[dict], target):
    """The snapshotter's mounts on target through the shim's own mount code (what a
    container's rootfs gets), unmounted on the way out whatever happened."""
    os.makedirs(target, exist_ok=True)
    try:
        shim_mount.mount_all([SimpleNamespace(**m) for m in mounts], str(target))
        yield str(target)
    finally:
        unmount(target)


def mount_points() -> set[str]:
    with open("/proc/self/mountinfo") as f:
        return {line.split()[4] for line in f}


def unmount_under(path) -> None:
    """Every mount at or under path, deepest first (a test's finalizer: even what a failed
    assertion left mounted goes)."""
    top = os.path.realpath(path)
    for target in sorted((p for p in mount_points() if p == top or p.startswith(top + "/")),
                         key=len, reverse=True):
        unmount(target)


def commit_layer(snaps, name: str, tar: bytes, parent: str = "", lowers: bool = False):
    """A layer as hawser's unpacker makes it: extracted into a parentless extract snapshot,
    committed on its parent; the Applied."""
    from supervisor.snapshots import apply
    key = "extract-" + name
    snaps.prepare(key, "", labels={"hawser/extract": "1"})
    below = ([snaps.upper(parent)] + snaps.lowers(parent)) if parent and lowers else ()
    applied = apply.apply_layer(io.BytesIO(tar), snaps.upper(key), below)
    snaps.commit(name, key, parent=parent)
    return applied


def tree(top) -> dict:
    """What a user sees under top: path -> (type, mode, uid, gid, size or target, mtime s,
    rdev, user/security xattrs, sha256 of content); hard links appear as the same inode group
    (the first path that has it)."""
    import stat
    out, inodes = {}, {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = "/" + os.path.relpath(full, top)
            st = os.lstat(full)
            kind = stat.S_IFMT(st.st_mode)
            body = None
            if stat.S_ISREG(st.st_mode):
                with open(full, "rb") as f:
                    body = hashlib.sha256(f.read()).hexdigest()
            elif stat.S_ISLNK(st.st_mode):
                body = os.readlink(full)
            try:
                xattrs = {k: os.getxattr(full, k, follow_symlinks=False)
                          for k in os.listxattr(full, follow_symlinks=False)
                          if not k.startswith("trusted.")}
            except OSError:
                xattrs = {}
            group = None
            if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
                group = inodes.setdefault(st.st_ino, rel)
            out[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, body,
                        st.st_mtime_ns // 10**9,
                        st.st_rdev, xattrs, group)
    return out
