"""Image archives in: `docker save` (both layouts), `podman save`, `skopeo copy docker-archive:`
and OCI archives (oci-archive:, docker 25+), read once from a stream. Every member that can be a
blob goes into the content store as it passes (hashed on the way, checked against its name when
it has one); the archive's JSON files are kept; then the images are assembled and checked, blob by
blob, before the caller names anything. Archives out: archive_write.write_archive."""
import json
import os
import posixpath
import stat

from supervisor.content.store import ContentError, DigestMismatch, check_digest, digest_of
from supervisor.images import manifest as mf
from supervisor.images.refs import TAG, ReferenceError, parse
from supervisor.images.tarstream import HARDLINK, SYMLINK, TarError, TarReader, open_stream

__all__ = ["ArchiveError", "Loaded", "read_archive", "write_archive"]

META = frozenset(("manifest.json", "index.json", "oci-layout", "repositories"))
MAX_META = 16 << 20
PROGRESS_EVERY = 16 << 20
MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd"}
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
            loaded = _oci(meta, blobs, links, content, base_name)
        elif "manifest.json" in meta:
            loaded = _docker(meta, blobs, links, content, written)
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
    except (TarError, ContentError, mf.ManifestError, ReferenceError) as e:
        raise ArchiveError(f"archive: {e}", written) from None
    except OSError as e:
        raise ArchiveError(f"archive: {e.strerror or e}", written) from None


def _stream(fileobj, content, progress, written):
    total = _size_of(fileobj)
    reader = TarReader(open_stream(fileobj))
    blobs: dict[str, Blob] = {}
    links: dict[str, str] = {}
    meta: dict[str, bytes] = {}
    reported = 0
    for member in reader:
        path = _clean(member.name)
        if member.type == SYMLINK:
            links[path] = _clean(posixpath.join(posixpath.dirname(path), member.linkname))
        elif member.type == HARDLINK:
            links[path] = _clean(member.linkname)
        elif not member.is_regular or _ignored(path):
            continue
        elif path in META:
            if member.size > MAX_META:
                raise ArchiveError(f"member {path}: {member.size} bytes, not an archive's JSON")
            meta[path] = b"".join(bytes(c) for c in reader.chunks(member))
        else:
            blobs[path] = _store(reader, member, path, content, written)
        if progress and reader.offset - reported >= PROGRESS_EVERY:
            reported = reader.offset
            progress("loading", reader.offset, total)
    return blobs, links, meta


def _store(reader, member, path, content, written) -> Blob:
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
        head = b""
        existed = w.exists
        for chunk in reader.chunks(member):
            if not head:
                head = bytes(chunk[:4])
            w.write(chunk)
        if not existed:
            existed = content.exists(f"sha256:{w.hash.hexdigest()}")
        try:
            digest = w.commit()
        except DigestMismatch as e:
            raise ArchiveError(f"member {path}: corrupt, its content does not match its name "
                               f"({e})") from None
    if not existed:
        written.append(digest)
    return Blob(digest, member.size, MAGIC.get(head[:2]) or MAGIC.get(head[:4], ""))


def _size_of(fileobj) -> int:
    try:
        st = os.fstat(fileobj.fileno())
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    except (AttributeError, OSError, ValueError):
        return 0


def _clean(name: str) -> str:
    return posixpath.normpath("/" + name).lstrip("/")


def _ignored(path: str) -> bool:
    """docker's v1 layer metadata (<id>/json, <id>/VERSION): no image needs it."""
    base = posixpath.basename(path)
    return posixpath.dirname(path) != "" and base in ("json", "VERSION")


def _member(path: str, blobs, links, what: str) -> Blob:
    seen = 0
    path = _clean(path)
    while path in links and seen < 16:
        path, seen = links[path], seen + 1
    if path not in blobs:
        raise ArchiveError(f"{what}: {path} is not in the archive")
    return blobs[path]


def _json(data: bytes, what: str):
    try:
        return json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ArchiveError(f"{what}: not valid JSON ({e})") from None


# -- OCI image layout (also docker 25+) ----------------------------------------------------------
def _oci(meta, blobs, links, content, base_name) -> list[Loaded]:
    if "oci-layout" in meta:
        layout = _json(meta["oci-layout"], "oci-layout")
        version = layout.get("imageLayoutVersion") if isinstance(layout, dict) else layout
        if version != "1.0.0":
            raise ArchiveError(f"oci-layout: unsupported image layout version {version!r}")
    index = mf.parse_document(meta["index.json"], "index.json")
    if mf.kind_of(index, "index.json", mf.OCI_INDEX) not in mf.INDEXES:
        raise ArchiveError("index.json: not an image index")
    out: dict[str, Loaded] = {}
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("index.json: no manifests")
    for i, raw in enumerate(entries):
        desc = mf.descriptor(raw, f"index.json: manifest {i}")
        if desc.media_type not in mf.INDEXES and desc.media_type not in mf.MANIFESTS:
            raise ArchiveError(f"index.json: manifest {i} {desc.digest} has media type "
                               f"{desc.media_type!r}, not an image manifest or index")
        image = out.setdefault(desc.digest, Loaded([], desc.digest, desc.media_type, desc.size))
        for name in _annotated_names(raw.get("annotations"), base_name, i):
            if name not in image.names:
                image.names.append(name)
    loaded = list(out.values())
    if "manifest.json" in meta:          # docker 25+: RepoTags name the same images
        _add_repo_tags(meta, blobs, links, content, loaded)
    return loaded


def _annotated_names(annotations, base_name: str, i: int) -> list[str]:
    if annotations is None:
        return []
    if not isinstance(annotations, dict):
        raise ArchiveError(f"index.json: manifest {i}: annotations must be an object")
    full, ref = annotations.get(NAME_ANNOTATION), annotations.get(REF_ANNOTATION)
    if full:
        return [_name(full, f"index.json: manifest {i} {NAME_ANNOTATION}")]
    if not ref:
        return []
    if "/" not in ref and ":" not in ref and "@" not in ref and TAG.fullmatch(ref):
        # a tag alone (OCI's usual ref.name): a name only with a base to put it on
        return [_name(f"{base_name}:{ref}", "base name")] if base_name else []
    return [_name(ref, f"index.json: manifest {i} {REF_ANNOTATION}")]


def _name(text, what: str) -> str:
    if not isinstance(text, str):
        raise ArchiveError(f"{what}: {text!r} is not a name")
    try:
        return parse(text).name
    except ReferenceError as e:
        raise ArchiveError(f"{what}: {e}") from None


def _add_repo_tags(meta, blobs, links, content, loaded) -> None:
    by_config = {}
    for image in loaded:
        try:
            by_config[mf.resolve(content, image.target).config_digest] = image
        except mf.ManifestError:
            continue            # _check_image says what is wrong with it
    for i, entry in enumerate(_docker_entries(meta)):
        config = _member(entry["Config"], blobs, links, f"manifest.json: image {i} Config")
        image = by_config.get(config.digest)
        for name in entry.get("RepoTags") or []:
            name = _name(name, f"manifest.json: image {i} RepoTags")
            if image is not None and name not in image.names:
                image.names.append(name)


# -- docker-archive ------------------------------------------------------------------------------
def _docker_entries(meta) -> list[dict]:
    entries = _json(meta["manifest.json"], "manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ArchiveError("manifest.json: must be a non-empty list of images")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                or not isinstance(entry.get("Layers"), list) \
                or not all(isinstance(p, str) for p in entry["Layers"]) \
                or not isinstance(entry.get("RepoTags") or [], list):
            raise ArchiveError(f"manifest.json: image {i} needs Config (a path), Layers (a list "
                               "of paths) and RepoTags (a list or null)")
        if entry.get("LayerSources"):
            raise ArchiveError(f"manifest.json: image {i} has foreign layers (LayerSources), "
                               "which are not in the archive")
    return entries


def _docker(meta, blobs, links, content, written) -> list[Loaded]:
    loaded = []
    for i, entry in enumerate(_docker_entries(meta)):
        what = f"manifest.json: image {i}"
        config_blob = _member(entry["Config"], blobs, links, f"{what} Config")
        config = mf.parse_document(content.read(config_blob.digest), f"{what} config "
                                   f"{entry['Config']}")
        diff_ids = mf.check_config(config, len(entry["Layers"]), f"{what} config")
        layers = [_member(p, blobs, links, f"{what} layer {n}")
                  for n, p in enumerate(entry["Layers"])]
        for n, (layer, diff_id) in enumerate(zip(layers, diff_ids)):
            if not layer.compression and layer.digest != diff_id:
                raise ArchiveError(f"{what}: layer {entry['Layers'][n]} is {layer.digest}, but "
                                   f"the config's diff_id {n} is {diff_id}")
        data, media_type = _manifest_for(config_blob, layers)
        existed = content.exists(digest_of(data))
        target = content.put(data)
        if not existed and target not in written:
            written.append(target)
        names = [_name(t, f"{what} RepoTags") for t in entry.get("RepoTags") or []]
        loaded.append(Loaded(names, target, media_type, len(data)))
    return loaded


def _manifest_for(config: Blob, layers: list[Blob]) -> tuple[bytes, str]:
    """A registry manifest for a docker-archive's image: docker's schema 2 as docker makes it,
    OCI's when a zstd layer needs a media type docker's has not."""
    oci = any(layer.compression == "zstd" for layer in layers)
    types = ({"": mf.OCI_LAYER, "gzip": mf.OCI_LAYER_GZIP, "zstd": mf.OCI_LAYER_ZSTD} if oci
             else {"": mf.DOCKER_LAYER, "gzip": mf.DOCKER_LAYER_GZIP})
    media_type = mf.OCI_MANIFEST if oci else mf.DOCKER_MANIFEST
    doc = {"schemaVersion": 2, "mediaType": media_type,
           "config": {"mediaType": mf.OCI_CONFIG if oci else mf.DOCKER_CONFIG,
                      "digest": config.digest, "size": config.size},
           "layers": [{"mediaType": types[layer.compression], "digest": layer.digest,
                       "size": layer.size} for layer in layers]}
    return json.dumps(doc, indent=3).encode(), media_type


# -- checks --------------------------------------------------------------------------------------
def _check_image(content, image: Loaded, platform) -> None:
    """The image is complete: its platform's manifest, config and every layer are in the store
    (each verified against its digest as it was written), sizes as the manifest says."""
    what = image.names[0] if image.names else image.target
    if not content.exists(image.target):
        raise ArchiveError(f"{what}: manifest {image.target} is not in the archive")
    if content.size(image.target) != image.size:
        raise ArchiveError(f"{what}: manifest {image.target} is {content.size(image.target)} "
                           f"bytes, index.json says {image.size}")
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


def write_archive(images, content, out, platform: str | None = None) -> None:
    """See archive_write.write_archive (imported here, late: it raises this module's errors)."""
    from supervisor.images.archive_write import write_archive as write
    write(images, content, out, platform)
