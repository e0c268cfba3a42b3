"""The image bench/images_bench.py loads: a multi-layer OCI archive (gzip layers) of realistic
content, generated once per run from a fixed seed (same bytes, same digests on every run).

Layer 0 is the bench's busybox rootfs (so that the image runs `sleep`); then an "OS" layer of
many small text files (docs, configs) and some libraries, a "runtime" layer of thousands of
source files and a few shared objects, a "data" layer of big files (a 48 MiB random blob, a 64
MiB text file, ...), an "app" layer (files owned by 1000, hard links, deep directories), a
"fixups" layer with whiteouts (`.wh.NAME`, an opaque directory) and a small top layer. Text
comes from a Zipf-distributed vocabulary, so gzip -6 compresses it about 3x, as it does real
text; the "binaries" are random bytes (incompressible, as compressed assets are). About 380
MiB unpacked, 18,000 files, a ~210 MiB archive.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import sys
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

TESTS = str(Path(__file__).resolve().parent.parent / "tests")
if TESTS not in sys.path:
    sys.path.append(TESTS)
from images import (MEDIA_CONFIG, MEDIA_INDEX, MEDIA_LAYER_GZIP, MEDIA_MANIFEST,  # noqa: E402
                    DEFAULT_PATH, _arch, rootfs_tar_bytes)                   # (tests/images.py)

SEED = 9
MTIME = 1_700_000_000
KiB, MiB = 1 << 10, 1 << 20
LETTERS = "etaoinshrdlcumwfgypbvkjxqz"
LETTER_WEIGHTS = [12, 9, 8, 8, 7, 6, 6, 6, 6, 4, 4, 3, 3, 2, 2, 2, 2, 2, 1, 1, 1, 1, 1, 1, 1, 1]


@dataclass
class Layer:
    path: Path          # the gzip blob
    digest: str         # sha256 of the blob
    size: int           # bytes of the blob
    diff_id: str        # sha256 of the tar
    tar_size: int       # bytes of the tar
    files: int = 0      # regular files
    entries: int = 0    # tar entries


@dataclass
class Image:
    archive: Path
    name: str
    layers: list[Layer] = field(default_factory=list)

    @property
    def archive_size(self) -> int:
        return self.archive.stat().st_size

    @property
    def tar_size(self) -> int:
        return sum(layer.tar_size for layer in self.layers)

    @property
    def files(self) -> int:
        return sum(layer.files for layer in self.layers)

    @property
    def diff_ids(self) -> list[str]:
        return [layer.diff_id for layer in self.layers]


class _Hashing:
    """A write-only file that hashes and counts what passes on to `out`."""

    def __init__(self, out):
        self.out, self.hash, self.size = out, hashlib.sha256(), 0

    def write(self, data) -> int:
        self.hash.update(data)
        self.size += len(data)
        return self.out.write(data) if self.out is not None else len(data)

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()


class _Content:
    """Deterministic file bodies: text slices of a Zipf word pool, random bytes."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        words = set()
        while len(words) < 3000:
            n = max(1, min(12, int(rng.lognormvariate(1.5, 0.45))))
            words.add("".join(rng.choices(LETTERS, LETTER_WEIGHTS, k=n)))
        vocab = sorted(words)
        rng.shuffle(vocab)
        drawn = rng.choices(vocab, [1 / (i + 1) for i in range(len(vocab))], k=800_000)
        lines = [" ".join(drawn[i:i + 12]) for i in range(0, len(drawn), 12)]
        self.pool = "\n".join(lines).encode()      # ~5 MiB, gzip -6 ratio ~3

    def text(self, size: int) -> bytes:
        out, pool = [], self.pool
        while size > 0:
            n = min(size, self.rng.randrange(64 * KiB, 1 * MiB))
            off = self.rng.randrange(0, len(pool) - n)
            out.append(pool[off:off + n])
            size -= n
        return b"".join(out)

    def random(self, size: int) -> bytes:
        return self.rng.randbytes(size)

    def small(self, lo: int = 200, hi: int = 16 * KiB, mu: float = 7.6) -> int:
        """A small file's size: log-normal (median ~2 KiB), within [lo, hi]."""
        return max(lo, min(hi, int(self.rng.lognormvariate(mu, 1.0))))


class _LayerWriter:
    """One layer's tar, written through gzip -6 (as docker and containerd compress) to a file,
    its diff id and digest computed on the way."""

    def __init__(self, path: Path, whole_tar: bytes | None = None):
        """Entries are added with dir/file/link, or the layer is whole_tar (busybox's)."""
        self.path = path
        self.raw = open(path, "wb")
        self.blob = _Hashing(self.raw)
        self.gz = gzip.GzipFile(fileobj=self.blob, mode="wb", compresslevel=6, mtime=0)
        self.tar_out = _Hashing(self.gz)
        self.dirs: set[str] = set()
        self.files = self.entries = 0
        self.tar = None
        if whole_tar is None:
            self.tar = tarfile.open(fileobj=self.tar_out, mode="w|", format=tarfile.PAX_FORMAT)
        else:
            self.tar_out.write(whole_tar)
            for member in tarfile.open(fileobj=io.BytesIO(whole_tar)):
                self.entries += 1
                self.files += member.isreg()

    def _info(self, name: str, kind, mode: int, uid: int = 0) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, MTIME
        info.uid = info.gid = uid
        info.uname = info.gname = "root" if uid == 0 else ""
        return info

    def dir(self, name: str, mode: int = 0o755, uid: int = 0) -> None:
        parts = name.strip("/").split("/")
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.dirs:
                self.dirs.add(d)
                self.tar.addfile(self._info(d, tarfile.DIRTYPE, mode, uid))
                self.entries += 1

    def file(self, name: str, data: bytes, mode: int = 0o644, uid: int = 0) -> None:
        self.dir(os.path.dirname(name), uid=uid)
        info = self._info(name, tarfile.REGTYPE, mode, uid)
        info.size = len(data)
        self.tar.addfile(info, io.BytesIO(data))
        self.files += 1
        self.entries += 1

    def link(self, name: str, target: str, hard: bool = False, mode: int = 0o777,
             uid: int = 0) -> None:
        """A symlink, or a hard link (its header carries its target's mode and owner, as
        docker's tar writer makes it: containerd applies them to the inode, hawser not)."""
        self.dir(os.path.dirname(name))
        info = self._info(name, tarfile.LNKTYPE if hard else tarfile.SYMTYPE, mode, uid)
        info.linkname = target
        self.tar.addfile(info)
        self.entries += 1

    def close(self) -> Layer:
        if self.tar is not None:
            self.tar.close()
        self.gz.close()
        self.raw.close()
        return Layer(self.path, "sha256:" + self.blob.hash.hexdigest(), self.blob.size,
                     "sha256:" + self.tar_out.hash.hexdigest(), self.tar_out.size,
                     self.files, self.entries)


# -- the layers --------------------------------------------------------------------------------
def _os_layer(w: _LayerWriter, c: _Content) -> None:
    for p in range(600):                                   # /usr/share/doc: ~6000 small files
        for f in range(10):
            w.file(f"usr/share/doc/pkg{p:03d}/{'changelog' if f == 0 else f'doc{f}'}.txt",
                   c.text(c.small()))
    for i in range(300):
        w.file(f"etc/conf{i % 20}/setting{i}.conf", c.text(c.small(hi=4 * KiB)))
    for i in range(120):                                   # libraries, half text-like
        size = c.rng.randrange(50 * KiB, 800 * KiB)
        name = f"usr/lib/x86_64-linux-gnu/lib{i:03d}.so.1.2"
        w.file(name, c.random(size) if i % 2 else c.text(size), mode=0o755)
        w.link(f"usr/lib/x86_64-linux-gnu/lib{i:03d}.so.1", os.path.basename(name))
    w.file("usr/lib/locale/locale-archive", c.text(24 * MiB))
    w.file("usr/lib/x86_64-linux-gnu/libbig.so.9", c.random(8 * MiB), mode=0o755)


def _runtime_layer(w: _LayerWriter, c: _Content) -> None:
    for p in range(160):                                   # ~8000 source files
        for f in range(50):
            w.file(f"usr/lib/python3/site-packages/pkg{p:03d}/sub{f % 5}/mod{f}.py",
                   c.text(c.small(lo=500, hi=24 * KiB, mu=8.6)))
    for i in range(20):
        w.file(f"usr/lib/python3/lib-dynload/ext{i:02d}.so", c.random(1 * MiB), mode=0o755)
    w.file("usr/share/runtime/tzdata.db", c.text(12 * MiB))


def _data_layer(w: _LayerWriter, c: _Content) -> None:
    w.file("opt/app/model.bin", c.random(48 * MiB))
    w.file("opt/app/data.csv", c.text(64 * MiB))
    w.file("opt/app/assets.pak", c.random(24 * MiB))
    w.file("opt/app/index.txt", c.text(2 * MiB))


def _app_layer(w: _LayerWriter, c: _Content) -> None:
    for m in range(80):                                    # node_modules-like, deep
        for f in range(50):
            w.file(f"srv/app/node_modules/m{m:02d}/lib/a/b/f{f}.js",
                   c.text(c.small(hi=32 * KiB, mu=8.0)), uid=1000)
    for i in range(20):
        w.link(f"srv/app/bin/tool{i}", f"srv/app/node_modules/m{i:02d}/lib/a/b/f0.js", hard=True,
               mode=0o644, uid=1000)
    w.file("srv/app/bundle.js", c.text(6 * MiB), uid=1000)


def _fixups_layer(w: _LayerWriter, c: _Content) -> None:
    for p in range(50):                                     # deleted docs (whiteouts)
        w.file(f"usr/share/doc/pkg{p:03d}/.wh.changelog.txt", b"")
    w.file("usr/share/doc/pkg599/.wh..wh..opq", b"")        # an opaque directory
    w.file("usr/share/doc/pkg599/README", c.text(2 * KiB))
    for i in range(0, 300, 10):                             # modified configs
        w.file(f"etc/conf{i % 20}/setting{i}.conf", c.text(c.small(hi=4 * KiB)))
    w.file("opt/app/.wh.index.txt", b"")
    w.file("opt/app/index2.txt", c.text(3 * MiB))


def _top_layer(w: _LayerWriter, c: _Content) -> None:
    w.file("etc/app.yaml", c.text(3 * KiB))
    w.file("srv/app/VERSION", b"1.0.0\n", uid=1000)


def write_image(dest: Path, name: str, rootfs: Path, work: Path) -> Image:
    """The OCI archive at dest (layers generated under work, removed once in the archive)."""
    rng = random.Random(SEED)
    content = _Content(rng)
    work.mkdir(parents=True, exist_ok=True)
    layers = []
    makers = [None, _os_layer, _runtime_layer, _data_layer, _app_layer, _fixups_layer, _top_layer]
    for i, make in enumerate(makers):
        w = _LayerWriter(work / f"layer{i}.tar.gz",
                         rootfs_tar_bytes(rootfs) if make is None else None)
        if make is not None:
            make(w, content)
        layers.append(w.close())
    config = {
        "created": "2026-01-01T00:00:00Z", "architecture": _arch(), "os": "linux",
        "config": {"Env": [f"PATH={DEFAULT_PATH}"], "Cmd": ["sleep", "1000"], "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": "2026-01-01T00:00:00Z", "created_by": f"bench layer {i}"}
                    for i in range(len(layers))],
    }
    config_bytes = json.dumps(config, sort_keys=True).encode()
    manifest = {
        "schemaVersion": 2, "mediaType": MEDIA_MANIFEST,
        "config": {"mediaType": MEDIA_CONFIG, "digest": _digest(config_bytes),
                   "size": len(config_bytes)},
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size}
                   for layer in layers],
    }
    manifest_bytes = json.dumps(manifest, sort_keys=True).encode()
    tag = name.rsplit(":", 1)[1]
    index = {
        "schemaVersion": 2, "mediaType": MEDIA_INDEX,
        "manifests": [{"mediaType": MEDIA_MANIFEST, "digest": _digest(manifest_bytes),
                       "size": len(manifest_bytes),
                       "platform": {"architecture": _arch(), "os": "linux"},
                       "annotations": {"io.containerd.image.name": name,
                                       "org.opencontainers.image.ref.name": tag}}],
    }
    small = {"oci-layout": json.dumps({"imageLayoutVersion": "1.0.0"}).encode(),
             "index.json": json.dumps(index, sort_keys=True).encode(),
             _blob_path(config_bytes): config_bytes, _blob_path(manifest_bytes): manifest_bytes}
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, MTIME
            tar.addfile(info)
        for path, data in small.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode, info.mtime = len(data), 0o644, MTIME
            tar.addfile(info, io.BytesIO(data))
        for layer in layers:
            info = tarfile.TarInfo("blobs/sha256/" + layer.digest.partition(":")[2])
            info.size, info.mode, info.mtime = layer.size, 0o644, MTIME
            with open(layer.path, "rb") as f:
                tar.addfile(info, f)
            layer.path.unlink()
    return Image(dest, name, layers)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def _blob_path(data: bytes) -> str:
    return "blobs/sha256/" + hashlib.sha256(data).hexdigest()
