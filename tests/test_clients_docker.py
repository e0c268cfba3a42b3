"""dockerd 20.10 (Debian's docker.io) drives hawser through what users do, each scenario run with
runc too: `docker run --runtime hw-runc|hw-hawser`, both added with `--add-runtime` as wrapper
scripts that log the argv containerd's runc shim sends.

The daemon is PRIVATE to this module: its own --data-root, --exec-root, --pidfile, socket, trust
key and CLI config, a private containerd (own namespace) instead of the machine's, a cgroup parent
of its own, and a bridge the fixture creates (--bridge; --iptables=false --ip-forward=false
--ip-masq=false, so -p goes through docker-proxy on 127.0.0.1 and no firewall rule or sysctl is
touched). The finalizer removes containers and image, stops dockerd (only the pid it started),
its containerd and shims, unmounts what is under its directories, removes its cgroups, the
bridge, and /run/docker when dockerd made it."""
from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from clients_harness import (RUNTIMES, Captured, Containerd, HostNetState, PtyProcess, calls_of,
                             free_port, http_get, kills_of, mount_points_under, option,
                             pty_conversation, read_cgroup, record_argv, remove_cgroups, runtime,
                             split_call, stop_process, unmount_under)
from waits import wait_for
from images import write_docker_archive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
__all__ = ["runtime"]    # fixture used by the tests below

DOCKER = "/usr/bin/docker"      # docker.io's CLI (another docker may come first in PATH)
DOCKERD = "/usr/sbin/dockerd"
IMAGE = "hawser-busybox:test"


def runtime_name(runtime: str) -> str:
    return f"hw-{runtime}"


def pick_subnet() -> ipaddress.IPv4Network:
    """A /24 for the private bridge that overlaps no address or route of the host."""
    used = []
    out = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True,
                         text=True).stdout
    for line in out.splitlines():
        word = line.split()[0] if line.split() else ""
        if word in ("local", "broadcast", "unicast") and len(line.split()) > 1:
            word = line.split()[1]
        try:
            used.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            pass
    for third in range(200, 256):
        net = ipaddress.ip_network(f"10.231.{third}.0/24")
        if not any(net.overlaps(u) for u in used if u.prefixlen > 0):
            return net
    raise AssertionError("no free /24 in 10.231.200-255.0 for the test bridge")


class Dockerd:
    def __init__(self, base: Path):
        self.base = base
        self.sock = base / "docker.sock"
        self.ctd = Containerd(base / "ctd", namespace=f"hwtest-dk-{uuid.uuid4().hex[:8]}")
        self.cgroup_parent = f"/hwtest-docker-{uuid.uuid4().hex[:8]}"
        self.bridge = f"hwdk{uuid.uuid4().hex[:8]}"
        self.subnet = pick_subnet()
        self.log = base / "dockerd.log"
        self.proc: subprocess.Popen | None = None
        self.env = {**os.environ, "DOCKER_CONFIG": str(base / "cli-config"),
                    "DOCKER_HOST": f"unix://{self.sock}"}
        self.env.pop("DOCKER_CONTEXT", None)
        self.captured = {rt: Captured(base / f"cap-{rt}", real) for rt, real in RUNTIMES.items()}

    def start(self) -> None:
        (self.base / "ctd").mkdir()
        self.ctd.start()
        gateway = next(self.subnet.hosts())
        subprocess.run(["ip", "link", "add", self.bridge, "type", "bridge"], check=True)
        subprocess.run(["ip", "addr", "add", f"{gateway}/{self.subnet.prefixlen}", "dev",
                        self.bridge], check=True)
        subprocess.run(["ip", "link", "set", self.bridge, "up"], check=True)
        config = self.base / "daemon.json"
        # the trust key (key.json, /etc/docker by default) can only be moved in the config file
        config.write_text(json.dumps({"deprecated-key-path": str(self.base / "key.json")}))
        argv = [DOCKERD, "--config-file", str(config),
                "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
                "--pidfile", str(self.base / "docker.pid"), "-H", f"unix://{self.sock}",
                "--containerd", str(self.ctd.sock),
                "--containerd-namespace", self.ctd.namespace,
                "--containerd-plugins-namespace", self.ctd.namespace + "-plugins",
                "--bridge", self.bridge, "--iptables=false", "--ip-forward=false",
                "--ip-masq=false", "--ipv6=false", "--cgroup-parent", self.cgroup_parent]
        for rt, cap in self.captured.items():
            argv += ["--add-runtime", f"{runtime_name(rt)}={cap.path}"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         env=self.env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"dockerd exited {self.proc.returncode}:\n{self.log_tail()}")
            if self.sock.exists() and self("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.1)
        raise AssertionError(f"dockerd did not come up:\n{self.log_tail()}")

    def log_tail(self, n=40, levels=None) -> str:
        try:
            lines = self.log.read_text().splitlines()
        except OSError:
            return ""
        if levels:
            lines = [l for l in lines if any(f"level={lv}" in l for lv in levels)]
        return "\n".join(lines[-n:])

    def cmd(self, *args) -> list[str]:
        return [DOCKER, "-H", f"unix://{self.sock}", *map(str, args)]

    def __call__(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL, env=self.env)
        if check and proc.returncode != 0:
            raise AssertionError(f"docker {shlex.join(map(str, args))} exited "
                                 f"{proc.returncode}:\nstdout: {proc.stdout}\n"
                                 f"stderr: {proc.stderr}")
        return proc

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            ids = self("ps", "-aq", check=False, timeout=30).stdout.split()
            if ids:
                self("rm", "-f", *ids, check=False, timeout=60)
            self("rmi", "-f", IMAGE, check=False, timeout=60)
        if self.proc is not None:
            stop_process(self.proc, timeout=30)
        self.ctd.stop()


@pytest.fixture(scope="module")
def dockerd(busybox_rootfs):
    if not (os.path.exists(DOCKERD) and os.path.exists(DOCKER)):
        pytest.fail("docker.io is not installed: run `make install`")
    had_run_docker = os.path.exists("/run/docker")
    had_key = os.path.exists("/etc/docker/key.json")
    net = HostNetState()
    # unix socket paths are limited to 108 bytes: a short base directory.
    base = Path(tempfile.mkdtemp(prefix="hwdk-", dir="/tmp"))
    dk = Dockerd(base)
    try:
        dk.start()
        archive = write_docker_archive(busybox_rootfs, base / "busybox-docker.tar", IMAGE)
        dk("load", "-i", archive)
        yield dk
    finally:
        try:
            dk.stop()
        finally:
            unmount_under(base)
            left = remove_cgroups(dk.cgroup_parent) + remove_cgroups(dk.ctd.namespace)
            subprocess.run(["ip", "link", "delete", dk.bridge], capture_output=True)
            added = net.restore(links=(dk.bridge,), iptables=(dk.bridge,))
            if not had_run_docker:
                shutil.rmtree("/run/docker", ignore_errors=True)
            mounts = mount_points_under(base)
            shutil.rmtree(base, ignore_errors=True)
        assert had_key or not os.path.exists("/etc/docker/key.json"), \
            "dockerd wrote /etc/docker/key.json"
        assert not left, f"cgroups left behind: {left}"
        assert not mounts, f"mounts left behind: {mounts}"
        print(f"host network state dockerd added (now removed): {added}")


@pytest.fixture
def dcap(dockerd, runtime) -> Captured:
    """The module's wrapper of `runtime`, its log window starting with this test."""
    return dockerd.captured[runtime].mark()


def fail(what: str, proc, cap: Captured, dk: Dockerd) -> str:
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            f"runtime calls:\n{cap.text()}\ndockerd log (errors, warnings):\n"
            f"{dk.log_tail(10, ('error', 'warning'))}")


@contextlib.contextmanager
def container(dk: Dockerd, runtime: str):
    name = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        dk("rm", "-f", name, check=False, timeout=60)


def run(dk: Dockerd, cap: Captured, runtime: str, *args, check=True, timeout=120):
    proc = dk("run", "--rm", "--runtime", runtime_name(runtime), *args, check=False,
              timeout=timeout)
    if check:
        assert proc.returncode == 0, fail(f"docker run {shlex.join(map(str, args))}", proc, cap,
                                          dk)
    return proc


def run_detached(dk: Dockerd, cap: Captured, runtime: str, name: str, *args) -> str:
    proc = dk("run", "-d", "--name", name, "--runtime", runtime_name(runtime), *args, check=False)
    assert proc.returncode == 0, fail(f"docker run -d {shlex.join(map(str, args))}", proc, cap,
                                      dk)
    return proc.stdout.strip()


def inspect(dk: Dockerd, name: str, fmt: str) -> str:
    return dk("inspect", "--format", fmt, name).stdout.strip()


def wait_logs(dk: Dockerd, name: str, text: str, timeout=10) -> str:
    return wait_for(lambda: (lambda p: p.stdout + p.stderr if text in p.stdout + p.stderr
                             else "")(dk("logs", name)), timeout,
                    what=f"{text!r} in the logs of {name}")


def assert_docker_lifecycle(dk: Dockerd, runtime: str, cap: Captured, cid: str,
                            creates: int = 1, console: bool = False) -> None:
    """dockerd -> containerd -> runc shim: every call has `--root R --log BUNDLE/log.json
    --log-format json` with cwd = bundle; `create --bundle B --pid-file B/init.pid ID`,
    `start ID`, `delete ID`."""
    calls = [(cwd, argv) for cwd, argv in cap.calls() if cid in " ".join(argv)]
    text = "\n".join(f"[cwd {cwd}] {shlex.join(argv)}" for cwd, argv in calls)
    bundle = str(dk.ctd.task_dir / cid)
    assert calls, f"the runtime was never called for {cid}:\n{cap.text()}"
    for cwd, argv in calls:
        opts, sub, rest = split_call(argv)
        assert opts.get("--root") and opts.get("--log") == f"{bundle}/log.json" \
            and opts.get("--log-format") == "json", f"global options of {argv}:\n{text}"
        assert cwd == bundle, f"cwd {cwd} is not the bundle {bundle}:\n{text}"
    creates_ = [r for _, _, r in calls_of(cap, "create") if r[-1:] == [cid]]
    assert len(creates_) == creates, f"expected {creates} create:\n{text}"
    for rest in creates_:
        assert option(rest, "--bundle") == bundle and option(rest, "--pid-file") == \
            f"{bundle}/init.pid", f"unexpected create:\n{text}"
        assert bool(option(rest, "--console-socket")) == console, text
    assert [r for _, _, r in calls_of(cap, "start") if r[-1:] == [cid]] == [[cid]] * creates, \
        f"expected `start {cid}`:\n{text}"
    assert any(r[-1:] == [cid] for _, _, r in calls_of(cap, "delete")), \
        f"expected `delete {cid}`:\n{text}"
    # docker's config.json: a prestart hook (libnetwork's setkey), sysctls, seccomp, the
    # runtime's cgroups path under --cgroup-parent
    config = json.loads((Path(bundle) / "config.json").read_text()) \
        if (Path(bundle) / "config.json").exists() else None
    if config:
        assert config["linux"]["cgroupsPath"] == f"{dk.cgroup_parent}/{cid}", config["linux"]


# --------------------------------------------------------------------------------------------
# run: output, exit codes, create/start/wait, detached + ps + logs + rm -f

def test_docker_run_echo(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, IMAGE, "echo", "hello")
    assert proc.stdout == "hello\n", fail("docker run echo hello", proc, dcap, dockerd)
    cid = calls_of(dcap, "create")[0][2][-1]
    record_argv("docker", runtime, "run --rm IMAGE echo hello", dcap)
    assert_docker_lifecycle(dockerd, runtime, dcap, cid)


def test_docker_exit_code_and_streams(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, IMAGE, "sh", "-c", "echo out; echo err >&2; exit 3",
               check=False)
    assert (proc.returncode, proc.stdout) == (3, "out\n") and "err" in proc.stderr, \
        fail("docker run sh -c 'echo out; echo err >&2; exit 3'", proc, dcap, dockerd)
    proc = run(dockerd, dcap, runtime, IMAGE, "/nonexistent", check=False)
    assert proc.returncode == 127 and "/nonexistent" in proc.stderr, \
        fail("docker run IMAGE /nonexistent", proc, dcap, dockerd)
    record_argv("docker", runtime, "run exit 3; run /nonexistent", dcap)


def test_docker_create_start_wait(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        proc = dockerd("create", "--name", name, "--runtime", runtime_name(runtime), IMAGE,
                       "sh", "-c", "echo started; exit 4", check=False)
        assert proc.returncode == 0, fail("docker create", proc, dcap, dockerd)
        cid = proc.stdout.strip()
        assert inspect(dockerd, name, "{{.State.Status}}") == "created"
        proc = dockerd("start", name, check=False)
        assert proc.returncode == 0, fail("docker start", proc, dcap, dockerd)
        proc = dockerd("wait", name, check=False)
        assert (proc.returncode, proc.stdout.strip()) == (0, "4"), fail("docker wait", proc,
                                                                         dcap, dockerd)
        assert dockerd("logs", name).stdout == "started\n"
        assert inspect(dockerd, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 4"
        dockerd("rm", name)
    record_argv("docker", runtime, "create; start; wait; rm", dcap)
    assert_docker_lifecycle(dockerd, runtime, dcap, cid)


def test_docker_detached_ps_logs_rm_force(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           "echo to-stdout; echo to-stderr >&2; exec sleep 1000")
        ps = dockerd("ps", "--filter", f"name={name}", "--format",
                     "{{.ID}} {{.Names}} {{.Status}}").stdout.split()
        assert ps[:3] == [cid[:12], name, "Up"], f"docker ps: {ps}\n{dcap.text()}"
        wait_logs(dockerd, name, "to-stderr")
        logs = dockerd("logs", name)
        assert logs.stdout == "to-stdout\n" and logs.stderr == "to-stderr\n", logs
        pid = int(inspect(dockerd, name, "{{.State.Pid}}"))
        assert Path(f"/proc/{pid}/comm").read_text().strip() == "sleep"
        # what docker's config.json always has (facts.md): libnetwork's prestart hook, sysctls,
        # a seccomp profile, oomScoreAdj, cgroupsPath under --cgroup-parent; applied
        config = json.loads((dockerd.ctd.task_dir / cid / "config.json").read_text())
        hook = config["hooks"]["prestart"][0]
        assert hook["args"][0] == "libnetwork-setkey" and cid in hook["args"], hook
        assert config["linux"]["cgroupsPath"] == f"{dockerd.cgroup_parent}/{cid}"
        assert config["linux"]["sysctl"]["net.ipv4.ip_unprivileged_port_start"] == "0"
        proc = dockerd("exec", name, "sh", "-c", "cat /proc/sys/net/ipv4/ip_unprivileged_port_start"
                       " /proc/1/oom_score_adj; grep ^Seccomp: /proc/1/status", check=False)
        assert proc.stdout.split() == ["0", str(config["process"]["oomScoreAdj"]), "Seccomp:",
                                       "2"], fail("docker exec: sysctl, oom_score_adj, seccomp",
                                                  proc, dcap, dockerd)
        proc = dockerd("rm", "-f", name, check=False)
        assert proc.returncode == 0, fail("docker rm -f (running)", proc, dcap, dockerd)
        assert dockerd("ps", "-a", "--filter", f"name={name}", "-q").stdout.strip() == ""
        wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10, what=f"pid {pid} to go")
    record_argv("docker", runtime, "run -d; ps; logs; rm -f", dcap)
    assert any(sig == 9 for _, sig in kills_of(dcap, cid)), \
        f"rm -f of a running container: expected `kill {cid} 9`:\n{dcap.text()}"
    assert_docker_lifecycle(dockerd, runtime, dcap, cid)


# --------------------------------------------------------------------------------------------
# signals: stop (TERM; TERM then KILL), kill -s

def test_docker_stop_sigterm(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done')
        wait_logs(dockerd, name, "ready")
        t0 = time.monotonic()
        proc = dockerd("stop", "-t", "10", name, check=False)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, fail("docker stop", proc, dcap, dockerd)
        assert elapsed < 8, f"stop took {elapsed:.1f}s: SIGTERM did not reach the container\n" \
                            f"{dcap.text()}"
        assert inspect(dockerd, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"
    record_argv("docker", runtime, "run -d (TERM trapped); stop", dcap)
    assert (False, 15) in kills_of(dcap, cid), f"expected `kill {cid} 15`:\n{dcap.text()}"
    assert_docker_lifecycle(dockerd, runtime, dcap, cid)


def test_docker_stop_timeout_sigkill(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           'trap "" TERM; echo ready; while :; do sleep 0.1; done')
        wait_logs(dockerd, name, "ready")
        t0 = time.monotonic()
        proc = dockerd("stop", "-t", "1", name, check=False)
        elapsed = time.monotonic() - t0
        assert proc.returncode == 0, fail("docker stop -t 1", proc, dcap, dockerd)
        assert 0.9 <= elapsed < 8, f"stop -t 1 took {elapsed:.1f}s\n{dcap.text()}"
        assert inspect(dockerd, name, "{{.State.Status}} {{.State.ExitCode}}") == "exited 137"
    record_argv("docker", runtime, "run -d (TERM ignored); stop -t 1", dcap)
    sigs = [sig for _, sig in kills_of(dcap, cid)]
    assert 15 in sigs and 9 in sigs and sigs.index(15) < sigs.index(9), \
        f"expected `kill {cid} 15` then 9:\n{dcap.text()}"


def test_docker_kill_signal(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           'trap "echo got-usr1; exit 9" USR1; echo ready; '
                           'while :; do sleep 0.1; done')
        wait_logs(dockerd, name, "ready")
        proc = dockerd("kill", "-s", "USR1", name, check=False)
        assert proc.returncode == 0, fail("docker kill -s USR1", proc, dcap, dockerd)
        proc = dockerd("wait", name, check=False)
        assert proc.stdout.strip() == "9", fail("docker wait", proc, dcap, dockerd)
        assert "got-usr1" in dockerd("logs", name).stdout
    record_argv("docker", runtime, "run -d; kill -s USR1", dcap)
    assert (False, 10) in kills_of(dcap, cid), f"expected `kill {cid} 10`:\n{dcap.text()}"


# --------------------------------------------------------------------------------------------
# exec, and -it run/exec under a real terminal

def test_docker_exec(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, "-e", "FROM_RUN=r", IMAGE,
                           "sleep", "1000")
        proc = dockerd("exec", name, "sh", "-c", "echo exec-out; echo $FROM_RUN; exit 6",
                       check=False)
        assert (proc.returncode, proc.stdout) == (6, "exec-out\nr\n"), \
            fail("docker exec sh -c '...; exit 6'", proc, dcap, dockerd)
        proc = dockerd("exec", "-e", "X=from-exec", "-w", "/tmp", "-u", "1000:1000", name,
                       "sh", "-c", 'echo "$X $(pwd) $(id -u):$(id -g)"', check=False)
        assert proc.stdout == "from-exec /tmp 1000:1000\n", \
            fail("docker exec -e -w -u", proc, dcap, dockerd)
        proc = dockerd("exec", name, "/nonexistent", check=False)
        assert proc.returncode in (126, 127), fail("docker exec /nonexistent", proc, dcap,
                                                   dockerd)
    record_argv("docker", runtime, "exec x3", dcap)
    execs = [rest for _, _, rest in calls_of(dcap, "exec")]
    assert len(execs) >= 2, f"expected the runtime's exec:\n{dcap.text()}"
    for rest in execs:
        assert rest[-1] == cid and option(rest, "--process") and option(rest, "--pid-file") \
            and "--detach" in rest, f"unexpected exec call {rest}:\n{dcap.text()}"


def test_docker_run_it_pty(dockerd, runtime, dcap):
    name = f"hw-{runtime}-{uuid.uuid4().hex[:8]}"
    term = PtyProcess(dockerd.cmd("run", "-it", "--rm", "--name", name, "--runtime",
                                  runtime_name(runtime), IMAGE, "sh"), env=dockerd.env)
    try:
        pty_conversation(term)
        assert term.wait() == 5, f"docker run -it exited {term.status}:\n{term.text()!r}\n" \
                                 f"{dcap.text()}"
    finally:
        term.close()
        dockerd("rm", "-f", name, check=False)
    record_argv("docker", runtime, "run -it (pty)", dcap)
    creates = calls_of(dcap, "create")
    assert creates and option(creates[0][2], "--console-socket"), \
        f"create without --console-socket:\n{dcap.text()}"


def test_docker_exec_it_pty(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sleep", "1000")
        term = PtyProcess(dockerd.cmd("exec", "-it", name, "sh"), env=dockerd.env)
        try:
            pty_conversation(term)
            assert term.wait() == 5, f"docker exec -it exited {term.status}:\n" \
                                     f"{term.text()!r}\n{dcap.text()}"
        finally:
            term.close()
        assert inspect(dockerd, name, "{{.State.Status}}") == "running"
    record_argv("docker", runtime, "exec -it (pty)", dcap)
    execs = [rest for _, _, rest in calls_of(dcap, "exec")]
    assert execs and option(execs[0], "--console-socket") and execs[0][-1] == cid, \
        f"expected exec --console-socket:\n{dcap.text()}"


# --------------------------------------------------------------------------------------------
# process settings: env, workdir, user, hostname, --init

def test_docker_env_workdir(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, "-e", "FOO=bar baz", "-e", "EMPTY=", "-w", "/var/tmp",
               IMAGE, "sh", "-c", 'echo "$FOO|$EMPTY|$(pwd)|$PATH|$HOME"')
    assert proc.stdout.startswith("bar baz||/var/tmp|") and "/bin" in proc.stdout \
        and proc.stdout.rstrip().endswith("|/root"), fail("docker run -e -w", proc, dcap,
                                                          dockerd)
    proc = run(dockerd, dcap, runtime, "-w", "/new/dir", IMAGE, "pwd")
    assert proc.stdout == "/new/dir\n", fail("docker run -w /new/dir (created)", proc, dcap,
                                             dockerd)


def test_docker_user(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, "-u", "1000:1000", IMAGE, "sh", "-c",
               "id -u; id -g; touch /tmp/x && stat -c %u /tmp/x")
    assert proc.stdout.split() == ["1000", "1000", "1000"], fail("docker run -u 1000:1000", proc,
                                                                 dcap, dockerd)
    proc = run(dockerd, dcap, runtime, "-u", "nobody", IMAGE, "sh", "-c", "id -un; id -u")
    assert proc.stdout.split() == ["nobody", "65534"], fail("docker run -u nobody", proc, dcap,
                                                            dockerd)
    proc = run(dockerd, dcap, runtime, "-u", "1000", "--group-add", "10", IMAGE, "id", "-G")
    assert set(proc.stdout.split()) >= {"1000", "10"}, fail("docker run --group-add", proc,
                                                            dcap, dockerd)


def test_docker_hostname(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, "--hostname", "hw-host", IMAGE, "sh", "-c",
               "hostname; cat /etc/hostname")
    assert proc.stdout.split() == ["hw-host", "hw-host"], fail("docker run --hostname", proc,
                                                               dcap, dockerd)


def test_docker_init(dockerd, runtime, dcap):
    # docker bind-mounts its docker-init (tini) at /sbin/docker-init and makes it PID 1
    proc = run(dockerd, dcap, runtime, "--init", IMAGE, "sh", "-c",
               "cat /proc/1/comm; echo $$; exit 3", check=False)
    out = proc.stdout.split()
    assert proc.returncode == 3 and out[:1] == ["docker-init"] and out[1:] != ["1"], \
        fail("docker run --init sh -c 'cat /proc/1/comm; echo $$; exit 3'", proc, dcap, dockerd)


# --------------------------------------------------------------------------------------------
# filesystem: --read-only, -v

def test_docker_read_only(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, "--read-only", "--tmpfs", "/tmp", IMAGE, "sh", "-c",
               "touch /x; echo rc=$?; touch /tmp/ok && echo tmp-ok", check=False)
    assert proc.returncode == 0 and "rc=1" in proc.stdout and "tmp-ok" in proc.stdout \
        and "Read-only file system" in proc.stderr, fail("docker run --read-only --tmpfs /tmp",
                                                         proc, dcap, dockerd)


def test_docker_bind_mounts(dockerd, runtime, dcap, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "f").write_text("host data\n")
    proc = run(dockerd, dcap, runtime, "-v", f"{rw}:/data", "-v", f"{ro}:/ro:ro", IMAGE,
               "sh", "-c", "echo from-container > /data/out; cat /ro/f; touch /ro/x; echo rc=$?",
               check=False)
    assert proc.returncode == 0 and proc.stdout == "host data\nrc=1\n", \
        fail("docker run -v rw -v ro", proc, dcap, dockerd)
    assert (rw / "out").read_text() == "from-container\n"
    assert not (ro / "x").exists()


# --------------------------------------------------------------------------------------------
# resources: run --memory/--cpus/--pids-limit, then docker update, read from the cgroup

def test_docker_resources_and_update(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, "--memory", "64m", "--cpus", "0.5",
                           "--pids-limit", "50", IMAGE, "sleep", "1000")
        pid = int(inspect(dockerd, name, "{{.State.Pid}}"))

        def limits():
            return (read_cgroup(pid, "memory", "memory.limit_in_bytes"),
                    read_cgroup(pid, "cpu", "cpu.cfs_quota_us"),
                    read_cgroup(pid, "cpu", "cpu.cfs_period_us"),
                    read_cgroup(pid, "pids", "pids.max"))
        assert limits() == (str(64 << 20), "50000", "100000", "50"), \
            f"host cgroup files of pid {pid}: {limits()}\n{dcap.text()}"
        assert f"{dockerd.cgroup_parent}/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
        proc = dockerd("exec", name, "sh", "-c",
                       "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                       "/sys/fs/cgroup/pids/pids.max", check=False)
        assert proc.stdout.split() == [str(64 << 20), "50"], fail(
            "docker exec cat the cgroup files from inside", proc, dcap, dockerd)
        proc = dockerd("update", "--memory", "96m", "--memory-swap", "192m", "--cpus", "1.5",
                       "--pids-limit", "77", name, check=False)
        assert proc.returncode == 0, fail("docker update --memory --cpus --pids-limit", proc,
                                          dcap, dockerd)
        assert limits() == (str(96 << 20), "150000", "100000", "77"), \
            f"after docker update: {limits()}\n{dcap.text()}"
        assert read_cgroup(pid, "memory", "memory.memsw.limit_in_bytes") == str(192 << 20)
        assert inspect(dockerd, name, "{{.State.Status}}") == "running"
    record_argv("docker", runtime, "run -d --memory --cpus --pids-limit; update", dcap)
    updates = [rest for _, _, rest in calls_of(dcap, "update")]
    assert updates and all(option(r, "--resources") == "-" and r[-1] == cid for r in updates), \
        f"expected `update --resources - {cid}`:\n{dcap.text()}"


# --------------------------------------------------------------------------------------------
# pause/unpause, top, restart

def test_docker_pause_unpause(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done")
        pid = int(inspect(dockerd, name, "{{.State.Pid}}"))
        proc = dockerd("pause", name, check=False)
        assert proc.returncode == 0, fail("docker pause", proc, dcap, dockerd)
        assert inspect(dockerd, name, "{{.State.Status}}") == "paused"
        assert read_cgroup(pid, "freezer", "freezer.state") == "FROZEN"
        proc = dockerd("unpause", name, check=False)
        assert proc.returncode == 0, fail("docker unpause", proc, dcap, dockerd)
        assert inspect(dockerd, name, "{{.State.Status}}") == "running"
        assert read_cgroup(pid, "freezer", "freezer.state") == "THAWED"
        first = dockerd("exec", name, "cat", "/tmp/n").stdout
        wait_for(lambda: dockerd("exec", name, "cat", "/tmp/n").stdout != first, 5,
                 what="the counter to move after unpause")
    record_argv("docker", runtime, "pause; unpause", dcap)
    assert [r for _, _, r in calls_of(dcap, "pause")] == [[cid]], dcap.text()
    assert [r for _, _, r in calls_of(dcap, "resume")] == [[cid]], dcap.text()


def test_docker_top(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sh", "-c",
                           "sleep 1000 & sleep 1001 & wait")
        wait_for(lambda: "sleep 1001" in dockerd("top", name, check=False).stdout, 10,
                 what="both sleeps in docker top")
        proc = dockerd("top", name, check=False)
        assert proc.returncode == 0 and "sleep 1000" in proc.stdout \
            and "sleep 1001" in proc.stdout, fail("docker top", proc, dcap, dockerd)
    record_argv("docker", runtime, "top", dcap)
    ps = [rest for _, _, rest in calls_of(dcap, "ps")]
    assert ps and all(option(r, "--format") == "json" and r[-1] == cid for r in ps), \
        f"expected `ps --format json {cid}`:\n{dcap.text()}"


def test_docker_restart(dockerd, runtime, dcap):
    with container(dockerd, runtime) as name:
        cid = run_detached(dockerd, dcap, runtime, name, IMAGE, "sleep", "1000")
        pid1 = int(inspect(dockerd, name, "{{.State.Pid}}"))
        proc = dockerd("restart", "-t", "1", name, check=False)
        assert proc.returncode == 0, fail("docker restart", proc, dcap, dockerd)
        assert inspect(dockerd, name, "{{.State.Status}}") == "running"
        pid2 = int(inspect(dockerd, name, "{{.State.Pid}}"))
        assert pid2 != pid1 and Path(f"/proc/{pid2}/comm").read_text().strip() == "sleep"
        assert not os.path.exists(f"/proc/{pid1}")
        proc = dockerd("exec", name, "echo", "after-restart", check=False)
        assert proc.stdout == "after-restart\n", fail("docker exec after restart", proc, dcap,
                                                      dockerd)
    record_argv("docker", runtime, "run -d; restart", dcap)
    assert_docker_lifecycle(dockerd, runtime, dcap, cid, creates=2)


# --------------------------------------------------------------------------------------------
# network: none, the (private) default bridge with -p

def test_docker_network_none(dockerd, runtime, dcap):
    proc = run(dockerd, dcap, runtime, "--network", "none", IMAGE, "ls", "/sys/class/net")
    assert proc.stdout.split() == ["lo"], fail("docker run --network none", proc, dcap, dockerd)


def test_docker_bridge_port(dockerd, runtime, dcap):
    port = free_port()
    with container(dockerd, runtime) as name:
        run_detached(dockerd, dcap, runtime, name, "-p", f"127.0.0.1:{port}:8080", IMAGE,
                     "sh", "-c", f"mkdir /w && echo hello-{runtime} > /w/index.html && "
                                 "exec httpd -f -p 8080 -h /w")
        ip = inspect(dockerd, name, "{{.NetworkSettings.IPAddress}}")
        assert ip and ipaddress.ip_address(ip) in dockerd.subnet, \
            f"IP {ip!r} not in {dockerd.subnet}:\n{dcap.text()}"
        answer = http_get(port)
        assert answer.startswith("HTTP/1.") and f"hello-{runtime}" in answer, answer
        proc = dockerd("exec", name, "ls", "/sys/class/net")
        assert sorted(proc.stdout.split()) == ["eth0", "lo"], proc.stdout
    record_argv("docker", runtime, "run -d -p 127.0.0.1:PORT:8080 httpd", dcap)
