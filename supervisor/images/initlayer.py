"""The init layer of an image, as docker's `-init` layer: a committed snapshot on the image's
top layer that holds the mount targets hawserd and the runtime bind or mount over (/etc/hosts,
/etc/hostname, /etc/resolv.conf, /proc, /sys, /dev) when the image lacks them. A container's
writable snapshot sits on it, so the runtime never makes those targets in the container's own
upper layer: `diff` does not list them and `commit` does not put them into a new layer.
Shared by every container of the image; GC removes it with the last container on it (a
parent of what is kept is kept)."""
import os
import secrets
import stat

from supervisor.snapshots import layered

PREFIX = "init-"
DIRS = ("proc", "sys", "dev", "etc")
FILES = ("etc/hosts", "etc/hostname", "etc/resolv.conf")


def key_of(top: str) -> str:
    return PREFIX + top.removeprefix("sha256:")


def ensure(snapshots, top: str) -> str:
    """The init snapshot on the committed layer top ("" for an image without layers), made
    if it is not there; its key."""
    key = key_of(top or "empty")
    if snapshots.stat(key) is not None:
        return key
    tmp = f"{key}-{secrets.token_hex(4)}.tmp"
    snapshots.prepare(tmp, top, labels={"hawser/init": "1"})
    try:
        lowers = ([snapshots.upper(top)] + snapshots.lowers(top)) if top else []
        _fill(snapshots.upper(tmp), lowers)
        snapshots.commit(key, tmp, labels={"hawser/init": "1"})
    except BaseException:
        snapshots.remove(tmp)
        raise
    return key


def _fill(upper: str, lowers: list[str]) -> None:
    fds = [os.open(d, layered.DIR_FLAGS) for d in lowers]
    try:
        for name in DIRS:
            st = _lookup(fds, [name])
            if st is None:
                os.mkdir(os.path.join(upper, name), 0o755)
        etc = _lookup(fds, [b"etc"])
        for path in FILES:
            if etc is not None and not stat.S_ISDIR(etc.st_mode):
                break          # /etc is a file or a link in the image: nothing goes under it
            if _lookup(fds, [p.encode() for p in path.split("/")]) is None:
                os.makedirs(os.path.join(upper, "etc"), 0o755, exist_ok=True)
                os.close(os.open(os.path.join(upper, path), layered.FILE_FLAGS, 0o644))
        if etc is not None and stat.S_ISDIR(etc.st_mode) and \
                os.path.isdir(os.path.join(upper, "etc")):
            # the image's /etc as it is (the merged view takes the upper dir's metadata)
            _copy_meta(os.path.join(upper, "etc"), etc)
    finally:
        for fd in fds:
            os.close(fd)


def _lookup(fds: list[int], parts):
    parts = [p.encode() if isinstance(p, str) else p for p in parts]
    try:
        found = layered.lookup(fds, parts)
    except layered.ThroughSymlink:
        return os.stat_result((stat.S_IFLNK,) + (0,) * 9)
    if found is None:
        return None
    os.close(found[1])
    return found[3]


def _copy_meta(path: str, st) -> None:
    os.chown(path, st.st_uid, st.st_gid)
    os.chmod(path, stat.S_IMODE(st.st_mode))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
