"""Layer unpack: an OCI/docker layer tar extracted into the empty fs directory of a snapshot,
written directly (no mount), in overlayfs' terms: `.wh.NAME` becomes a 0/0 character device
NAME, `.wh..wh..opq` the trusted.overlay.opaque=y xattr on its directory.

Every path is resolved component by component from dir fds opened with O_NOFOLLOW, and every
entry is made with *at() calls relative to its parent's fd: an entry that names `..`, an
absolute path, or a parent that is a symlink (made by an earlier entry, or below in `lowers`)
is refused with LayerError naming it, so a layer cannot write outside dest whatever symlinks
it brings. No chdir, umask or other process state is touched: layers can be unpacked in
threads at once, each into its own directory. On any failure dest is emptied again."""
import hashlib
import os
import shutil
import stat
from typing import NamedTuple

from supervisor.archive.compression import CompressionError
from supervisor.archive.tar import TarError, TarReader
from supervisor.snapshots.extract import Extraction, MissingLinkTarget
from supervisor.snapshots.layered import OPAQUE_XATTR
from supervisor.snapshots.layerstream import LayerError, layer_error, open_layer

__all__ = ["Applied", "LayerError", "MissingLinkTarget", "apply_layer", "open_layer", "unpack"]


class Applied(NamedTuple):
    diff_id: str          # sha256 of the uncompressed tar: the image config's rootfs.diff_ids
    size: int             # bytes of file content unpacked


def unpack(blob_path: str, dest: str, media_type: str = "", lowers=()) -> Applied:
    with open_layer(blob_path, media_type) as stream:
        return apply_layer(stream, dest, lowers)


def apply_layer(stream, dest: str, lowers=()) -> Applied:
    """Extract the tar stream (readinto(buf), or read(n)) into the empty directory dest; lowers
    are the fs dirs of the layers below, nearest first (for a hard link to a file of theirs).
    The diff_id is over every byte of the stream, what follows the end marker too."""
    root = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if os.listdir(root):
            raise LayerError(f"{dest}: not empty, a layer is unpacked into an empty directory")
        before = os.fstat(root)
        job = Extraction(root, lowers)
        try:
            sha = hashlib.sha256()
            reader = TarReader(stream, tap=sha.update)
            try:
                for entry in reader:
                    job.apply(entry, reader)
                job.set_dir_times()
            except (TarError, CompressionError) as e:
                raise layer_error(e, reader) from None
            except OSError as e:      # the entries' own are LayerErrors already: the blob's
                raise LayerError(f"reading the layer: {e}") from None
        except BaseException:
            job.close()
            _empty(root, before)
            raise
        job.close()
        return Applied("sha256:" + sha.hexdigest(), job.size)
    finally:
        os.close(root)


def _empty(root: int, before) -> None:
    """dest as it was: empty, with its own mode, owner and times (a failed unpack leaves
    nothing for the caller to clean but the directory it gave)."""
    with os.scandir(root) as it:
        names = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in names:
        try:
            if is_dir:
                shutil.rmtree(name, dir_fd=root)
            else:
                os.unlink(name, dir_fd=root)
        except FileNotFoundError:
            pass
    try:
        os.removexattr(root, OPAQUE_XATTR)
    except OSError:
        pass
    os.fchown(root, before.st_uid, before.st_gid)
    os.fchmod(root, stat.S_IMODE(before.st_mode))
    os.utime(root, ns=(before.st_atime_ns, before.st_mtime_ns))
