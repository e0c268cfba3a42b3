"""hawser driven by real clients: podman 4.3 (+ conmon) and containerd 1.6 (ctr + the runc shim),
each scenario run with runc too, so the harness itself is proven on the reference runtime.

Nothing touches the machine's container state: podman gets private storage, run root, tmp dir
and network config dir; containerd is a private daemon (own root, state, sockets, no CRI) started
for this module and stopped at the end. Every runtime is called through a wrapper script that logs
its argv (and cwd) before exec'ing the real binary; the tests assert the commands the clients send
(see /work/shared/notes/facts.md), so a CLI change that breaks a client shows up here."""
from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from conftest import HAWSER
from images import write_oci_archive, write_rootfs_tar

RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNTIMES = {"runc": RUNC, "hawser": HAWSER}
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
CGROUP_ROOT = Path("/sys/fs/cgroup")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


# --------------------------------------------------------------------------------------------
# argv capture

WRAPPER = """#!/bin/bash
# Logs how it was called (cwd, argv) to {log}, then becomes {real}.
printf -v __argv ' %q' "$@"
printf '%q\\t%s\\n' "$PWD" "$__argv" >> {log}
exec {real} "$@"
"""


class Captured:
    """A wrapper around a real runtime with the same file name (podman treats runtimes by name,
    e.g. it passes --log-format=json only to those it knows), logging every call."""

    def __init__(self, directory: Path, real: str):
        self.real = real
        self.log = directory / "argv.log"
        bindir = directory / "wrap"
        bindir.mkdir(parents=True, exist_ok=True)
        self.path = bindir / Path(real).name
        self.path.write_text(WRAPPER.format(log=shlex.quote(str(self.log)),
                                            real=shlex.quote(real)))
        self.path.chmod(0o755)

    def calls(self) -> list[tuple[str, list[str]]]:
        """[(cwd, argv without argv[0])] in call order."""
        if not self.log.exists():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            cwd, _, args = line.partition("\t")
            out.append((shlex.split(cwd)[0] if cwd else "", shlex.split(args)))
        return out

    def text(self) -> str:
        return "\n".join(f"[cwd {cwd}] {shlex.join(argv)}" for cwd, argv in self.calls())


# Global options of runc's CLI that take a value (when not written --opt=value).
GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def split_call(argv: list[str]) -> tuple[dict, str, list[str]]:
    """(global options, subcommand, rest) of a runc-style command line."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if "=" in arg:
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            opts[arg] = argv[i + 1]
            i += 1
        else:
            opts[arg] = True
        i += 1
    if i >= len(argv):
        return opts, "", []
    return opts, argv[i], argv[i + 1:]


def option(rest: list[str], name: str) -> str | None:
    for i, arg in enumerate(rest):
        if arg == name and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def calls_of(captured: Captured, sub: str) -> list[tuple[str, dict, list[str]]]:
    out = []
    for cwd, argv in captured.calls():
        opts, name, rest = split_call(argv)
        if name == sub:
            out.append((cwd, opts, rest))
    return out


def subcommands(captured: Captured) -> list[str]:
    return [split_call(argv)[1] for _, argv in captured.calls()]


# --------------------------------------------------------------------------------------------
# Clean-up helpers (only what the tests made)

def unmount_under(*dirs: Path) -> None:
    """Lazily unmount every mount point under the given directories, deepest first."""
    prefixes = [str(d).rstrip("/") + "/" for d in dirs]
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if any(point.startswith(p) or point + "/" == p for p in prefixes):
                points.append(point)
    for point in sorted(set(points), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_cgroups(relative: str) -> list[str]:
    """rmdir `relative` (and what is below it) in every mounted hierarchy; return leftovers."""
    left = []
    relative = relative.strip("/")
    if not relative:
        return left
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / relative
        if not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            for _ in range(20):    # a cgroup is busy for a moment after its last task exits
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(dirpath)
    return left


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


# --------------------------------------------------------------------------------------------
# podman

class Podman:
    def __init__(self, base: Path):
        self.base = base
        self.cgroup_parent = f"/hwtest-podman-{uuid.uuid4().hex[:8]}"
        self.image = "localhost/hawser-busybox:test"
        self.globals = ["--root", str(base / "storage"), "--runroot", str(base / "runroot"),
                        "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                        "--events-backend", "file", "--tmpdir", str(base / "tmp"),
                        "--network-config-dir", str(base / "netconf")]

    def cmd(self, *args, runtime: str | None = None) -> list[str]:
        rt = ["--runtime", runtime] if runtime else []
        return ["podman", *self.globals, *rt, *map(str, args)]

    def __call__(self, *args, runtime=None, check=True, timeout=120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.cmd(*args, runtime=runtime), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"podman {shlex.join(map(str, args))} exited {proc.returncode}:"
                                 f"\nstdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def run_flags(self) -> list[str]:
        return [*ULIMITS, "--cgroup-parent", self.cgroup_parent]


@pytest.fixture(scope="module")
def podman(busybox_rootfs):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed: run `make install`")
    base = Path(tempfile.mkdtemp(prefix="hwpodman-", dir="/tmp"))
    pm = Podman(base)
    try:
        tar = write_rootfs_tar(busybox_rootfs, base / "busybox.tar")
        # An image copy writes c/image's blob-info cache under /var/lib/containers/cache whatever
        # --root says: import in a private mount namespace with a tmpfs over that directory.
        hide = next(d for d in ("/var/lib/containers", "/var/lib") if os.path.isdir(d))
        proc = subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
             'mount -t tmpfs hwtest-hide "$1" && shift && exec "$@"', "sh", hide,
             *pm.cmd("import", "--quiet", tar, pm.image)],
            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0, f"podman import failed: {proc.stderr}"
        yield pm
    finally:
        pm("rm", "--all", "--force", "--time", "0", check=False)
        pm("rmi", "--all", "--force", check=False)
        unmount_under(base)
        left = remove_cgroups(pm.cgroup_parent)
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture(params=list(RUNTIMES))
def runtime(request):
    return request.param


@pytest.fixture
def captured(runtime, tmp_path) -> Captured:
    return Captured(tmp_path / runtime, RUNTIMES[runtime])


def podman_fail(what: str, proc, cap: Captured) -> str:
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            f"runtime calls:\n{cap.text()}")


def assert_podman_lifecycle(runtime: str, cap: Captured, cid: str) -> None:
    """The calls facts.md lists: conmon's create (with --bundle, --pid-file, the id last) and
    podman's start and delete; runc (a name podman knows) also gets --log-format=json --log F."""
    calls = cap.text()
    print(f"podman -> {runtime}:\n{calls}")   # shown by `pytest -rP`
    creates = calls_of(cap, "create")
    assert len(creates) == 1, f"expected one create:\n{calls}"
    _, opts, rest = creates[0]
    assert rest and rest[-1] == cid, f"create must end with the container id {cid}:\n{calls}"
    bundle, pid_file = option(rest, "--bundle"), option(rest, "--pid-file")
    assert bundle and os.path.isabs(bundle), f"create without --bundle:\n{calls}"
    assert pid_file and os.path.isabs(pid_file), f"create without --pid-file:\n{calls}"
    assert "--root" not in opts, f"podman is not expected to pass --root:\n{calls}"
    if runtime == "runc":
        assert opts.get("--log-format") == "json" and opts.get("--log"), calls
    else:   # podman passes --log/--log-format only to the runtimes it knows by name
        assert "--log-format" not in opts and "--log" not in opts, calls
    starts = calls_of(cap, "start")
    assert [rest for _, _, rest in starts] == [[cid]], f"expected `start {cid}`:\n{calls}"
    deletes = calls_of(cap, "delete")
    assert deletes and all(rest[-1] == cid for _, _, rest in deletes), \
        f"expected `delete [--force] {cid}`:\n{calls}"
    order = subcommands(cap)
    assert order.index("create") < order.index("start") < len(order) - 1 - order[::-1].index(
        "delete"), f"create, start, delete out of order:\n{calls}"


def test_podman_run_echo(podman, runtime, captured):
    proc = podman("run", "--rm", *podman.run_flags(), podman.image, "echo", "hello",
                  runtime=str(captured.path), check=False)
    assert proc.returncode == 0 and proc.stdout == "hello\n", \
        podman_fail(f"podman --runtime {runtime} run --rm IMAGE echo hello", proc, captured)
    cid = calls_of(captured, "create")[0][2][-1] if calls_of(captured, "create") else "?"
    assert_podman_lifecycle(runtime, captured, cid)


def test_podman_exit_code(podman, runtime, captured):
    proc = podman("run", "--rm", *podman.run_flags(), podman.image, "sh", "-c", "exit 3",
                  runtime=str(captured.path), check=False)
    assert proc.returncode == 3, \
        podman_fail(f"podman --runtime {runtime} run --rm IMAGE sh -c 'exit 3'", proc, captured)


def test_podman_detached_stop(podman, runtime, captured):
    name = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    rt = str(captured.path)
    script = 'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done'
    try:
        proc = podman("run", "-d", "--name", name, *podman.run_flags(), podman.image,
                      "sh", "-c", script, runtime=rt, check=False)
        assert proc.returncode == 0, podman_fail(f"podman --runtime {runtime} run -d", proc,
                                                 captured)
        cid = proc.stdout.strip()
        status = podman("inspect", "--format", "{{.State.Status}}", name, runtime=rt).stdout
        assert status.strip() == "running", f"status {status!r}\n{captured.text()}"
        t0 = time.monotonic()
        proc = podman("stop", "--time", "10", name, runtime=rt, check=False)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, podman_fail(f"podman --runtime {runtime} stop", proc,
                                                 captured)
        assert elapsed < 8, f"stop took {elapsed:.1f}s: SIGTERM did not reach the container\n" \
                            f"{captured.text()}"
        state = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name,
                       runtime=rt).stdout.split()
        assert state == ["exited", "0"], f"after stop: {state}\n{captured.text()}"
        logs = podman("logs", name, runtime=rt).stdout
        assert logs == "ready\n", logs
        podman("rm", name, runtime=rt)
    finally:
        podman("rm", "--force", "--time", "0", name, runtime=rt, check=False)
    kills = calls_of(captured, "kill")
    assert any(rest[-2:] == [cid, "15"] or rest[-2:] == [cid, "TERM"]
               or rest[-2:] == [cid, "SIGTERM"] for _, _, rest in kills), \
        f"expected `kill {cid} 15`:\n{captured.text()}"
    assert_podman_lifecycle(runtime, captured, cid)


# --------------------------------------------------------------------------------------------
# containerd

CONTAINERD_CONFIG = """version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{base}/c.sock"

[ttrpc]
  address = "{base}/c.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Containerd:
    """A private containerd daemon; `ctr(...)` talks to it in a namespace of this module."""

    def __init__(self, base: Path):
        self.base = base
        self.sock = base / "c.sock"
        self.namespace = f"hwtest-{uuid.uuid4().hex[:8]}"
        self.image = "docker.io/library/hawser-busybox:test"
        self.runc_root = base / "runc-root"
        self.fifo_dir = base / "fifo"
        self.proc: subprocess.Popen | None = None
        self.log = base / "containerd.log"

    @property
    def task_dir(self) -> Path:
        return self.base / "state" / "io.containerd.runtime.v2.task" / self.namespace

    def start(self) -> None:
        config = self.base / "config.toml"
        config.write_text(CONTAINERD_CONFIG.format(base=self.base))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited {self.proc.returncode}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            if self.sock.exists() and self.ctr("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"containerd did not come up:\n{self.log.read_text()[-3000:]}")

    def ctr_cmd(self, *args) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.namespace,
                *map(str, args)]

    def ctr(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.ctr_cmd(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {shlex.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def run_flags(self, binary: str) -> list[str]:
        return ["--fifo-dir", str(self.fifo_dir), "--runc-binary", binary,
                "--runc-root", str(self.runc_root)]

    def ids(self, what: str) -> list[str]:
        proc = self.ctr(what, "ls", "--quiet", check=False, timeout=30)
        return proc.stdout.split() if proc.returncode == 0 else []

    def shim_pids(self) -> dict[int, Path]:
        """pid -> task dir, from the shim.pid files under our namespace's task state."""
        pids = {}
        if self.task_dir.is_dir():
            for f in self.task_dir.glob("*/shim.pid"):
                try:
                    pids[int(f.read_text().strip())] = f.parent
                except (OSError, ValueError):
                    pass
        return pids

    def shim_sockets(self) -> list[Path]:
        out = []
        if self.task_dir.is_dir():
            for f in self.task_dir.glob("*/address"):
                try:
                    address = f.read_text().strip()
                except OSError:
                    continue
                if address.startswith("unix://"):
                    out.append(Path(address[len("unix://"):]))
        return out

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            for cid in self.ids("tasks"):
                self.ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False, timeout=30)
                self.ctr("tasks", "delete", "--force", cid, check=False, timeout=30)
            for cid in self.ids("containers"):
                self.ctr("containers", "delete", cid, check=False, timeout=30)
            self.ctr("images", "remove", self.image, check=False, timeout=30)
        shims = self.shim_pids()
        sockets = self.shim_sockets()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        for pid in shims:    # only the shims this daemon started, identified by their pid files
            if "containerd-shim" in pid_cmdline(pid) and str(self.sock) in pid_cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for sock in sockets:
            if sock.parent == Path("/run/containerd/s"):
                try:
                    sock.unlink()
                except FileNotFoundError:
                    pass
        unmount_under(self.base)


@pytest.fixture(scope="module")
def containerd(busybox_rootfs):
    if not shutil.which("containerd") or not shutil.which("ctr"):
        pytest.fail("containerd is not installed: run `make install`")
    # unix socket paths are limited to 108 bytes: a short base directory.
    base = Path(tempfile.mkdtemp(prefix="hwctd-", dir="/tmp"))
    ctd = Containerd(base)
    try:
        ctd.start()
        archive = write_oci_archive(busybox_rootfs, base / "busybox-oci.tar", ctd.image)
        ctd.ctr("images", "import", "--all-platforms", archive)
        yield ctd
    finally:
        try:
            ctd.stop()
        finally:
            left = remove_cgroups(ctd.namespace)
            shutil.rmtree(base, ignore_errors=True)
        assert not left, f"cgroups left behind: {left}"


def ctr_fail(what: str, proc, cap: Captured, ctd: Containerd) -> str:
    try:
        log = [l for l in ctd.log.read_text().splitlines() if "level=error" in l
               or "level=warning" in l][-10:]
    except OSError:
        log = []
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            f"runtime calls:\n{cap.text()}\ncontainerd log (errors, warnings):\n" + "\n".join(log))


def assert_containerd_lifecycle(ctd: Containerd, cap: Captured, cid: str) -> None:
    """containerd's runc shim: every call has `--root R --log BUNDLE/log.json --log-format json`
    with cwd = bundle; `create --bundle B --pid-file B/init.pid ID`, `start ID`, `delete ID`."""
    calls = cap.text()
    print(f"containerd -> {Path(cap.real).name}:\n{calls}")   # shown by `pytest -rP`
    bundle = str(ctd.task_dir / cid)
    assert cap.calls(), "the runtime was never called"
    for cwd, argv in cap.calls():
        opts, sub, rest = split_call(argv)
        assert opts.get("--root") == f"{ctd.runc_root}/{ctd.namespace}", \
            f"--root missing in {argv}:\n{calls}"
        assert opts.get("--log") == f"{bundle}/log.json", f"--log missing in {argv}:\n{calls}"
        assert opts.get("--log-format") == "json", f"--log-format missing in {argv}:\n{calls}"
        assert cwd == bundle, f"cwd {cwd} is not the bundle {bundle}:\n{calls}"
    creates = calls_of(cap, "create")
    assert len(creates) == 1, f"expected one create:\n{calls}"
    rest = creates[0][2]
    assert option(rest, "--bundle") == bundle and option(rest, "--pid-file") == \
        f"{bundle}/init.pid" and rest[-1] == cid, f"unexpected create:\n{calls}"
    assert [r for _, _, r in calls_of(cap, "start")] == [[cid]], f"expected `start {cid}`:\n{calls}"
    deletes = calls_of(cap, "delete")
    assert deletes and deletes[-1][2][-1] == cid, f"expected `delete {cid}`:\n{calls}"
    order = subcommands(cap)
    assert order.index("create") < order.index("start") < len(order) - 1 - order[::-1].index(
        "delete"), f"create, start, delete out of order:\n{calls}"


def test_ctr_run_echo(containerd, runtime, captured):
    cid = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    proc = containerd.ctr("run", "--rm", *containerd.run_flags(str(captured.path)),
                          containerd.image, cid, "echo", "hello", check=False)
    assert proc.returncode == 0 and proc.stdout == "hello\n", \
        ctr_fail(f"ctr run --rm --runc-binary {runtime} IMAGE ID echo hello", proc, captured,
                 containerd)
    assert_containerd_lifecycle(containerd, captured, cid)


def test_ctr_exit_code(containerd, runtime, captured):
    cid = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    proc = containerd.ctr("run", "--rm", *containerd.run_flags(str(captured.path)),
                          containerd.image, cid, "sh", "-c", "exit 7", check=False)
    assert proc.returncode == 7, ctr_fail(
        f"ctr run --rm --runc-binary {runtime} IMAGE ID sh -c 'exit 7'", proc, captured,
        containerd)
    assert_containerd_lifecycle(containerd, captured, cid)


def test_ctr_detached_kill(containerd, runtime, captured):
    cid = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    try:
        proc = containerd.ctr("run", "--detach", *containerd.run_flags(str(captured.path)),
                              containerd.image, cid, "sleep", "1000", check=False)
        assert proc.returncode == 0, ctr_fail("ctr run --detach", proc, captured, containerd)
        tasks = containerd.ctr("tasks", "ls").stdout
        assert any(l.split()[:1] == [cid] and "RUNNING" in l for l in tasks.splitlines()), tasks
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            tasks = containerd.ctr("tasks", "ls").stdout
            if any(l.split()[:1] == [cid] and "STOPPED" in l for l in tasks.splitlines()):
                break
            time.sleep(0.1)
        else:
            raise AssertionError(f"task still not stopped:\n{tasks}\n{captured.text()}")
        containerd.ctr("tasks", "delete", cid)
        containerd.ctr("containers", "delete", cid)
    finally:
        containerd.ctr("tasks", "delete", "--force", cid, check=False, timeout=30)
        containerd.ctr("containers", "delete", cid, check=False, timeout=30)
    kills = [rest for _, _, rest in calls_of(captured, "kill")]
    assert [cid, "9"] in kills, f"expected `kill {cid} 9`:\n{captured.text()}"
    assert_containerd_lifecycle(containerd, captured, cid)
