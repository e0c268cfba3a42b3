"""What the applier takes from the layers below the one it unpacks, as containerd's applier
(which sees the merged view) does: a file a hard link of the layer names (copied up into the
layer first, as overlayfs copies a file up before it links it), and the owner, mode, times and
xattrs of a directory the layer's tar left out but writes into (the merged view shows the upper
layer's directory, so it must look like the one below). Reads go through dir fds opened with
O_NOFOLLOW (layered.lookup): a symlink in a lower layer is never followed."""
import errno
import os
import stat

from supervisor.snapshots import layered
from supervisor.snapshots.layered import DIR_FLAGS, FILE_FLAGS

FALLBACK_ERRNOS = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP)


class NotADirectoryBelow(Exception):
    pass


def make_parent(layer_fds: list[int], dparts: list[bytes], parent: int):
    """Make the directory dparts[-1] in parent (the dir fd of dparts[:-1] in the layer being
    unpacked, itself layer_fds[0] when lowers are given); (its fd, its (atime, mtime) to set
    once the layer is written, or None). ThroughSymlink or NotADirectoryBelow when the layers
    below have something else than a directory there."""
    name = dparts[-1]
    below = layered.lookup(layer_fds, dparts) if layer_fds else None
    if below is None:
        os.mkdir(name, 0o755, dir_fd=parent)
        fd = os.open(name, DIR_FLAGS, dir_fd=parent)
        os.fchmod(fd, 0o755)                 # mkdir's mode went through the umask
        return fd, None
    _, src_dir, src_name, st = below
    try:
        if stat.S_ISLNK(st.st_mode):
            raise layered.ThroughSymlink(b"/".join(dparts))
        if not stat.S_ISDIR(st.st_mode):
            raise NotADirectoryBelow(b"/".join(dparts))
        src = os.open(src_name, DIR_FLAGS, dir_fd=src_dir)
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
            fd = os.open(name, DIR_FLAGS, dir_fd=parent)
            try:
                os.fchown(fd, st.st_uid, st.st_gid)
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
                layered.copy_xattrs(src, fd)
            except BaseException:
                os.close(fd)
                raise
        finally:
            os.close(src)
    finally:
        os.close(src_dir)
    return fd, (st.st_atime_ns, st.st_mtime_ns)


def _copy_content(src: int, out: int) -> int:
    """In the kernel: copy_file_range (a reflink where the fs has them), or sendfile where the
    two files' file systems refuse it (EXDEV: an overlay mount's file into another fs)."""
    copied, copy = 0, os.copy_file_range
    while True:
        try:
            n = copy(src, out, 1 << 30) if copy is os.copy_file_range \
                else os.sendfile(out, src, None, 1 << 30)
        except OSError as e:
            if copy is not os.copy_file_range or e.errno not in FALLBACK_ERRNOS:
                raise
            copy = os.sendfile
            continue
        if not n:
            return copied
        copied += n


def copy_up(src_dir: int, name: bytes, st, dst_dir: int, dst: bytes) -> int:
    """The lower file name (of lstat st, in src_dir) as dst in dst_dir, with its owner, mode,
    xattrs and times; the bytes of content copied."""
    mode = stat.S_IMODE(st.st_mode)
    if stat.S_ISREG(st.st_mode):
        src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_dir)
        try:
            out = os.open(dst, FILE_FLAGS, 0o600, dir_fd=dst_dir)
            try:
                copied = _copy_content(src, out)
                os.fchown(out, st.st_uid, st.st_gid)
                os.fchmod(out, mode)
                layered.copy_xattrs(src, out)
                os.utime(out, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out)
        finally:
            os.close(src)
        return copied
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(name, dir_fd=src_dir), dst, dir_fd=dst_dir)
    else:
        os.mknod(dst, st.st_mode, st.st_rdev, dir_fd=dst_dir)
    os.chown(dst, st.st_uid, st.st_gid, dir_fd=dst_dir, follow_symlinks=False)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(dst, mode, dir_fd=dst_dir, follow_symlinks=False)
    layered.copy_xattrs(b"/proc/self/fd/%d/%s" % (src_dir, name),
                        b"/proc/self/fd/%d/%s" % (dst_dir, dst), follow=False)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_dir, follow_symlinks=False)
    return 0
