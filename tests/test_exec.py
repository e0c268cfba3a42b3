"""`hawser exec`, `ps`, `pause` and `resume` against real busybox containers (as root).

Every test starts its own detached container (`hawser run -d ID` of `sleep 1000`) with a unique id
and force-deletes it in a finalizer. Container cgroups are the default `/hawser/<id>` of each v1
hierarchy; what is checked there is read from the host, never written. Only pids these tests
started are signalled.
"""
from __future__ import annotations

import json
import os
import pty
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid

import pytest
from waits import cpu_ticks, read_pid_file, wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

CG = "/sys/fs/cgroup"
CONTROLLERS = [c for c in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                           "pids") if os.path.isfile(f"{CG}/{c}/cgroup.procs")]
NS_NAMES = ("cgroup", "ipc", "mnt", "net", "pid", "pid_for_children", "time",
            "time_for_children", "user", "uts")
CAP_SYS_ADMIN = 21


# ---- helpers ---------------------------------------------------------------------------------
class Ctr:
    def __init__(self, cid, bundle, pid):
        self.id, self.bundle, self.pid = cid, bundle, pid

    def cgdir(self, ctrl: str) -> str:
        return f"{CG}/{ctrl}/hawser/{self.id}"

    def procs(self, ctrl: str = "pids") -> list[int]:
        with open(self.cgdir(ctrl) + "/cgroup.procs") as f:
            return [int(x) for x in f.read().split()]


def detached(hawser, *args, timeout=30, **kw):
    """Run hawser with stdio on files, for commands whose children keep stdio open (run -d,
    exec -d): a pipe would never reach EOF while the container lives."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(hawser.cmd(*args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout, **kw)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


@pytest.fixture
def start(hawser, make_bundle, request):
    """start(edit=None, args=("sleep", "1000")) -> Ctr, a running detached container."""

    def factory(edit=None, args=("sleep", "1000")) -> Ctr:
        cid = f"hx-{uuid.uuid4().hex[:12]}"
        b = make_bundle(args=args)
        if edit:
            edit(b.config)
            b.write()
        request.addfinalizer(lambda: subprocess.run(hawser.cmd("delete", "--force", cid),
                                                    capture_output=True, timeout=60))
        r = detached(hawser, "run", "-d", "--bundle", str(b.path), cid)
        assert r.returncode == 0, f"run -d failed: {r.stderr}"
        st = hawser.state(cid)
        assert st["status"] == "running", st
        return Ctr(cid, b, st["pid"])

    return factory


def host_ns(pid) -> dict[str, str]:
    return {n: os.readlink(f"/proc/{pid}/ns/{n}") for n in NS_NAMES
            if os.path.exists(f"/proc/{pid}/ns/{n}")}


def status_field(pid: int, name: str) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split(":", 1)[1].strip()
    raise KeyError(name)


def parse_status(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        k, sep, v = line.partition(":")
        if sep:
            out[k.strip()] = v.strip()
    return out


def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().decode(errors="replace").split("\0")[:-1]
    except (FileNotFoundError, ProcessLookupError):
        return []


def wait_new_process(c: "Ctr", before: set[int], argv: list[str], timeout=5.0) -> int:
    """The host pid of the new process running argv in the container's cgroup (hawser's own
    intermediate passes through the cgroup too: it is not the one)."""
    def find():
        for pid in set(c.procs()) - before:
            if cmdline(pid) == argv:
                return pid
        return None
    return wait_for(find, timeout, f"{argv} in the container's cgroup")


def pid_alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


def stop_container(hawser, c: Ctr) -> None:
    hawser("kill", c.id, "KILL")
    wait_for(lambda: hawser.state(c.id)["status"] == "stopped", 10, "the container to stop")


def fd_listing(text: str) -> dict[int, str]:
    """`ls -l /proc/self/fd/` -> {fd: target} (target "" when ls could not read the link, which
    is ls's own directory fd, closed by the time it reads the links)."""
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 9 or not parts[0].startswith("l"):
            continue
        if "->" in parts:
            i = parts.index("->")
            out[int(parts[i - 1])] = " ".join(parts[i + 1:])
        else:
            out[int(parts[-1])] = ""
    return out


def no_traceback(r):
    assert "Traceback" not in r.stderr, r.stderr


# ---- exec: output, exit status -----------------------------------------------------------------
def test_exec_returns_output_and_exit_code(hawser, start):
    c = start()
    r = hawser("exec", c.id, "echo", "hello from exec")
    assert r.stdout == "hello from exec\n"
    r = hawser("exec", c.id, "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (r.returncode, r.stdout, r.stderr) == (7, "out\n", "err\n")
    r = hawser("exec", c.id, "sh", "-c", "kill -9 $$", check=False)
    assert r.returncode == 128 + signal.SIGKILL
    r = hawser("exec", c.id, "sh", "-c", "kill -TERM $$", check=False)
    assert r.returncode == 128 + signal.SIGTERM
    r = hawser("exec", c.id, "cat", input="piped stdin\n")
    assert r.stdout == "piped stdin\n"


def test_exec_joins_every_namespace_of_the_container(hawser, start):
    c = start()
    r = hawser("exec", c.id, "ls", "-l", "/proc/self/ns/")
    inside = fd_listing_ns(r.stdout)
    theirs = host_ns(c.pid)
    assert inside == theirs
    ours = host_ns("self")
    for n in ("cgroup", "ipc", "mnt", "net", "pid", "uts"):
        assert theirs[n] != ours[n], f"the container should have its own {n} namespace"


def fd_listing_ns(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        parts = line.split()
        if "->" in parts:
            i = parts.index("->")
            out[parts[i - 1]] = parts[i + 1]
    return out


def test_exec_joins_the_container_cgroup(hawser, start, tmp_path):
    c = start()
    # inside: the cgroup namespace makes the container's cgroup "/", as for the init
    assert hawser("exec", c.id, "cat", "/proc/self/cgroup").stdout == \
        hawser("exec", c.id, "cat", "/proc/1/cgroup").stdout
    # the container's cgroup (mounted at /sys/fs/cgroup inside) lists the exec'd shell itself
    r = hawser("exec", c.id, "sh", "-c", "echo $$; cat /sys/fs/cgroup/pids/cgroup.procs")
    me, *listed = r.stdout.split()
    assert me in listed and "1" in listed
    # from the host: a detached exec'd process is in every hierarchy's /hawser/<id>
    pid_file = tmp_path / "exec.pid"
    r = detached(hawser, "exec", "-d", "--pid-file", pid_file, c.id, "sleep", "30")
    assert r.returncode == 0, r.stderr
    pid = read_pid_file(pid_file)
    for ctrl in CONTROLLERS:
        assert pid in c.procs(ctrl), f"exec'd pid {pid} is not in {c.cgdir(ctrl)}"
    with open(f"/proc/{pid}/cgroup") as f1, open(f"/proc/{c.pid}/cgroup") as f2:
        assert f1.read() == f2.read()


def test_exec_foreground_process_is_in_the_cgroup_while_it_runs(hawser, start):
    c = start()
    before = set(c.procs())
    p = subprocess.Popen(hawser.cmd("exec", c.id, "sleep", "3"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        pid = wait_new_process(c, before, ["sleep", "3"])
        for ctrl in CONTROLLERS:
            assert pid in c.procs(ctrl), ctrl
        assert host_ns(pid) == host_ns(c.pid)
    finally:
        p.kill()  # hawser exec itself, not the container's process
        p.wait(10)


def test_exec_sees_container_rootfs_and_hostname(hawser, start):
    def edit(cfg):
        cfg["hostname"] = "exec-host"

    c = start(edit)
    (c.bundle.rootfs / "marker").write_text("in the rootfs\n")
    assert hawser("exec", c.id, "cat", "/marker").stdout == "in the rootfs\n"
    assert hawser("exec", c.id, "hostname").stdout.strip() == "exec-host"
    assert hawser("exec", c.id, "cat", "/etc/hostname").stdout == "busybox\n"
    r = hawser("exec", c.id, "test", "-e", str(c.bundle.path), check=False)
    assert r.returncode != 0, "the host's bundle path must not be visible inside"


def test_exec_env_cwd_user_groups(hawser, start):
    def edit(cfg):
        cfg["process"]["env"] += ["FOO=from-config", "KEEP=kept"]

    c = start(edit)
    r = hawser("exec", "--env", "A=1", "-e", "B=two words", "--env", "FOO=overridden",
               "--cwd", "/tmp", c.id, "sh", "-c", 'echo "$A|$B|$FOO|$KEEP"; pwd')
    assert r.stdout == "1|two words|overridden|kept\n/tmp\n"
    r = hawser("exec", "--user", "1000:1000", c.id, "sh", "-c", "id -u; id -g; id -G")
    assert r.stdout.split() == ["1000", "1000", "1000"]
    r = hawser("exec", "-u", "1000:1000", "-g", "10", "-g", "65534", c.id, "id", "-G")
    assert sorted(r.stdout.split()) == ["10", "1000", "65534"]
    r = hawser("exec", "--cwd", "/does/not/exist", c.id, "true", check=False)
    assert r.returncode != 0 and "/does/not/exist" in r.stderr
    no_traceback(r)


def test_exec_defaults_to_the_container_process(hawser, start):
    def edit(cfg):
        cfg["process"]["env"] += ["FOO=from-config"]
        cfg["process"]["cwd"] = "/home/user"
        cfg["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10]}
        cfg["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 777, "hard": 888}]

    c = start(edit)
    r = hawser("exec", c.id, "sh", "-c",
               'echo "$FOO"; pwd; id -u; id -g; ulimit -n; cat /proc/self/status')
    foo, cwd, uid, gid, nofile, *status = r.stdout.splitlines()
    assert (foo, cwd, uid, gid, nofile) == ("from-config", "/home/user", "1000", "1000", "777")
    st = parse_status("\n".join(status))
    for key in ("CapEff", "CapPrm", "CapBnd", "CapInh", "NoNewPrivs", "Seccomp"):
        assert st[key] == status_field(c.pid, key), key
    assert st["Groups"].split() == status_field(c.pid, "Groups").split()


def test_exec_cap_adds_a_capability(hawser, start):
    c = start()
    base = int(parse_status(hawser("exec", c.id, "cat", "/proc/self/status").stdout)["CapEff"],
               16)
    assert not base & (1 << CAP_SYS_ADMIN)
    st = parse_status(hawser("exec", "--cap", "CAP_SYS_ADMIN", c.id, "cat",
                             "/proc/self/status").stdout)
    eff = int(st["CapEff"], 16)
    assert eff & (1 << CAP_SYS_ADMIN)
    assert eff & base == base, "--cap adds to the container's capabilities"
    assert int(st["CapBnd"], 16) & (1 << CAP_SYS_ADMIN)


def test_exec_no_new_privs(hawser, start):
    def edit(cfg):
        cfg["process"]["noNewPrivileges"] = False

    c = start(edit)
    assert status_field(c.pid, "NoNewPrivs") == "0"
    st = parse_status(hawser("exec", c.id, "cat", "/proc/self/status").stdout)
    assert st["NoNewPrivs"] == "0"
    st = parse_status(hawser("exec", "--no-new-privs", c.id, "cat", "/proc/self/status").stdout)
    assert st["NoNewPrivs"] == "1"


def test_exec_forwards_signals_and_reports_them(hawser, start):
    c = start()
    before = set(c.procs())
    p = subprocess.Popen(hawser.cmd("exec", c.id, "sleep", "60"), stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        pid = wait_new_process(c, before, ["sleep", "60"])
        time.sleep(0.2)  # let hawser install its handlers after the process started
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 128 + signal.SIGTERM, p.stderr.read()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    wait_for(lambda: not pid_alive(pid), 5, "the exec'd process to die")
    assert c.procs() == [c.pid]


@pytest.mark.parametrize("flags, word", [
    (["-g", "x"], "x"),
    (["--additional-gids", "10,20"], "10,20"),
    (["--user", "abc"], "abc"),
    (["--user", "1000:x"], "x"),
    (["--preserve-fds", "x"], "preserve-fds"),
    (["--cwd", "tmp"], "cwd"),  # runc: "Cwd must be an absolute path"
    (["--bogus-flag"], "bogus-flag"),
])
def test_exec_bad_flags_give_clear_errors(hawser, start, flags, word):
    c = start()
    r = hawser("exec", *flags, c.id, "pwd", check=False)
    assert r.returncode != 0, f"{flags} accepted: {r.stdout}"
    assert word.lower() in r.stderr.lower(), r.stderr
    no_traceback(r)
    assert c.procs() == [c.pid]


# ---- exec --process ----------------------------------------------------------------------------
def test_exec_process_file(hawser, start, tmp_path):
    c = start()
    proc = {"terminal": False, "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
            "args": ["sh", "-c", 'echo "$FOO"; pwd; id -u; id -G; exit 3'],
            "env": ["PATH=/bin:/usr/bin", "FOO=from-process-json"], "cwd": "/tmp",
            "capabilities": {"bounding": ["CAP_KILL"], "effective": ["CAP_KILL"],
                             "permitted": ["CAP_KILL"]},
            "noNewPrivileges": True}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    r = hawser("exec", "--process", f, c.id, check=False)
    assert r.returncode == 3, r.stderr
    foo, cwd, uid, groups = r.stdout.splitlines()
    assert (foo, cwd, uid) == ("from-process-json", "/tmp", "1000")
    assert sorted(groups.split()) == ["10", "1000"]
    # a process file whose capabilities are the only ones
    proc["args"] = ["cat", "/proc/self/status"]
    proc["user"] = {"uid": 0, "gid": 0}
    f.write_text(json.dumps(proc))
    st = parse_status(hawser("exec", "-p", f, c.id).stdout)
    assert int(st["CapEff"], 16) == 1 << 5  # CAP_KILL


@pytest.mark.parametrize("doc, field", [
    ({"args": "sh", "cwd": "/"}, "args"),
    ({"args": ["true"], "cwd": "relative/dir"}, "cwd"),
    ({"args": ["true"], "cwd": "/", "user": {"uid": "root", "gid": 0}}, "uid"),
    ({"args": ["true"], "cwd": "/", "env": "A=1"}, "env"),
    ({"args": ["true"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": "x",
                                                 "hard": 1}]}, "soft"),
])
def test_exec_malformed_process_file_names_the_field(hawser, start, tmp_path, doc, field):
    c = start()
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(doc))
    r = hawser("exec", "--process", f, c.id, check=False)
    assert r.returncode != 0
    assert field in r.stderr, r.stderr
    no_traceback(r)
    assert c.procs() == [c.pid], "a refused exec leaves no process behind"


def test_exec_process_file_errors(hawser, start, tmp_path):
    c = start()
    f = tmp_path / "broken.json"
    f.write_text('{"args": ["true"], ')
    r = hawser("exec", "--process", f, c.id, check=False)
    assert r.returncode != 0 and "JSON" in r.stderr and "broken.json" in r.stderr, r.stderr
    no_traceback(r)
    r = hawser("exec", "--process", tmp_path / "missing.json", c.id, check=False)
    assert r.returncode != 0 and "missing.json" in r.stderr, r.stderr
    no_traceback(r)


@pytest.mark.parametrize("doc", [{"cwd": "/"}, {"args": [], "cwd": "/"}],
                         ids=["no-args", "empty-args"])
def test_exec_process_file_without_args_is_refused(hawser, start, tmp_path, doc):
    """runc: `exec failed: args must not be empty`."""
    c = start()
    f = tmp_path / "noargs.json"
    f.write_text(json.dumps(doc))
    r = hawser("exec", "--process", f, c.id, check=False)
    assert r.returncode != 0
    no_traceback(r)
    assert "args" in r.stderr, r.stderr
    assert "IndexError" not in r.stderr, r.stderr
    assert c.procs() == [c.pid]


# ---- exec --detach -----------------------------------------------------------------------------
def test_exec_detach_pid_file(hawser, start, tmp_path):
    c = start()
    pid_file = tmp_path / "detached.pid"
    t0 = time.monotonic()
    r = detached(hawser, "exec", "--detach", "--pid-file", pid_file, c.id, "sleep", "77")
    assert r.returncode == 0, r.stderr
    assert time.monotonic() - t0 < 10, "exec --detach must not wait for the process"
    text = pid_file.read_text()
    assert text.strip().isdigit(), repr(text)
    pid = int(text)
    assert pid_alive(pid)
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        assert f.read().split(b"\0")[:2] == [b"sleep", b"77"]
    assert host_ns(pid) == host_ns(c.pid)
    assert pid in c.procs()
    time.sleep(0.3)
    assert pid_alive(pid), "the detached process runs on after hawser exits"
    assert sorted(json.loads(hawser("ps", "--format", "json", c.id).stdout)) == \
        sorted([c.pid, pid])
    table = hawser("ps", c.id).stdout.splitlines()
    col = table[0].split().index("PID")
    assert {int(ln.split()[col]) for ln in table[1:]} == {c.pid, pid}
    assert any("sleep 77" in ln for ln in table[1:])


# ---- exec --tty --------------------------------------------------------------------------------
def test_exec_tty_with_console_socket(hawser, start, tmp_path):
    c = start()
    sock_path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(sock_path)
    srv.listen(1)
    srv.settimeout(10)
    pid_file = tmp_path / "tty.pid"
    master = None
    p = subprocess.Popen(hawser.cmd("exec", "--tty", "--console-socket", sock_path, "--detach",
                                    "--pid-file", pid_file, c.id, "sh"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    try:
        conn, _ = srv.accept()
        with conn:
            conn.settimeout(10)
            msg, fds, _, _ = socket.recv_fds(conn, 4096, 1)
        assert len(fds) == 1, "the pty master comes over the console socket"
        master = fds[0]
        assert p.wait(20) == 0, p.stderr.read()
        pid = read_pid_file(pid_file)
        assert pid in c.procs()
        assert os.isatty(master)
        os.write(master, b'tty; [ -t 0 ] && [ -t 1 ] && echo "IS-A-TTY"; echo "T=$TERM"; '
                         b'exit 4\n')
        out = read_until_eof(master, 10)
        assert b"IS-A-TTY" in out, out
        assert b"/dev/pts/" in out, out
        wait_for(lambda: not pid_alive(pid), 5, "the shell to exit")
    finally:
        if master is not None:
            os.close(master)
        if p.poll() is None:
            p.kill()
            p.wait()
        srv.close()


def read_until_eof(fd: int, timeout: float) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if not ready:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:  # EIO: the slave side is closed
            break
        if not data:
            break
        buf += data
    return buf


def test_exec_tty_foreground_without_console_socket(hawser, start):
    c = start()
    pid, master = pty.fork()
    if pid == 0:  # pragma: no cover - the child execs hawser at once
        try:
            os.execv(hawser.cmd()[0], hawser.cmd(
                "exec", "-t", c.id, "sh", "-c",
                'tty; [ -t 0 ] && echo "IS-A-TTY"; read line; echo "got=$line"; exit 5'))
        finally:
            os._exit(127)
    try:
        time.sleep(0.3)
        os.write(master, b"hello-pty\n")
        out = read_until_eof(master, 15)
        _, status = os.waitpid(pid, 0)
    finally:
        os.close(master)
    assert os.waitstatus_to_exitcode(status) == 5, out
    assert b"IS-A-TTY" in out, out
    assert b"got=hello-pty" in out, out
    assert b"/dev/pts/" in out, out


def test_exec_detach_tty_needs_console_socket(hawser, start):
    c = start()
    r = detached(hawser, "exec", "-t", "-d", c.id, "sh")
    assert r.returncode != 0 and "console-socket" in r.stderr, r.stderr
    assert c.procs() == [c.pid]


# ---- fds ---------------------------------------------------------------------------------------
def with_extra_fds(cmd: list[str]) -> tuple[list[str], tuple[int, ...], int, list[int]]:
    """Wrap cmd so that it starts with inheritable fds 3 (a pipe's write end), 4 and 5 (a host
    file), plus the two high fds they were copied from, without touching this process's fds 3-5
    (pytest's own). Returns (argv, pass_fds, the pipe's read end, fds to close afterwards)."""
    r, w = os.pipe()
    leak = os.open("/etc/hostname", os.O_RDONLY)
    wrapper = ("import os, sys\n"
               "w, leak = int(sys.argv[1]), int(sys.argv[2])\n"
               "os.dup2(w, 3); os.dup2(leak, 4); os.dup2(leak, 5)\n"
               "os.execv(sys.argv[3], sys.argv[3:])\n")
    argv = [sys.executable, "-c", wrapper, str(w), str(leak)] + [str(a) for a in cmd]
    return argv, (w, leak), r, [w, leak]


def test_exec_preserve_fds(hawser, start):
    c = start()
    argv, keep, r_end, close = with_extra_fds(hawser.cmd(
        "exec", "--preserve-fds", "1", c.id, "sh", "-c",
        "echo through-fd-3 >&3; ls -l /proc/self/fd/"))
    try:
        p = subprocess.run(argv, capture_output=True, text=True, pass_fds=keep, timeout=30)
    finally:
        for fd in close:
            os.close(fd)
    assert p.returncode == 0, p.stderr
    got = os.read(r_end, 100)
    os.close(r_end)
    assert got == b"through-fd-3\n"
    fds = fd_listing(p.stdout)
    # ls's own directory fd is the one extra entry, right after the preserved one
    assert set(fds) == {0, 1, 2, 3, 4}, p.stdout
    assert fds[3].startswith("pipe:"), p.stdout
    assert "/etc/hostname" not in p.stdout


def test_exec_leaks_no_host_fd(hawser, start, tmp_path):
    c = start()
    pid_file = tmp_path / "leak.pid"
    argv, keep, r_end, close = with_extra_fds(hawser.cmd("exec", c.id, "ls", "-l",
                                                         "/proc/self/fd/"))
    argv_d, keep_d, r_end_d, close_d = with_extra_fds(hawser.cmd(
        "exec", "-d", "--pid-file", pid_file, c.id, "sleep", "30"))
    try:
        p = subprocess.run(argv, capture_output=True, text=True, pass_fds=keep, timeout=30)
        d = subprocess.run(argv_d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, pass_fds=keep_d, timeout=30)
    finally:
        for fd in close + close_d + [r_end, r_end_d]:
            os.close(fd)
    assert p.returncode == 0, p.stderr
    fds = fd_listing(p.stdout)
    assert set(fds) == {0, 1, 2, 3} and fds[3] == "", \
        f"only stdio (and ls's own directory fd) may be open:\n{p.stdout}"
    assert d.returncode == 0
    pid = read_pid_file(pid_file)
    assert sorted(int(x) for x in os.listdir(f"/proc/{pid}/fd")) == [0, 1, 2]


# ---- exec: refusals ----------------------------------------------------------------------------
def test_exec_in_stopped_container_fails(hawser, start):
    c = start()
    stop_container(hawser, c)
    r = hawser("exec", c.id, "true", check=False)
    assert r.returncode != 0
    assert "stopped" in r.stderr or "not running" in r.stderr, r.stderr
    no_traceback(r)


def test_exec_in_paused_container_fails(hawser, start):
    c = start()
    hawser("pause", c.id)
    r = hawser("exec", c.id, "true", check=False, timeout=15)
    assert r.returncode != 0 and "paused" in r.stderr, r.stderr
    no_traceback(r)
    hawser("resume", c.id)
    assert c.procs() == [c.pid]


def test_exec_in_missing_container_fails(hawser):
    r = hawser("exec", "no-such-container-x", "true", check=False)
    assert r.returncode != 0 and "no-such-container-x" in r.stderr, r.stderr
    no_traceback(r)


@pytest.mark.parametrize("cmd", ["no-such-binary", "/bin/no-such-binary", "/etc/passwd"])
def test_exec_missing_binary_fails_and_leaves_nothing(hawser, start, cmd):
    c = start()
    r = hawser("exec", c.id, cmd, check=False)
    assert r.returncode != 0
    assert cmd in r.stderr, r.stderr
    no_traceback(r)
    time.sleep(0.1)
    for ctrl in CONTROLLERS:
        assert c.procs(ctrl) == [c.pid], ctrl
    assert json.loads(hawser("ps", "--format", "json", c.id).stdout) == [c.pid]
    assert hawser.state(c.id)["status"] == "running"


def test_exec_gets_the_container_seccomp_profile(hawser, start):
    profile = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                             "errnoRet": 1}]}

    def edit(cfg):
        cfg["linux"]["seccomp"] = profile

    c = start(edit)
    # /dev/shm is a writable tmpfs (the root is read-only): only seccomp can refuse the mkdir
    r = hawser("exec", c.id, "mkdir", "/dev/shm/denied", check=False)
    assert r.returncode != 0
    assert "Operation not permitted" in r.stderr, r.stderr
    r = hawser("exec", c.id, "sh", "-c", "touch /dev/shm/allowed && ls /dev/shm")
    assert r.stdout.split() == ["allowed"]
    st = parse_status(hawser("exec", c.id, "cat", "/proc/self/status").stdout)
    assert st["Seccomp"] == "2"
    # added capabilities do not lift the filter
    r = hawser("exec", "--cap", "CAP_SYS_ADMIN", c.id, "mkdir", "/dev/shm/denied2",
               check=False)
    assert r.returncode != 0 and "Operation not permitted" in r.stderr


# ---- ps ----------------------------------------------------------------------------------------
def test_ps_table_and_json(hawser, start, tmp_path):
    c = start()
    r = hawser("ps", "--format", "json", c.id)
    assert json.loads(r.stdout) == [c.pid]
    pid_file = tmp_path / "ps.pid"
    assert detached(hawser, "exec", "-d", "--pid-file", pid_file, c.id, "sleep",
                    "123").returncode == 0
    pid = read_pid_file(pid_file)
    pids = json.loads(hawser("ps", "--format", "json", c.id).stdout)
    assert sorted(pids) == sorted(c.procs()) == sorted([c.pid, pid])
    table = hawser("ps", c.id).stdout.splitlines()
    header = table[0].split()
    assert "PID" in header and "CMD" in header
    rows = {int(ln.split()[header.index("PID")]): ln for ln in table[1:]}
    assert set(rows) == {c.pid, pid}
    assert rows[c.pid].endswith("sleep 1000") and rows[pid].endswith("sleep 123")
    # extra arguments go to ps
    table = hawser("ps", c.id, "-o", "pid,comm").stdout.splitlines()
    assert table[0].split() == ["PID", "COMMAND"]
    assert {int(ln.split()[0]) for ln in table[1:]} == {c.pid, pid}
    r = hawser("ps", "--format", "yaml", c.id, check=False)
    assert r.returncode != 0 and "yaml" in r.stderr


def test_ps_of_a_missing_container_fails(hawser):
    r = hawser("ps", "no-such-container-y", check=False)
    assert r.returncode != 0 and "no-such-container-y" in r.stderr
    no_traceback(r)


# ---- pause / resume ----------------------------------------------------------------------------
def test_pause_freezes_and_resume_thaws(hawser, start, tmp_path):
    c = start()
    pid_file = tmp_path / "busy.pid"
    assert detached(hawser, "exec", "-d", "--pid-file", pid_file, c.id, "sh", "-c",
                    "while :; do :; done").returncode == 0
    busy = read_pid_file(pid_file)
    freezer = c.cgdir("freezer") + "/freezer.state"
    t1 = cpu_ticks(busy)
    time.sleep(0.3)
    assert cpu_ticks(busy) - t1 >= 5, "the busy loop should be running"

    hawser("pause", c.id)
    assert hawser.state(c.id)["status"] == "paused"
    assert open(freezer).read().strip() == "FROZEN"
    t1 = cpu_ticks(busy)
    time.sleep(0.3)
    assert cpu_ticks(busy) == t1, "a paused process accumulates no CPU time"
    assert sorted(json.loads(hawser("ps", "--format", "json", c.id).stdout)) == \
        sorted([c.pid, busy])

    hawser("resume", c.id)
    assert hawser.state(c.id)["status"] == "running"
    assert open(freezer).read().strip() == "THAWED"
    t1 = cpu_ticks(busy)
    time.sleep(0.3)
    assert cpu_ticks(busy) - t1 >= 5, "resume brings the process back"


def test_pause_and_resume_refuse_the_wrong_state(hawser, start):
    c = start()
    r = hawser("resume", c.id, check=False)
    assert r.returncode != 0 and "not paused" in r.stderr, r.stderr
    hawser("pause", c.id)
    r = hawser("pause", c.id, check=False)
    assert r.returncode != 0 and "paused" in r.stderr, r.stderr
    assert hawser.state(c.id)["status"] == "paused"
    hawser("resume", c.id)
    stop_container(hawser, c)
    r = hawser("pause", c.id, check=False)
    assert r.returncode != 0 and ("not running" in r.stderr or "stopped" in r.stderr), r.stderr
    no_traceback(r)
    r = hawser("resume", c.id, check=False)
    assert r.returncode != 0 and "not paused" in r.stderr, r.stderr
    assert hawser.state(c.id)["status"] == "stopped"
    for name in ("pause", "resume"):
        r = hawser(name, "no-such-container-z", check=False)
        assert r.returncode != 0 and "no-such-container-z" in r.stderr


def test_delete_force_of_a_paused_container(hawser, start, tmp_path):
    c = start()
    pid_file = tmp_path / "p.pid"
    assert detached(hawser, "exec", "-d", "--pid-file", pid_file, c.id, "sleep",
                    "500").returncode == 0
    extra = read_pid_file(pid_file)
    hawser("pause", c.id)
    r = hawser("delete", c.id, check=False)
    assert r.returncode != 0 and "paused" in r.stderr, "delete without --force refuses"
    hawser("delete", "--force", c.id, timeout=30)
    wait_for(lambda: not pid_alive(c.pid) and not pid_alive(extra), 5, "the processes to die")
    for ctrl in CONTROLLERS:
        assert not os.path.exists(c.cgdir(ctrl)), f"{c.cgdir(ctrl)} is left behind"
    assert c.id not in hawser.ids()
    r = hawser("state", c.id, check=False)
    assert r.returncode != 0
