"""podman 4.3 (+ conmon) drives hawser through what users do, each scenario run with runc too
(`--runtime <wrapper>`, the wrapper logging the argv podman and conmon send).

podman gets private storage (vfs), run root, tmp dir and network config dir, and a private
cgroup parent; containers run with `--network none` except in the network tests, which use the
default bridge network (netavark, iptables) and restore the host's network state afterwards."""
from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from clients_harness import (Captured, HostNetState, PtyProcess, calls_of, captured, free_port,
                             http_get, kills_of, option, pty_conversation, read_cgroup,
                             record_argv, remove_cgroups, runtime, subcommands, unmount_under)
from waits import wait_for
from images import write_rootfs_tar

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# This VM lacks CAP_SYS_RESOURCE: podman's default nofile/nproc of 1048576 must be lowered.
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
__all__ = ["captured", "runtime"]    # fixtures used by the tests below


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

    def run_flags(self, network: str | None = "none") -> list[str]:
        net = ["--network", network] if network else []
        return [*ULIMITS, "--cgroup-parent", self.cgroup_parent, *net]


@pytest.fixture(scope="module")
def podman(busybox_rootfs):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed: run `make install`")
    base = Path(tempfile.mkdtemp(prefix="hwpodman-", dir="/tmp"))
    pm = Podman(base)
    net = HostNetState()
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
        # netavark (default network): the podman0 bridge, NETAVARK* chains and rules on
        # 10.88.0.0/16, /run/netns/netns-*, net.ipv4.ip_forward
        added = net.restore(links=("podman",), iptables=("NETAVARK", "netavark", "10.88."),
                            netns=("netns-",))
        assert not left, f"cgroups left behind: {left}"
        print(f"host network state podman added (now removed): {added}")


@contextlib.contextmanager
def container(podman: Podman, runtime: str, cap: Captured):
    """A unique container name, force-removed at the end whatever happened."""
    name = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        podman("rm", "--force", "--time", "0", name, runtime=str(cap.path), check=False)


def fail(what: str, proc, cap: Captured) -> str:
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            f"runtime calls:\n{cap.text()}")


def run(podman: Podman, cap: Captured, *args, network: str | None = "none", check=True,
        timeout=120) -> subprocess.CompletedProcess:
    """podman --runtime WRAPPER run --rm FLAGS ARGS..., failing with the runtime calls."""
    proc = podman("run", "--rm", *podman.run_flags(network), *args, runtime=str(cap.path),
                  check=False, timeout=timeout)
    if check:
        assert proc.returncode == 0, fail(f"podman run {shlex.join(map(str, args))}", proc, cap)
    return proc


def run_detached(podman: Podman, cap: Captured, name: str, *args, network="none") -> str:
    proc = podman("run", "-d", "--name", name, *podman.run_flags(network), *args,
                  runtime=str(cap.path), check=False)
    assert proc.returncode == 0, fail(f"podman run -d {shlex.join(map(str, args))}", proc, cap)
    return proc.stdout.strip()


def inspect(podman: Podman, cap: Captured, name: str, fmt: str) -> str:
    return podman("inspect", "--format", fmt, name, runtime=str(cap.path)).stdout.strip()


def status(podman, cap, name) -> str:
    return inspect(podman, cap, name, "{{.State.Status}}")


def wait_logs(podman, cap, name, text, timeout=10) -> str:
    return wait_for(lambda: (lambda out: out if text in out else "")(
        podman("logs", name, runtime=str(cap.path)).stdout), timeout,
        what=f"{text!r} in the logs of {name}")


def assert_podman_lifecycle(runtime: str, cap: Captured, cid: str, creates: int = 1) -> None:
    """The calls facts.md lists: conmon's create (with --bundle, --pid-file, the id last) and
    podman's start and delete; runc (a name podman knows) also gets --log-format=json --log F."""
    calls = cap.text()
    created = [c for c in calls_of(cap, "create") if c[2][-1:] == [cid]]
    assert len(created) == creates, f"expected {creates} create of {cid}:\n{calls}"
    for _, opts, rest in created:
        bundle, pid_file = option(rest, "--bundle"), option(rest, "--pid-file")
        assert bundle and os.path.isabs(bundle), f"create without --bundle:\n{calls}"
        assert pid_file and os.path.isabs(pid_file), f"create without --pid-file:\n{calls}"
        assert "--root" not in opts, f"podman is not expected to pass --root:\n{calls}"
        if runtime == "runc":
            assert opts.get("--log-format") == "json" and opts.get("--log"), calls
        else:   # podman passes --log/--log-format only to the runtimes it knows by name
            assert "--log-format" not in opts and "--log" not in opts, calls
    starts = [rest for _, _, rest in calls_of(cap, "start") if rest[-1:] == [cid]]
    assert starts == [[cid]] * creates, f"expected `start {cid}` x{creates}:\n{calls}"
    deletes = calls_of(cap, "delete")
    assert deletes and any(rest[-1] == cid for _, _, rest in deletes), \
        f"expected `delete [--force] {cid}`:\n{calls}"
    order = subcommands(cap)
    assert order.index("create") < order.index("start") < len(order) - 1 - order[::-1].index(
        "delete"), f"create, start, delete out of order:\n{calls}"


def created_id(cap: Captured) -> str:
    creates = calls_of(cap, "create")
    return creates[0][2][-1] if creates else "?"


# --------------------------------------------------------------------------------------------
# run: output, exit codes, create/start/wait, detached + ps + logs

def test_podman_run_echo(podman, runtime, captured):
    proc = run(podman, captured, podman.image, "echo", "hello")
    assert proc.stdout == "hello\n", fail("podman run echo hello", proc, captured)
    record_argv("podman", runtime, "run --rm IMAGE echo hello", captured)
    assert_podman_lifecycle(runtime, captured, created_id(captured))


def test_podman_exit_code_and_streams(podman, runtime, captured):
    proc = run(podman, captured, podman.image, "sh", "-c", "echo out; echo err >&2; exit 3",
               check=False)
    assert (proc.returncode, proc.stdout) == (3, "out\n") and "err" in proc.stderr, \
        fail("podman run sh -c 'echo out; echo err >&2; exit 3'", proc, captured)
    proc = run(podman, captured, podman.image, "/nonexistent", check=False)
    assert proc.returncode == 127, fail("podman run IMAGE /nonexistent", proc, captured)
    record_argv("podman", runtime, "run exit 3; run /nonexistent", captured)


def test_podman_create_start_wait(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        proc = podman("create", "--name", name, *podman.run_flags(), podman.image,
                      "sh", "-c", "echo started; exit 4", runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman create", proc, captured)
        cid = proc.stdout.strip()
        assert status(podman, captured, name) in ("created", "configured")
        proc = podman("start", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman start", proc, captured)
        proc = podman("wait", name, runtime=rt, check=False)
        assert (proc.returncode, proc.stdout.strip()) == (0, "4"), fail("podman wait", proc,
                                                                         captured)
        assert podman("logs", name, runtime=rt).stdout == "started\n"
        assert inspect(podman, captured, name, "{{.State.Status}} {{.State.ExitCode}}") == \
            "exited 4"
        podman("rm", name, runtime=rt)
    record_argv("podman", runtime, "create; start; wait; rm", captured)
    assert_podman_lifecycle(runtime, captured, cid)


def test_podman_detached_ps_logs_rm_force(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        # sleep, PID 1, ignores the SIGTERM of rm -f: --stop-timeout 1 (not 10) before SIGKILL
        cid = run_detached(podman, captured, name, "--stop-timeout", "1", podman.image, "sh",
                           "-c", "echo to-stdout; echo to-stderr >&2; exec sleep 1000")
        ps = podman("ps", "--filter", f"name={name}", "--format", "{{.ID}} {{.Names}} {{.Status}}",
                    runtime=rt).stdout.split()
        assert ps[:3] == [cid[:12], name, "Up"], f"podman ps: {ps}\n{captured.text()}"
        wait_logs(podman, captured, name, "to-stdout")
        logs = podman("logs", name, runtime=rt)
        assert "to-stdout" in logs.stdout and "to-stderr" in logs.stderr + logs.stdout, logs
        pid = int(inspect(podman, captured, name, "{{.State.Pid}}"))
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
        status_lines = Path(f"/proc/{pid}/status").read_text().splitlines()
        assert "Seccomp:\t2" in status_lines, "podman's seccomp profile is not loaded"
        proc = podman("rm", "-f", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman rm -f (running)", proc, captured)
        assert podman("ps", "-a", "--filter", f"name={name}", "--format", "{{.Names}}",
                      runtime=rt).stdout.strip() == ""
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, what=f"pid {pid} to go")
    record_argv("podman", runtime, "run -d; ps; logs; rm -f", captured)
    assert any(sig == 9 for _, sig in kills_of(captured, cid)), \
        f"rm -f of a running container: expected `kill {cid} 9`:\n{captured.text()}"
    assert_podman_lifecycle(runtime, captured, cid)


# --------------------------------------------------------------------------------------------
# signals: stop (TERM; TERM then KILL), kill -s

def test_podman_stop_sigterm(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sh", "-c",
                           'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done')
        wait_logs(podman, captured, name, "ready")
        assert status(podman, captured, name) == "running"
        t0 = time.monotonic()
        proc = podman("stop", "--time", "10", name, runtime=rt, check=False)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, fail("podman stop", proc, captured)
        assert elapsed < 8, f"stop took {elapsed:.1f}s: SIGTERM did not reach the container\n" \
                            f"{captured.text()}"
        assert inspect(podman, captured, name, "{{.State.Status}} {{.State.ExitCode}}") == \
            "exited 0", captured.text()
        assert podman("logs", name, runtime=rt).stdout == "ready\n"
        podman("rm", name, runtime=rt)
    record_argv("podman", runtime, "run -d (TERM trapped); stop", captured)
    assert (False, 15) in kills_of(captured, cid), \
        f"expected `kill {cid} 15`:\n{captured.text()}"
    assert_podman_lifecycle(runtime, captured, cid)


def test_podman_stop_timeout_sigkill(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sh", "-c",
                           'trap "" TERM; echo ready; while :; do sleep 0.1; done')
        wait_logs(podman, captured, name, "ready")
        t0 = time.monotonic()
        proc = podman("stop", "-t", "1", name, runtime=rt, check=False)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, fail("podman stop -t 1", proc, captured)
        assert 0.9 <= elapsed < 8, f"stop -t 1 took {elapsed:.1f}s\n{captured.text()}"
        assert inspect(podman, captured, name, "{{.State.Status}} {{.State.ExitCode}}") == \
            "exited 137", captured.text()
    record_argv("podman", runtime, "run -d (TERM ignored); stop -t 1", captured)
    sigs = [sig for _, sig in kills_of(captured, cid)]
    assert 15 in sigs and 9 in sigs and sigs.index(15) < sigs.index(9), \
        f"expected `kill {cid} 15` then a kill with 9:\n{captured.text()}"


def test_podman_kill_signal(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sh", "-c",
                           'trap "echo got-usr1; exit 9" USR1; echo ready; '
                           'while :; do sleep 0.1; done')
        wait_logs(podman, captured, name, "ready")
        proc = podman("kill", "-s", "USR1", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman kill -s USR1", proc, captured)
        proc = podman("wait", name, runtime=rt, check=False)
        assert proc.stdout.strip() == "9", fail("podman wait", proc, captured)
        assert "got-usr1" in podman("logs", name, runtime=rt).stdout
    record_argv("podman", runtime, "run -d; kill -s USR1", captured)
    assert (False, 10) in kills_of(captured, cid), f"expected `kill {cid} 10`:\n{captured.text()}"


# --------------------------------------------------------------------------------------------
# exec, and -it run/exec under a real terminal

def test_podman_exec(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, "-e", "FROM_RUN=r", podman.image,
                           "sleep", "1000")
        proc = podman("exec", name, "sh", "-c", "echo exec-out; echo $FROM_RUN; exit 6",
                      runtime=rt, check=False)
        assert (proc.returncode, proc.stdout) == (6, "exec-out\nr\n"), \
            fail("podman exec sh -c 'echo exec-out; echo $FROM_RUN; exit 6'", proc, captured)
        proc = podman("exec", "-e", "X=from-exec", "-w", "/tmp", "--user", "1000:1000", name,
                      "sh", "-c", 'echo "$X $(pwd) $(id -u):$(id -g)"', runtime=rt, check=False)
        assert proc.stdout == "from-exec /tmp 1000:1000\n", \
            fail("podman exec -e -w --user", proc, captured)
        proc = podman("exec", name, "/nonexistent", runtime=rt, check=False)
        assert proc.returncode in (126, 127), fail("podman exec /nonexistent", proc, captured)
        proc = podman("exec", name, "cat", "/proc/1/comm", runtime=rt, check=False)
        assert proc.stdout == "sleep\n", fail("podman exec cat /proc/1/comm", proc, captured)
    record_argv("podman", runtime, "exec x4", captured)
    execs = calls_of(captured, "exec")
    assert len(execs) >= 4, f"expected the runtime's exec:\n{captured.text()}"
    for _, _, rest in execs:
        assert rest[-1] == cid and option(rest, "--process") and option(rest, "--pid-file") \
            and "--detach" in rest, f"unexpected exec call {rest}:\n{captured.text()}"


def test_podman_run_it_pty(podman, runtime, captured):
    name = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    term = PtyProcess(podman.cmd("run", "-it", "--rm", "--name", name, *podman.run_flags(),
                                 podman.image, "sh", runtime=str(captured.path)))
    try:
        pty_conversation(term)
        assert term.wait() == 5, f"podman run -it exited {term.status}:\n{term.text()!r}\n" \
                                 f"{captured.text()}"
    finally:
        term.close()
        podman("rm", "-f", "-t", "0", name, runtime=str(captured.path), check=False)
    record_argv("podman", runtime, "run -it (pty)", captured)
    _, _, rest = calls_of(captured, "create")[0]
    assert option(rest, "--console-socket"), f"create without --console-socket:\n" \
                                             f"{captured.text()}"


def test_podman_exec_it_pty(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sleep", "1000")
        term = PtyProcess(podman.cmd("exec", "-it", name, "sh", runtime=rt))
        try:
            pty_conversation(term)
            assert term.wait() == 5, f"podman exec -it exited {term.status}:\n" \
                                     f"{term.text()!r}\n{captured.text()}"
        finally:
            term.close()
        assert status(podman, captured, name) == "running"
    record_argv("podman", runtime, "exec -it (pty)", captured)
    execs = [rest for _, _, rest in calls_of(captured, "exec")]
    assert execs and "--tty" in execs[0] and option(execs[0], "--console-socket") \
        and execs[0][-1] == cid, f"expected exec --tty --console-socket:\n{captured.text()}"


# --------------------------------------------------------------------------------------------
# process settings: env, workdir, user, hostname, --init

def test_podman_env_workdir(podman, runtime, captured):
    proc = run(podman, captured, "-e", "FOO=bar baz", "--env", "EMPTY=", "-w", "/var/tmp",
               podman.image, "sh", "-c", 'echo "$FOO|$EMPTY|$(pwd)|$PATH|$HOME"')
    assert proc.stdout.startswith("bar baz||/var/tmp|") and "/bin" in proc.stdout \
        and proc.stdout.rstrip().endswith("|/root"), fail("podman run -e -w", proc, captured)
    proc = run(podman, captured, "-w", "/new/dir", podman.image, "pwd", check=False)
    assert proc.returncode == 126 and "does not exist" in proc.stderr, \
        fail("podman run -w /new/dir (podman 4.3 refuses a missing workdir)", proc, captured)


def test_podman_user(podman, runtime, captured):
    proc = run(podman, captured, "--user", "1000:1000", podman.image, "sh", "-c",
               "id -u; id -g; touch /tmp/x && stat -c %u /tmp/x")
    assert proc.stdout.split() == ["1000", "1000", "1000"], fail("podman run --user 1000:1000",
                                                                 proc, captured)
    proc = run(podman, captured, "--user", "nobody", podman.image, "sh", "-c", "id -un; id -u")
    assert proc.stdout.split() == ["nobody", "65534"], fail("podman run --user nobody", proc,
                                                            captured)
    proc = run(podman, captured, "--user", "1000", "--group-add", "10", podman.image, "id", "-G")
    assert set(proc.stdout.split()) >= {"1000", "10"}, fail("podman run --group-add", proc,
                                                            captured)


def test_podman_hostname(podman, runtime, captured):
    proc = run(podman, captured, "--hostname", "hw-host", podman.image, "sh", "-c",
               "hostname; cat /etc/hostname")
    assert proc.stdout.split() == ["hw-host", "hw-host"], fail("podman run --hostname", proc,
                                                               captured)


def test_podman_init(podman, runtime, captured):
    # podman bind-mounts catatonit at /run/podman-init and makes it PID 1
    proc = run(podman, captured, "--init", podman.image, "sh", "-c",
               "cat /proc/1/comm; echo $$; exit 3", check=False)
    out = proc.stdout.split()
    assert proc.returncode == 3 and out[:1] == ["podman-init"] and out[1:] != ["1"], \
        fail("podman run --init sh -c 'cat /proc/1/comm; echo $$; exit 3'", proc, captured)


# --------------------------------------------------------------------------------------------
# filesystem: --read-only, -v

def test_podman_read_only(podman, runtime, captured):
    proc = run(podman, captured, "--read-only", podman.image, "sh", "-c",
               "touch /x; echo rc=$?; touch /tmp/ok && echo tmp-ok", check=False)
    assert proc.returncode == 0 and "rc=1" in proc.stdout and "tmp-ok" in proc.stdout \
        and "Read-only file system" in proc.stderr, fail("podman run --read-only", proc, captured)


def test_podman_bind_mounts(podman, runtime, captured, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("host data\n")
    proc = run(podman, captured, "-v", f"{rw}:/data", "-v", f"{ro}:/ro:ro", podman.image,
               "sh", "-c", "echo from-container > /data/out; cat /ro/f; "
                           "touch /ro/x; echo rc=$?", check=False)
    assert proc.returncode == 0 and proc.stdout == "host data\nrc=1\n", \
        fail("podman run -v rw -v ro", proc, captured)
    assert (rw / "out").read_text() == "from-container\n"
    assert not (ro / "x").exists()


# --------------------------------------------------------------------------------------------
# resources: --memory/--cpus/--pids-limit in the container's cgroup

def test_podman_resources(podman, runtime, captured):
    with container(podman, runtime, captured) as name:
        run_detached(podman, captured, name, "--memory", "64m", "--cpus", "0.5",
                     "--pids-limit", "50", podman.image, "sleep", "1000")
        pid = int(inspect(podman, captured, name, "{{.State.Pid}}"))
        host = (read_cgroup(pid, "memory", "memory.limit_in_bytes"),
                read_cgroup(pid, "cpu", "cpu.cfs_quota_us"),
                read_cgroup(pid, "cpu", "cpu.cfs_period_us"),
                read_cgroup(pid, "pids", "pids.max"))
        assert host == ("67108864", "50000", "100000", "50"), \
            f"host cgroup files of pid {pid}: {host}\n{captured.text()}"
        assert podman.cgroup_parent.strip("/") in str(
            Path(f"/proc/{pid}/cgroup").read_text()), "not under --cgroup-parent"
        proc = podman("exec", name, "sh", "-c",
                      "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                      "/sys/fs/cgroup/pids/pids.max", runtime=str(captured.path), check=False)
        assert proc.stdout.split() == ["67108864", "50"], fail(
            "podman exec cat the cgroup files from inside", proc, captured)
    record_argv("podman", runtime, "run -d --memory 64m --cpus 0.5 --pids-limit 50", captured)


# --------------------------------------------------------------------------------------------
# pause/unpause, top, restart

def test_podman_pause_unpause(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sh", "-c",
                           "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done")
        pid = int(inspect(podman, captured, name, "{{.State.Pid}}"))
        proc = podman("pause", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman pause", proc, captured)
        assert status(podman, captured, name) == "paused"
        assert read_cgroup(pid, "freezer", "freezer.state") == "FROZEN"
        proc = podman("unpause", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman unpause", proc, captured)
        assert status(podman, captured, name) == "running"
        assert read_cgroup(pid, "freezer", "freezer.state") == "THAWED"
        first = podman("exec", name, "cat", "/tmp/n", runtime=rt).stdout
        wait_for(lambda: podman("exec", name, "cat", "/tmp/n", runtime=rt).stdout != first, 5,
                 what="the counter to move after unpause")
    record_argv("podman", runtime, "pause; unpause", captured)
    assert [r for _, _, r in calls_of(captured, "pause")] == [[cid]], captured.text()
    assert [r for _, _, r in calls_of(captured, "resume")] == [[cid]], captured.text()


def test_podman_top(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        run_detached(podman, captured, name, podman.image, "sh", "-c",
                     "sleep 1000 & sleep 1001 & wait")
        wait_for(lambda: "sleep 1001" in podman("top", name, runtime=rt, check=False).stdout,
                 10, what="both sleeps in podman top")
        proc = podman("top", name, runtime=rt, check=False)
        assert proc.returncode == 0 and "sleep 1000" in proc.stdout \
            and "sleep 1001" in proc.stdout, fail("podman top", proc, captured)
        proc = podman("top", name, "pid", "comm", runtime=rt, check=False)
        lines = [l.split() for l in proc.stdout.splitlines()[1:]]
        assert ["1", "sh"] in lines, fail("podman top NAME pid comm", proc, captured)
    record_argv("podman", runtime, "top", captured)


def test_podman_restart(podman, runtime, captured):
    rt = str(captured.path)
    with container(podman, runtime, captured) as name:
        cid = run_detached(podman, captured, name, podman.image, "sleep", "1000")
        pid1 = int(inspect(podman, captured, name, "{{.State.Pid}}"))
        proc = podman("restart", "-t", "1", name, runtime=rt, check=False)
        assert proc.returncode == 0, fail("podman restart", proc, captured)
        assert status(podman, captured, name) == "running"
        pid2 = int(inspect(podman, captured, name, "{{.State.Pid}}"))
        assert pid2 != pid1 and Path(f"/proc/{pid2}/comm").read_text().strip() == "sleep"
        assert not os.path.exists(f"/proc/{pid1}")
        proc = podman("exec", name, "echo", "after-restart", runtime=rt, check=False)
        assert proc.stdout == "after-restart\n", fail("podman exec after restart", proc, captured)
    record_argv("podman", runtime, "run -d; restart", captured)
    assert_podman_lifecycle(runtime, captured, cid, creates=2)


# --------------------------------------------------------------------------------------------
# network: none, the default bridge with -p

def test_podman_network_none(podman, runtime, captured):
    proc = run(podman, captured, podman.image, "sh", "-c", "ls /sys/class/net", network="none")
    assert proc.stdout.split() == ["lo"], fail("podman run --network none", proc, captured)


def test_podman_default_network_port(podman, runtime, captured):
    rt = str(captured.path)
    port = free_port()
    with container(podman, runtime, captured) as name:
        run_detached(podman, captured, name, "-p", f"127.0.0.1:{port}:8080", podman.image,
                     "sh", "-c", f"mkdir /w && echo hello-{runtime} > /w/index.html && "
                                 "exec httpd -f -p 8080 -h /w", network=None)
        netns = inspect(podman, captured, name, "{{.NetworkSettings.SandboxKey}}")
        assert netns.startswith("/run/netns/"), netns
        ip = inspect(podman, captured, name, "{{.NetworkSettings.IPAddress}}")
        assert ip, f"no IP address on the default network:\n{captured.text()}"
        answer = http_get(port)
        assert answer.startswith("HTTP/1.") and f"hello-{runtime}" in answer, answer
        proc = podman("exec", name, "sh", "-c", "ls /sys/class/net", runtime=rt)
        assert sorted(proc.stdout.split()) == ["eth0", "lo"], proc.stdout
    record_argv("podman", runtime, "run -d -p 127.0.0.1:PORT:8080 httpd", captured)
