"""Resolving paths inside the container's rootfs so that no symlink can lead out of it.

openat2(RESOLVE_IN_ROOT) makes the kernel treat the rootfs fd as "/" for every component, `..` and
absolute symlink; missing directories are created one component at a time under an fd, never by
path string. Mounts then target /proc/self/fd/N, the very inode that was resolved.
"""
import os

from runtime import syscall
from runtime.syscall.consts import O_PATH, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS

_RESOLVE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS


def open_in_root(rootfd: int, path: str, flags: int = O_PATH) -> int:
    return syscall.get().openat2(rootfd, path.lstrip("/") or ".", flags | os.O_CLOEXEC, 0, _RESOLVE)


def fd_path(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def ensure_in_root(rootfd: int, path: str, directory: bool = True, mode: int = 0o755,
                   _depth: int = 0) -> int:
    """An O_PATH fd for `path` inside the root, creating it (dirs, or an empty file last) if missing.
    Every prefix is resolved from the root, so symlinks (/var/run -> /run) are followed inside it;
    a dangling symlink gets its target created, inside the root too."""
    try:
        return open_in_root(rootfd, path)
    except FileNotFoundError:
        pass
    if _depth > 40:
        raise OSError(40, f"too many levels of symbolic links creating {path}")  # ELOOP
    parts = [p for p in path.split("/") if p and p != "."]
    fd = os.dup(rootfd)
    try:
        for i, name in enumerate(parts):
            prefix = "/".join(parts[:i + 1])
            try:
                nxt = open_in_root(rootfd, prefix)
            except FileNotFoundError:
                try:
                    if i == len(parts) - 1 and not directory:
                        os.close(os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC
                                         | os.O_NOFOLLOW, 0o644, dir_fd=fd))
                    else:
                        os.mkdir(name, mode, dir_fd=fd)
                except FileExistsError:
                    # A dangling symlink: create the path it names (inside the root) instead.
                    target = os.readlink(name, dir_fd=fd)
                    base = target if target.startswith("/") else "/".join(parts[:i]) + "/" + target
                    rest = "/".join([base] + parts[i + 1:])
                    os.close(fd)
                    fd = -1
                    return ensure_in_root(rootfd, rest, directory, mode, _depth + 1)
                nxt = open_in_root(rootfd, prefix)
            os.close(fd)
            fd = nxt
        return fd
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise
