"""Container images made from the conftest busybox rootfs, without a registry or a network:
a plain tar of the rootfs (for `podman import`) and an OCI image-layout archive (for
`ctr images import`), both built here with tarfile/gzip/hashlib."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import platform
import tarfile
from pathlib import Path

MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "ppc64le",
            "s390x": "s390x", "riscv64": "riscv64"}.get(machine, machine)


def _normalise(info: tarfile.TarInfo) -> tarfile.TarInfo:
    """Reproducible, root-owned entries (the rootfs copy may belong to whoever built it)."""
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    info.mtime = 0
    return info


def rootfs_tar_bytes(rootfs: Path) -> bytes:
    """An uncompressed tar of the rootfs, paths relative to its top ("bin/busybox", ...)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for dirpath, dirnames, filenames in os.walk(rootfs):
            dirnames.sort()
            rel_dir = os.path.relpath(dirpath, rootfs)
            for name in sorted(dirnames) + sorted(filenames):
                full = os.path.join(dirpath, name)
                arcname = name if rel_dir == "." else os.path.join(rel_dir, name)
                info = _normalise(tar.gettarinfo(full, arcname))
                if info.isreg():
                    with open(full, "rb") as f:
                        tar.addfile(info, f)
                else:
                    tar.addfile(info)
    return buf.getvalue()


def write_rootfs_tar(rootfs: Path, dest: Path) -> Path:
    dest.write_bytes(rootfs_tar_bytes(rootfs))
    return dest


def _blob(blobs: dict[str, bytes], data: bytes) -> tuple[str, int]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return digest, len(data)


def write_oci_archive(rootfs: Path, dest: Path, name: str, cmd=("sh",)) -> Path:
    """An OCI image-layout tar (oci-layout, index.json, blobs/sha256/...) with one gzip layer.
    `name` (e.g. "docker.io/library/hawser-busybox:test") is set as io.containerd.image.name, so
    `ctr images import` stores the image under it."""
    layer_tar = rootfs_tar_bytes(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as f:
        f.write(layer_tar)
    blobs: dict[str, bytes] = {}
    layer_digest, layer_size = _blob(blobs, gz.getvalue())
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": _arch(),
        "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hawser tests/images.py"}],
    }
    config_digest, config_size = _blob(blobs, json.dumps(config, sort_keys=True).encode())
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer_digest, "size": layer_size}],
    }
    manifest_digest, manifest_size = _blob(blobs, json.dumps(manifest, sort_keys=True).encode())
    tag = name.rsplit(":", 1)[1] if ":" in name.rsplit("/", 1)[-1] else "latest"
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [{
            "mediaType": MEDIA_MANIFEST, "digest": manifest_digest, "size": manifest_size,
            "platform": {"architecture": _arch(), "os": "linux"},
            "annotations": {"io.containerd.image.name": name,
                            "org.opencontainers.image.ref.name": tag},
        }],
    }
    files = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps(index, sort_keys=True).encode()}
    for digest, data in blobs.items():
        files["blobs/sha256/" + digest.split(":", 1)[1]] = data
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = _normalise(tarfile.TarInfo(d))
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for path, data in files.items():
            info = _normalise(tarfile.TarInfo(path))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest


def write_docker_archive(rootfs: Path, dest: Path, name: str, cmd=("sh",)) -> Path:
    """A `docker save` archive (manifest.json, repositories, <config>.json, <id>/layer.tar) with
    one uncompressed layer, loadable with `docker load` of dockerd 20.10 (which does not read OCI
    archives). `name` is "repo:tag", e.g. "hawser-busybox:test"."""
    layer_tar = rootfs_tar_bytes(rootfs)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    config = {
        "created": "1970-01-01T00:00:00Z",
        "architecture": _arch(),
        "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": list(cmd), "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": "1970-01-01T00:00:00Z", "created_by": "hawser tests/images.py"}],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    layer_id = hashlib.sha256(diff_id.encode()).hexdigest()   # any unique directory name
    repo, _, tag = name.rpartition(":")
    files = {
        config_name: config_bytes,
        f"{layer_id}/VERSION": b"1.0",
        f"{layer_id}/json": json.dumps({"id": layer_id}).encode(),
        f"{layer_id}/layer.tar": layer_tar,
        "manifest.json": json.dumps([{"Config": config_name, "RepoTags": [name],
                                      "Layers": [f"{layer_id}/layer.tar"]}]).encode(),
        "repositories": json.dumps({repo: {tag: layer_id}}).encode(),
    }
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        info = _normalise(tarfile.TarInfo(layer_id))
        info.type, info.mode = tarfile.DIRTYPE, 0o755
        tar.addfile(info)
        for path, data in files.items():
            info = _normalise(tarfile.TarInfo(path))
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return dest
