"""`docker import`: a root filesystem tarball (plain, gzip, xz, bzip2 or zstd: by magic bytes)
as a one-layer OCI image. One pass over the input: its uncompressed bytes are hashed (the
diff_id), checked as a tar on the way, gzip-compressed and written to the content store (the
layer's digest); then the config (the host's platform, the changes given) and the manifest."""
import hashlib
import json
import os
import time
import zlib

from supervisor.archive import compression
from supervisor.archive.tar import LINK, TarError, TarReader
from supervisor.images import manifest as mf
from supervisor.images.archive_common import tar_message
from supervisor.images.changes import ChangeError, apply_changes
from supervisor.images.platforms import parse_platform

__all__ = ["import_rootfs", "apply_changes", "ChangeError", "RootfsError"]

# zlib's fastest level: an import is as fast as a disk allows; the ratio is gzip -1's
GZIP_LEVEL = 1
PROGRESS_EVERY = 16 << 20


class RootfsError(ValueError):
    pass


def import_rootfs(stream, content, changes=(), message: str = "", platform: str | None = None,
                  progress=None) -> tuple[str, str]:
    """(manifest digest, media type) of the new image. A bad change or a stream that is not a
    tar is a ValueError naming it; changes are checked before anything is written."""
    wanted = parse_platform(platform)
    config = {"architecture": wanted.architecture, "os": wanted.os}
    if wanted.variant:
        config["variant"] = wanted.variant
    apply_changes(config, changes)
    with content.writer() as w:
        tee, reader = _Tee(w, progress), None
        try:
            # the tap sees every byte, what follows the end blocks too: the layer's as well
            reader = TarReader(compression.open_stream(stream, compression.ARCHIVE), tee.tap)
            entries = 0
            for member in reader:
                _check_name(member.path,
                            os.fsdecode(member.linkname) if member.type == LINK else "")
                entries += 1
        except (TarError, compression.CompressionError) as e:
            raise RootfsError("import: not a root filesystem tarball: "
                              f"{tar_message(e, reader)}") from None
        if not entries:
            raise RootfsError("import: the tarball has no entries")
        layer_size, diff_id = tee.finish()
        layer = w.commit()
    now = _rfc3339(time.time())
    history = {"created": now, "created_by": "hawser import"}
    if message:
        history["comment"] = message
    config.update({"created": now, "rootfs": {"type": "layers", "diff_ids": [diff_id]},
                   "history": [history]})
    config_bytes = json.dumps(config, separators=(",", ":")).encode()
    config_digest = content.put(config_bytes)
    manifest = {"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                "config": {"mediaType": mf.OCI_CONFIG, "digest": config_digest,
                           "size": len(config_bytes)},
                "layers": [{"mediaType": mf.OCI_LAYER_GZIP, "digest": layer,
                            "size": layer_size}]}
    return content.put(json.dumps(manifest, separators=(",", ":")).encode()), mf.OCI_MANIFEST


def _check_name(name: str, link: str) -> None:
    """A ".." entry would land outside the root: refused here already, as unpack would."""
    for path in (name, link):
        if ".." in path.split("/"):
            raise RootfsError(f"import: entry {path!r} points outside the root filesystem")


class _Tee:
    """The tap of the uncompressed tar: hashed (the diff_id) and written gzip-compressed."""

    def __init__(self, writer, progress):
        self.writer, self.progress = writer, progress
        self.hash = hashlib.sha256()
        self.gzip = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self.total = 0
        self.reported = 0

    def tap(self, data) -> None:
        self.hash.update(data)
        out = self.gzip.compress(data)
        if out:
            self.writer.write(out)
        self.total += len(data)
        if self.progress and self.total - self.reported >= PROGRESS_EVERY:
            self.reported = self.total
            self.progress("importing", self.total, 0)

    def finish(self) -> tuple[int, str]:
        self.writer.write(self.gzip.flush())
        return self.writer.offset, "sha256:" + self.hash.hexdigest()


def _rfc3339(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1e9):09d}Z"
