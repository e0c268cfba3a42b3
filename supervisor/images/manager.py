"""hawserd's images: names (images/store.py) over content (content/store.py) and layer snapshots
(snapshots/overlay.py), as containerd's image service over its content store and snapshotter.

Every operation that writes keeps the store consistent whatever interrupts it: blobs are
verified before they are in place, layers become snapshots only once whole (images/unpack.py),
and a name is set last, so a load killed half-way lists nothing new; what it left unreferenced
goes at the next collection (images/gc.py), at the latest when hawserd starts again."""
import logging
import threading

from supervisor.content.store import ContentError, ContentStore
from supervisor.errors import ApiError
from supervisor.images import config as imgconfig
from supervisor.images import gc, initlayer, manifest, refs
from supervisor.images.store import ImageStore
from supervisor.images.unpack import Unpacker, UnpackError
from supervisor.snapshots.layerstream import LayerError
from supervisor.snapshots.overlay import Snapshotter

logger = logging.getLogger("hawserd")
REPO_DIGESTS_LABEL = "hawser/repo-digests"    # on an image name: REPO@DIGEST lines (pull, push)
HEX = frozenset("0123456789abcdef")


class ImageManager:
    def __init__(self, root: str, db_path: str, container_roots):
        """container_roots() -> [(image target, snapshot key)] of every container: what GC
        must keep for them."""
        self.content = ContentStore(root)
        self.images = ImageStore(db_path)
        self.snapshots = Snapshotter(root, db_path)
        self.leases = gc.Leases()
        self.content.on_commit = self.leases.note_blob
        self.unpacker = Unpacker(self.content, self.snapshots, self.leases)
        self.container_roots = container_roots
        self.platform = manifest.host_platform()
        self.gc_lock = threading.Lock()
        self._resolved: dict[str, object] = {}    # target -> Resolved (content is immutable)

    def startup(self) -> None:
        """Before serving: what a crash left (ingests, extracts, unreferenced content) goes."""
        self.content.clean_ingests()
        self.snapshots.cleanup()
        self.collect()

    # -- lookup ---------------------------------------------------------------------------------
    def resolve(self, target: str):
        res = self._resolved.get(target)
        if res is None:
            try:
                res = manifest.resolve(self.content, target, self.platform)
            except (manifest.ManifestError, ContentError) as e:
                raise ApiError("FAILED_PRECONDITION", f"image {target}: {e}") from None
            self._resolved[target] = res
        return res

    def find(self, ref: str) -> dict:
        """The image record a reference names, as docker looks it up: a name (normalized), else
        an image id or a unique prefix of it (with or without sha256:), or a target digest."""
        if not ref:
            raise ApiError("INVALID_ARGUMENT", "no image given")
        hexpart = ref[7:] if ref.startswith("sha256:") else ref
        is_hex = bool(hexpart) and HEX.issuperset(hexpart)
        name_error = None
        if not (ref.startswith("sha256:") or (is_hex and len(hexpart) == 64)):
            try:
                rec = self.images.get(refs.parse(ref).name)
                if rec is not None:
                    return rec
            except refs.ReferenceError as e:
                name_error = e
        if is_hex:
            by_id = self._by_id_prefix(hexpart)
            if len(by_id) == 1:
                return by_id[0]
            if len(by_id) > 1:
                raise ApiError("INVALID_ARGUMENT", f"{ref!r} matches {len(by_id)} images: give "
                                                   "more of the id")
        elif name_error is not None:
            raise ApiError("INVALID_ARGUMENT", f"invalid reference {ref!r}: {name_error}")
        raise ApiError("NOT_FOUND", f"no such image: {ref}")

    def _by_id_prefix(self, hexpart: str) -> list[dict]:
        """One record per image whose id or target starts with hexpart (its first name)."""
        out = {}
        for rec in self.images.list():
            try:
                ids = (self.resolve(rec["target"]).config_digest, rec["target"])
            except ApiError:
                ids = (rec["target"],)
            if any(i.partition(":")[2].startswith(hexpart) for i in ids):
                out.setdefault(ids[0], rec)
        return list(out.values())

    def describe(self, rec: dict) -> dict:
        """What the API says of an image name: Image's fields."""
        res = self.resolve(rec["target"])
        names = [r["name"] for r in self.images.list()
                 if r["target"] == rec["target"] or self._id_of(r) == res.config_digest]
        names = [rec["name"]] + sorted(n for n in names if n != rec["name"])
        digests = []
        for r in self.images.list():
            if r["name"] in names:
                digests += [d for d in ((r.get("labels") or {}).get(REPO_DIGESTS_LABEL) or "")
                            .split() if d not in digests]
        blob_size = self.content.size(res.manifest_digest) + \
            self.content.size(res.config_digest) + sum(d.size for d in res.layers)
        return {"name": rec["name"], "target": rec["target"], "media_type": rec["media_type"],
                "id": res.config_digest, "size": self.unpacker.size(res),
                "created": created_seconds(res.config), "updated": rec.get("updated") or 0.0,
                "config": self.content.read(res.config_digest),
                "repo_tags": [n for n in names if not _dangling(n)], "repo_digests": digests,
                "manifest": res.manifest_digest, "content_size": blob_size}

    def named(self, manifest_digest: str) -> bool:
        """Whether an image name still leads to this manifest."""
        for r in self.images.list():
            if r["target"] == manifest_digest:
                return True
            try:
                if self.resolve(r["target"]).manifest_digest == manifest_digest:
                    return True
            except ApiError:
                pass
        return False

    def _id_of(self, rec: dict) -> str:
        try:
            return self.resolve(rec["target"]).config_digest
        except ApiError:
            return ""

    # -- names ----------------------------------------------------------------------------------
    def tag(self, source: str, target: str) -> dict:
        rec = self.find(source)
        try:
            name = refs.parse(target).name
        except refs.ReferenceError as e:
            raise ApiError("INVALID_ARGUMENT", f"invalid reference {target!r}: {e}") from None
        self.images.put(name, rec["target"], rec["media_type"], rec.get("size") or 0)
        self._drop_dangling(rec["target"])
        return self.images.get(name)

    def set_name(self, name: str, target: str, media_type: str, labels=None) -> dict:
        size = self.content.size(target)
        self.images.put(name, target, media_type, size, labels=labels)
        if not _dangling(name):
            self._drop_dangling(target)
        return self.images.get(name)

    def _drop_dangling(self, target: str) -> None:
        """An image that has a name needs no id-only record."""
        for r in self.images.list():
            if r["target"] == target and _dangling(r["name"]):
                self.images.delete(r["name"])

    def delete(self, ref: str, force: bool) -> tuple[list, list]:
        """(names removed, digests collected), as `docker rmi`."""
        rec = self.find(ref)
        image_id = self._id_of(rec)
        by_id = ref.startswith("sha256:") or not _looks_like_name(ref, rec)
        names = [r["name"] for r in self.images.list() if self._id_of(r) == image_id] \
            if by_id else [rec["name"]]
        if by_id and len([n for n in names if not _dangling(n)]) > 1 and not force:
            raise ApiError("FAILED_PRECONDITION", f"conflict: unable to delete {ref} (must be "
                                                  f"forced): image is referenced in multiple "
                                                  f"repositories")
        users = [t for t, _ in self.container_roots() if t == rec["target"]
                 or (t and self._id_of({"target": t}) == image_id)]
        others = [r for r in self.images.list() if r["name"] not in names
                  and self._id_of(r) == image_id]
        if users and not others and not force:
            raise ApiError("FAILED_PRECONDITION", f"conflict: unable to remove {ref} (must be "
                                                  f"forced): a container is using it")
        for n in names:
            self.images.delete(n)
        blobs, snaps = self.collect()
        # docker's lines: the image id, then its layers (their chain ids)
        deleted = ([image_id] if image_id in blobs else []) + \
            [k for k in snaps if k.startswith("sha256:")]
        return [n for n in names if not _dangling(n)], deleted

    # -- collection -----------------------------------------------------------------------------
    def collect(self) -> tuple[list, list]:
        with self.gc_lock:
            blobs, snaps = gc.collect(self.content, self.images, self.snapshots, self.leases,
                                      self.container_roots())
        for digest in blobs:
            self._resolved.pop(digest, None)
        return blobs, snaps

    # -- images from content ---------------------------------------------------------------------
    def add(self, names: list[str], target: str, media_type: str, progress=None,
            labels=None) -> list[dict]:
        """An image whose blobs are in the store: resolved for this platform, unpacked, named
        (an id-only record when it has no name). Under a lease."""
        res = self.resolve(target)
        try:
            self.unpacker.unpack(res, progress)
        except ApiError:
            raise
        except (LayerError, UnpackError) as e:    # the image's own content is wrong
            raise ApiError("RESOURCE_EXHAUSTED" if disk_full(e) else "INVALID_ARGUMENT",
                           f"unpack of {target}: {e}") from None
        except Exception as e:
            raise ApiError("RESOURCE_EXHAUSTED" if disk_full(e) else "FAILED_PRECONDITION",
                           f"unpack of {target}: {e}") from None
        out = []
        for name in names or [target]:
            out.append(self.set_name(name, target, media_type, labels))
        return out

    def rootfs(self, key: str, target: str) -> None:
        """A container's writable snapshot (key) on the layers of the image manifest target;
        unpacks the layers a crash or a commit left not unpacked."""
        res = self.resolve(target)
        with self.leases:
            chains = self.unpacker.unpack(res)
            if self.snapshots.stat(key) is None:
                init = initlayer.ensure(self.snapshots, chains[-1] if chains else "")
                self.leases.note_snapshot(init)
                self.snapshots.prepare(key, init, labels={"hawser/container": key})

    def remove_rootfs(self, key: str) -> None:
        if key and self.snapshots.stat(key) is not None:
            self.snapshots.remove(key)

    def reader(self, res):
        """read(path) -> text or None of the image's root filesystem, from its layers."""
        with self.leases:
            chains = self.unpacker.unpack(res)
        dirs = [self.snapshots.upper(chains[-1])] + self.snapshots.lowers(chains[-1]) \
            if chains else []
        return lambda path: imgconfig.read_layered(dirs, path)


def disk_full(e: BaseException) -> bool:
    """Whether a full disk is behind an error (readers word ENOSPC as their own errors)."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno == 28:
            return True
        e = e.__cause__ or e.__context__
    return False


def _dangling(name: str) -> bool:
    """An id-only record: its name is its target digest."""
    return name.startswith("sha256:")


def _looks_like_name(ref: str, rec: dict) -> bool:
    try:
        return refs.parse(ref).name == rec["name"]
    except refs.ReferenceError:
        return False


def created_seconds(config: dict) -> float:
    """The config's "created" (RFC 3339) in epoch seconds; 0 when it has none."""
    from datetime import datetime
    text = config.get("created") or ""
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() if text else 0.0
    except ValueError:
        return 0.0
