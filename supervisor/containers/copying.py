"""Containers.CopyFrom/CopyTo (docker cp) over containers/cp.py: where a container path is
on the host. A path under one of the container's volumes or bind mounts is in that mount's
source (the container sees it there; the host's view of its rootfs does not); another path is
in its root filesystem: the rootfs directory, the image snapshot its shim has mounted, or, when
no task has it mounted, the snapshot mounted by hawserd for the copy's time."""
import contextlib
import os
import posixpath
import secrets
import types

from supervisor.containers import cp
from supervisor.errors import ApiError


def _in_mount(sup, rec: dict, path: str) -> tuple[str, str] | None:
    """(host directory, path inside it) when path is under a bind or volume mount."""
    clean = posixpath.normpath("/" + path)
    best = None
    for m in rec["config"].get("mounts") or ():
        kind, dest = m.get("type") or "bind", posixpath.normpath(m["destination"])
        if kind == "tmpfs" or not (clean == dest or clean.startswith(dest.rstrip("/") + "/")):
            continue
        if best is None or len(dest) > len(best[0]):
            source = sup.volumes.path(m["source"]) if kind == "volume" else m["source"]
            best = (dest, source)
    if best is None or not os.path.isdir(best[1]):
        return None
    rest = clean[len(best[0]):] or "/"
    return best[1], rest + ("/." if path.endswith("/.") else "/" if path.endswith("/") else "")


@contextlib.contextmanager
def root_of(sup, rec: dict):
    """The host directory of the container's root filesystem, mounted for the time needed."""
    if rec["rootfs"]:
        yield rec["rootfs"]
        return
    mounted = os.path.join(rec["bundle"], "rootfs")
    if os.path.ismount(mounted):
        yield mounted
        return
    from shim import mount
    # the snapshot's mounts as records with the shim's Mount attributes
    mounts = [types.SimpleNamespace(**m) for m in sup.ensure_rootfs(rec)]
    target = os.path.join(sup.state, "cp", secrets.token_hex(8))
    os.makedirs(target, 0o700)
    try:
        mount.mount_all(mounts, target)
        try:
            yield target
        finally:
            mount.unmount_all(target)
    finally:
        os.rmdir(target)


def copy_from(sup, ref: str, path: str):
    """The tar of the container's path, in pieces (the path's errors raised by this call)."""
    rec = sup.resolve(ref)
    if not path:
        raise ApiError("INVALID_ARGUMENT", "copy: no path in the container given")
    where = _in_mount(sup, rec, path)
    if where is not None:
        return cp.tar_stream(*where)
    ctx = root_of(sup, rec)
    root = ctx.__enter__()
    try:
        pieces = cp.tar_stream(root, path)
    except BaseException:
        ctx.__exit__(None, None, None)
        raise
    return _closing(pieces, ctx)


def _closing(pieces, ctx):
    try:
        yield from pieces
    finally:
        ctx.__exit__(None, None, None)


class _Requests:
    """The data of the CopyTo requests after the first, as a stream cp.tar_in reads."""

    def __init__(self, requests):
        self.requests, self.buf = requests, b""

    def read(self, n: int = -1) -> bytes:
        while n < 0 or len(self.buf) < n:
            try:
                self.buf += next(self.requests).data
            except StopIteration:
                break
        if n < 0:
            out, self.buf = self.buf, b""
        else:
            out, self.buf = self.buf[:n], self.buf[n:]
        return out


def copy_to(sup, requests) -> None:
    """Unpack the tar the requests carry into the container's directory (the first request's
    path: an existing directory), as docker cp does."""
    requests = iter(requests)
    try:
        first = next(requests)
    except StopIteration:
        raise ApiError("INVALID_ARGUMENT", "copy: an empty request stream") from None
    rec = sup.resolve(first.id)
    if not first.path:
        raise ApiError("INVALID_ARGUMENT", "copy: no destination directory in the container")
    stream = _Requests(requests)
    stream.buf = bytes(first.data)
    where = _in_mount(sup, rec, first.path)
    if where is not None:
        cp.tar_in(*where, stream)
        return
    with root_of(sup, rec) as root:
        cp.tar_in(root, first.path, stream)
