"""Reading a stack of overlay layer directories as overlayfs merges them, without mounting:
the top layer's entry wins, a whiteout (a 0/0 character device) hides the name below it, an
opaque directory (trusted.overlay.opaque=y) or a non-directory ends the merge of what is under
it. Every step is an openat/fstatat on a directory fd with O_NOFOLLOW: a symlink in a layer is
never followed, so nothing outside the layers is ever read. Used by the applier (a hard link to
a lower file, a missing parent's metadata) and by the differ."""
import errno
import os
import stat

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# a new file, never one that is there (a symlink included: O_EXCL does not follow it)
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
OPAQUE_XATTR = "trusted.overlay.opaque"
# overlayfs' own metadata: never taken from a layer tar, never written into one
PRIVATE_XATTRS = (b"trusted.overlay.", b"user.overlay.")


class ThroughSymlink(Exception):
    """A parent on the way is a symlink: the path would leave the tree it names."""

    def __init__(self, path: bytes):
        super().__init__(path)
        self.path = path


def is_whiteout(st) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def is_opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError as e:
        if e.errno in (errno.ENODATA, errno.ENOTSUP):
            return False
        raise


def lookup(roots: list[int], parts: list[bytes]):
    """What the overlay of the layers (their root dir fds, top first) shows at parts:
    (index of the layer it is in, a new fd of its directory there, name, lstat), or None.
    The caller closes the fd. ThroughSymlink when a parent in the view is a symlink."""
    if not parts:
        return None
    stack, owned = list(enumerate(roots)), []
    try:
        for depth, name in enumerate(parts):
            below, first = [], None
            for index, fd in stack:
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                if first is None:
                    if is_whiteout(st):
                        return None
                    first = st
                    if depth == len(parts) - 1:
                        return index, os.dup(fd), name, st
                    if stat.S_ISLNK(st.st_mode):
                        raise ThroughSymlink(b"/".join(parts[:depth + 1]))
                    if not stat.S_ISDIR(st.st_mode):
                        return None
                elif not stat.S_ISDIR(st.st_mode):
                    break                  # a whiteout or a file: nothing below it shows
                child = os.open(name, DIR_FLAGS, dir_fd=fd)
                owned.append(child)
                below.append((index, child))
                if is_opaque(child):
                    break
            if first is None:
                return None
            # the level above is done with: a deep path costs one level's fds, not its depth's
            keep = [fd for _, fd in below]
            for fd in owned:
                if fd not in keep:
                    os.close(fd)
            owned, stack = keep, below
        return None
    finally:
        for fd in owned:
            os.close(fd)


def merged_names(stack: list[int]) -> dict[str, os.stat_result]:
    """The names a merged directory shows from a stack of its dir fds (top first), with the
    lstat of the entry that wins; whiteouts hide names, an opaque dir stops the stack."""
    shown: dict[str, os.stat_result] = {}
    hidden: set[str] = set()
    for fd in stack:
        with os.scandir(fd) as it:
            for entry in it:
                name = entry.name
                if name in shown or name in hidden:
                    continue
                st = entry.stat(follow_symlinks=False)
                if is_whiteout(st):
                    hidden.add(name)
                else:
                    shown[name] = st
        if is_opaque(fd):
            break
    return shown


def copy_xattrs(src, dst, follow: bool = True) -> None:
    """Extended attributes from src to dst (fds or /proc/self/fd paths), overlayfs' own
    excepted; an attribute the file system refuses (as containerd) is left out."""
    kw = {} if isinstance(src, int) else {"follow_symlinks": follow}
    kwd = {} if isinstance(dst, int) else {"follow_symlinks": follow}
    try:
        names = os.listxattr(src, **kw)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return
        raise
    for name in names:
        if name.encode().startswith(PRIVATE_XATTRS):
            continue
        try:
            os.setxattr(dst, name, os.getxattr(src, name, **kw), **kwd)
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EPERM, errno.ENODATA):
                raise
