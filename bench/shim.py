"""The shim under containerd 1.6: containerd-shim-hawser-v2 ("ours") against containerd's own
containerd-shim-runc-v2 ("runc-shim"), each driving the runtime of the row (hawser, runc, crun).

shim.run.*       wall time of `ctr run --rm IMAGE ID true` (containerd starts the shim, create,
                 start, wait, delete, the shim exits, containerd runs `shim delete`).
shim.rss-KiB.*   resident memory of one idle shim (its container runs `sleep`), via psutil;
shim.pss-KiB.*   proportional set size (shared pages divided among their users). One sample.

A private containerd (own root, state, sockets, no CRI, .venv/bin first on its PATH) imports a
busybox image made from the bench's template rootfs; its namespace carries the bench's id prefix,
so Context.close() removes the cgroups it leaves.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

from common import REPO, Benchmark, Context, Runtime, RuntimeFailed

sys.path.insert(0, str(REPO / "tests"))
from images import write_oci_archive  # noqa: E402  (stdlib only: the bench needs no pytest)

OURS = "io.containerd.hawser.v2"
IMAGE = "docker.io/library/hawser-bench:latest"
CONFIG = """version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{base}/c.sock"
[ttrpc]
  address = "{base}/c.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Containerd:
    def __init__(self, ctx: Context):
        self.base = Path(ctx.tmp) / "ctd"    # short enough for unix socket paths
        self.base.mkdir()
        self.sock = self.base / "c.sock"
        self.namespace = f"{ctx.id_prefix}shim"
        self.log = open(self.base / "containerd.log", "wb")
        env = dict(os.environ, PATH=f"{REPO / '.venv' / 'bin'}:{os.environ.get('PATH', '')}")
        (self.base / "config.toml").write_text(CONFIG.format(base=self.base))
        self.proc = subprocess.Popen(["containerd", "--config", str(self.base / "config.toml")],
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     env=env)
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeFailed("containerd did not start (see its log)")
            time.sleep(0.05)
        write_oci_archive(ctx.template / "rootfs", self.base / "image.tar", IMAGE,
                          cmd=("true",))
        self.ctr("images", "import", str(self.base / "image.tar"))

    def ctr(self, *args, check=True, timeout=60) -> subprocess.CompletedProcess:
        proc = subprocess.run(["ctr", "--address", str(self.sock), "--namespace",
                               self.namespace, *map(str, args)], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=timeout)
        if check and proc.returncode != 0:
            raise RuntimeFailed(f"ctr {args[0]} {args[1] if len(args) > 1 else ''}: "
                                f"{proc.stderr.strip()[-300:]}")
        return proc

    def shim_pids(self, cid: str = "") -> list[int]:
        """Shims serving this containerd (by its socket on their command line)."""
        out = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    cmd = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                except OSError:
                    continue
                if b"-address" in cmd and str(self.sock).encode() in cmd and \
                        (not cid or cid.encode() in cmd) and \
                        any(b"containerd-shim" in c for c in cmd[:3]):
                    out.append(int(entry))
        return out

    def close(self) -> None:
        for cid in self.ctr("tasks", "ls", "-q", check=False).stdout.split():
            self.ctr("tasks", "kill", "-s", "SIGKILL", cid, check=False)
            self.ctr("tasks", "delete", "-f", cid, check=False)
        for cid in self.ctr("containers", "ls", "-q", check=False).stdout.split():
            self.ctr("containers", "delete", cid, check=False)
        self.ctr("images", "remove", IMAGE, check=False)
        shims = self.shim_pids()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for pid in shims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.log.close()
        subprocess.run(["umount", "-R", "-l", str(self.base)], capture_output=True)
        for root in ("hawser", "runc"):    # the shims' default runtime roots, one per namespace
            shutil.rmtree(f"/run/containerd/{root}/{self.namespace}", ignore_errors=True)


class Shims(Benchmark):
    name = "shim"
    title = ("ctr run --rm true and idle memory: containerd-shim-hawser-v2 vs "
             "containerd-shim-runc-v2")
    metrics = ("shim.run.ours", "shim.run.runc-shim", "shim.rss-KiB.ours",
               "shim.rss-KiB.runc-shim", "shim.pss-KiB.ours", "shim.pss-KiB.runc-shim")

    def __init__(self):
        self.ctd: Containerd | None = None
        self.flags: dict[str, dict[str, list[str]]] = {}
        self.calls: dict[str, int] = {}
        self.runs: dict[tuple[str, str], list[float]] = {}
        self.mem: dict[tuple[str, str], tuple[int, int]] = {}
        self.teardowns = 0

    def setup(self, ctx: Context, rt: Runtime) -> None:
        if self.ctd is None:
            if not shutil.which("containerd") or not shutil.which("ctr"):
                raise RuntimeFailed("containerd is not installed")
            self.ctd = Containerd(ctx)
        conf = self.ctd.base / f"{rt.name}.json"
        conf.write_text(json.dumps({"binary_name": rt.path}))
        self.flags[rt.name] = {
            "ours": ["--runtime", OURS] + ([] if rt.name == "hawser" else
                                          ["--runtime-config-path", str(conf)]),
            "runc-shim": ["--runc-binary", rt.path],
        }

    def _run(self, ctx: Context, flags: list[str]) -> float:
        cid = ctx.new_id("shim")
        t0 = time.perf_counter()
        proc = self.ctd.ctr("run", *flags, "--rm", IMAGE, cid, "true", check=False)
        ms = (time.perf_counter() - t0) * 1000.0
        if proc.returncode != 0:
            self.ctd.ctr("containers", "delete", cid, check=False)
            raise RuntimeFailed(f"ctr run: {proc.stderr.strip()[-300:]}")
        return ms

    def _memory(self, ctx: Context, flags: list[str]) -> tuple[int, int]:
        import psutil
        cid = ctx.new_id("shimmem")
        self.ctd.ctr("run", "--detach", *flags, IMAGE, cid, "sleep", "1000")
        try:
            time.sleep(0.5)
            pids = self.ctd.shim_pids(cid)
            if len(pids) != 1:
                raise RuntimeFailed(f"found {len(pids)} shims for {cid}")
            info = psutil.Process(pids[0]).memory_full_info()
            return info.rss // 1024, info.pss // 1024
        finally:
            self.ctd.ctr("tasks", "kill", "-s", "SIGKILL", cid, check=False)
            for _ in range(100):
                if "STOPPED" in self.ctd.ctr("tasks", "ls", check=False).stdout or \
                        cid not in self.ctd.ctr("tasks", "ls", check=False).stdout:
                    break
                time.sleep(0.05)
            self.ctd.ctr("tasks", "delete", "-f", cid, check=False)
            self.ctd.ctr("containers", "delete", cid, check=False)

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        out = {}
        for shim, flags in self.flags[rt.name].items():
            ms = out[f"shim.run.{shim}"] = self._run(ctx, flags)
            self.runs.setdefault((rt.name, shim), []).append(ms)
        self.calls[rt.name] = self.calls.get(rt.name, 0) + 1
        if self.calls[rt.name] == max(1, ctx.warmup) + 1:    # the first timed iteration
            for shim, flags in self.flags[rt.name].items():
                rss, pss = self.mem[(rt.name, shim)] = self._memory(ctx, flags)
                out[f"shim.rss-KiB.{shim}"], out[f"shim.pss-KiB.{shim}"] = rss, pss
        return out

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        self.teardowns += 1
        if self.teardowns < len(ctx.runtimes) or self.ctd is None:
            return
        self.ctd.close()
        self.ctd = None
        print("   containerd-shim-hawser-v2 vs containerd-shim-runc-v2, same low-level runtime:")
        for name in self.flags:
            ours, theirs = self.runs.get((name, "ours")), self.runs.get((name, "runc-shim"))
            if ours and theirs:
                a, b = statistics.median(ours), statistics.median(theirs)
                print(f"     {name:<7} ctr run --rm true: {a:7.1f} ms vs {b:7.1f} ms "
                      f"({a / b:.2f}x)", end="")
                if (name, "ours") in self.mem and (name, "runc-shim") in self.mem:
                    (r1, p1), (r2, p2) = self.mem[(name, "ours")], self.mem[(name, "runc-shim")]
                    print(f"; idle RSS {r1 / 1024:.1f} vs {r2 / 1024:.1f} MiB, "
                          f"PSS {p1 / 1024:.1f} vs {p2 / 1024:.1f} MiB", end="")
                print()
        if ("hawser", "ours") in self.runs and ("runc", "runc-shim") in self.runs:
            a = statistics.median(self.runs[("hawser", "ours")])
            b = statistics.median(self.runs[("runc", "runc-shim")])
            print(f"     the stacks: hawser shim + hawser {a:.1f} ms vs runc shim + runc "
                  f"{b:.1f} ms ({a / b:.2f}x)")


BENCHMARKS = [Shims]
