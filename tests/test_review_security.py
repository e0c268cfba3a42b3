"""Review findings (security): each test is named after a bug and fails until it is fixed.

Real busybox containers through the conftest fixtures, as root."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def new_id(prefix: str = "rv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def detached(hawser, *args, timeout=30, pass_fds=(), preexec_fn=None):
    """hawser with stdio on files (a detached container keeps them open)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(hawser.cmd(*args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout, pass_fds=pass_fds, preexec_fn=preexec_fn)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


@pytest.fixture
def running(hawser, make_bundle, request):
    """running(edit=None) -> id of a detached `sleep 1000` container."""

    def factory(edit=None):
        cid = new_id()
        b = make_bundle(args=["sleep", "1000"])
        if edit:
            edit(b.config, b)
            b.write()
        request.addfinalizer(lambda: subprocess.run(hawser.cmd("delete", "--force", cid),
                                                    capture_output=True, timeout=60))
        r = detached(hawser, "run", "-d", "--bundle", str(b.path), cid)
        assert r.returncode == 0, r.stderr
        assert hawser.state(cid)["status"] == "running"
        return cid

    return factory


# --- 1. exec: process.cwd is not confined to the container (CVE-2024-21626 shape) -----------------

# Puts an O_RDONLY fd of a host directory on fd 9 (inheritable, as a leaky caller would), then
# execs hawser.
FD9_LAUNCHER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
os.dup2(fd, 9)
os.set_inheritable(9, True)
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_exec_cwd_through_an_inherited_host_fd_escapes_the_rootfs(hawser, running, tmp_path):
    """`exec --cwd /proc/self/fd/N` (or a process.json cwd from an image WORKDIR) chdir()s before
    any fd is closed and never checks the result is inside the container's root: the exec'd
    process starts with its cwd in the host's filesystem and reaches / of the host by `..`."""
    cid = running()
    hostdir = tmp_path / "hostdir"
    hostdir.mkdir()
    (hostdir / "HOST-MARKER").write_text("host\n")
    proc = subprocess.run([sys.executable, "-c", FD9_LAUNCHER, str(hostdir),
                           *hawser.cmd("exec", "--cwd", "/proc/self/fd/9", cid,
                                       "sh", "-c", "ls; true")],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)
    # Acceptable: exec refuses the cwd, or the process is in the container. Not: the host dir.
    assert "HOST-MARKER" not in proc.stdout, \
        f"the exec'd process started in the host directory {hostdir}: {proc.stdout!r}"


# --- 2. a long --console-socket path leaves a non-CLOEXEC O_PATH fd of a host directory -----------

def _long_socket(tmp_path: Path):
    d = tmp_path / ("d" * 60) / ("e" * 60)
    d.mkdir(parents=True)
    (d / "HOST-MARKER").write_text("host\n")
    old = os.getcwd()
    os.chdir(d)
    try:
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind("console.sock")
        srv.listen(4)
    finally:
        os.chdir(old)
    srv.settimeout(20)
    return srv, str(d / "console.sock")


def test_long_console_socket_path_leaks_host_dir_fd_into_exec(hawser, running, tmp_path):
    """runtime/init/console.py _short_path opens the socket's directory O_PATH without
    O_CLOEXEC and never closes it: the exec'd child holds a host directory fd while it chdir()s.
    With --cwd /proc/self/fd/<that fd>, the process runs in the host directory."""
    cid = running()
    srv, path = _long_socket(tmp_path)
    assert len(path) > 108
    outputs = {}
    masters = []

    def serve():
        try:
            while True:
                conn, _ = srv.accept()
                with conn:
                    _, fds, _, _ = socket.recv_fds(conn, 4096, 4)
                    masters.extend(fds)
        except OSError:
            return

    threading.Thread(target=serve, daemon=True).start()
    try:
        for n in range(3, 9):
            before = len(masters)
            p = subprocess.run(hawser.cmd("exec", "-t", "--console-socket", path,
                                          "--cwd", f"/proc/self/fd/{n}", cid,
                                          "sh", "-c", "ls; sleep 0.2"),
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=30)
            out = b""
            if len(masters) > before:
                m = masters[-1]
                os.set_blocking(m, False)
                import time
                deadline = time.monotonic() + 2
                while time.monotonic() < deadline:
                    try:
                        chunk = os.read(m, 4096)
                    except BlockingIOError:
                        time.sleep(0.05)
                        continue
                    except OSError:
                        break
                    if not chunk:
                        break
                    out += chunk
            outputs[n] = (p.returncode, out.decode(errors="replace"))
    finally:
        srv.close()
        for m in masters:
            os.close(m)
    escaped = {n: o for n, (rc, o) in outputs.items() if "HOST-MARKER" in o}
    assert not escaped, f"exec'd process ran in the console socket's host directory: {escaped}"


# --- 3. maskedPaths bind whatever the container's /dev/null is (CVE-2025-31133 class) --------------

def test_masked_path_source_is_not_checked_to_be_the_null_device(hawser, make_bundle, tmp_path):
    """mask_paths() binds the path "/dev/null" as the container sees it after pivot_root. When /dev
    is not hawser's own tmpfs (a bind-mounted /dev, a volume shared with another container), that
    name can be a symlink: here to /proc/sys/kernel/core_pattern, which then appears read-WRITE at
    /proc/keys (outside the read-only /proc/sys) - a host-wide sysctl writable from the container.
    The test only reads it."""
    devvol = tmp_path / "devvol"
    devvol.mkdir()
    os.symlink("/proc/sys/kernel/core_pattern", devvol / "null")
    b = make_bundle(args=["sh", "-c", "cat /proc/keys; echo ===; "
                                      "grep ' /proc/keys ' /proc/self/mountinfo; true"])
    for m in b.config["mounts"]:
        if m["destination"] == "/dev":
            m.update({"type": "bind", "source": str(devvol), "options": ["rbind", "nosuid"]})
    b.write()
    proc = detached(hawser, "run", "--bundle", str(b.path), new_id())
    if proc.returncode != 0:
        return  # refusing the fake /dev/null is a correct outcome
    content, _, mountline = proc.stdout.partition("===")
    assert "/sys/kernel/core_pattern" not in mountline, \
        f"/proc/keys is a bind of core_pattern ({content.strip()!r}): {mountline.strip()}"


# --- 4. seccomp (noNewPrivileges) is loaded before the runtime's own last syscalls --------------

def test_seccomp_filter_is_loaded_before_runtime_finishes_its_own_syscalls(hawser, make_bundle):
    """With noNewPrivileges the filter should be loaded right before execve (runc). hawser loads it
    in drop_privileges(), then still calls close_range, sendmsg("ready"), accept4, recvfrom and
    runs startContainer hooks: a valid profile that denies one of those (old Docker/podman profiles
    have no close_range: default ERRNO) makes create fail although the container's program never
    makes the call."""
    b = make_bundle(args=["true"])
    b.process["noNewPrivileges"] = True
    b.linux["seccomp"] = {"defaultAction": "SCMP_ACT_ALLOW",
                          "syscalls": [{"names": ["close_range"], "action": "SCMP_ACT_ERRNO"}]}
    b.write()
    proc = detached(hawser, "run", "--bundle", str(b.path), new_id())
    assert proc.returncode == 0, proc.stderr


# --- 5. --preserve-fds N hands the container hawser's own fds when the caller passed fewer -------

def test_preserve_fds_hands_the_log_fd_to_the_container(hawser, make_bundle, tmp_path):
    """--preserve-fds 1 with fd 3 not open in the caller: hawser's own --log file (opened first,
    so fd 3) is made inheritable by close_fds() and reaches the container, writable."""
    log = tmp_path / "hawser-log.json"
    b = make_bundle(args=["sh", "-c", "ls -l /proc/$$/fd/; true"])
    cmd = hawser.cmd("run", "--preserve-fds", "1", "--bundle", str(b.path), new_id())
    cmd = [cmd[0], "--log", str(log)] + cmd[1:]

    def close_3():
        try:
            os.close(3)
        except OSError:
            pass

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           preexec_fn=close_3, close_fds=True, timeout=30)
        out.seek(0)
        listing = out.read()
    if p.returncode != 0:
        return  # refusing a --preserve-fds range that is not open is a correct outcome
    assert str(log) not in listing, f"the runtime's log file reached the container:\n{listing}"


# --- 6. exec ignores process.oomScoreAdj: the process keeps the caller's score -----------------

def test_exec_does_not_apply_oom_score_adj(hawser, running):
    """runc's setns process gets the container's oomScoreAdj; hawser's exec_child never writes it,
    so an exec'd process inherits the caller's score (a shim's or containerd's is strongly
    negative: the exec'd process escapes the OOM killer's choice of victims). The caller here has
    300, the container 500."""
    def edit(config, _):
        config["process"]["oomScoreAdj"] = 500

    cid = running(edit)

    def lower_score():
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write("300")  # lowering needs CAP_SYS_RESOURCE, which this VM lacks

    p = subprocess.run(hawser.cmd("exec", cid, "cat", "/proc/self/oom_score_adj"),
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30,
                       preexec_fn=lower_score)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "500"
