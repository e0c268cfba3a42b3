"""Images: hawserd (hawser row) against containerd 1.6 + ctr (runc row), in the same run, on one
generated multi-layer image (bench/images_gen.py: 7 gzip layers, ~210 MiB archive, ~370 MiB and
~18,500 files unpacked), written once as an OCI archive that both sides read.

img.load               wall time of `hawserctl load -i ARCHIVE` / `ctr images import ARCHIVE`
                       (content store + unpack into overlayfs snapshots; ctr unpacks for the host
                       platform; checked after each: every layer a committed snapshot), the
                       clients' process starts included. LOAD_RUNS loads per side, interleaved.
img.load.MiB/s         archive MiB / load seconds, per load
img.load.content, .unpack   the load split where the client reports that the unpack starts
                       (the archive's blobs are then in the content store)
img.load.cpu           CPU time (user + system) of the client and the daemon during the load
img.rootfs-prep        a container's rootfs: snapshot prepare (fresh key, on the image's top
                       layer) + overlay mount on a target; unmount and remove are not timed.
                       hawserd: its Snapshotter in-process, on hawserd's root and meta.db;
                       containerd: Snapshots.Prepare over its gRPC socket (one round trip),
                       mounted in-process the same way (shim/mount.py's mount_all)
img.rootfs-prep.prepare, .mount   the two parts
img.rootfs-prep.ctr    containerd only: `ctr snapshots prepare --mounts` + mount (a process start)
img.disk-100.*-KiB     allocated bytes (st_blocks, each inode once, not crossing mounts) added
                       under the daemon's --root by 100 containers of the image: `created`
                       after `hawserctl create` / `ctr containers create` (snapshots prepared,
                       not mounted), `running` after they were started (`sleep`: mounted; the
                       kernel adds work/work); the SQLite / bolt databases are left out of both
                       and their growth is `db`. One sample per side, after the last load.

Every load goes into a fresh daemon with a fresh root that holds only the busybox image (the
one shim.py's containerd imports, loaded into hawserd too: the image's first layer is
busybox's, so neither side unpacks it), and nothing is deleted until the end: on an ext4
without a journal (this machine's), a file created within minutes of many deletions costs up
to ~1 ms of kernel time (inode allocation skips recently deleted inodes, scanning for each),
so a load right after removing the previous one's 20,000 files measures the removal, not the
load. Page cache: the archive is read whole before every load (both sides read it from
memory) and `sync` flushes what the previous step wrote, untimed; caches are never dropped
(the machine is shared). Rootfs preparation runs once in every iteration, on busybox's layer
in the warm-up, then on the loaded image (at least PREP_RUNS iterations: the benchmark raises
the run's iteration count for its own loop). The roots (~600 MiB each) are removed at the end.
crun has no row here.
"""
from __future__ import annotations

import fnmatch
import importlib
import json
import os
import select
import shutil
import stat
import statistics
import subprocess
import sys
import tempfile
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import REPO, Benchmark, Context, Runtime, RuntimeFailed, summary
from supervisor import CLIENTS, HAWSERCTL, Ctrd, Hawserd
from shim import IMAGE as BUSYBOX
import images_gen
from images import write_oci_archive  # tests/images.py (images_gen puts tests/ on the path)

NAME = "docker.io/hawser-bench/layers:1"
LOAD_RUNS = 6
PREP_RUNS = 50
CONTAINERS = 100
LOAD_TIMEOUT = 300.0
HAWSERD_DB = ("meta.db", "meta.db-wal", "meta.db-shm")
CONTAINERD_DB = ("*.db",)      # bolt: io.containerd.metadata.v1.bolt/meta.db, the snapshotter's
SNAPSHOTS_RPC = "/containerd.services.snapshots.v1.Snapshots/"
GC_ROOT = ("containerd.io/gc.root", "1")   # else containerd's GC may take it
VERSION_RPC = "/containerd.services.version.v1.Version/Version"


def repo_modules(*names: str) -> list:
    """Modules of the repo's `supervisor` and `shim` packages, which bench/supervisor.py and
    bench/shim.py shadow: imported with the repo first on sys.path, the bench's put back."""
    shadowed = {k: sys.modules.pop(k) for k in ("supervisor", "shim") if k in sys.modules}
    sys.path.insert(0, str(REPO))
    try:
        return [importlib.import_module(n) for n in names]
    finally:
        sys.path.remove(str(REPO))
        for k in ("supervisor", "shim"):
            sys.modules.pop(k, None)
        sys.modules.update(shadowed)


class _Sub:
    """The run's Context with a temp dir of our own (the stacks of bench/supervisor.py make
    fixed names under ctx.tmp, which that benchmark may already have used)."""

    def __init__(self, ctx: Context, tmp: Path):
        self._ctx, self.tmp = ctx, tmp

    def __getattr__(self, name):
        return getattr(self._ctx, name)


def allocated(top: Path, db: tuple[str, ...]) -> tuple[dict[str, int], dict[str, int]]:
    """({top-level entry: allocated bytes}, {database file: allocated bytes}): each inode once,
    mounts (another st_dev) not entered, the files named like a db pattern apart."""
    dev = os.lstat(top).st_dev
    seen: set[int] = set()
    per, db_bytes = {}, {}
    for first in os.scandir(top):
        total, todo = 0, [first.path]
        while todo:
            path = todo.pop()
            try:
                st = os.lstat(path)
            except FileNotFoundError:       # went while we looked
                continue
            if st.st_dev != dev or st.st_ino in seen:
                continue
            seen.add(st.st_ino)
            if any(fnmatch.fnmatch(os.path.basename(path), p) for p in db):
                db_bytes[os.path.relpath(path, top)] = st.st_blocks * 512
                continue
            total += st.st_blocks * 512
            if stat.S_ISDIR(st.st_mode):
                try:
                    todo.extend(e.path for e in os.scandir(path))
                except FileNotFoundError:
                    pass
        per[first.name] = total
    return per, db_bytes


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        b, v = v & 0x7F, v >> 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def _pb(*fields: tuple[int, str | bytes]) -> bytes:
    """A protobuf message of string and message (bytes) fields: containerd's snapshot requests
    have no other kind (a map<string, string> is repeated {1: key, 2: value} messages)."""
    out = b""
    for num, value in fields:
        data = value.encode() if isinstance(value, str) else value
        out += _varint(num << 3 | 2) + _varint(len(data)) + data
    return out


def _pb_fields(data: bytes) -> list[tuple[int, bytes]]:
    """(field number, bytes) of a message's length-delimited fields; others skipped."""
    out, pos = [], 0
    while pos < len(data):
        key, shift = 0, 0
        while True:
            b = data[pos]
            pos += 1
            key |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        wt = key & 7
        if wt == 0:
            while data[pos] & 0x80:
                pos += 1
            pos += 1
        elif wt == 1:
            pos += 8
        elif wt == 5:
            pos += 4
        elif wt == 2:
            n, shift = 0, 0
            while True:
                b = data[pos]
                pos += 1
                n |= (b & 0x7F) << shift
                shift += 7
                if not b & 0x80:
                    break
            out.append((key >> 3, data[pos:pos + n]))
            pos += n
        else:
            raise ValueError(f"wire type {wt}")
    return out


def _mounts_of(response: bytes) -> list[types.SimpleNamespace]:
    """PrepareSnapshotResponse{repeated containerd.types.Mount mounts = 1} as mount_all wants."""
    out = []
    for num, raw in _pb_fields(response):
        if num == 1:
            m = types.SimpleNamespace(type="", source="", options=[])
            for f, v in _pb_fields(raw):
                if f == 1:
                    m.type = v.decode()
                elif f == 2:
                    m.source = v.decode()
                elif f == 4:
                    m.options.append(v.decode())
            out.append(m)
    return out


def _ns(mounts: list[dict]) -> list[types.SimpleNamespace]:
    return [types.SimpleNamespace(type=m.get("type", m.get("Type", "")),
                                  source=m.get("source", m.get("Source", "")),
                                  options=list(m.get("options", m.get("Options")) or []))
            for m in mounts]


def _read_whole(path: Path) -> None:
    """Into the page cache (both sides then read it from memory)."""
    buf = bytearray(8 << 20)
    with open(path, "rb", buffering=0) as f:
        while f.readinto(buf):
            pass


def _check_rootfs(target: Path, who: str, whole: bool) -> None:
    """The mounted rootfs is the image's (whole: all its layers, else busybox's): busybox's
    sleep, the top layer's file, a whiteout applied."""
    if not (target / "bin/sleep").exists() or whole and (
            not (target / "srv/app/VERSION").is_file() or (target / "opt/app/index.txt").exists()):
        raise RuntimeFailed(f"{who}: the mounted rootfs is not the image's (a layer's file "
                            "missing or a whiteout not applied)")


def tree(top: Path) -> dict[str, tuple]:
    """path -> (mode, uid, gid, size, nlink, link target, mtime) of every entry under top."""
    out, todo = {}, [str(top)]
    while todo:
        with os.scandir(todo.pop()) as it:
            for e in it:
                st = e.stat(follow_symlinks=False)
                link = os.readlink(e.path) if e.is_symlink() else ""
                out[os.path.relpath(e.path, top)] = (
                    st.st_mode, st.st_uid, st.st_gid,
                    0 if stat.S_ISDIR(st.st_mode) else st.st_size, st.st_nlink, link,
                    int(st.st_mtime))
                if e.is_dir(follow_symlinks=False):
                    todo.append(e.path)
    return out


def cpu_seconds(pid: int) -> float:
    """user + system CPU time of a process so far (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed_load(argv: list[str], marker: bytes, what: str, daemon: int) -> Load:
    """Run a client's load: its wall time, the time until `marker` appeared on its stdout (both
    clients print a line when the unpack starts, once the archive's blobs are in the content
    store: hawserctl "ID: Extracting", flushed per line; ctr "unpacking NAME...", unbuffered)
    and the CPU time of the client and of the daemon pid."""
    with tempfile.TemporaryFile() as err:
        cpu0 = cpu_seconds(daemon)
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err)
        seen, stored, rc, ru = b"", 0.0, None, None
        try:
            while True:
                ready, _, _ = select.select([proc.stdout], [], [], LOAD_TIMEOUT)
                if not ready:
                    raise RuntimeFailed(f"{what}: no output for {LOAD_TIMEOUT:g} s")
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                if not stored:
                    seen = seen[-len(marker):] + chunk
                    if marker in seen:
                        stored = time.perf_counter() - t0
            _, status, ru = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - t0
            proc.returncode = rc = os.waitstatus_to_exitcode(status)
        finally:
            if rc is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
        if rc != 0:
            err.seek(0)
            raise RuntimeFailed(f"{what} exited {rc}: {err.read().decode(errors='replace')[-300:]}")
    cpu = cpu_seconds(daemon) - cpu0 + ru.ru_utime + ru.ru_stime
    return Load(wall, stored or wall, cpu)


class Load(types.SimpleNamespace):
    """wall, stored (seconds until the unpack started), cpu (client + daemon seconds)."""

    def __init__(self, wall: float, stored: float, cpu: float):
        super().__init__(wall=wall, stored=stored, cpu=cpu)


class HawserdSide:
    """A private hawserd (bench/supervisor.py's) with the busybox image loaded, and, in this
    process, a Snapshotter on its root for the rootfs preparation."""

    label = "hawserd"

    def __init__(self, ctx: Context, base: Path, image: images_gen.Image, busybox: Path):
        overlay, manifest, self.mnt = repo_modules(
            "supervisor.snapshots.overlay", "supervisor.images.manifest", "shim.mount")
        self.ctx, self.image = ctx, image
        self.d = Hawserd(_Sub(ctx, base), ctx.template / "rootfs")
        self.root = self.d.base / "root"
        self.state = self.d.base / "state"
        self.snap = overlay.Snapshotter(str(self.root), str(self.root / "meta.db"))
        self.chains = manifest.chain_ids(image.diff_ids)
        self.target = base / "mnt"
        self.tree: dict[str, tuple] = {}
        self.ctl("load", "-q", "-i", busybox)
        self.top = self.chains[0]                 # busybox's layer: the image's first
        self._check(self.chains[:1], "the busybox image")

    def _check(self, chains: list[str], what: str) -> None:
        committed = [c for c in self.chains
                     if (self.snap.stat(c) or types.SimpleNamespace(kind="")).kind == "committed"]
        if committed != chains:
            raise RuntimeFailed(f"hawserd: after {what}, {len(committed)} of the image's "
                                f"{len(self.chains)} layers are committed, not {len(chains)}")

    def ctl(self, *args, timeout: float = 60.0) -> subprocess.CompletedProcess:
        p = subprocess.run([HAWSERCTL, "--address", self.d.address, *map(str, args)],
                           capture_output=True, text=True, stdin=subprocess.DEVNULL,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeFailed(f"hawserctl {args[0]}: {p.stderr.strip()[-300:]}")
        return p

    def load(self) -> Load:
        out = timed_load([HAWSERCTL, "--address", self.d.address, "load", "-i",
                          str(self.image.archive)], b": Extracting", "hawserctl load",
                         self.d.proc.pid)
        self._check(self.chains, "hawserctl load")
        self.top = self.chains[-1]
        return out

    def prep(self, key: str, survey: bool = False) -> tuple[float, float]:
        t0 = time.perf_counter()
        mounts = self.snap.prepare(key, self.top, labels={"hawser/bench": "1"})
        t1 = time.perf_counter()
        try:
            self.mnt.mount_all(_ns(mounts), str(self.target))
            t2 = time.perf_counter()
            _check_rootfs(self.target, self.label, self.top == self.chains[-1])
            if survey:
                self.tree = tree(self.target)
        finally:
            self.mnt.unmount_all(str(self.target))
            self.snap.remove(key)
        return (t1 - t0) * 1000.0, (t2 - t1) * 1000.0

    def disk(self) -> tuple[dict[str, int], dict[str, int], int]:
        per, db = allocated(self.root, HAWSERD_DB)
        state, _ = allocated(self.state, ())
        return per, db, sum(state.values())

    def create(self, cid: str) -> None:
        self.d.ids.add(cid)
        self.ctl("create", "--name", cid, NAME, "sleep", "1000")

    def start(self, cid: str) -> None:
        self.ctl("start", cid)

    def running(self) -> int:
        return self.d.running()

    def remove(self, cid: str) -> None:
        self.d.remove(cid)

    def close(self) -> None:
        try:
            self.mnt.unmount_all(str(self.target))
        finally:
            self.snap.close()
            self.d.close()


class ContainerdSide:
    """A private containerd + ctr (bench/supervisor.py's Ctrd: it imports the busybox image)
    and a gRPC channel to its Snapshots service."""

    label = "containerd"

    def __init__(self, ctx: Context, base: Path, image: images_gen.Image, runc: str):
        import grpc
        manifest, self.mnt = repo_modules("supervisor.images.manifest", "shim.mount")
        self.ctx, self.image = ctx, image
        self.stack = Ctrd(_Sub(ctx, base), runc)
        self.d = self.stack.d
        self.root = self.d.base / "root"
        self.state = self.d.base / "state"
        self.chains = manifest.chain_ids(image.diff_ids)
        self.target = base / "mnt"
        self.tree: dict[str, tuple] = {}
        self.collected = 0            # ctr's snapshots containerd's GC took first
        self.channel = grpc.insecure_channel(f"unix://{self.d.sock}")
        self.md = (("containerd-namespace", self.d.namespace),)
        self.prepare_rpc = self.channel.unary_unary(SNAPSHOTS_RPC + "Prepare")
        self.remove_rpc = self.channel.unary_unary(SNAPSHOTS_RPC + "Remove")
        self.version_rpc = self.channel.unary_unary(VERSION_RPC)
        self.top = self.chains[0]
        self._check(self.chains[:1], "the busybox image")

    def _check(self, chains: list[str], what: str) -> None:
        rows = self.d.ctr("snapshots", "ls").stdout.splitlines()[1:]
        kinds = {r.split()[0]: r.split()[-1] for r in rows if r.strip()}
        committed = [c for c in self.chains if kinds.get(c) == "Committed"]
        if committed != chains:
            raise RuntimeFailed(f"containerd: after {what}, {len(committed)} of the image's "
                                f"{len(self.chains)} layers are committed, not {len(chains)}")

    def load(self) -> Load:
        out = timed_load(["ctr", "--address", str(self.d.sock), "--namespace", self.d.namespace,
                          "images", "import", str(self.image.archive)], b"unpacking ",
                         "ctr images import", self.d.proc.pid)
        self._check(self.chains, "ctr images import")
        self.top = self.chains[-1]
        return out

    def prep(self, key: str, survey: bool = False) -> tuple[float, float]:
        t0 = time.perf_counter()
        resp = self.prepare_rpc(_pb((1, "overlayfs"), (2, key), (3, self.top),
                                    (4, _pb((1, GC_ROOT[0]), (2, GC_ROOT[1])))),
                                metadata=self.md, timeout=30)
        t1 = time.perf_counter()
        try:
            self.mnt.mount_all(_mounts_of(resp), str(self.target))
            t2 = time.perf_counter()
            _check_rootfs(self.target, self.label, self.top == self.chains[-1])
            if survey:
                self.tree = tree(self.target)
        finally:
            self.mnt.unmount_all(str(self.target))
            self._remove(key)
        return (t1 - t0) * 1000.0, (t2 - t1) * 1000.0

    def _remove(self, key: str) -> bool:
        """False if containerd's GC had removed the snapshot already."""
        import grpc
        try:
            self.remove_rpc(_pb((1, "overlayfs"), (2, key)), metadata=self.md, timeout=30)
            return True
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            return False

    def prep_ctr(self, ctx: Context) -> float:
        """ctr can't label its snapshot a GC root (nor take a lease): containerd's GC may
        collect it before our mount; then the sample is taken again."""
        for _ in range(3):
            key = ctx.new_id("prepctr")
            t0 = time.perf_counter()
            p = self.d.ctr("snapshots", "prepare", "--mounts", key, self.top)
            try:
                self.mnt.mount_all(_ns(json.loads(p.stdout)), str(self.target))
                ms = (time.perf_counter() - t0) * 1000.0
            except OSError:
                ms = None
            finally:
                self.mnt.unmount_all(str(self.target))
                kept = self._remove(key)
            if ms is not None and kept:
                return ms
            self.collected += 1
        raise RuntimeFailed("containerd's GC collected 3 snapshots of ctr in a row")

    def rpc_floor(self) -> float:
        t0 = time.perf_counter()
        self.version_rpc(b"", timeout=30)
        return (time.perf_counter() - t0) * 1000.0

    def disk(self) -> tuple[dict[str, int], dict[str, int], int]:
        per, db = allocated(self.root, CONTAINERD_DB)
        state, _ = allocated(self.state, ())
        return per, db, sum(state.values())

    def create(self, cid: str) -> None:
        self.stack.ids.add(cid)
        self.d.ctr("containers", "create", NAME, cid, "sleep", "1000")

    def start(self, cid: str) -> None:
        self.d.ctr("tasks", "start", "--null-io", "-d", cid)

    def running(self) -> int:
        return self.stack.running()

    def remove(self, cid: str) -> None:
        self.stack.remove(cid)

    def close(self) -> None:
        try:
            self.mnt.unmount_all(str(self.target))
        finally:
            self.channel.close()
            self.stack.close()


class Images(Benchmark):
    name = "images"
    title = ("hawserd vs containerd 1.6 + ctr: load+unpack of a 7-layer ~210 MiB OCI archive, "
             f"rootfs preparation, disk of {CONTAINERS} containers")
    metrics = ("img.load", "img.load.MiB/s", "img.load.content", "img.load.unpack",
               "img.load.cpu", "img.rootfs-prep", "img.rootfs-prep.prepare",
               "img.rootfs-prep.mount", "img.rootfs-prep.ctr", "img.disk-100.created-KiB",
               "img.disk-100.running-KiB", "img.disk-100.db-KiB")

    def __init__(self):
        self.image: images_gen.Image | None = None
        self.busybox: Path | None = None
        self.gen_s = 0.0
        self.sides: dict[str, HawserdSide | ContainerdSide] = {}
        self.calls: dict[str, int] = {}
        self.loads: dict[str, list[Load]] = {}
        self.preps: dict[str, list[float]] = {}
        self.floor: list[float] = []
        self.ctr_preps: list[float] = []
        self.gc_retries = 0
        self.unpacked: dict[str, tuple[int, int]] = {}
        self.trees: dict[str, dict] = {}
        self.disks: dict[str, dict] = {}
        self.iterations: int | None = None
        self.teardowns = 0

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self, ctx: Context, rt: Runtime) -> None:
        if rt.name not in ("hawser", "runc"):
            raise RuntimeFailed("no row here: hawserd (hawser row) is measured against "
                                "containerd + runc shim + runc (runc row)")
        if rt.name == "runc" and (not shutil.which("containerd") or not shutil.which("ctr")):
            raise RuntimeFailed("containerd is not installed")
        base = ctx.tmp / "img"
        if self.image is None:
            base.mkdir(exist_ok=True)
            t0 = time.perf_counter()
            self.image = images_gen.write_image(base / "image.tar", NAME, ctx.template / "rootfs",
                                                base / "layers")
            self.gen_s = time.perf_counter() - t0
            # the busybox image shim.py's containerd imports (the same bytes), for hawserd
            self.busybox = write_oci_archive(ctx.template / "rootfs", base / "busybox.tar",
                                             BUSYBOX, cmd=("true",))
            im = self.image
            print(f"   image: {len(im.layers)} layers, {im.archive_size / 2**20:.1f} MiB OCI "
                  f"archive (gzip -6), {im.tar_size / 2**20:.1f} MiB of tar, {im.files} files; "
                  f"generated in {self.gen_s:.1f} s", flush=True)
        if self.iterations is None:          # our loop needs PREP_RUNS iterations
            self.iterations = ctx.iterations
            ctx.iterations = max(ctx.iterations, PREP_RUNS)
        self.sides[rt.name] = self._side(ctx, rt, 0)

    def _side(self, ctx: Context, rt: Runtime, k: int):
        """A fresh daemon with its own root (the k-th of its side), the busybox image in it."""
        base = ctx.tmp / "img" / f"{rt.name[0]}{k}"
        base.mkdir()
        if rt.name == "hawser":
            return HawserdSide(ctx, base, self.image, self.busybox)
        return ContainerdSide(ctx, base, self.image, rt.path)

    # -- one iteration --------------------------------------------------------------------------
    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        self.calls[rt.name] = n = self.calls.get(rt.name, 0) + 1
        timed = n - max(1, ctx.warmup)             # 1, 2, ... in the timed iterations
        out: dict[str, float] = {}
        if 1 <= timed <= LOAD_RUNS:
            # A fresh daemon and root for every load, and nothing deleted until the end: the
            # old one stops, its files stay (see the module's doc: ext4 without a journal).
            self.sides.pop(rt.name).close()
            side = self.sides[rt.name] = self._side(ctx, rt, timed)
            _read_whole(self.image.archive)
            os.sync()
            load = side.load()
            os.sync()
            self.loads.setdefault(rt.name, []).append(load)
            out["img.load"] = load.wall * 1000.0
            out["img.load.MiB/s"] = self.image.archive_size / 2**20 / load.wall
            out["img.load.content"] = load.stored * 1000.0
            out["img.load.unpack"] = (load.wall - load.stored) * 1000.0
            out["img.load.cpu"] = load.cpu * 1000.0
            if timed == LOAD_RUNS:
                self._unpacked(rt.name, side)
        side = self.sides[rt.name]
        prepare, mount = side.prep(ctx.new_id("prep"), survey=timed == LOAD_RUNS)
        if timed == LOAD_RUNS:
            self.trees[rt.name] = side.tree
        if timed >= 1:
            out["img.rootfs-prep"] = prepare + mount
            out["img.rootfs-prep.prepare"], out["img.rootfs-prep.mount"] = prepare, mount
            self.preps.setdefault(rt.name, []).append(prepare + mount)
        if isinstance(side, ContainerdSide):
            before = side.collected
            ms = side.prep_ctr(ctx)
            self.gc_retries += side.collected - before
            floor = side.rpc_floor()
            if timed >= 1:
                out["img.rootfs-prep.ctr"] = ms
                self.ctr_preps.append(ms)
                self.floor.append(floor)
        if timed == LOAD_RUNS:
            out.update(self._disk100(ctx, rt.name, side))
        return out

    def _unpacked(self, name: str, side) -> None:
        top = side.root / ("snapshots" if name == "hawser" else
                           "io.containerd.snapshotter.v1.overlayfs/snapshots")
        size, inodes, todo = 0, 0, [str(top)]
        while todo:
            with os.scandir(todo.pop()) as it:
                for e in it:
                    st = e.stat(follow_symlinks=False)
                    size += st.st_blocks * 512
                    inodes += 1
                    if e.is_dir(follow_symlinks=False):
                        todo.append(e.path)
        self.unpacked[name] = (size, inodes)

    def _disk100(self, ctx: Context, name: str, side) -> dict[str, float]:
        ids = [ctx.new_id("disk") for _ in range(CONTAINERS)]
        before = side.disk()
        try:
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(side.create, ids))
            created = side.disk()
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(side.start, ids))
            running = side.running()
            if running < CONTAINERS:
                raise RuntimeFailed(f"only {running} of the {CONTAINERS} containers are running")
            started = side.disk()
        finally:
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(side.remove, ids))
            os.sync()
        after = side.disk()

        def grown(a: dict, b: dict) -> dict:
            return {k: b.get(k, 0) - a.get(k, 0) for k in set(a) | set(b)
                    if b.get(k, 0) != a.get(k, 0)}
        d = self.disks[name] = {
            "created": grown(before[0], created[0]), "running": grown(before[0], started[0]),
            "db": grown(before[1], started[1]), "state": started[2] - before[2],
            "left": sum(grown(before[0], after[0]).values())}
        return {"img.disk-100.created-KiB": sum(d["created"].values()) / 1024,
                "img.disk-100.running-KiB": sum(d["running"].values()) / 1024,
                "img.disk-100.db-KiB": sum(d["db"].values()) / 1024}

    # -- the end ----------------------------------------------------------------------------------
    def teardown(self, ctx: Context, rt: Runtime) -> None:
        self.teardowns += 1
        side = self.sides.pop(rt.name, None)
        try:
            if side is not None:
                side.close()
        finally:
            if self.teardowns == len(ctx.runtimes):
                if self.iterations is not None:
                    ctx.iterations = self.iterations
                self.report()
                t0 = time.perf_counter()
                shutil.rmtree(ctx.tmp / "img", ignore_errors=True)
                print(f"   removing the {2 * LOAD_RUNS + 2} roots took "
                      f"{time.perf_counter() - t0:.1f} s")

    def report(self) -> None:
        if self.image is None:
            return
        size = self.image.archive_size / 2**20
        labels = {"hawser": "hawserd", "runc": "containerd"}
        print(f"   load+unpack of the {size:.1f} MiB archive, median (min-max) of each side's "
              f"loads; CPU = client + daemon:")
        for name, label in labels.items():
            loads = self.loads.get(name)
            if not loads:
                continue
            s = [x.wall for x in loads]
            m = statistics.median(s)
            print(f"     {label:<10} {m:6.2f} s ({min(s):.2f}-{max(s):.2f})  {size / m:6.1f} MiB/s "
                  f"({size / max(s):.1f}-{size / min(s):.1f})  CPU "
                  f"{statistics.median(x.cpu for x in loads):.2f} s", end="")
            if name in self.unpacked:
                b, i = self.unpacked[name]
                print(f"   unpacked: {b / 2**20:.1f} MiB, {i} inodes", end="")
            print()
            print("       each (content + unpack, s): " + "  ".join(
                f"{x.wall:.2f} ({x.stored:.2f}+{x.wall - x.stored:.2f})" for x in loads))
        if "hawser" in self.trees and "runc" in self.trees:
            a, b = self.trees["hawser"], self.trees["runc"]
            only = len(set(a) ^ set(b))
            meta = sum(1 for k in set(a) & set(b) if a[k][:6] != b[k][:6])
            mtime = sum(1 for k in set(a) & set(b) if a[k][6] != b[k][6])
            print(f"     the mounted rootfs, {len(a)} entries: {only} paths on one side only, "
                  f"{meta} with another mode/owner/size/nlink/target, {mtime} another mtime"
                  + (" (the same tree)" if not only + meta + mtime else ""))
            for k in sorted(set(a) ^ set(b))[:3] + [k for k in sorted(set(a) & set(b))
                                                      if a[k] != b[k]][:3]:
                print(f"       {k}: hawserd {a.get(k)}, containerd {b.get(k)}")
        if "hawser" in self.loads and "runc" in self.loads:
            h = statistics.median(x.wall for x in self.loads["hawser"])
            c = statistics.median(x.wall for x in self.loads["runc"])
            print(f"     hawserd/containerd load throughput {c / h:.2f}x (target >= 1.0)")
        for name, label in labels.items():
            s = self.preps.get(name)
            if s:
                st = summary(s)
                how = "Snapshotter in-process" if name == "hawser" else "Snapshots.Prepare gRPC"
                extra = ""
                if name == "runc" and self.floor:
                    extra = (f"; a gRPC round trip (Version) takes "
                             f"{statistics.median(self.floor):.2f} ms")
                print(f"     rootfs prep {label:<10} median {st['median_ms']:.2f} ms, p90 "
                      f"{st['p90_ms']:.2f}, min {st['min_ms']:.2f}, max {max(s):.2f} "
                      f"({how}, n={st['n']}{extra})")
        if self.ctr_preps:
            st = summary(self.ctr_preps)
            print(f"     rootfs prep `ctr snapshots prepare` + mount: median {st['median_ms']:.2f} "
                  f"ms, p90 {st['p90_ms']:.2f} (a process start; {self.gc_retries} samples "
                  f"taken again, containerd's GC had collected the snapshot)")
        if self.preps.get("hawser"):
            print(f"     hawserd rootfs prep median "
                  f"{statistics.median(self.preps['hawser']):.2f} ms (target < 10)")
        for name, label in labels.items():
            d = self.disks.get(name)
            if d:
                parts = lambda g: ", ".join(f"{k} {v / 1024:+.0f}" for k, v in sorted(g.items()))
                print(f"     {CONTAINERS} containers, {label}: created "
                      f"{sum(d['created'].values()) / 1024:+.0f} KiB ({parts(d['created'])}), "
                      f"running {sum(d['running'].values()) / 1024:+.0f} KiB "
                      f"({parts(d['running'])}); databases {sum(d['db'].values()) / 1024:+.0f}"
                      f" KiB ({parts(d['db']) or 'none'}); state dir {d['state'] / 1024:+.0f} "
                      f"KiB (a tmpfs in /run normally); left after removal "
                      f"{d['left'] / 1024:+.0f} KiB")
        if "hawser" in self.disks:
            kib = sum(self.disks["hawser"]["created"].values()) / 1024
            print(f"     hawserd: {CONTAINERS} created containers add {kib:.0f} KiB "
                  f"(target < 1024)")


BENCHMARKS = [Images]
