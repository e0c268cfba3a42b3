"""Push: an image of the content store to a registry, as docker does it. The layers and the
config the repository lacks (a HEAD tells) are uploaded, then the manifest under the tag. An
index goes whole when every manifest it lists is in the store; a pulled one has only the
manifest of its platform, and that manifest alone goes under the tag (what docker pushes)."""
import threading
from concurrent.futures import ThreadPoolExecutor

from supervisor.content.store import NotFound
from supervisor.images import manifest as mf
from supervisor.images.platforms import PlatformError
from supervisor.registry.pull import short_id

# docker's max-concurrent-uploads is 5; this machine's disk and a registry's both do as well
# with 3
CONCURRENT_UPLOADS = 3
PROGRESS_STEP = 512 << 10


def push(ref, target: str, content, client, progress=None, platform: str | None = None,
         media_type: str = "", mount_from: str | None = None) -> str:
    """Push the image whose target (index or manifest) digest is `target` to `ref` (domain,
    path, tag or digest); the digest of the document put under the tag. progress(id, status,
    current, total) gets docker's lines; mount_from names a repository of the same registry
    to mount blobs from instead of uploading them."""
    tell = progress or (lambda *_: None)
    repo, reference = ref.path, ref.tag or ref.digest or "latest"
    name = f"{ref.domain}/{ref.path}"
    tell("", f"The push refers to repository [{name}]", 0, 0)
    body, media_type = _document(content, target, name, media_type)
    if media_type in mf.INDEXES:
        doc = mf.parse_document(body, f"{name}: index {target}")
        entries = [mf.descriptor(e, f"{name}: index entry")
                   for e in doc.get("manifests") or ()]
        if not all(content.exists(e.digest) for e in entries):
            try:
                entry = mf.select_platform(doc, platform, name)
            except PlatformError as e:
                raise mf.ManifestError(str(e)) from None
            target = mf.descriptor(entry, f"{name}: index entry").digest
            body, media_type = _document(content, target, name, entry.get("mediaType", ""))
    uploader = _Uploader(client, content, repo, tell, mount_from)
    if ref.digest and ref.digest != target:
        raise mf.ManifestError(f"{name}@{ref.digest}: the image to push is {target}")
    digest = uploader.document(target, body, media_type, reference, depth=0)
    tell("", f"{reference}: digest: {digest} size: {len(body)}", 0, 0)
    return digest


def _document(content, digest: str, name: str, media_type: str = "") -> tuple[bytes, str]:
    try:
        body = content.read(digest, limit=mf.MAX_DOCUMENT)
    except NotFound:
        raise mf.ManifestError(f"{name}: manifest {digest} is not in the content store") \
            from None
    doc = mf.parse_document(body, f"{name}: manifest {digest}")
    return body, mf.kind_of(doc, f"{name}: manifest {digest}", media_type)


class _Uploader:
    def __init__(self, client, content, repo: str, tell, mount_from):
        self.client, self.content, self.repo, self.tell = client, content, repo, tell
        self.mount_from = mount_from

    def document(self, digest: str, body: bytes, media_type: str, reference: str,
                 depth: int) -> str:
        """A manifest (its blobs first) or an index (each manifest first, by digest)."""
        if depth > mf.MAX_DEPTH:
            raise mf.ManifestError(f"manifest {digest}: indexes nested deeper than "
                                   f"{mf.MAX_DEPTH}")
        doc = mf.parse_document(body, f"manifest {digest}")
        if media_type in mf.INDEXES:
            for raw in doc.get("manifests") or ():
                entry = mf.descriptor(raw, f"index {digest} entry")
                child, child_type = _document(self.content, entry.digest, self.repo,
                                              entry.media_type)
                self.document(entry.digest, child, child_type, entry.digest, depth + 1)
        else:
            config, layers = mf.check_manifest(doc, f"manifest {digest}")
            self.blobs(config, layers)
        return self.client.put_manifest(self.repo, reference, body, media_type)

    def blobs(self, config: mf.Descriptor, layers: list[mf.Descriptor]) -> None:
        unique = list({d.digest: d for d in layers}.values())
        for d in unique + [config]:
            if not self.content.exists(d.digest):
                raise mf.ManifestError(f"blob {d.digest} of the image is not in the content "
                                       "store: pull the image again")
            if self.content.size(d.digest) != d.size:
                raise mf.ManifestError(f"blob {d.digest}: {self.content.size(d.digest)} bytes "
                                       f"in the content store, the manifest says {d.size}")
        for d in unique:
            self.tell(short_id(d.digest), "Preparing", 0, 0)
        failed = threading.Event()

        def one(desc: mf.Descriptor, quiet: bool = False) -> None:
            if failed.is_set():
                return
            try:
                self.blob(desc, quiet)
            except BaseException:
                failed.set()
                raise

        with ThreadPoolExecutor(CONCURRENT_UPLOADS, thread_name_prefix="push") as pool:
            futures = [pool.submit(one, d) for d in unique]
        for f in futures:
            if f.exception() is not None:
                raise f.exception()
        one(config, quiet=True)     # docker shows no line for the config

    def blob(self, desc: mf.Descriptor, quiet: bool) -> None:
        ident = short_id(desc.digest)
        say = (lambda *_: None) if quiet else self.tell
        if self.client.blob_exists(self.repo, desc.digest, push=True) is not None:
            say(ident, "Layer already exists", 0, 0)
            return
        said = [0]

        def sent(n: int) -> None:
            if n - said[0] >= PROGRESS_STEP or n >= desc.size:
                said[0] = n
                say(ident, "Pushing", n, desc.size)

        say(ident, "Pushing", 0, desc.size)
        with self.content.open(desc.digest) as f:
            mounted = self.client.upload_blob(self.repo, desc.digest, desc.size, f, sent,
                                              mount_from=self.mount_from)
        say(ident, "Mounted from " + self.mount_from if mounted else "Pushed", 0, 0)
