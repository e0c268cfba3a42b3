"""The supervisor: hawserd (+ containerd-shim-hawser-v2 + hawser) in the hawser row against
containerd 1.6 + ctr (+ containerd-shim-runc-v2 + runc) in the runc row, in the same run.

sup.run-rm        wall time of `hawserctl run --rm --rootfs R true` / `ctr run --rm IMAGE ID true`
                  (the client's process included on both sides)
sup.start-seq     wall time of one `hawserctl run -d --rootfs R sleep 1000` / `ctr run -d IMAGE ID
                  sleep 1000`, one client, no concurrency: one per iteration, interleaved with the
                  peer (>= 20 iterations for the issue's figure); the containers stay running until
                  teardown, so the n-th start sees n-1 others, as a series of `run -d` would; the
                  summary prints it as starts per second (1000 / median) beside the 4-client rate
sup.start-each    100 detached `sleep` containers started by 4 clients at a time, wall time / 100
                  (hawserd: Containers.Create + Tasks.Create + Tasks.Start over its gRPC API;
                  containerd: `ctr run -d`); one sample; the summary prints it as starts per second
sup.rss-KiB.idle  the daemon's resident memory (psutil) after the warm-up, no container
sup.rss-KiB.100   ... with the 100 containers running

Both sides start containers without networking: hawserd's from a rootfs directory (--rootfs:
no network namespace set up, no veth, no DNS; image containers get the default bridge) and
containerd's through ctr, which sets up no CNI network: the same work on both sides.

Each stack is private: hawserd with its own --root/--state/socket under the bench's temp dir,
containerd as in shim.py (own root, state, sockets, namespace). Container ids carry the bench's
id prefix, so Context.close() finds whatever a crash leaves (processes, cgroups); teardown removes
the containers, stops both daemons, kills leftover shims and removes their sockets and state.
crun has no row here.
"""
from __future__ import annotations

import os
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import REPO, Benchmark, Context, Runtime, RuntimeFailed, percentile
from shim import IMAGE, Containerd

if str(REPO) not in sys.path:
    sys.path.append(str(REPO))      # after bench/: `shim` stays bench/shim.py here

BURST, CLIENTS = 100, 4
HAWSERCTL = str(REPO / ".venv" / "bin" / "hawserctl")
HAWSERD = str(REPO / ".venv" / "bin" / "hawserd")
SHIM_SOCKETS, SHIM_STATE = "/run/containerd/s", "/run/hawser-shim"


def api_modules(*names: str) -> list:
    """supervisor.api.NAME from the repo's supervisor package, which this module (registered as
    `supervisor` in run.py) shadows: import it with the repo first, then put this module back."""
    import importlib
    mine = sys.modules.get("supervisor")
    sys.modules.pop("supervisor", None)
    sys.path.insert(0, str(REPO))
    try:
        return [importlib.import_module(f"supervisor.api.{n}") for n in names]
    finally:
        sys.path.remove(str(REPO))
        if mine is not None:
            sys.modules["supervisor"] = mine


def rss_kib(pid: int) -> int:
    import psutil
    return psutil.Process(pid).memory_info().rss // 1024


class Hawserd:
    """A private hawserd, driven over its gRPC API (burst, clean-up) and hawserctl (run --rm)."""

    def __init__(self, ctx: Context, rootfs: Path):
        import grpc
        containers_pb2, containers_pb2_grpc, tasks_pb2, tasks_pb2_grpc, version_pb2_grpc = \
            api_modules("containers_pb2", "containers_pb2_grpc", "tasks_pb2", "tasks_pb2_grpc",
                        "version_pb2_grpc")
        self.grpc, self.cpb, self.tpb = grpc, containers_pb2, tasks_pb2
        self.cgrpc, self.tgrpc = containers_pb2_grpc, tasks_pb2_grpc
        self.ctx, self.rootfs = ctx, rootfs
        self.base = ctx.tmp / "hwd"
        self.base.mkdir()
        self.sock = self.base / "h.sock"
        self.address = f"unix://{self.sock}"
        self.ids: set[str] = set()
        self.cgroup_parents = {h / "hawserd" for h in Path("/sys/fs/cgroup").iterdir()
                               if (h / "hawserd").is_dir()}
        self.log = open(self.base / "hawserd.log", "wb")
        self.proc = subprocess.Popen([HAWSERD, "--root", str(self.base / "root"), "--state",
                                      str(self.base / "state"), "--address", self.address],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.channel = grpc.insecure_channel(self.address)
        version = version_pb2_grpc.VersionStub(self.channel)
        from google.protobuf import empty_pb2
        deadline = time.monotonic() + 30
        while True:
            try:
                version.Version(empty_pb2.Empty(), timeout=1)
                break
            except grpc.RpcError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeFailed("hawserd did not start (see its log)") from None
                time.sleep(0.05)
        self.c = containers_pb2_grpc.ContainersStub(self.channel)
        self.t = tasks_pb2_grpc.TasksStub(self.channel)

    def run_rm(self) -> float:
        cid = self.ctx.new_id("hwd")
        self.ids.add(cid)
        t0 = time.perf_counter()
        p = subprocess.run([HAWSERCTL, "--address", self.address, "run", "--rm", "--name", cid,
                            "--rootfs", str(self.rootfs), "true"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=self.ctx.timeout)
        ms = (time.perf_counter() - t0) * 1000.0
        if p.returncode != 0:
            raise RuntimeFailed(f"hawserctl run --rm: {p.stderr.strip()[-300:]}")
        return ms

    def start_cli(self) -> float:
        """One `hawserctl run -d` (a client process of its own, as a user runs it): ms."""
        cid = self.ctx.new_id("seq")
        self.ids.add(cid)
        t0 = time.perf_counter()
        p = subprocess.run([HAWSERCTL, "--address", self.address, "run", "-d", "--name", cid,
                            "--rootfs", str(self.rootfs), "sleep", "1000"], capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=self.ctx.timeout)
        ms = (time.perf_counter() - t0) * 1000.0
        if p.returncode != 0:
            raise RuntimeFailed(f"hawserctl run -d: {p.stderr.strip()[-300:]}")
        return ms

    def start_detached(self, stubs, cid: str) -> None:
        c, t = stubs
        self.ids.add(cid)
        config = self.cpb.ContainerConfig(args=["sleep", "1000"])
        try:
            c.Create(self.cpb.CreateContainerRequest(id=cid, name=cid, config=config,
                                                     rootfs=str(self.rootfs)), timeout=60)
            t.Create(self.tpb.CreateTaskRequest(container_id=cid), timeout=60)
            t.Start(self.tpb.StartRequest(container_id=cid), timeout=60)
        except self.grpc.RpcError as e:
            raise RuntimeFailed(f"hawserd start {cid}: {e.code().name} {e.details()}") from None

    def client(self):
        ch = self.grpc.insecure_channel(self.address)
        return ch, (self.cgrpc.ContainersStub(ch), self.tgrpc.TasksStub(ch))

    def remove(self, cid: str) -> None:
        try:
            self.c.Delete(self.cpb.DeleteContainerRequest(id=cid, force=True), timeout=60)
        except self.grpc.RpcError:
            pass

    def running(self) -> int:
        return len(self.c.List(self.cpb.ListContainersRequest(), timeout=30).containers)

    def shim_pids(self) -> list[int]:
        out, mark = [], str(self.sock).encode()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if any(mark in a for a in argv) and \
                        any(b"containerd-shim-hawser-v2" in a for a in argv[:3]):
                    out.append(int(entry))
        return out

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                left = [c.id for c in self.c.List(self.cpb.ListContainersRequest(all=True),
                                                  timeout=30).containers]
            except self.grpc.RpcError:
                left = []
            with ThreadPoolExecutor(CLIENTS) as pool:
                list(pool.map(self.remove, left))
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.channel.close()
        self.log.close()
        for pid in self.shim_pids():     # none unless something failed half-way
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        runtime_root = self.base / "state" / "runtime" / "hawser"
        if runtime_root.is_dir():
            for cid in os.listdir(runtime_root):
                if cid.startswith(self.ctx.id_prefix):
                    subprocess.run([str(REPO / ".venv" / "bin" / "hawser"), "--root",
                                    str(runtime_root), "delete", "--force", cid],
                                   capture_output=True, timeout=60)
        for cid in self.ids:
            name = shim_socket_name(self.address, cid)
            for leftover in (os.path.join(SHIM_SOCKETS, name),):
                if os.path.exists(leftover):
                    os.unlink(leftover)
            shutil.rmtree(os.path.join(SHIM_STATE, name), ignore_errors=True)
        subprocess.run(["umount", "-R", "-l", str(self.base)], capture_output=True)
        # hawserd's containers' cgroups (under hawserd/) a failure left; not containerd's,
        # whose containers may still run (Context.close removes whatever is left at the end)
        for path in self.ctx._our_cgroups():
            if "/hawserd/" in path:
                try:
                    os.rmdir(path)
                except OSError:
                    pass
        for parent in {h / "hawserd" for h in Path("/sys/fs/cgroup").iterdir()
                       if (h / "hawserd").is_dir()} - self.cgroup_parents:
            try:
                parent.rmdir()
            except OSError:
                pass


def shim_socket_name(address: str, cid: str) -> str:
    """The shim's socket name: sha256 of filepath.Join(address, namespace, id) (shim/cli.py)."""
    import hashlib
    import posixpath
    joined = posixpath.normpath("/".join((address, "hawser", cid)))
    return hashlib.sha256(joined.encode()).hexdigest()


class Ctrd:
    """containerd 1.6 + ctr with its own runc shim (shim.py's private containerd)."""

    def __init__(self, ctx: Context, runc: str):
        sub = ctx.tmp / "sup"
        sub.mkdir()
        fake = types.SimpleNamespace(tmp=sub, template=ctx.template,
                                     id_prefix=f"{ctx.id_prefix}sup-")
        self.ctx, self.runc = ctx, runc
        self.d = Containerd(fake)
        self.ids: set[str] = set()

    def run_rm(self) -> float:
        cid = self.ctx.new_id("ctd")
        t0 = time.perf_counter()
        p = self.d.ctr("run", "--runc-binary", self.runc, "--rm", IMAGE, cid, "true",
                       check=False, timeout=self.ctx.timeout)
        ms = (time.perf_counter() - t0) * 1000.0
        if p.returncode != 0:
            self.ids.add(cid)
            raise RuntimeFailed(f"ctr run --rm: {p.stderr.strip()[-300:]}")
        return ms

    def start_cli(self) -> float:
        cid = self.ctx.new_id("seq")
        self.ids.add(cid)
        t0 = time.perf_counter()
        p = self.d.ctr("run", "-d", "--runc-binary", self.runc, IMAGE, cid, "sleep", "1000",
                       check=False, timeout=self.ctx.timeout)
        ms = (time.perf_counter() - t0) * 1000.0
        if p.returncode != 0:
            raise RuntimeFailed(f"ctr run -d: {p.stderr.strip()[-300:]}")
        return ms

    def start_detached(self, _stubs, cid: str) -> None:
        self.ids.add(cid)
        self.d.ctr("run", "-d", "--runc-binary", self.runc, IMAGE, cid, "sleep", "1000",
                   timeout=60)

    def client(self):
        return None, None

    def remove(self, cid: str) -> None:
        self.d.ctr("tasks", "kill", "-s", "SIGKILL", cid, check=False)
        for _ in range(100):
            if self.d.ctr("tasks", "delete", cid, check=False).returncode == 0 or \
                    cid not in self.d.ctr("tasks", "ls", "-q", check=False).stdout.split():
                break
            time.sleep(0.05)
        self.d.ctr("containers", "delete", cid, check=False)

    def running(self) -> int:
        return len(self.d.ctr("tasks", "ls", "-q").stdout.split())

    @property
    def pid(self) -> int:
        return self.d.proc.pid

    def close(self) -> None:
        left = self.d.ctr("containers", "ls", "-q", check=False).stdout.split()
        with ThreadPoolExecutor(CLIENTS) as pool:
            list(pool.map(self.remove, left))
        # a SIGKILLed container may still be exiting when its task is deleted: its cgroup can
        # only go (Context.close) once it is empty
        parent = Path("/sys/fs/cgroup/pids") / self.d.namespace
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and _busy_cgroups(parent):
            time.sleep(0.05)
        self.d.close()


def _busy_cgroups(parent: Path) -> bool:
    try:
        return any((d / "cgroup.procs").read_text().strip() for d in parent.iterdir()
                   if d.is_dir())
    except OSError:    # no such cgroup (any more)
        return False


class Supervisors(Benchmark):
    name = "supervisor"
    title = (f"hawserd vs containerd 1.6 + ctr (runc shim): run --rm true, run -d one client at "
             f"a time, {BURST} detached starts by {CLIENTS} clients, daemon RSS")
    metrics = ("sup.run-rm", "sup.start-seq", "sup.start-each", "sup.rss-KiB.idle",
               "sup.rss-KiB.100")

    def __init__(self):
        self.stacks: dict[str, Hawserd | Ctrd] = {}
        self.calls: dict[str, int] = {}
        self.runs: dict[str, list[float]] = {}
        self.seq: dict[str, list[float]] = {}
        self.burst: dict[str, float] = {}
        self.mem: dict[str, tuple[int, int]] = {}
        self.labels = {"hawser": "hawserd", "runc": "containerd"}

    def setup(self, ctx: Context, rt: Runtime) -> None:
        if rt.name == "hawser":
            self.stacks[rt.name] = Hawserd(ctx, ctx.template / "rootfs")
        elif rt.name == "runc":
            if not shutil.which("containerd") or not shutil.which("ctr"):
                raise RuntimeFailed("containerd is not installed")
            self.stacks[rt.name] = Ctrd(ctx, rt.path)
        else:
            raise RuntimeFailed("no row here: hawserd (hawser row) is measured against "
                                "containerd + runc shim + runc (runc row)")

    def _burst(self, ctx: Context, stack) -> float:
        ids = [ctx.new_id("burst") for _ in range(BURST)]
        local = threading.local()
        clients = []
        stop = threading.Event()

        def one(cid: str) -> None:
            if stop.is_set():
                return
            if not hasattr(local, "stubs"):
                ch, local.stubs = stack.client()
                clients.append(ch)
            stack.start_detached(local.stubs, cid)

        pool = ThreadPoolExecutor(CLIENTS)
        try:
            t0 = time.perf_counter()
            list(pool.map(one, ids))
            wall = time.perf_counter() - t0
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
            for ch in clients:
                if ch is not None:
                    ch.close()
        n = stack.running()
        if n < BURST:
            raise RuntimeFailed(f"only {n} of the {BURST} containers are running")
        return wall

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        stack = self.stacks[rt.name]
        out = {"sup.run-rm": stack.run_rm(), "sup.start-seq": stack.start_cli()}
        self.runs.setdefault(rt.name, []).append(out["sup.run-rm"])
        self.seq.setdefault(rt.name, []).append(out["sup.start-seq"])
        self.calls[rt.name] = self.calls.get(rt.name, 0) + 1
        if self.calls[rt.name] == max(1, ctx.warmup) + 1:    # the first timed iteration
            self.runs[rt.name] = [out["sup.run-rm"]]          # the warm-up is not counted
            self.seq[rt.name] = [out["sup.start-seq"]]
            daemon = stack.proc.pid if isinstance(stack, Hawserd) else stack.pid
            idle = rss_kib(daemon)
            try:
                wall = self._burst(ctx, stack)
                full = rss_kib(daemon)
            finally:
                with ThreadPoolExecutor(CLIENTS) as pool:
                    list(pool.map(stack.remove, sorted(i for i in stack.ids if "-burst-" in i)))
            self.burst[rt.name] = wall
            self.mem[rt.name] = (idle, full)
            out["sup.start-each"] = wall * 1000.0 / BURST
            out["sup.rss-KiB.idle"], out["sup.rss-KiB.100"] = idle, full
        return out

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        stack = self.stacks.pop(rt.name, None)
        if stack is not None:
            stack.close()
        if self.stacks or rt.name != ctx.runtimes[-1].name:
            return
        n = min(map(len, self.seq.values()), default=0)
        print(f"   detached `sleep` starts: one client, one at a time ({n} each, 1000/median, "
              f"1000/p90) and {BURST} by {CLIENTS} clients at a time; "
              f"run --rm true (median); daemon RSS idle / with {BURST}:")
        for name, label in self.labels.items():
            if name in self.burst:
                idle, full = self.mem[name]
                seq = self.seq.get(name) or [float("nan")]
                print(f"     {label:<10} 1 client {1000 / statistics.median(seq):5.1f} starts/s "
                      f"(p90 {1000 / percentile(seq, 90):5.1f})   {CLIENTS} clients "
                      f"{BURST / self.burst[name]:5.1f} starts/s   run --rm "
                      f"{statistics.median(self.runs[name]):6.1f} ms   RSS {idle / 1024:5.1f} / "
                      f"{full / 1024:5.1f} MiB")
        if "hawser" in self.burst and "runc" in self.burst:
            rate = self.burst["runc"] / self.burst["hawser"]
            seq = statistics.median(self.seq["runc"]) / statistics.median(self.seq["hawser"])
            lat = statistics.median(self.runs["runc"]) / statistics.median(self.runs["hawser"])
            full = self.mem["hawser"][1] / 1024
            print(f"     hawserd/containerd: start rate 1 client {seq:.2f}x, {CLIENTS} clients "
                  f"{rate:.2f}x, run --rm speed {lat:.2f}x (targets >= 1.0); hawserd RSS with "
                  f"{BURST}: {full:.1f} MiB (target <= 60)")


BENCHMARKS = [Supervisors]
