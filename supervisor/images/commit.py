"""`docker commit`: a container's writable layer as a new layer on top of its image. The upper
directory becomes an OCI layer tar (overlay whiteouts back to .wh. entries: snapshots/diff.py),
gzip-compressed into the content store while both digests are computed; the new config is the
image's with the container's own settings (Cmd, Entrypoint, Env, WorkingDir, User, ports,
volumes, labels, stop signal), the changes given, one more diff id and history entry; the
manifest keeps the base image's format (docker or OCI) with the new layer last."""
import copy
import json
import time
import zlib

from supervisor.errors import ApiError
from supervisor.images import rootfs
from supervisor.images.manager import ImageManager

OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
HIDDEN_LABELS = ("hawser.",)     # hawserd's own container labels stay out of images


def commit(mgr: ImageManager, rec: dict, name: str, changes, message: str, author: str) -> dict:
    """The new image's record (named, or id-only when name is "")."""
    if not rec.get("snapshot"):
        raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} runs from a root "
                                              "filesystem directory, not an image: nothing to "
                                              "commit onto")
    base = mgr.resolve(rec["image_target"])
    full = ""
    if name:
        from supervisor.images import refs
        try:
            full = refs.parse(name).name
        except refs.ReferenceError as e:
            raise ApiError("INVALID_ARGUMENT", f"invalid reference {name!r}: {e}") from None
    config = copy.deepcopy(base.config)
    _container_settings(config, rec)
    try:
        rootfs.apply_changes(config, changes)
    except ValueError as e:
        raise ApiError("INVALID_ARGUMENT", f"commit --change: {e}") from None
    docker = base.manifest.get("mediaType") == DOCKER_MANIFEST
    with mgr.leases:
        layer = _write_layer(mgr, rec["snapshot"], DOCKER_LAYER if docker else OCI_LAYER)
        created = _rfc3339(time.time())
        config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
        config["rootfs"]["diff_ids"] = list(base.diff_ids) + [layer.pop("diff_id")]
        config["created"] = created
        if author:
            config["author"] = author
        entry = {"created": created, "created_by": " ".join(
            rec["config"].get("entrypoint", []) + rec["config"].get("args", []))}
        if message:
            entry["comment"] = message
        if author:
            entry["author"] = author
        config.setdefault("history", []).append(entry)
        config_bytes = json.dumps(config, separators=(",", ":")).encode()
        config_digest = mgr.content.put(config_bytes)
        body = {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST if docker else OCI_MANIFEST,
                "config": {"mediaType": DOCKER_CONFIG if docker else OCI_CONFIG,
                           "digest": config_digest, "size": len(config_bytes)},
                "layers": list(base.manifest.get("layers") or ()) + [layer]}
        target = mgr.content.put(json.dumps(body, separators=(",", ":")).encode())
        return mgr.add([full] if full else [], target, body["mediaType"])[0]


def _container_settings(config: dict, rec: dict) -> None:
    c = rec["config"]
    cfg = config.setdefault("config", {})
    cfg["Cmd"] = list(c.get("args") or ()) or None
    cfg["Entrypoint"] = list(c.get("entrypoint") or ()) or None
    cfg["Env"] = list(c.get("env") or ())
    if c.get("cwd") and c["cwd"] != "/":
        cfg["WorkingDir"] = c["cwd"]
    if c.get("user"):
        cfg["User"] = c["user"]
    if c.get("stop_signal") and c["stop_signal"] != "SIGTERM":
        cfg["StopSignal"] = c["stop_signal"]
    if c.get("exposed_ports"):
        cfg["ExposedPorts"] = {p: {} for p in c["exposed_ports"]}
    if c.get("volumes"):
        cfg["Volumes"] = {v: {} for v in c["volumes"]}
    labels = {k: v for k, v in (rec.get("labels") or {}).items()
              if not k.startswith(HIDDEN_LABELS)}
    if labels:
        cfg["Labels"] = labels
    for key in [k for k, v in cfg.items() if v is None]:
        del cfg[key]


class _GzipInto:
    """A file-like that gzips what it is given into a content writer."""

    def __init__(self, writer):
        self.writer = writer
        self.z = zlib.compressobj(6, zlib.DEFLATED, 31)

    def write(self, data) -> int:
        out = self.z.compress(data)
        if out:
            self.writer.write(out)
        return len(data)

    def close(self) -> None:
        self.writer.write(self.z.flush())


def _write_layer(mgr: ImageManager, key: str, media_type: str) -> dict:
    from supervisor.snapshots import diff
    upper, lowers = mgr.snapshots.upper(key), mgr.snapshots.lowers(key)
    with mgr.content.writer() as w:
        gz = _GzipInto(w)
        diff_id = diff.write_layer(upper, lowers, gz)
        gz.close()
        size = w.offset
        digest = w.commit()
    return {"mediaType": media_type, "digest": digest, "size": size, "diff_id": diff_id}


def _rfc3339(t: float) -> str:
    secs = int(t)
    nanos = int((t - secs) * 1e9)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{nanos:09d}Z"


def changes(mgr: ImageManager, rec: dict) -> list[tuple[str, str]]:
    """docker diff: (kind, path) of what the container changed against its image."""
    if not rec.get("snapshot"):
        raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} runs from a root "
                                              "filesystem directory: it has no image to "
                                              "compare with")
    if mgr.snapshots.stat(rec["snapshot"]) is None:
        return []
    from supervisor.snapshots import diff
    return diff.changes(mgr.snapshots.upper(rec["snapshot"]),
                        mgr.snapshots.lowers(rec["snapshot"]))

