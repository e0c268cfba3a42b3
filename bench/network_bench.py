"""Networking of hawserd's bridge mode: a container's network setup time, and TCP throughput
from the host to a container over a published port against the host's loopback, in the same
run. The hawser row only: runc and crun have no networking of their own (they run a container
in whatever network namespace its config.json names, and set nothing up in it), so their rows
are skipped; no peer daemon (podman/netavark, docker) is measured either.

net.setup            NetworkManager.setup() of one container in bridge mode, no published port,
                     in this process: lo up in the container's namespace, the default network's
                     bridge checked (ensure_bridge, ensure_table, add_network: made by the
                     benchmark's first, untimed sample; later netlink look-ups, a sysctl read,
                     no nft run), the veth pair made with its end in the namespace (eth0, its
                     MAC and address, up, the default route). The NetworkManager is the bench's
                     own (its own meta db, bridge hwb<8 hex>, nftables table hwb_<8 hex>); the
                     namespace is a fresh `unshare -n sleep` per sample (made and removed
                     untimed, as are the plan() before and the release() after the call)
net.setup.lo, .bridge, .veth, .other   its parts: bridge.loopback_up; ensure_bridge +
                     ensure_table + add_network; bridge.attach; the rest (the store's look-ups).
                     Timed by wrapping those module functions in this process (~1 us each)
net.setup.port       the same with one published port (127.0.0.1, a host port plan() chose,
                     to 5001/tcp): the port's nftables map element added too
net.setup.port.nft   its nat.publish part (one `nft -f -` run)
net.plan, .plan.port NetworkManager.plan() of those containers (at create: the address
                     allocated, /etc files written, with a port the host port chosen, which
                     runs `nft -j -a list table` once; without a port no nft is run)
net.run.bridge       wall time of `hawserctl run --rm IMAGE true` on the bench's private hawserd
                     (the client's process included), the default network mode (bridge)
net.run.none         the same with `--network none` (a namespace with lo only)
net.setup.e2e        net.run.bridge - net.run.none of the same iteration: what bridge mode
                     costs end to end (plan at create, setup between the runtime's create and
                     start, teardown and release at removal); a cross-check of net.setup.
                     Each iteration runs E2E_PAIRS pairs, alternating which mode goes first;
                     net.run.* are the means of an iteration's runs (single runs vary by
                     +-30 ms here, more than the difference)
net.tcp.bridge-MiB/s TCP throughput, host -> container over the published port
                     (127.0.0.1:HOSTPORT, DNAT to the container's address, bridge, veth)
net.tcp.loopback-MiB/s the same, host -> host on 127.0.0.1
net.tcp.bridge/lo-%  bridge / loopback of the same iteration, in percent (the table's p90 of
                     these three rows is, as for every row, the 90th percentile: a high value;
                     the report below it lists every sample and the ratio of the medians)

Throughput: the receiver is busybox's nc on both sides, `/bin/busybox nc -ll -p PORT [ADDR] -e
/bin/busybox dd of=/dev/null bs=1M` (busybox's own nc reads 1 KiB at a time, which would measure
nc rather than the path; the dd it starts per connection reads the socket in up to 1 MiB reads):
in the container (busybox-static, nothing else installed) listening on its port 5001, published
as -p 127.0.0.1::5001; on the host the same binary listening on 127.0.0.1 only. The sender is
this process: connect, TCP_BYTES in 256 KiB sendall()s, shutdown(SHUT_WR), then recv() until it
returns 0, which happens once dd has read everything up to the end of the stream and exited
(closing the connection): the time runs from before connect() to that recv(), so the
receiver's finishing is counted, not just the send. TCP_RUNS samples per side in the first
timed iterations, bridge and loopback alternating which goes first (the warm-up sends 64 MiB
to each, checking the path works). There is no iperf3 here, and none in the container.

The private hawserd has its own --root/--state/socket under the bench's temp dir, its own
default bridge (--bridge hwb<8 hex>) and nftables table (--nft-table hwb_<8 hex>): the host's
hawser0 and `ip hawser` are never touched. Image: the bench's busybox rootfs as a one-layer OCI
archive loaded with `hawserctl load -i`. At least SETUP_RUNS iterations are run (the benchmark
raises the run's iteration count for its own loop); net.setup and net.setup.port samples
alternate which goes first. Clean-up (also after a failure or Ctrl-C: every child process of
the benchmark runs in a session of its own, so a terminal's SIGINT reaches only the bench):
the containers removed, hawserd stopped (bench/supervisor.py's clean-up), the namespace holders
and the host's receiver killed by their pid, then exactly the bridges made (the two given and
those of the networks in hawserd's meta.db) deleted once their ports are gone, both nftables
tables deleted, and net.ipv4.ip_forward put back to the value it had before.
"""
from __future__ import annotations

import os
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import time
from pathlib import Path

from common import Benchmark, Context, Runtime, RuntimeFailed, summary
from images_bench import repo_modules
from supervisor import HAWSERCTL, HAWSERD, Hawserd, api_modules
from images import write_oci_archive  # tests/images.py (bench/shim.py puts tests/ on the path)

IMAGE = "docker.io/hawser-bench/net:1"
SETUP_RUNS = 20           # at least this many iterations (each: one net.setup, one .port)
E2E_PAIRS = 2             # run --rm bridge/none pairs per iteration (their mean is the sample)
TCP_RUNS = 10             # throughput samples per side, in the first timed iterations
TCP_BYTES = 1 << 30       # per sample
WARM_BYTES = 64 << 20
CHUNK = 256 << 10
PORT = 5001               # the receiver's port in the container
IP_FORWARD = Path("/proc/sys/net/ipv4/ip_forward")
HOLDER_S = "300"          # a namespace holder's sleep: gone by itself if the bench is killed


def receiver(port: int, address: str = "") -> list[str]:
    """busybox nc as a persistent server; per connection a dd reading it to /dev/null."""
    return ["/bin/busybox", "nc", "-ll", "-p", str(port), *([address] if address else []),
            "-e", "/bin/busybox", "dd", "of=/dev/null", "bs=1M"]


def run_child(argv: list[str], timeout: float) -> tuple[float, str]:
    """(wall ms, stdout) of a command in a session of its own; RuntimeFailed if it exits
    non-zero or takes too long. Interrupted, it is let finish (10 s) rather than killed
    half-way through a container's start."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeFailed(f"`{' '.join(argv[3:5])}` did not finish within {timeout:g} s") \
            from None
    except BaseException:
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        raise
    ms = (time.perf_counter() - t0) * 1000.0
    if proc.returncode != 0:
        raise RuntimeFailed(f"`{' '.join(argv[3:5])}` exited {proc.returncode}: "
                            f"{err.strip()[-300:]}")
    return ms, out


def wait_listening(port: int, proc: subprocess.Popen | None, what: str) -> None:
    """Until 127.0.0.1:port accepts a connection (the probe's dd reads nothing and exits)."""
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
            return
        except OSError as e:
            if time.monotonic() > deadline or proc is not None and proc.poll() is not None:
                raise RuntimeFailed(f"{what} does not accept connections on 127.0.0.1:{port}: "
                                    f"{e}") from None
            time.sleep(0.05)


def throughput(port: int, nbytes: int) -> float:
    """MiB/s of one stream of nbytes to 127.0.0.1:port, until the receiver has closed."""
    buf = memoryview(bytes(CHUNK))
    t0 = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
            left = nbytes
            while left > 0:
                n = min(left, CHUNK)
                s.sendall(buf[:n])
                left -= n
            s.shutdown(socket.SHUT_WR)
            if s.recv(1) != b"":
                raise RuntimeFailed("the receiver sent data")
    except OSError as e:
        raise RuntimeFailed(f"sending to 127.0.0.1:{port}: {e}") from None
    return nbytes / 2**20 / (time.perf_counter() - t0)


def free_loopback_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def bridge_ports(bridge: str) -> list[str]:
    try:
        return os.listdir(f"/sys/class/net/{bridge}/brif")
    except FileNotFoundError:
        return []


def delete_bridges(names) -> list[str]:
    """Deletes the bridges once no interface is on them (a removed namespace's veth goes a
    moment later: the kernel dismantles namespaces in a workqueue); what failed."""
    failed = []
    for name in sorted(n for n in names if n):
        deadline = time.monotonic() + 10
        while bridge_ports(name) and time.monotonic() < deadline:
            time.sleep(0.05)
        if os.path.exists(f"/sys/class/net/{name}"):
            p = subprocess.run(["ip", "link", "delete", name], capture_output=True, text=True,
                               timeout=30)
            if p.returncode != 0:
                failed.append(f"bridge {name}: {p.stderr.strip()}")
    return failed


def delete_table(name: str) -> str | None:
    p = subprocess.run(["nft", "list", "table", "ip", name], capture_output=True, timeout=30)
    if p.returncode != 0:
        return None        # no such table
    p = subprocess.run(["nft", "delete", "table", "ip", name], capture_output=True, text=True,
                       timeout=30)
    return f"nft table ip {name}: {p.stderr.strip()}" if p.returncode else None


class NetHawserd(Hawserd):
    """bench/supervisor.py's private hawserd, started with a bridge and an nftables table of
    its own, in a session of its own; driven by hawserctl. close() removes its containers and
    stops it (the parent's clean-up, and the runtime state and cgroups of its containers'
    hex ids, which do not carry the bench's prefix); the caller then deletes its bridges()
    and its table."""

    def __init__(self, ctx: Context, base: Path, tag: str):
        import grpc
        from google.protobuf import empty_pb2
        self.cpb, cgrpc, version_pb2_grpc = api_modules("containers_pb2", "containers_pb2_grpc",
                                                        "version_pb2_grpc")
        self.grpc, self.ctx, self.base = grpc, ctx, base
        self.sock = base / "h.sock"
        self.address = f"unix://{self.sock}"
        self.bridge, self.table = f"hwb{tag}", f"hwb_{tag}"
        self.ids: set[str] = set()
        self.cgroup_parents = {h / "hawserd" for h in Path("/sys/fs/cgroup").iterdir()
                               if (h / "hawserd").is_dir()}
        self.channel = grpc.insecure_channel(self.address)
        self.c = cgrpc.ContainersStub(self.channel)
        self.version = lambda: version_pb2_grpc.VersionStub(self.channel).Version(
            empty_pb2.Empty(), timeout=1)
        self.log = open(base / "hawserd.log", "wb")
        self.proc = subprocess.Popen(      # the last step: from here on close() stops it
            [HAWSERD, "--root", str(base / "root"), "--state", str(base / "state"),
             "--address", self.address, "--bridge", self.bridge, "--nft-table", self.table],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log, start_new_session=True)

    def wait_ready(self) -> None:
        """Until it serves (a separate step: whoever made it can close() it meanwhile)."""
        deadline = time.monotonic() + 30
        while True:
            try:
                self.version()
                return
            except self.grpc.RpcError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeFailed(f"hawserd did not start (see {self.base}/hawserd.log)")\
                        from None
                time.sleep(0.05)

    def ctl(self, *args, timeout: float = 60.0) -> tuple[float, str]:
        return run_child([HAWSERCTL, "--address", self.address, *map(str, args)], timeout)

    def bridges(self) -> set[str]:
        """Its default bridge and those of its networks (meta.db's networks table)."""
        out = {self.bridge}
        db = self.base / "root" / "meta.db"
        if db.exists():
            conn = sqlite3.connect(db)
            try:
                out |= {r[0] for r in conn.execute("SELECT bridge FROM networks")}
            except sqlite3.Error:
                pass
            finally:
                conn.close()
        return out

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                self.ids |= set(self.ctl("ps", "-aq", "--no-trunc")[1].split())
        except RuntimeFailed:
            pass
        super().close()
        runtime_root = self.base / "state" / "runtime" / "hawser"   # all of it is ours
        if runtime_root.is_dir():
            for cid in os.listdir(runtime_root):
                if not cid.startswith("."):
                    subprocess.run([str(Path(HAWSERD).with_name("hawser")), "--root",
                                    str(runtime_root), "delete", "--force", cid],
                                   capture_output=True, timeout=60)
        for cid in self.ids:          # a container's cgroups, if its shim was killed
            for cg in Path("/sys/fs/cgroup").glob(f"*/hawserd/{cid}"):
                try:
                    cg.rmdir()
                except OSError:
                    pass


class InProcess:
    """A NetworkManager of the bench's own in this process, and the namespaces it sets up."""

    WRAPPED = (("bridge", "loopback_up", "lo"), ("bridge", "ensure_bridge", "bridge"),
               ("nat", "ensure_table", "bridge"), ("nat", "add_network", "bridge"),
               ("bridge", "attach", "veth"), ("nat", "publish", "nft"))

    def __init__(self, base: Path, tag: str):
        manager, bridge, nat, _ = repo_modules(
            "supervisor.networks.manager", "supervisor.networks.bridge",
            "supervisor.networks.nat", "runtime.syscall.linux")
        self.mods = {"bridge": bridge, "nat": nat}
        self.nat, self.base = nat, base
        self.bridge, self.table = f"hwb{tag}", f"hwb_{tag}"
        self.nm = manager.NetworkManager(str(base / "net.db"), lambda _cid: True,
                                         bridge=self.bridge, table=self.table)
        self.holders: dict[str, subprocess.Popen] = {}   # cid -> its namespace's holder
        self.parts: dict[str, float] = {}
        self.originals = []
        for mod, name, part in self.WRAPPED:
            self._wrap(self.mods[mod], name, part)

    def _wrap(self, mod, name: str, part: str) -> None:
        original = getattr(mod, name)
        parts = self.parts

        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                parts[part] = parts.get(part, 0.0) + time.perf_counter() - t0
        self.originals.append((mod, name, original))
        setattr(mod, name, timed)

    def _namespace(self, cid: str) -> int:
        holder = subprocess.Popen(["unshare", "--net", "--", "sleep", HOLDER_S],
                                  stdin=subprocess.DEVNULL, start_new_session=True)
        self.holders[cid] = holder
        mine = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 5
        while os.stat(f"/proc/{holder.pid}/ns/net").st_ino == mine:
            if time.monotonic() > deadline or holder.poll() is not None:
                raise RuntimeFailed("unshare --net did not make a namespace")
            time.sleep(0.001)
        return holder.pid

    def sample(self, publish: bool) -> tuple[float, float, dict[str, float]]:
        """(plan ms, setup ms, {part: ms}) of one container in a fresh namespace."""
        cid = secrets.token_hex(32)
        config = {"network_mode": "bridge"}
        if publish:
            config["ports"] = [{"host_ip": "127.0.0.1", "host_port": 0,
                                "container_port": PORT, "protocol": "tcp"}]
        try:
            pid = self._namespace(cid)
            t0 = time.perf_counter()
            plan = self.nm.plan(cid, cid[:12], config, str(self.base / "bundle"),
                                lambda _ref: None)
            t1 = time.perf_counter()
            self.parts.clear()
            t2 = time.perf_counter()
            self.nm.setup(cid, pid, config, plan["published"])
            t3 = time.perf_counter()
            parts = {k: v * 1000.0 for k, v in self.parts.items()}
        except Exception as e:
            raise RuntimeFailed(f"NetworkManager: {e}") from None
        finally:
            self._drop(cid)
        setup = (t3 - t2) * 1000.0
        parts["other"] = setup - sum(parts.values())
        return (t1 - t0) * 1000.0, setup, parts

    def _drop(self, cid: str) -> None:
        try:
            self.nm.release(cid)
        finally:
            holder = self.holders.pop(cid, None)
            if holder is not None:
                holder.kill()          # by its pid: the sleep we started
                holder.wait()

    def close(self) -> list[str]:
        """Everything undone; what could not be."""
        left = []
        for cid in list(self.holders):
            try:
                self._drop(cid)
            except Exception as e:  # noqa: BLE001 - go on with the rest
                left.append(f"release {cid[:12]}: {e}")
        for mod, name, original in reversed(self.originals):
            setattr(mod, name, original)
        self.originals.clear()
        try:
            self.nm.close()
        except Exception as e:  # noqa: BLE001
            left.append(f"network store: {e}")
        left += delete_bridges([self.bridge])
        try:
            self.nat.remove_table(self.table)
        except Exception as e:  # noqa: BLE001
            left.append(f"nft table ip {self.table}: {e}")
        return left


class Network(Benchmark):
    name = "network"
    title = ("hawserd bridge mode: network setup per container (in-process and end to end), "
             "TCP host -> container over a published port vs host loopback")
    metrics = ("net.setup", "net.setup.lo", "net.setup.bridge", "net.setup.veth",
               "net.setup.other", "net.setup.port", "net.setup.port.nft", "net.plan",
               "net.plan.port", "net.run.bridge", "net.run.none", "net.setup.e2e",
               "net.tcp.bridge-MiB/s", "net.tcp.loopback-MiB/s", "net.tcp.bridge/lo-%")

    def __init__(self):
        self.ip_forward: str | None = None
        self.base: Path | None = None
        self.inproc: InProcess | None = None
        self.d: NetHawserd | None = None
        self.host_rx: subprocess.Popen | None = None
        self.ports: dict[str, int] = {}
        self.calls = 0
        self.iterations: int | None = None
        self.samples: dict[str, list[float]] = {}

    # -- set-up ---------------------------------------------------------------------------------
    def setup(self, ctx: Context, rt: Runtime) -> None:
        if rt.name != "hawser":
            raise RuntimeFailed(f"no row here: {rt.name} has no networking of its own "
                                "(hawserd's bridge mode is measured, in the hawser row)")
        self.ip_forward = IP_FORWARD.read_text()
        if self.iterations is None:
            self.iterations = ctx.iterations
            ctx.iterations = max(ctx.iterations, SETUP_RUNS)
        self.base = ctx.tmp / "net"
        self.base.mkdir()
        # the in-process bridge first: hawserd's default network then picks another subnet
        self.inproc = InProcess(self.base, secrets.token_hex(4))
        self.inproc.sample(publish=False)
        (self.base / "hwd").mkdir()
        self.d = NetHawserd(ctx, self.base / "hwd", secrets.token_hex(4))
        self.d.wait_ready()
        write_oci_archive(ctx.template / "rootfs", self.base / "image.tar", IMAGE,
                          cmd=("true",))
        self.d.ctl("load", "-q", "-i", self.base / "image.tar", timeout=120)
        name = f"{ctx.id_prefix}rx"
        _, out = self.d.ctl("run", "-d", "--name", name, "-p", f"127.0.0.1::{PORT}", IMAGE,
                            *receiver(PORT), timeout=ctx.timeout)
        self.d.ids.add(out.strip())
        _, out = self.d.ctl("port", name, str(PORT), timeout=ctx.timeout)
        host, _, port = out.strip().splitlines()[0].rpartition(":")
        if host != "127.0.0.1" or not port.isdigit():
            raise RuntimeFailed(f"hawserctl port {name} {PORT}: {out.strip()!r}")
        self.ports["bridge"] = int(port)
        wait_listening(self.ports["bridge"], None, "the container's receiver")
        self._start_host_receiver()

    def _start_host_receiver(self) -> None:
        for _ in range(3):          # a port taken between our look and nc's bind: another
            port = free_loopback_port()
            self.host_rx = subprocess.Popen(receiver(port, "127.0.0.1"),
                                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)
            try:
                wait_listening(port, self.host_rx, "the host's receiver")
                self.ports["loopback"] = port
                return
            except RuntimeFailed:
                self._stop_host_receiver()
        raise RuntimeFailed("the host's receiver (busybox nc) did not start")

    # -- one iteration --------------------------------------------------------------------------
    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        self.calls += 1
        timed = self.calls - max(1, ctx.warmup)        # 1, 2, ... in the timed iterations
        flip = self.calls % 2 == 0
        out: dict[str, float] = {}
        for publish in (True, False) if flip else (False, True):
            plan, setup, parts = self.inproc.sample(publish)
            if publish:
                out["net.plan.port"], out["net.setup.port"] = plan, setup
                out["net.setup.port.nft"] = parts.get("nft", 0.0)
            else:
                out["net.plan"], out["net.setup"] = plan, setup
                for part in ("lo", "bridge", "veth", "other"):
                    out[f"net.setup.{part}"] = parts.get(part, 0.0)
        runs: dict[str, list[float]] = {"bridge": [], "none": []}
        for i in range(E2E_PAIRS):
            for mode in ("none", "bridge") if (self.calls + i) % 2 else ("bridge", "none"):
                net = ["--network", "none"] if mode == "none" else []
                runs[mode].append(self.d.ctl("run", "--rm", *net, IMAGE, "true",
                                             timeout=ctx.timeout)[0])
        for mode, ms in runs.items():
            out[f"net.run.{mode}"] = statistics.mean(ms)
        out["net.setup.e2e"] = out["net.run.bridge"] - out["net.run.none"]
        if timed <= TCP_RUNS:
            nbytes = TCP_BYTES if timed >= 1 else WARM_BYTES
            for side in ("loopback", "bridge") if flip else ("bridge", "loopback"):
                out[f"net.tcp.{side}-MiB/s"] = throughput(self.ports[side], nbytes)
            out["net.tcp.bridge/lo-%"] = (100.0 * out["net.tcp.bridge-MiB/s"]
                                          / out["net.tcp.loopback-MiB/s"])
        if timed >= 1:
            for k, v in out.items():
                self.samples.setdefault(k, []).append(v)
        return out

    # -- the end --------------------------------------------------------------------------------
    def _stop_host_receiver(self) -> None:
        rx, self.host_rx = self.host_rx, None
        if rx is None:
            return
        try:
            os.killpg(rx.pid, signal.SIGKILL)  # its session: nc and the dd it may be running
        except ProcessLookupError:
            pass
        rx.wait()

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        if rt.name != "hawser":
            return
        if self.iterations is not None:
            ctx.iterations = self.iterations
        left: list[str] = []
        try:
            self._stop_host_receiver()
            if self.inproc is not None:
                left += self.inproc.close()
            if self.d is not None:
                try:
                    self.d.close()
                finally:
                    left += delete_bridges(self.d.bridges())
                    why = delete_table(self.d.table)
                    if why:
                        left.append(why)
        finally:
            if self.ip_forward is not None and IP_FORWARD.read_text() != self.ip_forward:
                IP_FORWARD.write_text(self.ip_forward)
        for why in left:
            print(f"   clean-up: {why}", flush=True)
        self.report()

    def report(self) -> None:
        s = self.samples
        if not s.get("net.setup"):
            return

        def med(k: str) -> float:
            return statistics.median(s[k]) if s.get(k) else float("nan")
        st = summary(s["net.setup"])
        print(f"   network setup in bridge mode (NetworkManager.setup in-process), median "
              f"{st['median_ms']:.2f} ms, p90 {st['p90_ms']:.2f}, min {st['min_ms']:.2f}, max "
              f"{max(s['net.setup']):.2f} (n={st['n']}); parts (medians): lo up "
              f"{med('net.setup.lo'):.2f}, bridge checks {med('net.setup.bridge'):.2f}, veth "
              f"{med('net.setup.veth'):.2f}, other {med('net.setup.other'):.2f} ms")
        print(f"     with one published port: median {med('net.setup.port'):.2f} ms (nft "
              f"{med('net.setup.port.nft'):.2f}); plan() at create {med('net.plan'):.2f} / "
              f"{med('net.plan.port'):.2f} ms with the port")
        print(f"     end to end: run --rm true bridge {med('net.run.bridge'):.1f} ms, none "
              f"{med('net.run.none'):.1f} ms, median of the differences "
              f"{med('net.setup.e2e'):.1f} ms")
        print(f"     hawserd network setup median {st['median_ms']:.2f} ms (target < 20)")
        if s.get("net.tcp.bridge-MiB/s"):
            b, lo = s["net.tcp.bridge-MiB/s"], s["net.tcp.loopback-MiB/s"]
            print(f"   TCP host -> container, {TCP_BYTES >> 20} MiB per sample (MiB/s):")
            print("     bridge   " + " ".join(f"{x:6.0f}" for x in b))
            print("     loopback " + " ".join(f"{x:6.0f}" for x in lo))
            print(f"     medians: bridge {statistics.median(b):.0f}, loopback "
                  f"{statistics.median(lo):.0f}; bridge/loopback "
                  f"{100 * statistics.median(b) / statistics.median(lo):.0f}% (median of the "
                  f"pairs {med('net.tcp.bridge/lo-%'):.0f}%; target >= 50%)")


BENCHMARKS = [Network]
