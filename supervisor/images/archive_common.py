"""What the archive modules share: their errors and results, a member's blob, names, and the
words for what the shared tar reader and decompression (supervisor/archive) raise."""
import json
import posixpath

from supervisor.archive import compression, tar
from supervisor.images.refs import ReferenceError, parse

NAME_ANNOTATION = "io.containerd.image.name"
REF_ANNOTATION = "org.opencontainers.image.ref.name"


class ArchiveError(Exception):
    """`written`: the blobs this load put in the store (verified, but now unreferenced: the
    caller drops those no image uses)."""

    def __init__(self, message: str, written=()):
        super().__init__(message)
        self.written = list(written)


class Loaded:
    __slots__ = ("names", "target", "media_type", "size")

    def __init__(self, names: list[str], target: str, media_type: str, size: int):
        self.names, self.target, self.media_type, self.size = names, target, media_type, size

    def __repr__(self) -> str:
        return f"Loaded({self.names!r}, {self.target!r}, {self.media_type!r}, {self.size})"


class Blob:
    __slots__ = ("digest", "size", "compression")

    def __init__(self, digest: str, size: int, compression: str):
        self.digest, self.size, self.compression = digest, size, compression

def clean(name: str) -> str:
    """A member's path as the archive's JSON files name it: no ./, no leading /."""
    return posixpath.normpath("/" + name).lstrip("/")


def member(path: str, blobs, links, what: str) -> Blob:
    seen = 0
    path = clean(path)
    while path in links and seen < 16:
        path, seen = links[path], seen + 1
    if path not in blobs:
        raise ArchiveError(f"{what}: {path} is not in the archive")
    return blobs[path]


def json_of(data: bytes, what: str):
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ArchiveError(f"{what}: not valid JSON ({e})") from None


def name_of(text, what: str) -> str:
    """A normalized image name; ArchiveError naming where the bad one is."""
    if not isinstance(text, str):
        raise ArchiveError(f"{what}: {text!r} is not a name")
    try:
        return parse(text).name
    except ReferenceError as e:
        raise ArchiveError(f"{what}: {e}") from None


def tar_message(e: Exception, reader: tar.TarReader | None) -> str:
    """A TarError or CompressionError of an archive or a rootfs tarball, for a message."""
    if isinstance(e, tar.Truncated):
        if e.offset == 0:
            return "empty file, not a tar archive"
        if e.entry is not None:
            return f"truncated at byte {e.offset} (in member {e.entry.path})"
        if e.boundary:
            return f"truncated at byte {e.offset} (no end-of-archive blocks)"
        return f"truncated at byte {e.offset} (in the header at byte {e.header_at})"
    if isinstance(e, tar.BadChecksum):
        return f"not a tar archive, or corrupt: bad header checksum at byte {e.offset}"
    if isinstance(e, tar.BadHeader):
        return f"header at byte {e.offset}: {e.reason}"
    if isinstance(e, tar.Unsupported):
        return f"member {e.entry.path} (at byte {e.offset}): {e.reason}"
    if isinstance(e, compression.Unsupported):
        return f"{e.format}-compressed archives are not supported"
    # the reader reads ahead: the damage is past what the stream gave
    where = f" (after byte {reader.read_total} of the tar)" if reader is not None else ""
    if isinstance(e, compression.Truncated):
        return f"the compressed archive is truncated: {e}{where}"
    return f"the compressed archive is corrupt: {e}{where}"
