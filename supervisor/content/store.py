"""The content store: blobs named by their sha256 digest under <root>/content/blobs/sha256/, as
containerd's content/local. A blob is written to an ingest (<root>/content/ingest/<name>/data)
while its digest is computed, checked against the digest and size expected, synced, and renamed
into place: a blob under blobs/ is always whole and always what its name says, whatever crash
interrupted a write. An ingest named by a ref (e.g. the digest a download expects) survives the
writer, so a download can be resumed where it stopped; the others are removed at start-up."""
import hashlib
import os
import secrets
import shutil
import threading
import time

ALGORITHM = "sha256"
HEX = frozenset("0123456789abcdef")
CHUNK = 1 << 20
# A resumable ingest no writer touched for this long is dropped at start-up.
INGEST_EXPIRY = 24 * 3600.0


class ContentError(Exception):
    pass


class NotFound(ContentError):
    pass


class DigestMismatch(ContentError):
    pass


def check_digest(digest: str) -> str:
    """The hex part of a "sha256:<64 hex>" digest; ContentError naming what is wrong."""
    algo, sep, hexpart = (digest or "").partition(":")
    if not sep or algo != ALGORITHM:
        raise ContentError(f"unsupported digest {digest!r}: only sha256:<64 hex digits> is")
    if len(hexpart) != 64 or not HEX.issuperset(hexpart):
        raise ContentError(f"invalid digest {digest!r}: sha256 needs 64 lowercase hex digits")
    return hexpart


def digest_of(data: bytes) -> str:
    return f"{ALGORITHM}:{hashlib.sha256(data).hexdigest()}"


class ContentStore:
    def __init__(self, root: str):
        self.root = os.path.join(root, "content")
        self.blobs = os.path.join(self.root, "blobs", ALGORITHM)
        self.ingests = os.path.join(self.root, "ingest")
        os.makedirs(self.blobs, mode=0o700, exist_ok=True)
        os.makedirs(self.ingests, mode=0o700, exist_ok=True)
        # one writer per ref at a time: only this process writes here (hawserd holds its --root)
        self._ref_locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()
        # called with each digest a writer commits (or finds there already): hawserd's garbage
        # collector spares what operations still under way have written
        self.on_commit = None

    def _ref_lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._ref_locks.setdefault(name, threading.Lock())

    # -- reading -----------------------------------------------------------------------------
    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, check_digest(digest))

    def exists(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def open(self, digest: str):
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"content {digest}: not found") from None

    def read(self, digest: str, limit: int = 64 << 20) -> bytes:
        """A small blob (a manifest, an index, a config) whole."""
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise ContentError(f"content {digest}: larger than {limit} bytes")
        return data

    def list(self):
        """(digest, size) of every blob."""
        with os.scandir(self.blobs) as it:
            for e in it:
                if len(e.name) == 64 and HEX.issuperset(e.name):
                    yield f"{ALGORITHM}:{e.name}", e.stat().st_size

    # -- writing -----------------------------------------------------------------------------
    def writer(self, expected: str | None = None, size: int = -1, ref: str | None = None,
               wait: float = 600.0) -> "Writer":
        """A writer of one blob. With a ref, the ingest is kept when the writer is closed
        without a commit (writer.offset bytes are there already: a resumed download appends to
        them), and a second writer of the same ref waits for the first."""
        if expected is not None:
            check_digest(expected)
        return Writer(self, expected, size, ref, wait)

    def put(self, data: bytes, expected: str | None = None) -> str:
        with self.writer(expected, len(data)) as w:
            w.write(data)
            return w.commit()

    def delete(self, digest: str) -> bool:
        try:
            os.unlink(self.path(digest))
            return True
        except FileNotFoundError:
            return False

    def clean_ingests(self, expiry: float = INGEST_EXPIRY) -> None:
        """At start-up (no writer alive): unnamed ingests go, named ones untouched for expiry."""
        now = time.time()
        with os.scandir(self.ingests) as it:
            for e in it:
                if e.name.startswith("ref-"):
                    try:
                        if now - os.stat(os.path.join(e.path, "data")).st_mtime < expiry:
                            continue
                    except FileNotFoundError:
                        pass
                shutil.rmtree(e.path, ignore_errors=True)


def _ingest_name(ref: str | None) -> str:
    if ref is None:
        return "tmp-" + secrets.token_hex(8)
    return "ref-" + hashlib.sha256(ref.encode()).hexdigest()[:32]


class Writer:
    """Write, then commit() (checks, syncs and moves the blob in place; its digest) or close()
    (an unnamed ingest is removed, a named one kept for a resume). As a context manager it
    closes on the way out, so a failed write never leaves a blob."""

    def __init__(self, store: ContentStore, expected: str | None, size: int, ref: str | None,
                 wait: float):
        self.store, self.expected, self.size, self.ref = store, expected, size, ref
        self.dir = os.path.join(store.ingests, _ingest_name(ref))
        self.committed = None
        self.hash = hashlib.sha256()
        self.lock = self.fd = None
        if ref is not None:
            lock = store._ref_lock(os.path.basename(self.dir))
            if not lock.acquire(timeout=wait):
                raise ContentError(f"ingest {ref}: busy, another writer has it")
            self.lock = lock
        try:
            self._open()
        except BaseException:
            self._remove() if ref is None else self._release()
            raise

    def _open(self) -> None:
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        if self.ref is not None:
            with open(os.path.join(self.dir, "ref"), "w") as f:
                f.write(self.ref)
        self.data_path = os.path.join(self.dir, "data")
        self.fd = os.open(self.data_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        self.offset = 0
        if self.expected is not None and self.store.exists(self.expected):
            self.committed = self.expected      # already there (a peer writer finished it)
            return
        # what a previous writer of this ref left: hashed again, appended to
        while True:
            chunk = os.read(self.fd, CHUNK)
            if not chunk:
                break
            self.hash.update(chunk)
            self.offset += len(chunk)

    @property
    def exists(self) -> bool:
        """The blob was already in the store: nothing to write."""
        return self.committed is not None

    def write(self, data) -> None:
        if self.committed is not None:
            return
        self.hash.update(data)
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.offset += len(data)

    def restart(self) -> None:
        """Drop what is written (a server that ignored our Range: it sends from the start)."""
        os.ftruncate(self.fd, 0)
        os.lseek(self.fd, 0, os.SEEK_SET)
        self.hash, self.offset = hashlib.sha256(), 0

    def commit(self) -> str:
        digest = self._commit()
        if self.store.on_commit is not None:
            self.store.on_commit(digest)
        return digest

    def _commit(self) -> str:
        if self.committed is not None:
            self._remove()
            return self.committed
        digest = f"{ALGORITHM}:{self.hash.hexdigest()}"
        try:
            if self.size >= 0 and self.offset != self.size:
                raise DigestMismatch(f"content {self.expected or digest}: got {self.offset} "
                                     f"bytes, expected {self.size}")
            if self.expected is not None and digest != self.expected:
                raise DigestMismatch(f"content digest mismatch: expected {self.expected}, "
                                     f"got {digest}")
            os.fchmod(self.fd, 0o444)
            os.fsync(self.fd)
            target = self.store.path(digest)
            if not os.path.exists(target):
                os.rename(self.data_path, target)
                _fsync_dir(self.store.blobs)
        except BaseException:
            self._remove()   # a wrong blob is never resumed
            raise
        self.committed = digest
        self._remove()
        return digest

    def close(self) -> None:
        if self.fd is None and self.lock is None:
            return
        if self.ref is None or self.committed is not None:
            self._remove()
        else:
            self._release()

    def _release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        if self.lock is not None:
            self.lock.release()
            self.lock = None

    def _remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)
        self._release()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
