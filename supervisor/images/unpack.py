"""An image's layers into committed snapshots, one per chain id, shared by every image and
container that has that chain. A layer is extracted straight into an extract snapshot's upper
directory (labelled hawser/extract until it is committed: a crash leaves nothing that looks
finished), its diff id checked against the image config's, then committed under its chain id on
top of the previous one.

The layers are extracted at once, up to WORKERS in threads (decompression and hashing release
the GIL), each into its own parentless snapshot, and committed in order with their real parent:
an overlay upper directory does not depend on what is below it. A layer whose hard link names a
file of a lower layer (the applier copies it up from there) is extracted again once the layers
below it are committed. Two unpacks of the same chain (two pulls sharing a base) take turns:
the second finds it committed."""
import secrets
import threading
from concurrent import futures

from supervisor.images import manifest
from supervisor.images.gc import EXTRACT_LABEL
from supervisor.snapshots import apply as applier
from supervisor.snapshots.overlay import AlreadyExists

WORKERS = 2
SIZE_LABEL = "hawser/size"           # bytes unpacked, on a committed layer snapshot


class UnpackError(Exception):
    pass


class Unpacker:
    def __init__(self, content, snapshots, leases):
        self.content, self.snapshots, self.leases = content, snapshots, leases
        self.locks: dict[str, threading.Lock] = {}
        self.guard = threading.Lock()

    def _lock(self, chain: str) -> threading.Lock:
        with self.guard:
            return self.locks.setdefault(chain, threading.Lock())

    def unpack(self, resolved, progress=None) -> list[str]:
        """Every layer of the resolved image as a committed snapshot; the chain ids."""
        chains = manifest.chain_ids(resolved.diff_ids)
        todo = [i for i, c in enumerate(chains) if self.snapshots.stat(c) is None]
        if not todo:
            return chains
        locks = [self._lock(chains[i]) for i in todo]
        for lock in locks:            # in chain order: no two unpacks wait on each other
            lock.acquire()
        extracts: dict[int, str] = {}
        try:
            todo = [i for i in todo if self.snapshots.stat(chains[i]) is None]
            results, errors = {}, []
            with futures.ThreadPoolExecutor(WORKERS) as pool:
                jobs = {i: pool.submit(self._extract, resolved, i, (), progress) for i in todo}
                for i in todo:
                    try:
                        extracts[i], results[i] = jobs[i].result()
                    except BaseException as e:
                        errors.append(e)
            if errors:
                raise errors[0]
            for i in todo:
                if results[i] is None:    # needs the layers below: extract again on them
                    self.snapshots.remove(extracts.pop(i))
                    lowers = self._lowers(chains[i - 1]) if i else ()
                    extracts[i], results[i] = self._extract(resolved, i, lowers, progress,
                                                            strict=True)
                self._commit(chains, i, extracts.pop(i), results[i], resolved)
                if progress:
                    progress(_short(resolved.layers[i].digest), "Pull complete", 0, 0)
        finally:
            for key in extracts.values():
                try:
                    self.snapshots.remove(key)
                except Exception:
                    pass
            for lock in locks:
                lock.release()
        return chains

    def _lowers(self, chain: str) -> list[str]:
        return [self.snapshots.upper(chain)] + self.snapshots.lowers(chain)

    def _extract(self, resolved, i: int, lowers, progress, strict: bool = False):
        """(extract snapshot key, Applied); Applied is None when the layer links to a lower
        file and no lowers were given (not strict)."""
        desc = resolved.layers[i]
        key = f"extract-{secrets.token_hex(6)}-{resolved.diff_ids[i]}"
        self.snapshots.prepare(key, "", labels={EXTRACT_LABEL: "1"})
        if progress:
            progress(_short(desc.digest), "Extracting", 0, desc.size)
        try:
            applied = applier.unpack(self.content.path(desc.digest), self.snapshots.upper(key),
                                     desc.media_type, lowers=lowers)
        except applier.MissingLinkTarget:
            if strict:
                self.snapshots.remove(key)
                raise
            return key, None
        except BaseException:
            self.snapshots.remove(key)
            raise
        if applied.diff_id != resolved.diff_ids[i]:
            self.snapshots.remove(key)
            raise UnpackError(f"layer {desc.digest}: its content has diff id "
                              f"{applied.diff_id}, the image config says {resolved.diff_ids[i]}")
        return key, applied

    def _commit(self, chains, i: int, key: str, applied, resolved) -> None:
        parent = chains[i - 1] if i else ""
        labels = {SIZE_LABEL: str(applied.size)}
        try:
            self.snapshots.commit(chains[i], key, labels=labels, parent=parent)
        except AlreadyExists:
            self.snapshots.remove(key)
        self.leases.note_snapshot(chains[i])

    def size(self, resolved) -> int:
        """The image's unpacked size: its layers' (0 for a layer not unpacked)."""
        total = 0
        for chain in manifest.chain_ids(resolved.diff_ids):
            info = self.snapshots.stat(chain)
            if info is not None:
                total += int((info.labels or {}).get(SIZE_LABEL) or 0)
        return total


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12]
