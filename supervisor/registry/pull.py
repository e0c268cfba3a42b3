"""Pull: a registry's image into the content store, as containerd does it. The target (an index
or a manifest) is stored as the registry sent it; of an index, only the manifest of the
platform asked for; then that manifest's config and its layers, three downloads at once, each
blob verified as it is committed. Blobs the store has already are not fetched again, and a
download a broken pull left in a named ingest is resumed where it stopped."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from supervisor.content.store import DigestMismatch, digest_of
from supervisor.images import manifest as mf
from supervisor.images.platforms import PlatformError, matches, parse_platform

# docker's max-concurrent-downloads
CONCURRENT_DOWNLOADS = 3
# a layer's "Downloading" line is sent at most this often (and at its end)
PROGRESS_INTERVAL = 0.1


class PullResult(NamedTuple):
    target: str              # what the reference names: an index or a manifest
    media_type: str          # the target's
    manifest_digest: str     # the platform's image manifest (the target itself when no index)
    size: int                # the target's size


class _Cancelled(Exception):
    """Another download failed: this one stops (its ingest is kept for the next pull)."""


def short_id(digest: str) -> str:
    """A layer's id in progress lines: docker's 12 hex digits."""
    return digest.partition(":")[2][:12]


def pull(ref, content, client, platform: str | None = None, progress=None) -> PullResult:
    """Pull `ref` (domain, path, tag, digest: a supervisor.images.refs.Reference or alike) with
    `client` (a RegistryClient for ref.domain) into `content`. progress(id, status, current,
    total) gets docker's lines. RegistryError for what the registry refused, ManifestError for
    a document that is wrong or has no manifest for the platform: then nothing is stored (the
    documents are kept in memory until the config says the image is the one wanted)."""
    tell = progress or (lambda *_: None)
    repo, name = ref.path, _display_name(ref)
    reference = ref.digest or ref.tag or "latest"
    tell(ref.tag or ref.digest or "latest", f"Pulling from {repo}", 0, 0)
    body, media_type, target = client.get_manifest(repo, reference)
    doc = mf.parse_document(body, f"{name}: manifest {target}")
    media_type = mf.kind_of(doc, f"{name}: manifest {target}", media_type)
    documents = [(body, target)]
    result_type, size, digest = media_type, len(body), target
    for _ in range(mf.MAX_DEPTH + 1):     # the last turn only sees that it is a manifest
        if media_type in mf.MANIFESTS:
            break
        desc = _platform_entry(doc, platform, name)
        body, served_type, digest = client.get_manifest(repo, desc.digest)
        if len(body) != desc.size:
            raise mf.ManifestError(f"{name}: manifest {digest} is {len(body)} bytes, the index "
                                   f"says {desc.size}")
        doc = mf.parse_document(body, f"{name}: manifest {digest}")
        media_type = mf.kind_of(doc, f"{name}: manifest {digest}", desc.media_type or served_type)
        documents.append((body, digest))
    else:
        raise mf.ManifestError(f"{name}: indexes nested deeper than {mf.MAX_DEPTH}")
    config_desc, layers = mf.check_manifest(doc, f"{name}: manifest {digest}")
    config_body = _fetch_document(client, content, repo, config_desc, name)
    config = mf.parse_document(config_body, f"{name}: config {config_desc.digest}")
    _check_platform(config, platform, name, from_index=len(documents) > 1)
    # the image is the one wanted: its documents go in, those below first
    for data, d in [(config_body, config_desc.digest)] + documents[::-1]:
        if not content.exists(d):
            content.put(data, d)
    _fetch_layers(client, content, repo, layers, tell)
    tell("", f"Digest: {target}", 0, 0)
    return PullResult(target, result_type, digest, size)


def _display_name(ref) -> str:
    name = getattr(ref, "name", None)
    if isinstance(name, str) and name:
        return name
    suffix = (f":{ref.tag}" if ref.tag else "") + (f"@{ref.digest}" if ref.digest else "")
    return f"{ref.domain}/{ref.path}{suffix}"


def _platform_entry(index: dict, platform, name: str) -> mf.Descriptor:
    try:
        entry = mf.select_platform(index, platform, name)
    except PlatformError as e:
        raise mf.ManifestError(str(e)) from None
    return mf.descriptor(entry, f"{name}: index entry")


def _check_platform(config: dict, platform, name: str, from_index: bool) -> None:
    """A manifest without an index (or an index entry without a platform) may still be for
    another machine: its config says, and pull stops before the layers (containerd's check)."""
    os_name, arch = config.get("os"), config.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return      # resolve() refuses it with its reasons at unpack
    variant = str(config.get("variant") or "")
    if not matches(platform, os_name, arch, variant):
        present = "/".join(p for p in (os_name, arch, variant) if p)
        raise mf.ManifestError(f"{name} is an image for {present}, not "
                               f"{parse_platform(platform)}"
                               + ("" if from_index else " (it has no other platform)"))


def _fetch_document(client, content, repo: str, desc: mf.Descriptor, name: str) -> bytes:
    """A config, verified, into memory (from the store when it is there)."""
    if content.exists(desc.digest):
        return content.read(desc.digest, limit=mf.MAX_DOCUMENT)
    if desc.size > mf.MAX_DOCUMENT:
        raise mf.ManifestError(f"{name}: config {desc.digest} is {desc.size} bytes, more than "
                               f"the {mf.MAX_DOCUMENT} a config may have")
    buf = _Buffer(desc.digest, desc.size)
    client.fetch_blob(repo, desc.digest, desc.size, buf)
    return bytes(buf.data)


class _Buffer:
    """A content-store Writer's interface over memory, for a blob too small to resume and
    stored only once it has been checked."""
    exists = False

    def __init__(self, expected: str, size: int):
        self.expected, self.size, self.data = expected, size, bytearray()

    @property
    def offset(self) -> int:
        return len(self.data)

    def write(self, chunk) -> None:
        if len(self.data) + len(chunk) > mf.MAX_DOCUMENT:
            raise mf.ManifestError(f"config {self.expected}: more than {mf.MAX_DOCUMENT} bytes")
        self.data += chunk

    def restart(self) -> None:
        self.data.clear()

    def commit(self) -> str:
        got = digest_of(bytes(self.data))
        if len(self.data) != self.size or got != self.expected:
            raise DigestMismatch(f"content digest mismatch: expected {self.expected} "
                                 f"({self.size} bytes), got {got} ({len(self.data)} bytes)")
        return got


def _fetch(client, content, repo: str, desc: mf.Descriptor, progress=None) -> bool:
    """One blob into the store through its named ingest (ref = its digest, so that the next
    pull resumes a broken one); False when it was there already."""
    if content.exists(desc.digest):
        return False
    with content.writer(expected=desc.digest, size=desc.size, ref=desc.digest) as w:
        if w.exists:
            w.commit()
            return False
        client.fetch_blob(repo, desc.digest, desc.size, w, progress)
    return True


def _fetch_layers(client, content, repo: str, layers, tell) -> None:
    unique = list({d.digest: d for d in layers}.values())
    todo = []
    for desc in unique:
        if content.exists(desc.digest):
            tell(short_id(desc.digest), "Already exists", 0, 0)
        else:
            tell(short_id(desc.digest), "Pulling fs layer", 0, 0)
            todo.append(desc)
    for desc in todo[CONCURRENT_DOWNLOADS:]:
        tell(short_id(desc.digest), "Waiting", 0, 0)
    if not todo:
        return
    failed = threading.Event()

    def download(desc: mf.Descriptor) -> None:
        ident, last, checking = short_id(desc.digest), [0.0], [False]

        def on_bytes(current: int, total: int) -> None:
            if failed.is_set():
                raise _Cancelled()
            now = time.monotonic()
            if current >= total >= 0:
                if not checking[0]:
                    tell(ident, "Downloading", current, total)
                    tell(ident, "Verifying Checksum", 0, 0)
                    checking[0] = True
            elif now - last[0] >= PROGRESS_INTERVAL:
                last[0] = now
                tell(ident, "Downloading", current, total)

        try:
            if failed.is_set():
                raise _Cancelled()
            tell(ident, "Downloading", 0, desc.size)
            fetched = _fetch(client, content, repo, desc, on_bytes)
        except BaseException:
            failed.set()
            raise
        if fetched and not checking[0]:
            tell(ident, "Verifying Checksum", 0, 0)
        tell(ident, "Download complete", 0, 0)

    with ThreadPoolExecutor(CONCURRENT_DOWNLOADS, thread_name_prefix="pull") as pool:
        futures = [pool.submit(download, d) for d in todo]
    errors = [f.exception() for f in futures if f.exception() is not None]
    real = [e for e in errors if not isinstance(e, _Cancelled)]
    if real or errors:
        raise (real or errors)[0]
