"""containerd 1.6 (ctr + containerd-shim-runc-v2) drives hawser through what users do, each
scenario run with runc too (`ctr run --runc-binary <wrapper>`, the wrapper logging the argv the
shim sends). The daemon is private to this module (own root, state, sockets, no CRI) and runs its
tasks in a namespace of its own; its cgroups are /<namespace>/<id>, removed at the end."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from clients_harness import (Captured, Containerd, PtyProcess, calls_of, captured, ctr_fail,
                             kills_of, option, pid_cmdline, pty_conversation, read_cgroup,
                             record_argv, remove_cgroups, runtime, split_call, subcommands)
from waits import wait_for
from images import write_oci_archive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
__all__ = ["captured", "runtime"]    # fixtures used by the tests below


@pytest.fixture(scope="module")
def containerd(busybox_rootfs):
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


def assert_containerd_lifecycle(ctd: Containerd, cap: Captured, cid: str,
                                console: bool = False) -> None:
    """containerd's runc shim: every call has `--root R --log BUNDLE/log.json --log-format json`
    with cwd = bundle; `create --bundle B --pid-file B/init.pid ID`, `start ID`, `delete ID`."""
    calls = cap.text()
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
    assert bool(option(rest, "--console-socket")) == console, \
        f"create {'without' if console else 'with'} --console-socket:\n{calls}"
    assert [r for _, _, r in calls_of(cap, "start")] == [[cid]], f"expected `start {cid}`:\n{calls}"
    deletes = calls_of(cap, "delete")
    assert deletes and deletes[-1][2][-1] == cid, f"expected `delete {cid}`:\n{calls}"
    order = subcommands(cap)
    assert order.index("create") < order.index("start") < len(order) - 1 - order[::-1].index(
        "delete"), f"create, start, delete out of order:\n{calls}"


def new_id(runtime: str) -> str:
    return f"hw-{runtime}-{uuid.uuid4().hex[:8]}"


def ctr_run(ctd: Containerd, cap: Captured, cid: str, *args, flags=(), check_rc=0):
    """ctr run --rm FLAGS IMAGE ID ARGS... (foreground)."""
    proc = ctd.ctr("run", "--rm", *ctd.run_flags(str(cap.path)), *flags, ctd.image, cid, *args,
                   check=False)
    if check_rc is not None:
        assert proc.returncode == check_rc, ctr_fail(
            f"ctr run --rm {' '.join(flags)} IMAGE ID {' '.join(args)}", proc, cap, ctd)
    return proc


@contextlib.contextmanager
def detached(ctd: Containerd, cap: Captured, cid: str, *args, flags=()):
    """ctr run --detach ...; yields the task's pid; kills and deletes the task and container."""
    try:
        proc = ctd.ctr("run", "--detach", *ctd.run_flags(str(cap.path)), *flags, ctd.image, cid,
                       *args, check=False)
        assert proc.returncode == 0, ctr_fail("ctr run --detach", proc, cap, ctd)
        pid, status = ctd.tasks()[cid]
        assert status == "RUNNING", f"task {cid} is {status}\n{cap.text()}"
        yield pid
    finally:
        if cid in ctd.tasks():
            ctd.ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False, timeout=30)
            wait_for(lambda: ctd.tasks().get(cid, (0, "STOPPED"))[1] == "STOPPED", 20,
                     what=f"task {cid} to stop")
        ctd.ctr("tasks", "delete", cid, check=False, timeout=30)
        ctd.ctr("containers", "delete", cid, check=False, timeout=30)


def wait_stopped(ctd: Containerd, cap: Captured, cid: str, timeout=20) -> None:
    wait_for(lambda: ctd.tasks().get(cid, (0, ""))[1] == "STOPPED", timeout,
             what=f"task {cid} to be STOPPED\n{cap.text()}")


# --------------------------------------------------------------------------------------------
# run: output, exit codes, env/cwd/bind mount

def test_ctr_run_echo(containerd, runtime, captured):
    cid = new_id(runtime)
    proc = ctr_run(containerd, captured, cid, "echo", "hello")
    assert proc.stdout == "hello\n", ctr_fail("ctr run echo hello", proc, captured, containerd)
    record_argv("ctr", runtime, "run --rm IMAGE ID echo hello", captured)
    assert_containerd_lifecycle(containerd, captured, cid)


def test_ctr_exit_code(containerd, runtime, captured):
    cid = new_id(runtime)
    proc = ctr_run(containerd, captured, cid, "sh", "-c", "echo out; echo err >&2; exit 7",
                   check_rc=7)
    assert proc.stdout == "out\n" and "err" in proc.stderr, proc
    assert_containerd_lifecycle(containerd, captured, cid)
    proc = ctr_run(containerd, captured, new_id(runtime), "/nonexistent", check_rc=None)
    assert proc.returncode != 0 and "nonexistent" in proc.stderr, \
        ctr_fail("ctr run IMAGE ID /nonexistent", proc, captured, containerd)


def test_ctr_env_cwd_bind_mount(containerd, runtime, captured, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "f").write_text("host data\n")
    cid = new_id(runtime)
    proc = ctr_run(containerd, captured, cid, "sh", "-c",
                   'echo "$FOO|$(pwd)"; cat /data/f; touch /data/x; echo rc=$?',
                   flags=("--env", "FOO=bar baz", "--cwd", "/tmp", "--mount",
                          f"type=bind,src={tmp_path / 'data'},dst=/data,options=rbind:ro"))
    assert proc.stdout == "bar baz|/tmp\nhost data\nrc=1\n", \
        ctr_fail("ctr run --env --cwd --mount rbind:ro", proc, captured, containerd)
    assert not (tmp_path / "data" / "x").exists()
    assert_containerd_lifecycle(containerd, captured, cid)


# --------------------------------------------------------------------------------------------
# a detached task: task ls / ps / exec / pause / resume / kill

def test_ctr_detached_ls_ps_kill(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sh", "-c", "sleep 1000 & exec sleep 1001") as pid:
        child = wait_for(lambda: [int(p) for p in (Path(f"/proc/{pid}/task/{pid}/children")
                                                   .read_text().split())], 5,
                         what="the background sleep")
        proc = containerd.ctr("tasks", "ps", cid, check=False)
        assert proc.returncode == 0, ctr_fail("ctr task ps", proc, captured, containerd)
        listed = sorted(int(l.split()[0]) for l in proc.stdout.splitlines()[1:] if l.strip())
        assert listed == sorted([pid, *child]), f"ctr task ps: {proc.stdout}\n{captured.text()}"
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        wait_stopped(containerd, captured, cid)
        assert not os.path.exists(f"/proc/{pid}")
    record_argv("ctr", runtime, "run -d; task ls; task ps; task kill -s SIGKILL", captured)
    ps = [rest for _, _, rest in calls_of(captured, "ps")]
    assert ps and all(option(r, "--format") == "json" and r[-1] == cid for r in ps), \
        f"expected `ps --format json {cid}`:\n{captured.text()}"
    assert (False, 9) in kills_of(captured, cid), f"expected `kill {cid} 9`:\n{captured.text()}"
    assert_containerd_lifecycle(containerd, captured, cid)


def test_ctr_task_exec(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sleep", "1000", flags=("--env", "FROM_RUN=r")):
        proc = containerd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c",
                              "echo exec-out $FROM_RUN; echo exec-err >&2; exit 5", check=False)
        assert (proc.returncode, proc.stdout) == (5, "exec-out r\n") \
            and "exec-err" in proc.stderr, ctr_fail("ctr task exec", proc, captured, containerd)
        proc = containerd.ctr("tasks", "exec", "--exec-id", "e2", "--cwd", "/tmp", "--user",
                              "1000", cid, "sh", "-c", 'echo "$(pwd) $(id -u)"', check=False)
        assert proc.stdout == "/tmp 1000\n", ctr_fail("ctr task exec --cwd --user", proc,
                                                      captured, containerd)
    record_argv("ctr", runtime, "task exec x2", captured)
    execs = [rest for _, _, rest in calls_of(captured, "exec")]
    assert len(execs) == 2 and all(
        option(r, "--process") and option(r, "--pid-file") and "--detach" in r and r[-1] == cid
        and not option(r, "--console-socket") for r in execs), \
        f"expected `exec --process F --detach --pid-file P {cid}`:\n{captured.text()}"


def test_ctr_task_exec_tty(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sleep", "1000"):
        term = PtyProcess(containerd.ctr_cmd("tasks", "exec", "-t", "--exec-id", "sh1", cid,
                                             "sh"))
        try:
            pty_conversation(term)
            assert term.wait() == 5, f"ctr task exec -t exited {term.status}:\n" \
                                     f"{term.text()!r}\n{captured.text()}"
        finally:
            term.close()
    record_argv("ctr", runtime, "task exec -t (pty)", captured)
    execs = [rest for _, _, rest in calls_of(captured, "exec")]
    assert execs and option(execs[0], "--console-socket") and "--tty" not in execs[0], \
        f"expected exec --console-socket:\n{captured.text()}"


def test_ctr_run_tty(containerd, runtime, captured):
    cid = new_id(runtime)
    term = PtyProcess(containerd.ctr_cmd("run", "-t", "--rm",
                                         *containerd.run_flags(str(captured.path)),
                                         containerd.image, cid, "sh"))
    try:
        pty_conversation(term)
        assert term.wait() == 5, f"ctr run -t exited {term.status}:\n{term.text()!r}\n" \
                                 f"{captured.text()}"
    finally:
        term.close()
        containerd.ctr("tasks", "delete", "--force", cid, check=False)
        containerd.ctr("containers", "delete", cid, check=False)
    record_argv("ctr", runtime, "run -t (pty)", captured)
    assert_containerd_lifecycle(containerd, captured, cid, console=True)


def test_ctr_pause_resume(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sh", "-c",
                  "i=0; while :; do i=$((i+1)); echo $i > /tmp/n; sleep 0.05; done") as pid:
        proc = containerd.ctr("tasks", "pause", cid, check=False)
        assert proc.returncode == 0, ctr_fail("ctr task pause", proc, captured, containerd)
        assert containerd.tasks()[cid][1] == "PAUSED"
        assert read_cgroup(pid, "freezer", "freezer.state") == "FROZEN"
        assert Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in "DS"
        proc = containerd.ctr("tasks", "resume", cid, check=False)
        assert proc.returncode == 0, ctr_fail("ctr task resume", proc, captured, containerd)
        assert containerd.tasks()[cid][1] == "RUNNING"
        assert read_cgroup(pid, "freezer", "freezer.state") == "THAWED"
        n1 = containerd.ctr("tasks", "exec", "--exec-id", "n1", cid, "cat", "/tmp/n").stdout
        wait_for(lambda: containerd.ctr("tasks", "exec", "--exec-id", "n2", cid, "cat",
                                        "/tmp/n").stdout != n1, 5, what="the counter to move")
    record_argv("ctr", runtime, "task pause; task resume", captured)
    assert [r for _, _, r in calls_of(captured, "pause")] == [[cid]], captured.text()
    assert [r for _, _, r in calls_of(captured, "resume")] == [[cid]], captured.text()


def test_ctr_kill_all(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sh", "-c",
                  'trap "" TERM; sleep 1000 & sleep 1001 & wait') as pid:
        exec_proc = subprocess.Popen(containerd.ctr_cmd("tasks", "exec", "--exec-id", "x", cid,
                                                        "sleep", "1002"),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            procs = wait_for(lambda: (lambda out: out if len(out.splitlines()) >= 5 else "")(
                containerd.ctr("tasks", "ps", cid).stdout), 10, what="4 processes in the task")
            pids = [int(l.split()[0]) for l in procs.splitlines()[1:]]
            proc = containerd.ctr("tasks", "kill", "-a", "-s", "SIGKILL", cid, check=False)
            assert proc.returncode == 0, ctr_fail("ctr task kill -a", proc, captured, containerd)
            wait_stopped(containerd, captured, cid)
            _, err = exec_proc.communicate(timeout=20)
            assert exec_proc.returncode == 137, f"exec: {exec_proc.returncode} {err}"
            wait_for(lambda: not any(os.path.exists(f"/proc/{p}") for p in pids), 10,
                     what=f"every process of the task ({pids}) to be gone")
        finally:
            if exec_proc.poll() is None:
                exec_proc.kill()
                exec_proc.wait()
    record_argv("ctr", runtime, "task kill -a -s SIGKILL", captured)
    assert (True, 9) in kills_of(captured, cid), \
        f"expected `kill --all {cid} 9`:\n{captured.text()}"


def test_ctr_sigkill_exit_code(containerd, runtime, captured):
    """ctr run in the foreground reports 137 when the task's init dies of SIGKILL."""
    cid = new_id(runtime)
    proc = subprocess.Popen(containerd.ctr_cmd("run", "--rm",
                                               *containerd.run_flags(str(captured.path)),
                                               containerd.image, cid, "sleep", "1000"),
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: containerd.tasks().get(cid, (0, ""))[1] == "RUNNING", 20,
                 what=f"task {cid} to run")
        containerd.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        _, err = proc.communicate(timeout=20)
        assert proc.returncode == 137, f"ctr run exited {proc.returncode}: {err}\n" \
                                       f"{captured.text()}"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        containerd.ctr("tasks", "delete", "--force", cid, check=False)
        containerd.ctr("containers", "delete", cid, check=False)
    assert (False, 9) in kills_of(captured, cid), captured.text()
    assert_containerd_lifecycle(containerd, captured, cid)


def test_ctr_sigterm_exit_code_shared_pidns(containerd, runtime, captured):
    """ctr run in the foreground reports 143 when the task's init dies of SIGTERM. An init that is
    PID 1 of its own namespace ignores a TERM it has no handler for (as it should), so this task
    joins the pid namespace of another one (`--with-ns pid:PATH`, as in a pod): its init is not
    PID 1 there and dies of the TERM that `ctr task kill` sends."""
    holder, cid = new_id(runtime), new_id(runtime)
    with detached(containerd, captured, holder, "sleep", "1000") as holder_pid:
        proc = subprocess.Popen(containerd.ctr_cmd(
            "run", "--rm", *containerd.run_flags(str(captured.path)),
            "--with-ns", f"pid:/proc/{holder_pid}/ns/pid", containerd.image, cid, "sh", "-c",
            "echo pid=$$; exec sleep 1000"), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: containerd.tasks().get(cid, (0, ""))[1] == "RUNNING", 20,
                     what=f"task {cid} to run")
            pid = containerd.tasks()[cid][0]
            wait_for(lambda: pid_cmdline(pid) == "sleep 1000 ", 10, what="the exec of sleep")
            assert os.readlink(f"/proc/{pid}/ns/pid") == os.readlink(f"/proc/{holder_pid}/ns/pid")
            containerd.ctr("tasks", "kill", cid)     # SIGTERM, the default
            out, err = proc.communicate(timeout=20)
            assert proc.returncode == 143, f"ctr run exited {proc.returncode}: {err}\n" \
                                           f"{captured.text()}"
            assert out.startswith("pid=") and out.split("=")[1].strip() != "1", out
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            containerd.ctr("tasks", "delete", "--force", cid, check=False)
            containerd.ctr("containers", "delete", cid, check=False)
    record_argv("ctr", runtime, "run --with-ns pid:PATH; task kill (TERM)", captured)
    assert (False, 15) in kills_of(captured, cid), captured.text()


def test_ctr_sigterm_exit_code(containerd, runtime, captured):
    """SIGTERM: 143 from an exec'd process that dies of it (`ctr task exec` reports it), and an
    init, PID 1 of its namespace, that handles it."""
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sh", "-c",
                  'trap "exit 143" TERM; while :; do sleep 0.1; done'):
        exec_proc = subprocess.Popen(containerd.ctr_cmd("tasks", "exec", "--exec-id", "t", cid,
                                                        "sleep", "1000"),
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        try:
            wait_for(lambda: any(pid_cmdline(int(l.split()[0])) == "sleep 1000 "
                                 for l in containerd.ctr("tasks", "ps", cid).stdout
                                 .splitlines()[1:]), 10, what="the exec'd sleep")
            containerd.ctr("tasks", "kill", "--exec-id", "t", "--signal", "SIGTERM", cid)
            _, err = exec_proc.communicate(timeout=20)
            assert exec_proc.returncode == 143, f"exec: {exec_proc.returncode} {err}\n" \
                                                f"{captured.text()}"
        finally:
            if exec_proc.poll() is None:
                exec_proc.kill()
                exec_proc.wait()
        containerd.ctr("tasks", "kill", cid)     # SIGTERM, the default
        wait_stopped(containerd, captured, cid)
    record_argv("ctr", runtime, "task kill --exec-id (TERM); task kill (TERM)", captured)
    assert (False, 15) in kills_of(captured, cid), captured.text()


def test_ctr_memory_limit(containerd, runtime, captured):
    cid = new_id(runtime)
    with detached(containerd, captured, cid, "sleep", "1000",
                  flags=("--memory-limit", str(64 << 20))) as pid:
        assert read_cgroup(pid, "memory", "memory.limit_in_bytes") == str(64 << 20)
        cgroup = Path(f"/proc/{pid}/cgroup").read_text()
        assert f"/{containerd.namespace}/{cid}" in cgroup, cgroup
    record_argv("ctr", runtime, "run -d --memory-limit 64M", captured)
