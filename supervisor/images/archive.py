"""Image archives in: `docker save` (both layouts), `podman save`, `skopeo copy docker-archive:`
and OCI archives (oci-archive:, docker 25+), read once from a stream. Every member that can be a
blob goes into the content store as it passes (hashed on the way, checked against its name when
it has one); the archive's JSON files are kept; then the images are assembled and checked, blob by
blob, before the caller names anything. Archives out: archive_write.write_archive."""
import os
import posixpath
import stat

from supervisor.archive import compression
from supervisor.archive.tar import LINK, SYMLINK, TarError, TarReader
from supervisor.content.store import ContentError, DigestMismatch, check_digest
from supervisor.images import manifest as mf
from supervisor.images.archive_common import ArchiveError, Blob, Loaded, clean, tar_message
from supervisor.images.archive_layouts import docker, oci
from supervisor.images.archive_write import write_archive
from supervisor.images.refs import ReferenceError

__all__ = ["ArchiveError", "Loaded", "read_archive", "write_archive"]

META = frozenset(("manifest.json", "index.json", "oci-layout", "repositories"))
MAX_META = 16 << 20
PROGRESS_EVERY = 16 << 20
# a blob's own compression (a layer's), by its magic: what a manifest may say of it
BLOB_COMPRESSIONS = (compression.GZIP, compression.ZSTD)


def read_archive(fileobj, content, progress=None, platform: str | None = None,
                 base_name: str = "", written: list | None = None) -> list[Loaded]:
    """The images of the archive in fileobj (a pipe will do; a whole-archive gzip/xz/bzip2/zstd
    too). `written` (a list) gets every blob this load adds, as it is added, whatever the
    outcome; `base_name` names an OCI image whose ref.name annotation is only a tag (as
    `ctr import --base-name`). `platform` (the host's when None) is the one an index must have."""
    written = [] if written is None else written
    try:
        blobs, links, meta = _stream(fileobj, content, progress, written)
        if "index.json" in meta:
            loaded = oci(meta, blobs, links, content, base_name)
        elif "manifest.json" in meta:
            loaded = docker(meta, blobs, links, content, written)
        else:
            some = ", ".join(sorted(blobs)[:5]) or "none"
            raise ArchiveError("not an image archive: neither manifest.json nor index.json in it "
                               f"(members: {some})")
        for image in loaded:
            _check_image(content, image, platform)
        if progress:
            progress("loaded", 1, 1)
        return loaded
    except ArchiveError as e:
        raise ArchiveError(str(e), written) from None
    except (ContentError, mf.ManifestError, ReferenceError) as e:
        raise ArchiveError(f"archive: {e}", written) from None
    except OSError as e:
        raise ArchiveError(f"archive: {e.strerror or e}", written) from None


def _stream(fileobj, content, progress, written):
    """The archive's members read once: blobs into the store, JSON files kept, links noted."""
    reader = None
    try:
        reader = TarReader(compression.open_stream(fileobj, compression.ARCHIVE))
        return _members(reader, _size_of(fileobj), content, progress, written)
    except (TarError, compression.CompressionError) as e:
        raise ArchiveError(f"archive: {tar_message(e, reader)}") from None


def _members(reader, total, content, progress, written):
    blobs: dict[str, Blob] = {}
    links: dict[str, str] = {}
    meta: dict[str, bytes] = {}
    def tick(status: str) -> None:
        if progress:
            progress(status, reader.offset, total)

    for member in reader:
        path = clean(member.path)
        if member.type == SYMLINK:
            links[path] = clean(posixpath.join(posixpath.dirname(path),
                                               os.fsdecode(member.linkname)))
        elif member.type == LINK:
            links[path] = clean(os.fsdecode(member.linkname))
        elif not member.is_regular or _ignored(path):
            continue
        elif path in META:
            if member.size > MAX_META:
                raise ArchiveError(f"member {path}: {member.size} bytes, not an archive's JSON")
            meta[path] = reader.read_all(member)
        else:
            blobs[path] = _store(reader, member, path, content, written, tick)
            tick(f"loaded {path}")
    return blobs, links, meta


def _store(reader, member, path, content, written, tick) -> Blob:
    """The member into the content store, hashed as it streams; a member named
    blobs/sha256/<hex> must be what its name says."""
    expected = None
    if path.startswith("blobs/"):
        algo, _, hexpart = path[len("blobs/"):].partition("/")
        expected = f"{algo}:{hexpart}"
        try:
            check_digest(expected)
        except ContentError as e:
            raise ArchiveError(f"member {path}: {e}") from None
    with content.writer(expected, member.size) as w:
        head, since = b"", 0
        existed = w.exists
        for chunk in reader.chunks(member):
            if not head:
                head = bytes(chunk[:4])
            w.write(chunk)
            since += len(chunk)
            if since >= PROGRESS_EVERY:
                since = 0
                tick(f"loading {path}")
        if not existed:
            existed = content.exists(f"sha256:{w.hash.hexdigest()}")
        try:
            digest = w.commit()
        except DigestMismatch as e:
            raise ArchiveError(f"member {path}: corrupt, its content does not match its name "
                               f"({e})") from None
    if not existed:
        written.append(digest)
    kind = compression.detect(head)
    return Blob(digest, member.size, kind if kind in BLOB_COMPRESSIONS else "")


def _size_of(fileobj) -> int:
    try:
        st = os.fstat(fileobj.fileno())
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    except (AttributeError, OSError, ValueError):
        return 0


def _ignored(path: str) -> bool:
    """docker's v1 layer metadata (<id>/json, <id>/VERSION): no image needs it."""
    base = posixpath.basename(path)
    return posixpath.dirname(path) != "" and base in ("json", "VERSION")


# -- checks --------------------------------------------------------------------------------------
def _check_image(content, image: Loaded, platform) -> None:
    """The image is complete: its platform's manifest, config and every layer are in the store
    (each verified against its digest as it was written), sizes as the manifest says."""
    what = image.names[0] if image.names else image.target
    _present(content, mf.Descriptor(image.target, image.size, image.media_type), what, "image")
    _present_tree(content, image.target, platform, what)
    resolved = mf.resolve(content, image.target, platform, name=what,
                          media_type=image.media_type)
    for n, (layer, diff_id) in enumerate(zip(resolved.layers, resolved.diff_ids)):
        if not content.exists(layer.digest):
            raise ArchiveError(f"{what}: layer {n} ({layer.digest}) is not in the archive")
        if content.size(layer.digest) != layer.size:
            raise ArchiveError(f"{what}: layer {n} ({layer.digest}) is "
                               f"{content.size(layer.digest)} bytes, its manifest says "
                               f"{layer.size}")
        if mf.compression(layer.media_type) == "" and layer.digest != diff_id:
            raise ArchiveError(f"{what}: uncompressed layer {n} is {layer.digest}, but the "
                               f"config's diff_id is {diff_id}")


def _present(content, desc: mf.Descriptor, what: str, kind: str) -> None:
    if not content.exists(desc.digest):
        raise ArchiveError(f"{what}: {kind} {desc.digest} is not in the archive")
    if content.size(desc.digest) != desc.size:
        raise ArchiveError(f"{what}: {kind} {desc.digest} is {content.size(desc.digest)} bytes, "
                           f"its descriptor says {desc.size}")


def _present_tree(content, digest: str, platform, what: str) -> None:
    """Down the indexes to the platform's manifest and its config: each there, to say which
    blob the archive lacks (resolve() then checks what they say)."""
    for _ in range(mf.MAX_DEPTH + 1):
        doc = mf.parse_document(content.read(digest, limit=mf.MAX_DOCUMENT), f"{what}: {digest}")
        if "manifests" not in doc:
            if isinstance(doc.get("config"), dict):
                config = mf.descriptor(doc["config"], f"{what}: manifest {digest} config")
                _present(content, config, what, "config")
            return
        try:
            desc = mf.descriptor(mf.select_platform(doc, platform, what), f"{what}: index")
        except mf.PlatformError as e:
            raise ArchiveError(str(e)) from None
        _present(content, desc, what, "manifest")
        digest = desc.digest
