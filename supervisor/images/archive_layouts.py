"""The two archive layouts, assembled from the blobs read_archive streamed into the store: an OCI
image layout (index.json; also docker 25+, whose manifest.json then adds names) and docker's
(manifest.json: for each image a config, tags and layer tars; a registry manifest is made for
it, as docker's own image store would)."""
import json
import posixpath

from supervisor.content.store import digest_of
from supervisor.images import manifest as mf
from supervisor.images.archive_common import (NAME_ANNOTATION, REF_ANNOTATION, ArchiveError,
                                              Blob, Loaded, json_of, member, name_of)
from supervisor.images.refs import TAG


# -- OCI image layout (also docker 25+) ----------------------------------------------------------
def oci(meta, blobs, links, content, base_name) -> list[Loaded]:
    if "oci-layout" in meta:
        layout = json_of(meta["oci-layout"], "oci-layout")
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
        return [name_of(full, f"index.json: manifest {i} {NAME_ANNOTATION}")]
    if not ref:
        return []
    if "/" not in ref and ":" not in ref and "@" not in ref and TAG.fullmatch(ref):
        # a tag alone (OCI's usual ref.name): a name only with a base to put it on
        return [name_of(f"{base_name}:{ref}", "base name")] if base_name else []
    return [name_of(ref, f"index.json: manifest {i} {REF_ANNOTATION}")]


def _add_repo_tags(meta, blobs, links, content, loaded) -> None:
    by_config = {}
    for image in loaded:
        try:
            by_config[mf.resolve(content, image.target).config_digest] = image
        except mf.ManifestError:
            continue            # _check_image says what is wrong with it
    for i, entry in enumerate(docker_entries(meta)):
        config = member(entry["Config"], blobs, links, f"manifest.json: image {i} Config")
        image = by_config.get(config.digest)
        for name in entry.get("RepoTags") or []:
            name = name_of(name, f"manifest.json: image {i} RepoTags")
            if image is not None and name not in image.names:
                image.names.append(name)


# -- docker-archive ------------------------------------------------------------------------------
def docker_entries(meta) -> list[dict]:
    entries = json_of(meta["manifest.json"], "manifest.json")
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


def docker(meta, blobs, links, content, written) -> list[Loaded]:
    loaded = []
    for i, entry in enumerate(docker_entries(meta)):
        what = f"manifest.json: image {i}"
        config_blob = member(entry["Config"], blobs, links, f"{what} Config")
        named = posixpath.basename(entry["Config"]).removesuffix(".json")
        if mf.ID_HEX.fullmatch(named) and config_blob.digest != "sha256:" + named:
            # docker, podman and skopeo name it by its digest (the image id)
            raise ArchiveError(f"{what}: config {entry['Config']} is corrupt: its digest is "
                               f"{config_blob.digest}")
        config = mf.parse_document(content.read(config_blob.digest), f"{what} config "
                                   f"{entry['Config']}")
        diff_ids = mf.check_config(config, len(entry["Layers"]), f"{what} config")
        layers = [member(p, blobs, links, f"{what} layer {n}")
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
        names = [name_of(t, f"{what} RepoTags") for t in entry.get("RepoTags") or []]
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
