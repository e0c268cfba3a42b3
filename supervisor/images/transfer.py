"""Images in and out of hawserd: archives (docker load/save, OCI archives), root filesystem
tarballs (docker import) and registries (pull/push). Each takes the manager's lease while it
writes, so what it has written is not collected before its name exists; a failure leaves no
name, and what it wrote goes at the next collection."""
from supervisor.content.store import ContentError
from supervisor.errors import ApiError
from supervisor.images import archive, manifest, refs, rootfs
from supervisor.images.manager import REPO_DIGESTS_LABEL, ImageManager, disk_full


def collect_after_failure(fn):
    """What a failed operation wrote goes once its lease is closed (a crash: at start-up)."""
    def wrapper(mgr, *args):
        try:
            return fn(mgr, *args)
        except BaseException:
            try:
                mgr.collect()
            except Exception:
                pass
            raise
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


@collect_after_failure
def load(mgr: ImageManager, stream, progress) -> list[dict]:
    """Every image of a docker-archive or OCI archive; the names set (records)."""
    out = []
    with mgr.leases:
        try:
            loaded = archive.read_archive(stream, mgr.content, progress=_status(progress))
        except (archive.ArchiveError, ContentError) as e:
            raise ApiError("RESOURCE_EXHAUSTED" if disk_full(e) else "INVALID_ARGUMENT",
                           f"load: {e}") from None
        except OSError as e:
            raise ApiError("RESOURCE_EXHAUSTED" if e.errno == 28 else "INTERNAL",
                           f"load: {e.strerror or e}") from None
        try:
            for item in loaded:
                out += mgr.add(list(item.names), item.target, item.media_type, progress)
        except OSError as e:
            raise ApiError("RESOURCE_EXHAUSTED" if e.errno == 28 else "INTERNAL",
                           f"load: {e.strerror or e}") from None
    if not loaded:
        raise ApiError("INVALID_ARGUMENT", "load: the archive has no image")
    return out


def save(mgr: ImageManager, names: list[str], out) -> None:
    """A tar of the images named, readable by docker/podman load and ctr images import."""
    if not names:
        raise ApiError("INVALID_ARGUMENT", "save: no image given")
    items = []
    for ref in names:
        rec = mgr.find(ref)
        items.append(("" if rec["name"].startswith("sha256:") else rec["name"], rec["target"]))
    archive.write_archive(items, mgr.content, out, platform=mgr.platform)


@collect_after_failure
def import_tar(mgr: ImageManager, stream, name: str, changes, message: str, progress) -> dict:
    """A one-layer image of a root filesystem tarball, named (or id-only when name is "")."""
    full = _name(name) if name else ""
    with mgr.leases:
        try:
            target, media_type = rootfs.import_rootfs(stream, mgr.content, changes=changes,
                                                      message=message, platform=mgr.platform)
        except ValueError as e:
            raise ApiError("RESOURCE_EXHAUSTED" if disk_full(e) else "INVALID_ARGUMENT",
                           f"import: {e}") from None
        except OSError as e:
            raise ApiError("RESOURCE_EXHAUSTED" if e.errno == 28 else "INVALID_ARGUMENT",
                           f"import: {e.strerror or e}") from None
        return mgr.add([full] if full else [], target, media_type, progress)[0]


@collect_after_failure
def pull(mgr: ImageManager, ref: str, auth, platform: str, progress) -> dict:
    from supervisor.registry import RegistryError, client as registry, pull as puller
    parsed = _ref(ref)
    if platform and platform != mgr.platform:
        raise ApiError("INVALID_ARGUMENT", f"pull --platform {platform}: this daemon runs "
                                           f"{mgr.platform} only")
    with mgr.leases:
        try:
            cl = registry.RegistryClient(parsed.domain, auth=auth)
            result = puller.pull(parsed, mgr.content, cl, platform=mgr.platform,
                                 progress=progress)
        except RegistryError as e:
            raise ApiError(e.grpc_code, f"pull {parsed.familiar}: {e}") from None
        except (manifest.ManifestError, ContentError) as e:
            raise ApiError("FAILED_PRECONDITION", f"pull {parsed.familiar}: {e}") from None
        except OSError as e:
            raise ApiError("RESOURCE_EXHAUSTED" if e.errno == 28 else "UNAVAILABLE",
                           f"pull {parsed.familiar}: {e.strerror or e}") from None
        old = mgr.images.get(parsed.name)
        digests = _repo_digests(old, f"{parsed.repository}@{result.target}")
        rec = mgr.add([parsed.name], result.target, result.media_type, progress,
                      labels={REPO_DIGESTS_LABEL: digests})[0]
    if progress:
        progress("", f"Status: Downloaded newer image for {parsed.familiar}"
                 if old is None or old["target"] != result.target
                 else f"Status: Image is up to date for {parsed.familiar}", 0, 0)
    return rec


def push(mgr: ImageManager, ref: str, auth, progress) -> str:
    from supervisor.registry import RegistryError, client as registry, push as pusher
    parsed = _ref(ref)
    rec = mgr.find(parsed.name)
    try:
        cl = registry.RegistryClient(parsed.domain, auth=auth)
        digest = pusher.push(parsed, rec["target"], mgr.content, cl, progress=progress,
                             mount_from=_mount_source(mgr, parsed))
    except RegistryError as e:
        raise ApiError(e.grpc_code, f"push {parsed.familiar}: {e}") from None
    except (manifest.ManifestError, ContentError) as e:
        raise ApiError("FAILED_PRECONDITION", f"push {parsed.familiar}: {e}") from None
    except OSError as e:
        raise ApiError("UNAVAILABLE", f"push {parsed.familiar}: {e.strerror or e}") from None
    mgr.images.put(rec["name"], rec["target"], rec["media_type"], rec.get("size") or 0,
                   labels={**(rec.get("labels") or {}), REPO_DIGESTS_LABEL: _repo_digests(
                       rec, f"{parsed.repository}@{digest}")})
    return digest


def _mount_source(mgr: ImageManager, ref) -> str | None:
    """A repository of the same registry that images here came from (pulled or pushed): the
    registry can mount the layers they share instead of our uploading them, as docker does."""
    for rec in mgr.images.list():
        for line in ((rec.get("labels") or {}).get(REPO_DIGESTS_LABEL) or "").split():
            repo = line.rpartition("@")[0]
            domain, _, path = repo.partition("/")
            if domain == ref.domain and path and path != ref.path:
                return path
    return None


def _repo_digests(rec: dict | None, new: str) -> str:
    have = ((rec or {}).get("labels") or {}).get(REPO_DIGESTS_LABEL, "").split()
    return " ".join(have + [new] if new not in have else have)


def _ref(text: str):
    try:
        r = refs.parse(text)
    except refs.ReferenceError as e:
        raise ApiError("INVALID_ARGUMENT", f"invalid reference {text!r}: {e}") from None
    return r


def _name(text: str) -> str:
    return _ref(text).name


def _status(progress):
    """archive's progress(status, offset, total) as one line the display rewrites in place:
    the bytes of the archive read so far (its blobs are hashed into the store as they pass)."""
    if progress is None:
        return None
    return lambda status, current=0, total=0: progress("archive", "Loading", current, total)
