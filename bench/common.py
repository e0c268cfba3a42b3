"""Shared machinery for `make bench`: runtimes under test, a private temp area per run, timed
commands, container clean-up and statistics. Standard library only (psutil may be used by
benchmark modules that measure memory).

A benchmark module (see lifecycle.py) exposes BENCHMARKS, a list of Benchmark subclasses, and is
registered by name in run.py's MODULES.
"""
from __future__ import annotations

import ctypes
import json
import math
import os
import select
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PR_SET_CHILD_SUBREAPER = 36


class RuntimeFailed(Exception):
    """A runtime command failed: the runtime is reported as failed/skipped for that benchmark."""


class Runtime:
    """One OCI runtime binary with its own --root and its own bundle copy."""

    def __init__(self, name: str, path: str):
        self.name = name
        self.path = path
        self.root: Path | None = None     # --root state directory, private to this run
        self.bundle: Path | None = None   # private copy of the template bundle
        self.live: set[str] = set()       # container ids that may need `delete --force`

    def available(self) -> str | None:
        """None if usable, else why not."""
        if not os.path.exists(self.path):
            return f"{self.path} not found"
        if not os.access(self.path, os.X_OK):
            return f"{self.path} is not executable"
        return None

    def version(self) -> str:
        try:
            out = subprocess.run([self.path, "--version"], capture_output=True, text=True,
                                 stdin=subprocess.DEVNULL, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"? ({e})"
        line = (out.stdout or out.stderr).strip().splitlines()
        return line[0] if line and out.returncode == 0 else "?"

    def cmd(self, *args: str) -> list[str]:
        return [self.path, "--root", str(self.root), *map(str, args)]


class Context:
    """The run's temp directory, the template bundle and the runtimes; cleans up on close()."""

    def __init__(self, runtimes: list[Runtime], iterations: int, warmup: int, spec_runtime: str,
                 keep: bool = False, timeout: float = 20.0):
        self.runtimes = runtimes
        self.timeout = timeout            # seconds allowed to one runtime command
        self.iterations = iterations
        self.warmup = warmup
        self.spec_runtime = spec_runtime
        self.keep = keep
        self.tmp = Path(tempfile.mkdtemp(prefix="hawser-bench."))
        self.template = self.tmp / "template"
        self._errfile = open(self.tmp / "stderr", "w+b")
        self._seq = 0
        # Container ids carry our pid: whatever carries this prefix (state, cgroups) is ours.
        self.id_prefix = f"hbench-{os.getpid()}-"
        self.become_subreaper()

    # --- set-up -------------------------------------------------------------------------------
    def prepare(self, args: list[str]) -> None:
        """Template bundle (busybox rootfs from the tests' builder, config from `spec`), then a
        private root and bundle copy per runtime."""
        mk = [os.environ.get("BENCH_PYTHON", str(REPO / ".venv/bin/python3")),
              str(REPO / "tools/mkbundle.py"), "--spec-runtime", self.spec_runtime,
              str(self.template), "--", *args]
        out = subprocess.run(mk, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise SystemExit(f"bench: cannot build the bundle: {out.stderr.strip() or out.stdout}")
        for rt in self.runtimes:
            base = self.tmp / rt.name
            rt.root = base / "root"
            rt.bundle = base / "bundle"
            rt.root.mkdir(parents=True)
            shutil.copytree(self.template, rt.bundle, symlinks=True)

    def new_id(self, kind: str) -> str:
        self._seq += 1
        return f"{self.id_prefix}{kind}-{self._seq}"

    # --- commands -----------------------------------------------------------------------------
    def timed(self, rt: Runtime, *args: str, timeout: float | None = None) -> float:
        """Run `RT --root R ARGS...` (stdin and stdout /dev/null, stderr to a file); return its
        wall time in ms; raise RuntimeFailed with the tail of stderr if it exits non-zero or
        does not finish in time."""
        args = tuple(map(str, args))
        timeout = self.timeout if timeout is None else timeout
        self._errfile.seek(0)
        self._errfile.truncate()
        t0 = time.perf_counter()
        try:
            proc = subprocess.Popen(rt.cmd(*args), stdin=subprocess.DEVNULL,
                                    stdout=subprocess.DEVNULL, stderr=self._errfile, cwd=rt.bundle)
        except OSError as e:
            raise RuntimeFailed(f"cannot run {rt.path}: {e}") from None
        try:
            # Popen.wait(timeout) polls with growing sleeps, which would blur the figures: wait
            # on a pidfd instead, then reap.
            finished = self._exited_within(proc.pid, timeout)
        except BaseException:
            # Interrupted (Ctrl-C, SIGTERM): let the command finish rather than kill it half-way
            # through setting up a container, which could leave a cgroup behind.
            if not self._exited_within(proc.pid, 10.0):
                proc.kill()
            proc.wait()
            raise
        if not finished:
            proc.kill()
            proc.wait()
            raise RuntimeFailed(f"`{args[0]}` did not finish within {timeout:g} s "
                                f"(stderr: {self.stderr_tail()})")
        rc = proc.wait()
        ms = (time.perf_counter() - t0) * 1000.0
        if rc != 0:
            raise RuntimeFailed(f"`{args[0]}` exited {rc}: {self.stderr_tail()}")
        return ms

    def output(self, rt: Runtime, *args: str, timeout: float | None = None) -> str:
        """Run a runtime command and return its stdout (untimed)."""
        args = tuple(map(str, args))
        timeout = self.timeout if timeout is None else timeout
        try:
            out = subprocess.run(rt.cmd(*args), capture_output=True, text=True, timeout=timeout,
                                 stdin=subprocess.DEVNULL, cwd=rt.bundle)
        except subprocess.TimeoutExpired:
            raise RuntimeFailed(f"`{args[0]}` did not finish within {timeout:g} s") from None
        except OSError as e:
            raise RuntimeFailed(f"cannot run {rt.path}: {e}") from None
        if out.returncode != 0:
            raise RuntimeFailed(f"`{args[0]}` exited {out.returncode}: {tail(out.stderr)}")
        return out.stdout

    def stderr_tail(self) -> str:
        self._errfile.seek(0)
        return tail(self._errfile.read().decode(errors="replace"))

    def force_delete(self, rt: Runtime, cid: str, timeout: float = 10.0) -> bool:
        """`RT delete --force ID`; True if it exited 0."""
        try:
            rc = subprocess.run(rt.cmd("delete", "--force", cid), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                timeout=timeout, cwd=rt.bundle).returncode
        except subprocess.TimeoutExpired:
            print(f"bench: `{rt.name} delete --force {cid}` did not finish within {timeout:g} s")
            return False
        except OSError:
            return False
        if rc == 0:
            rt.live.discard(cid)
        return rc == 0

    # --- processes ----------------------------------------------------------------------------
    @staticmethod
    def become_subreaper() -> None:
        """Containers started by `create` get reparented to us, so we can wait for them the way a
        shim does."""
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")

    @staticmethod
    def _exited_within(pid: int, timeout: float) -> bool:
        """Block until `pid` exits (pidfd: works whether or not it is our child); False on timeout."""
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return True
        try:
            poller = select.poll()
            poller.register(fd, select.POLLIN)
            return bool(poller.poll(int(timeout * 1000)))
        finally:
            os.close(fd)

    @classmethod
    def wait_exit(cls, pid: int, timeout: float = 60.0) -> None:
        """Wait until the container process `pid` exits, then reap it if it is our child."""
        if not cls._exited_within(pid, timeout):
            raise RuntimeFailed(f"container process {pid} did not exit within {timeout} s")
        try:
            os.waitpid(pid, 0)
        except ChildProcessError:
            pass

    @staticmethod
    def reap_strays() -> None:
        """Reap orphans reparented to us. Only called when no subprocess of ours is running."""
        while True:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return

    # --- clean-up -----------------------------------------------------------------------------
    def close(self) -> None:
        """Delete every container we made, even after a runtime failed or hung: delete --force,
        then kill what still runs under our ids, delete --force again, rmdir our cgroups."""
        pending = self._delete_all()
        if pending or self._our_pids():
            killed = self._kill_ours()
            if killed:
                print(f"bench: killed {len(killed)} process(es) a runtime left behind: "
                      f"{', '.join(map(str, killed))}")
            pending = self._delete_all()
        for rt, cid in pending:
            print(f"bench: {rt.name} could not delete {cid}")
        self.reap_strays()
        self.remove_cgroups()
        self._errfile.close()
        if self.keep:
            print(f"bench: kept {self.tmp}")
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def _delete_all(self) -> list[tuple[Runtime, str]]:
        """delete --force the ids we know of and whatever is left in each private root."""
        failed = []
        for rt in self.runtimes:
            ids = set(rt.live)
            if rt.root and rt.root.is_dir():
                ids.update(e.name for e in rt.root.iterdir()
                           if e.is_dir() and e.name.startswith(self.id_prefix))
            for cid in sorted(ids):
                if not self.force_delete(rt, cid):
                    failed.append((rt, cid))
        self.reap_strays()
        return failed

    def _our_pids(self) -> set[int]:
        """Processes that carry one of our container ids: in a cgroup named after it, or on
        their command line (a runtime's init before it execs). Nobody else uses our prefix."""
        pids = set()
        for cg in self._our_cgroups():
            try:
                with open(os.path.join(cg, "cgroup.procs")) as f:
                    pids.update(int(x) for x in f.read().split())
            except OSError:
                pass
        marker = self.id_prefix.encode()
        me = os.getpid()
        for entry in os.listdir("/proc"):
            if entry.isdigit() and int(entry) != me:
                try:
                    with open(f"/proc/{entry}/cmdline", "rb") as f:
                        if marker in f.read():
                            pids.add(int(entry))
                except OSError:
                    pass
        return pids

    def _kill_ours(self) -> list[int]:
        killed = []
        for pid in sorted(self._our_pids()):
            try:
                os.kill(pid, 9)
                killed.append(pid)
            except OSError:
                pass
        deadline = time.monotonic() + 5
        while self._our_pids() and time.monotonic() < deadline:
            self.reap_strays()
            time.sleep(0.05)
        self.reap_strays()
        return killed

    def _our_cgroups(self) -> list[str]:
        """Cgroup directories named after our container ids, deepest first."""
        found = []
        for top, dirs, _ in os.walk("/sys/fs/cgroup"):
            if top.count("/") >= 7:
                dirs[:] = []
                continue
            for d in dirs:
                if d.startswith(self.id_prefix):
                    found.append(os.path.join(top, d))
        return sorted(found, key=lambda p: -p.count("/"))

    def remove_cgroups(self) -> None:
        """rmdir the cgroups named after our ids that a runtime failing half-way left behind.
        Touches nothing else."""
        left = []
        for path in self._our_cgroups():
            try:
                os.rmdir(path)
            except OSError as e:
                left.append(f"{path} ({e.strerror})")
        if left:
            print(f"bench: could not remove cgroups: {', '.join(left)}")


class Benchmark:
    """One measurement, run for every runtime.

    name:     short key (JSON and table)
    title:    what it measures
    metrics:  the names once() returns; the first is the headline figure
    setup(ctx, rt)        once per runtime before the warm-up (may raise RuntimeFailed)
    once(ctx, rt) -> dict one iteration: {metric: ms} (may raise RuntimeFailed)
    teardown(ctx, rt)     once per runtime at the end, also after a failure
    """

    name = ""
    title = ""
    metrics: tuple[str, ...] = ()

    def setup(self, ctx: Context, rt: Runtime) -> None:
        pass

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        raise NotImplementedError

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        pass


def tail(text: str, lines: int = 3, width: int = 400) -> str:
    rows = [r.strip() for r in text.strip().splitlines() if r.strip()]
    out = " | ".join(rows[-lines:]) or "(no output)"
    return out if len(out) <= width else out[: width - 3] + "..."


def percentile(samples: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    k = max(0, math.ceil(p / 100.0 * len(s)) - 1)
    return s[k]


def summary(samples: list[float]) -> dict:
    return {
        "median_ms": round(statistics.median(samples), 3),
        "p90_ms": round(percentile(samples, 90), 3),
        "min_ms": round(min(samples), 3),
        "n": len(samples),
    }


def dumps(obj) -> str:
    return json.dumps(obj, sort_keys=False, separators=(",", ":"))
