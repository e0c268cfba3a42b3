"""hawser.v1.Images over the ImageManager: names, archives, tarballs, registries, commit. The
long calls (load, import, pull, push, save) run their work in a thread of their own and stream
its progress (or the archive's bytes) back as it comes."""
import os
import queue
import threading

from supervisor import filters
from supervisor.api import images_pb2 as ipb
from supervisor.api import images_pb2_grpc as igrpc
from supervisor.errors import ApiError
from supervisor.grpcutil import abort, api_errors, ts
from supervisor.images import commit as committer
from supervisor.images import transfer
from supervisor.tasks.supervisor import Supervisor

CHUNK = 1 << 20
DONE = object()


def image_msg(d: dict) -> ipb.Image:
    return ipb.Image(name=d["name"], target=d["target"], media_type=d["media_type"], id=d["id"],
                     size=d["size"], created=ts(d["created"]), updated=ts(d["updated"]),
                     config=d["config"], repo_tags=d["repo_tags"],
                     repo_digests=d["repo_digests"], manifest=d["manifest"],
                     content_size=d["content_size"])


def list_filter(mgr, rec: dict, described: dict, flt: str) -> bool:
    key, value = filters.split(flt, loose=True)
    if key == "reference":
        return _match_reference(rec["name"], value)
    if key == "dangling":
        return (rec["name"].startswith("sha256:")) == (value.lower() == "true")
    if key == "label":
        return filters.label_matches(
            (_json(described["config"]).get("config") or {}).get("Labels") or {}, value)
    if key in ("before", "since"):
        other = mgr.describe(mgr.find(value))["created"]
        return described["created"] < other if key == "before" else described["created"] > other
    raise ApiError("INVALID_ARGUMENT", f"filter {flt!r}: use reference, dangling, label, "
                                       "before or since")


def _match_reference(name: str, pattern: str) -> bool:
    """docker's reference filter: a path pattern (* within an element) on the familiar name,
    with or without its tag."""
    import fnmatch
    from supervisor.images import refs
    try:
        r = refs.parse(name)
    except refs.ReferenceError:
        return False
    familiar = r.familiar
    repo = familiar.rsplit(":", 1)[0] if r.tag else familiar
    for candidate in (familiar, repo, r.name):
        if fnmatch.fnmatchcase(candidate, pattern) and \
                candidate.count("/") == pattern.count("/"):
            return True
    return False


def _json(data: bytes) -> dict:
    import json
    try:
        return json.loads(data)
    except ValueError:
        return {}


class RequestReader:
    """The data of a client stream's requests as a file (read(n)): the first request's, then
    each later one's, until the client half-closes. Each chunk is sliced, not copied about."""

    def __init__(self, first: bytes, requests):
        self.chunk, self.pos, self.requests, self.eof = first, 0, requests, False

    def read(self, n: int = -1) -> bytes:
        parts = []
        while n != 0:
            if self.pos >= len(self.chunk):
                if self.eof:
                    break
                try:
                    self.chunk, self.pos = next(self.requests).data, 0
                except StopIteration:
                    self.eof = True
                continue
            end = len(self.chunk) if n < 0 else min(len(self.chunk), self.pos + n)
            parts.append(self.chunk[self.pos:end])
            if n > 0:
                n -= end - self.pos
            self.pos = end
        return b"".join(parts)

    def readinto(self, b) -> int:
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)


class QueueWriter:
    """A file (write) whose bytes go, in chunks, to a queue a gRPC stream yields from."""

    def __init__(self, q: queue.Queue):
        self.q, self.buf = q, bytearray()

    def write(self, data) -> int:
        self.buf += data
        while len(self.buf) >= CHUNK:
            self.q.put(bytes(self.buf[:CHUNK]))
            del self.buf[:CHUNK]
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.q.put(bytes(self.buf))
            self.buf = bytearray()


def streamed(work, context, to_msg):
    """Run work(emit) in a thread; yield to_msg(item) for each item it emits, then for its
    result's items; its ApiError is the call's status."""
    q: queue.Queue = queue.Queue(maxsize=64)
    outcome = {}

    def run():
        try:
            outcome["result"] = work(q.put)
        except ApiError as e:
            outcome["error"] = e
        except Exception as e:     # a bug: the client gets it as INTERNAL, hawserd goes on
            outcome["error"] = ApiError("INTERNAL", f"{type(e).__name__}: {e}")
        finally:
            q.put(DONE)
    threading.Thread(target=run, daemon=True, name="images-stream").start()
    while True:
        item = q.get()
        if item is DONE:
            break
        if context.is_active():
            yield to_msg(item)
    if "error" in outcome:
        abort(context, outcome["error"])
    for item in outcome.get("result") or ():
        yield to_msg(item)


def progress_msg(item):
    if isinstance(item, ipb.Progress):
        return item
    ident, status, current, total = item
    return ipb.Progress(id=ident, status=status, current=current or 0, total=total or 0)


class ImagesService(igrpc.ImagesServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup
        self.mgr = sup.images

    def _described(self, rec):
        return image_msg(self.mgr.describe(rec))

    @api_errors
    def List(self, req, context):
        out = []
        for rec in sorted(self.mgr.images.list(), key=lambda r: r["name"]):
            try:
                d = self.mgr.describe(rec)
            except ApiError:
                continue     # content gone under it (a crash): not an image any more
            if all(list_filter(self.mgr, rec, d, f) for f in req.filters):
                out.append(image_msg(d))
        return ipb.ListImagesResponse(images=out)

    @api_errors
    def Get(self, req, context):
        return ipb.GetImageResponse(image=self._described(self.mgr.find(req.ref)))

    @api_errors
    def Tag(self, req, context):
        return ipb.TagImageResponse(image=self._described(self.mgr.tag(req.source, req.target)))

    @api_errors
    def Delete(self, req, context):
        untagged, deleted = self.mgr.delete(req.ref, req.force)
        return ipb.DeleteImageResponse(untagged=untagged, deleted=deleted)

    def _image_progress(self, records):
        return [ipb.Progress(status=f"Loaded image: {_familiar(r['name'])}"
                             if not r["name"].startswith("sha256:") else
                             f"Loaded image ID: {self.mgr.describe(r)['id']}",
                             image=self._described(r)) for r in records]

    def Load(self, requests, context):
        first = next(requests, None)
        if first is None:
            return

        def work(emit):
            with _input(first, requests) as stream:
                recs = transfer.load(self.mgr, stream, lambda *p: emit(p))
            return self._image_progress(recs)
        yield from streamed(work, context, progress_msg)

    def Import(self, requests, context):
        first = next(requests, None)
        if first is None:
            return

        def work(emit):
            with _input(first, requests) as stream:
                rec = transfer.import_tar(self.mgr, stream, first.name, list(first.changes),
                                          first.message, lambda *p: emit(p))
            d = self.mgr.describe(rec)
            return [ipb.Progress(status=d["id"], image=image_msg(d))]
        yield from streamed(work, context, progress_msg)

    def Save(self, req, context):
        refs = list(req.refs)

        def work(emit):
            out = QueueWriter(_Emitter(emit))
            transfer.save(self.mgr, refs, out)
            out.flush()
            return []
        yield from streamed(work, context, lambda data: ipb.SaveResponse(data=data))

    def Pull(self, req, context):
        auth = _auth(req.auth)

        def work(emit):
            rec = transfer.pull(self.mgr, req.ref, auth, req.platform, lambda *p: emit(p))
            return [ipb.Progress(image=self._described(rec))]
        yield from streamed(work, context, progress_msg)

    def Push(self, req, context):
        auth = _auth(req.auth)

        def work(emit):
            transfer.push(self.mgr, req.ref, auth, lambda *p: emit(p))
            return []
        yield from streamed(work, context, progress_msg)

    @api_errors
    def Commit(self, req, context):
        rec = self.sup.resolve(req.container)
        paused = False
        if req.pause and rec["status"] == "running":
            self.sup.pause(rec["id"])
            paused = True
        try:
            img = committer.commit(self.mgr, self.sup.store.get(rec["id"]), req.name,
                                   list(req.changes), req.message, req.author)
        finally:
            if paused:
                self.sup.resume(rec["id"])
        return ipb.CommitResponse(image=self._described(img))


class _Emitter:
    """QueueWriter's queue: its chunks go out through emit (the stream's bounded queue)."""

    def __init__(self, emit):
        self.put = emit


def _input(first, requests):
    """What a Load or Import reads: the file the first request names (the daemon reads it
    itself), or the data of the client's requests."""
    if not first.path:
        import contextlib
        return contextlib.nullcontext(RequestReader(first.data, requests))
    if not os.path.isabs(first.path):
        raise ApiError("INVALID_ARGUMENT", f"{first.path!r}: the daemon needs an absolute path")
    try:
        return open(first.path, "rb")
    except OSError as e:
        raise ApiError("INVALID_ARGUMENT", f"cannot read {first.path}: {e.strerror}") from None


def _auth(a):
    if a is None or not (a.username or a.password or a.identity_token):
        return None
    return {"username": a.username, "password": a.password, "identity_token": a.identity_token}


def _familiar(name: str) -> str:
    from supervisor.images import refs
    try:
        return refs.parse(name).familiar
    except refs.ReferenceError:
        return name
