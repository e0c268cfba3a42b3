"""Garbage collection of blobs and snapshots, as containerd's metadata GC: what no image name and
no container reaches goes. The roots are the images' targets and the containers' images and
writable snapshots; from a target, an index reaches its manifests (those present), a manifest
its config and layers, and a resolvable manifest the committed snapshots of its layers' chain
ids, which reach their parents.

Operations under way (a load, a pull, an unpack, a commit) hold a lease: what the content store
commits and the snapshots they commit while any lease is open are spared until the last lease
closes, by when their image name exists (or the operation failed and the next collection takes
them). Unpacks in progress are active snapshots labelled hawser/extract: never collected here
(Snapshotter.cleanup() takes those a crash left, at start-up)."""
import json
import logging
import threading

from supervisor.images import manifest

logger = logging.getLogger("hawserd")
EXTRACT_LABEL = "hawser/extract"


class Leases:
    def __init__(self):
        self.lock = threading.Lock()
        self.open = 0
        self.blobs: set[str] = set()
        self.snapshots: set[str] = set()

    def note_blob(self, digest: str) -> None:
        with self.lock:
            if self.open:
                self.blobs.add(digest)

    def note_snapshot(self, key: str) -> None:
        with self.lock:
            if self.open:
                self.snapshots.add(key)

    def spared(self) -> tuple[set, set]:
        with self.lock:
            return set(self.blobs), set(self.snapshots)

    def __enter__(self):
        with self.lock:
            self.open += 1
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.open -= 1
            if not self.open:
                self.blobs.clear()
                self.snapshots.clear()


def collect(content, images, snapshots, leases: Leases, container_roots) -> tuple[list, list]:
    """Remove what nothing reaches; (blob digests removed, snapshot keys removed).
    container_roots: [(image target digest or "", snapshot key or "")] of every container."""
    spared_blobs, spared_snaps = leases.spared()
    blobs = [d for d, _ in content.list()]
    infos = snapshots.list()
    roots = [r["target"] for r in images.list()] + [t for t, _ in container_roots if t]
    reached, manifests = _reach_blobs(content, roots)
    keep = set(spared_snaps) | {k for _, k in container_roots if k}
    for digest in manifests:
        try:
            res = manifest.resolve(content, digest)
        except Exception:      # a manifest whose config is gone reaches no snapshot
            continue
        keep.update(manifest.chain_ids(res.diff_ids))
    by_key = {i.key: i for i in infos}
    for key in list(keep):     # parents of what is kept
        parent = by_key[key].parent if key in by_key else ""
        while parent and parent not in keep:
            keep.add(parent)
            parent = by_key[parent].parent if parent in by_key else ""
    removed_snaps = _remove_snapshots(snapshots, infos, keep)
    removed_blobs = []
    for digest in blobs:
        if digest not in reached and digest not in spared_blobs and content.delete(digest):
            removed_blobs.append(digest)
    if removed_blobs or removed_snaps:
        logger.info("gc: removed %d blobs, %d snapshots", len(removed_blobs), len(removed_snaps))
    return removed_blobs, removed_snaps


INDEX_TYPES = ("application/vnd.oci.image.index.v1+json",
               "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json",
                  "application/vnd.docker.distribution.manifest.v2+json")


def _reach_blobs(content, roots) -> tuple[set, list]:
    """Every digest the roots (manifests or indexes) reach, and the manifests among them. Only
    what a descriptor says is an index or a manifest is read (a root, always: it is one)."""
    reached, manifests = set(), []
    todo = [(d, None) for d in roots]
    while todo:
        digest, media_type = todo.pop()
        if digest in reached:
            continue
        reached.add(digest)
        if media_type is not None and media_type not in INDEX_TYPES + MANIFEST_TYPES:
            continue
        try:
            doc = json.loads(content.read(digest, limit=4 << 20))
        except Exception:      # absent or not JSON: a leaf
            continue
        if not isinstance(doc, dict):
            continue
        if isinstance(doc.get("config"), dict):
            manifests.append(digest)
            kids = [doc["config"]] + list(doc.get("layers") or ())
        else:
            kids = list(doc.get("manifests") or ())
        todo.extend((k["digest"], k.get("mediaType")) for k in kids
                    if isinstance(k, dict) and isinstance(k.get("digest"), str))
    return reached, manifests


def _remove_snapshots(snapshots, infos, keep: set) -> list[str]:
    """Unkept snapshots, children before their parents; active ones only when a container's
    (they are in keep otherwise) is not what they are: extracts under way stay."""
    candidates = {i.key: i for i in infos if i.key not in keep
                  and not (i.kind == "active" and (i.labels or {}).get(EXTRACT_LABEL))}
    removed = []
    progress = True
    while candidates and progress:
        progress = False
        parents = {i.parent for i in snapshots.list()}
        for key in [k for k in candidates if k not in parents]:
            try:
                snapshots.remove(key)
                removed.append(key)
            except Exception as e:     # in use after all (a new child): the next collection
                logger.warning("gc: snapshot %s stays: %s", key, e)
            candidates.pop(key)
            progress = True
    return removed
