"""Image manifests: media types, an index's choice of platform, and resolve(): from a target
digest in the content store to the manifest, the config and the layers of one platform, every
document checked before anything downstream trusts it (a registry or an archive wrote them)."""
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import NamedTuple

from supervisor.content.store import ContentError, NotFound, check_digest
from supervisor.images.platforms import (PlatformError, host_platform, matches, parse_platform,
                                         select_platform)  # noqa: F401 (PlatformError: theirs)

__all__ = ["ManifestError", "Descriptor", "Resolved", "resolve", "children", "chain_ids",
           "host_platform", "parse_platform", "select_platform", "parse_document", "kind_of"]

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"
OCI_LAYER_ND = "application/vnd.oci.image.layer.nondistributable.v1.tar"
OCI_LAYER_ND_GZIP = OCI_LAYER_ND + "+gzip"
OCI_LAYER_ND_ZSTD = OCI_LAYER_ND + "+zstd"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = DOCKER_LAYER + ".gzip"
DOCKER_LAYER_ZSTD = DOCKER_LAYER + ".zstd"
DOCKER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar"
DOCKER_FOREIGN_GZIP = DOCKER_FOREIGN + ".gzip"
DOCKER_SCHEMA1 = ("application/vnd.docker.distribution.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v1+prettyjws")

INDEXES = frozenset((OCI_INDEX, DOCKER_LIST))
MANIFESTS = frozenset((OCI_MANIFEST, DOCKER_MANIFEST))
CONFIGS = frozenset((OCI_CONFIG, DOCKER_CONFIG))
# layer media type -> its compression ("" for a plain tar)
LAYERS = {OCI_LAYER: "", OCI_LAYER_GZIP: "gzip", OCI_LAYER_ZSTD: "zstd", OCI_LAYER_ND: "",
          OCI_LAYER_ND_GZIP: "gzip", OCI_LAYER_ND_ZSTD: "zstd", DOCKER_LAYER: "",
          DOCKER_LAYER_GZIP: "gzip", DOCKER_LAYER_ZSTD: "zstd", DOCKER_FOREIGN: "",
          DOCKER_FOREIGN_GZIP: "gzip"}
# an index inside an index inside ...: deeper than this is a loop or an attack
MAX_DEPTH = 8
MAX_DOCUMENT = 4 << 20
ID_HEX = re.compile(r"[a-f0-9]{64}")


class ManifestError(ValueError):
    pass


class Descriptor(NamedTuple):
    digest: str
    size: int
    media_type: str


@dataclass
class Resolved:
    target: str                  # what the name points at: an index or a manifest
    media_type: str              # the target's
    manifest_digest: str         # the platform's image manifest
    manifest: dict
    manifest_media_type: str
    config_digest: str
    config: dict
    layers: list[Descriptor] = field(default_factory=list)
    diff_ids: list[str] = field(default_factory=list)

    @property
    def platform(self) -> str:
        c = self.config
        return "/".join(p for p in (c.get("os"), c.get("architecture"), c.get("variant")) if p)


def compression(media_type: str) -> str:
    """"gzip", "zstd" or "" of a layer media type; ManifestError for one not a layer."""
    try:
        return LAYERS[media_type]
    except KeyError:
        raise ManifestError(f"unsupported layer media type {media_type!r}") from None


def chain_ids(diff_ids: list[str]) -> list[str]:
    """OCI's ChainIDs: a layer's identity together with every layer below it."""
    out: list[str] = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else
                   "sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode()).hexdigest())
    return out


def parse_document(data: bytes, what: str) -> dict:
    try:
        doc = json.loads(data)
    except (UnicodeDecodeError, ValueError) as e:
        raise ManifestError(f"{what}: not valid JSON ({e})") from None
    if not isinstance(doc, dict):
        raise ManifestError(f"{what}: not a JSON object")
    return doc


def kind_of(doc: dict, what: str, media_type: str = "") -> str:
    """The media type of an index or a manifest (OCI lets mediaType be absent: the fields say)."""
    mt = doc.get("mediaType") or media_type
    if mt in DOCKER_SCHEMA1 or doc.get("schemaVersion") == 1:
        raise ManifestError(f"{what}: docker image manifest schema 1 is not supported (it is "
                            "deprecated; push the image again with a current docker or skopeo)")
    if doc.get("schemaVersion") != 2:
        raise ManifestError(f"{what}: schemaVersion is {doc.get('schemaVersion')!r}, not 2")
    if not mt or mt in (OCI_INDEX, OCI_MANIFEST) and not doc.get("mediaType"):
        mt = OCI_INDEX if "manifests" in doc else OCI_MANIFEST if "config" in doc else ""
    if mt not in INDEXES and mt not in MANIFESTS:
        raise ManifestError(f"{what}: media type {mt or '(none)'!r} is not an image index nor "
                            "an image manifest")
    return mt


def descriptor(raw, what: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise ManifestError(f"{what}: a descriptor must be an object")
    digest, size, mt = raw.get("digest"), raw.get("size"), raw.get("mediaType")
    try:
        check_digest(digest if isinstance(digest, str) else "")
    except ContentError as e:
        raise ManifestError(f"{what}: {e}") from None
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ManifestError(f"{what} {digest}: size {size!r} is not a byte count")
    if not isinstance(mt, str) or not mt:
        raise ManifestError(f"{what} {digest}: no mediaType")
    return Descriptor(digest, size, mt)


def _read(content, desc: Descriptor | str, what: str) -> bytes:
    digest = desc if isinstance(desc, str) else desc.digest
    try:
        data = content.read(digest, limit=MAX_DOCUMENT)
    except NotFound:
        raise ManifestError(f"{what} {digest} is not in the content store") from None
    except ContentError as e:
        raise ManifestError(f"{what} {digest}: {e}") from None
    if not isinstance(desc, str) and len(data) != desc.size:
        raise ManifestError(f"{what} {digest}: {len(data)} bytes, its descriptor says {desc.size}")
    return data


def check_manifest(doc: dict, what: str) -> tuple[Descriptor, list[Descriptor]]:
    config = descriptor(doc.get("config"), f"{what}: config")
    if config.media_type not in CONFIGS:
        raise ManifestError(f"{what}: config media type {config.media_type!r} is not an image "
                            "config (an artifact, not a container image)")
    raw = doc.get("layers")
    if not isinstance(raw, list):
        raise ManifestError(f"{what}: no layers list")
    layers = [descriptor(r, f"{what}: layer {i}") for i, r in enumerate(raw)]
    for layer in layers:
        if layer.media_type not in LAYERS:
            raise ManifestError(f"{what}: layer {layer.digest} has unsupported media type "
                                f"{layer.media_type!r}")
    return config, layers


def check_config(config: dict, layer_count: int, what: str) -> list[str]:
    """The config's diff_ids, checked against the manifest's layer count."""
    for key in ("os", "architecture"):
        if not isinstance(config.get(key), str) or not config[key]:
            raise ManifestError(f"{what}: no {key}")
    rootfs = config.get("rootfs")
    if not isinstance(rootfs, dict) or rootfs.get("type") != "layers" \
            or not isinstance(rootfs.get("diff_ids"), list):
        raise ManifestError(f"{what}: rootfs must be {{\"type\": \"layers\", \"diff_ids\": [...]}}")
    diff_ids = rootfs["diff_ids"]
    for d in diff_ids:
        try:
            check_digest(d if isinstance(d, str) else "")
        except ContentError as e:
            raise ManifestError(f"{what}: diff_id {e}") from None
    if len(diff_ids) != layer_count:
        raise ManifestError(f"{what}: {len(diff_ids)} diff_ids for {layer_count} layers")
    return list(diff_ids)


def resolve(content, digest: str, platform: str | None = None, name: str = "",
            media_type: str = "") -> Resolved:
    """The image of `platform` (the host's when None) that `digest` names; `name` is only for
    the messages. ManifestError says what is missing or wrong."""
    what = name or digest
    try:
        check_digest(digest)
    except ContentError as e:
        raise ManifestError(f"{what}: {e}") from None
    target_type, current, current_type = "", digest, media_type
    data = _read(content, digest, f"{what}: manifest")
    for _ in range(MAX_DEPTH + 1):      # MAX_DEPTH indexes, then the manifest
        doc = parse_document(data, f"{what}: {current}")
        mt = kind_of(doc, f"{what}: {current}", current_type)
        target_type = target_type or mt
        if mt in MANIFESTS:
            return _image(content, digest, target_type, current, doc, mt, platform, what)
        try:
            entry = select_platform(doc, platform, what)
        except PlatformError as e:
            raise ManifestError(str(e)) from None
        desc = descriptor(entry, f"{what}: index {current} entry")
        current, current_type = desc.digest, desc.media_type
        data = _read(content, desc, f"{what}: manifest")
    raise ManifestError(f"{what}: indexes nested deeper than {MAX_DEPTH}")


def _image(content, target, target_type, digest, doc, mt, platform, what) -> Resolved:
    config_desc, layers = check_manifest(doc, f"{what}: manifest {digest}")
    config = parse_document(_read(content, config_desc, f"{what}: config"),
                            f"{what}: config {config_desc.digest}")
    diff_ids = check_config(config, len(layers), f"{what}: config {config_desc.digest}")
    if target_type in INDEXES and not matches(platform, config["os"], config["architecture"],
                                              str(config.get("variant") or "")):
        # only an index entry without a platform gets here: its config tells
        raise ManifestError(f"no manifest for {parse_platform(platform)} in {what}; it has "
                            f"{config['os']}/{config['architecture']}")
    return Resolved(target, target_type, digest, doc, mt, config_desc.digest, config, layers,
                    diff_ids)


def children(content, digest: str, media_type: str = "") -> list[Descriptor]:
    """The blobs a blob refers to (an index: its manifests; a manifest: config and layers), for
    the garbage collector: absent or unreadable children are the caller's business, and a blob
    that is not such a document (a layer, a config) has none."""
    if media_type in LAYERS or media_type in CONFIGS:
        return []
    try:
        size = content.size(digest)
        if size > MAX_DOCUMENT:
            return []
        with content.open(digest) as f:
            data = f.read()
        doc = json.loads(data)
    except (ContentError, ValueError, UnicodeDecodeError):
        return []
    if not isinstance(doc, dict):
        return []
    out = []
    if isinstance(doc.get("manifests"), list):
        raw = doc["manifests"]
    else:
        raw = [doc.get("config")] + (doc["layers"] if isinstance(doc.get("layers"), list) else [])
    for r in raw:
        try:
            out.append(descriptor(r, digest))
        except ManifestError:
            continue
    return out
