"""Image archives out, one tar that both kinds of loader read: docker's (manifest.json with
Config/RepoTags/Layers paths: `docker load`, `podman load`) and containerd's (an OCI image layout,
oci-layout + index.json with name annotations: `ctr images import`), each blob once under
blobs/sha256/, written front to back (out may be a pipe). Everything is resolved and checked
before the first byte goes out, so a missing blob fails without a half-written archive."""
import json
import tarfile

from supervisor.content.store import ContentError
from supervisor.images import manifest as mf
from supervisor.images.archive_common import NAME_ANNOTATION, REF_ANNOTATION, ArchiveError
from supervisor.images.refs import ReferenceError, parse

CHUNK = 1 << 20
BLOCK = 512


def write_archive(images, content, out, platform: str | None = None) -> None:
    """images: [(name or "", target digest)]. An index target is written as its platform's
    manifest (the index's other children need not be in the store)."""
    plan = [_plan(name, target, content, platform) for name, target in images]
    if not plan:
        raise ArchiveError("save: no image given")
    blobs: dict[str, int] = {}
    for _, res in plan:
        for desc in [*res.layers, mf.Descriptor(res.config_digest, 0, ""),
                     mf.Descriptor(res.manifest_digest, 0, "")]:
            blobs.setdefault(desc.digest, content.size(desc.digest))
    index, docker = _index(plan, content), _docker_manifest(plan)
    _directory(out, "blobs/")
    _directory(out, "blobs/sha256/")
    for digest, size in blobs.items():
        _blob(out, content, digest, size)
    _file(out, "oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode())
    _file(out, "index.json", json.dumps(index).encode())
    _file(out, "manifest.json", json.dumps(docker).encode())
    out.write(bytes(2 * BLOCK))          # the end-of-archive blocks
    out.flush()


def _plan(name: str, target: str, content, platform):
    what = name or target
    try:
        ref = parse(name) if name else None
    except ReferenceError as e:
        raise ArchiveError(f"save: {e}") from None
    try:
        res = mf.resolve(content, target, platform, name=what)
    except mf.ManifestError as e:
        raise ArchiveError(f"save {what}: {e}") from None
    for n, layer in enumerate(res.layers):
        try:
            size = content.size(layer.digest)
        except ContentError:
            raise ArchiveError(f"save {what}: layer {n} ({layer.digest}) is not in the content "
                               "store") from None
        if size != layer.size:
            raise ArchiveError(f"save {what}: layer {n} ({layer.digest}) is {size} bytes, its "
                               f"manifest says {layer.size}")
    return ref, res


def _index(plan, content) -> dict:
    manifests = []
    for ref, res in plan:
        desc = {"mediaType": res.manifest_media_type, "digest": res.manifest_digest,
                "size": content.size(res.manifest_digest),
                "platform": {k: res.config[k] for k in ("architecture", "os", "variant")
                             if res.config.get(k)}}
        if ref is not None:
            # containerd names the image by the first; OCI tools by the second (a tag, or the
            # whole reference when there is no tag)
            desc["annotations"] = {NAME_ANNOTATION: ref.name,
                                   REF_ANNOTATION: ref.tag or ref.name}
        manifests.append(desc)
    return {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": manifests}


def _docker_manifest(plan) -> list[dict]:
    """One entry per image (config), its tags gathered: docker load's manifest.json."""
    entries: dict[str, dict] = {}
    for ref, res in plan:
        entry = entries.setdefault(res.manifest_digest, {
            "Config": _path(res.config_digest), "RepoTags": [],
            "Layers": [_path(layer.digest) for layer in res.layers]})
        # the full name: docker reads it as its own familiar form, and podman would put a
        # familiar one under localhost/
        tag = f"{ref.repository}:{ref.tag}" if ref is not None and ref.tag else ""
        if tag and tag not in entry["RepoTags"]:
            entry["RepoTags"].append(tag)
    return list(entries.values())


def _path(digest: str) -> str:
    return "blobs/sha256/" + digest.partition(":")[2]


def _header(name: str, size: int, type_=tarfile.REGTYPE, mode: int = 0o444) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.type, info.mode, info.mtime = size, type_, mode, 0
    info.uname = info.gname = "root"
    return info.tobuf(format=tarfile.PAX_FORMAT)


def _directory(out, name: str) -> None:
    out.write(_header(name, 0, tarfile.DIRTYPE, 0o755))


def _file(out, name: str, data: bytes) -> None:
    out.write(_header(name, len(data)))
    out.write(data)
    out.write(bytes(-len(data) % BLOCK))


def _blob(out, content, digest: str, size: int) -> None:
    out.write(_header(_path(digest), size))
    left = size
    with content.open(digest) as f:
        while left:
            chunk = f.read(min(CHUNK, left))
            if not chunk:
                # blobs are immutable: one shrinking now is a broken store, not a short archive
                raise ArchiveError(f"save: blob {digest} ended {left} bytes early")
            out.write(chunk)
            left -= len(chunk)
    out.write(bytes(-size % BLOCK))
