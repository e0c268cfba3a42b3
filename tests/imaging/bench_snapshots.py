"""Figures for the snapshotter and the applier (not a test: run it by hand, as root):

    .venv/bin/python tests/imaging/bench_snapshots.py [--containerd] [--dir DIR]

- unpack throughput (MB/s of uncompressed tar) of a ~220 MiB gzip layer of real files (the
  a sample of the host's /usr: binaries, libraries, text) and of a layer of 20000 small files;
  with --containerd, the same layer imported and unpacked by a private containerd (`ctr images
  import`, its own root, state and socket under a temp dir, stopped by its pid);
- rootfs preparation: prepare() of an active snapshot on a 5-layer chain + mount of its
  overlay, median of 200;
- disk used by 100 active snapshots of one image, prepared only and then mounted.
Layers are cached under /var/tmp/hawser-bench (reused by the next run)."""
import gzip
import hashlib
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time

import zstandard

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.dirname(os.path.dirname(HERE)), HERE]

import layers  # noqa: E402
from supervisor.snapshots import apply  # noqa: E402
from supervisor.snapshots.overlay import Snapshotter  # noqa: E402

CACHE = "/var/tmp/hawser-bench"
SOURCE = "/usr"
TARGET = 220 << 20
# where unpacks, snapshots and containerd's root go: --dir /dev/shm for figures without the disk
WORK = sys.argv[sys.argv.index("--dir") + 1] if "--dir" in sys.argv else "/var/tmp"


def mixed_layer() -> tuple[str, int]:
    """(path of the gzip layer, uncompressed size): every 13th file of /usr under 16 MiB (by a hash of its
    path: the same sample every run), which is what an image's files look like."""
    path = os.path.join(CACHE, "mixed.tar.gz")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        total = 0
        with gzip.open(path + ".tmp", "wb", compresslevel=6) as gz, \
                tarfile.open(fileobj=gz, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for dirpath, dirnames, filenames in os.walk(SOURCE):
                dirnames.sort()
                for name in sorted(filenames):
                    full = os.path.join(dirpath, name)
                    if total > TARGET or hashlib.md5(full.encode()).digest()[0] % 13:
                        continue
                    try:
                        if os.lstat(full).st_size > 16 << 20:     # a few huge ones are not
                            continue                               # what a layer is made of
                        tar.add(full, arcname=full.lstrip("/"), recursive=False)
                    except OSError:
                        continue
                    total += os.lstat(full).st_size
        os.rename(path + ".tmp", path)
    return path, _tar_size(path)


def small_layer(count: int = 20000) -> tuple[str, int]:
    path = os.path.join(CACHE, "small.tar.gz")
    if not os.path.exists(path):
        os.makedirs(CACHE, exist_ok=True)
        entries = []
        for d in range(count // 100):
            entries.append(layers.dir(f"d{d:03d}"))
            for i in range(100):
                body = (f"file {d}/{i}\n" * (i % 40)).encode()
                entries.append(layers.file(f"d{d:03d}/f{i:03d}.txt", body, mode=0o644))
        layers.write(path, gzip.compress(layers.tar_bytes(*entries), 6))
    return path, _tar_size(path)


def _tar_size(path: str) -> int:
    with gzip.open(path) as f:
        return sum(len(b) for b in iter(lambda: f.read(1 << 20), b""))


def time_unpack(blob: str, size: int, runs: int = 3) -> float:
    """Best MB/s of `runs` unpacks (page cache warm, as after a download)."""
    best = 0.0
    for _ in range(runs):
        dest = tempfile.mkdtemp(dir=WORK, prefix="hawser-unpack-")
        try:
            os.sync()
            t = time.perf_counter()
            apply.unpack(blob, dest)
            best = max(best, size / (time.perf_counter() - t) / 1e6)
        finally:
            shutil.rmtree(dest)
    return best


def time_parallel(blob: str, size: int, n: int = 2) -> float:
    dests = [tempfile.mkdtemp(dir=WORK, prefix="hawser-unpack-") for _ in range(n)]
    try:
        os.sync()
        t = time.perf_counter()
        threads = [threading.Thread(target=apply.unpack, args=(blob, d)) for d in dests]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        return n * size / (time.perf_counter() - t) / 1e6
    finally:
        for d in dests:
            shutil.rmtree(d)


# -- containerd -----------------------------------------------------------------------------------
def oci_archive(blob: str, size: int, out: str) -> None:
    """An OCI image-layout tar of one layer, for `ctr images import`."""
    with open(blob, "rb") as f:
        layer_digest = hashlib.sha256(f.read()).hexdigest()
    with gzip.open(blob) as f:
        h = hashlib.sha256()
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers",
                                    "diff_ids": ["sha256:" + h.hexdigest()]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": "sha256:" + hashlib.sha256(config).hexdigest(), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": "sha256:" + layer_digest, "size": os.path.getsize(blob)}]}).encode()
    index = json.dumps({"schemaVersion": 2, "manifests": [{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "sha256:" + hashlib.sha256(manifest).hexdigest(), "size": len(manifest),
        "annotations": {"org.opencontainers.image.ref.name": "bench:1",
                        "io.containerd.image.name": "docker.io/library/bench:1"}}]}).encode()
    with tarfile.open(out, "w") as tar:
        def add(name, data):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        add("blobs/sha256/" + hashlib.sha256(config).hexdigest(), config)
        add("blobs/sha256/" + hashlib.sha256(manifest).hexdigest(), manifest)
        tar.add(blob, arcname="blobs/sha256/" + layer_digest)


def time_containerd(blob: str, size: int, runs: int = 3) -> tuple[float, float]:
    """(best MB/s of import + unpack, best MB/s of the import alone, --no-unpack)."""
    base = tempfile.mkdtemp(dir=WORK, prefix="hawser-ctrd-")
    archive = os.path.join(CACHE, os.path.basename(blob) + ".oci.tar")
    if not os.path.exists(archive):
        oci_archive(blob, size, archive)
    sock = os.path.join(base, "c.sock")
    with open(os.path.join(base, "config.toml"), "w") as f:
        f.write(f'version = 2\nroot = "{base}/root"\nstate = "{base}/state"\n'
                f'[grpc]\naddress = "{sock}"\n[ttrpc]\naddress = "{sock}.ttrpc"\n'
                f'disabled_plugins = ["io.containerd.grpc.v1.cri"]\n')
    proc = subprocess.Popen(["containerd", "--config", os.path.join(base, "config.toml")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        ctr = ["ctr", "--address", sock, "-n", "bench"]
        best = {(): 0.0, ("--no-unpack",): 0.0}
        for _, flags in [(r, f) for r in range(runs) for f in best]:
            os.sync()
            t = time.perf_counter()
            subprocess.run(ctr + ["images", "import", *flags, archive], check=True,
                           capture_output=True)
            elapsed = time.perf_counter() - t
            best[flags] = max(best[flags], size / elapsed / 1e6)
            subprocess.run(ctr + ["images", "rm", "--sync", "docker.io/library/bench:1"],
                           check=False, capture_output=True)
            subprocess.run(ctr + ["images", "rm", "--sync", "bench:1"], check=False,
                           capture_output=True)
            subprocess.run(ctr + ["content", "prune", "references"], check=False,
                           capture_output=True)
        return best[()], best[("--no-unpack",)]
    finally:
        proc.terminate()
        proc.wait(10)
        subprocess.run(["umount", "-R", base], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


# -- snapshots ------------------------------------------------------------------------------------
def time_prepare(runs: int = 200) -> tuple[float, int, int]:
    """(median ms of prepare + mount, KiB for 100 prepared, KiB for 100 mounted)."""
    base = tempfile.mkdtemp(dir=WORK, prefix="hawser-snap-")
    snaps = Snapshotter(base, os.path.join(base, "meta.db"))
    parent = ""
    for i in range(5):
        key = f"extract-{i}"
        snaps.prepare(key, parent)
        with open(os.path.join(snaps.upper(key), f"f{i}"), "w") as f:
            f.write("x")
        snaps.commit(f"layer-{i}", key)
        parent = f"layer-{i}"
    target = os.path.join(base, "rootfs")
    times = []
    try:
        for i in range(runs):
            t = time.perf_counter()
            mounts = snaps.prepare(f"c{i}", parent)
            with layers.mounted(mounts, target):
                times.append((time.perf_counter() - t) * 1000)
            snaps.remove(f"c{i}")
        before = _used_kib(base)
        keys = [f"d{i}" for i in range(100)]
        mounts = [snaps.prepare(k, parent) for k in keys]
        prepared = _used_kib(base) - before
        targets = []
        try:
            for i, m in enumerate(mounts):
                t = os.path.join(base + "-m", str(i))
                os.makedirs(t)
                layers.shim_mount.mount_all([layers.SimpleNamespace(**x) for x in m], t)
                targets.append(t)
            started = _used_kib(base) - before
        finally:
            for t in targets:
                layers.unmount(t)
            shutil.rmtree(base + "-m", ignore_errors=True)
        return statistics.median(times), prepared, started
    finally:
        layers.unmount(target)
        shutil.rmtree(base)


def _used_kib(path: str) -> int:
    out = subprocess.run(["du", "-sk", "--exclude=meta.db*", path], check=True,
                         capture_output=True, text=True).stdout
    return int(out.split()[0])


def main() -> None:
    mixed, mixed_size = mixed_layer()
    small, small_size = small_layer()
    print(f"mixed layer: {mixed_size / 2**20:.0f} MiB uncompressed, "
          f"{os.path.getsize(mixed) / 2**20:.0f} MiB gzip")
    print(f"  unpack: {time_unpack(mixed, mixed_size):.0f} MB/s;"
          f" two at once in threads: {time_parallel(mixed, mixed_size):.0f} MB/s")
    zst = mixed.replace(".tar.gz", ".tar.zst")
    if not os.path.exists(zst):
        with gzip.open(mixed) as src, open(zst, "wb") as out:
            zstandard.ZstdCompressor(level=3).copy_stream(src, out)
    print(f"  the same as zstd (level 3, {os.path.getsize(zst) / 2**20:.0f} MiB): "
          f"{time_unpack(zst, mixed_size):.0f} MB/s")
    print(f"small files layer (20000 files): {small_size / 2**20:.1f} MiB")
    t = time_unpack(small, small_size)
    print(f"  unpack: {t:.1f} MB/s, {20000 * t * 1e6 / small_size:.0f} files/s")
    if "--containerd" in sys.argv:
        for label, (blob, size) in (("mixed", (mixed, mixed_size)),
                                    ("small", (small, small_size))):
            both, alone = time_containerd(blob, size)
            unpack = 1 / (1 / both - 1 / alone) if alone > both else float("nan")
            print(f"containerd {label}: `ctr images import` {both:.1f} MB/s with its unpack, "
                  f"{alone:.1f} MB/s without (--no-unpack): its unpack alone {unpack:.1f} MB/s")
    med, prepared, started = time_prepare()
    print(f"rootfs preparation (prepare + overlay mount, 5 layers): median {med:.2f} ms")
    print(f"100 active snapshots: {prepared} KiB prepared, {started} KiB once mounted")


if __name__ == "__main__":
    main()
