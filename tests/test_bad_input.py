"""Bad input to `hawser`: every mistake a user can make gets a one-line error on stderr (the same
text as the `msg` of the last `{"level":"error"}` line of `--log FILE --log-format json`, which is
what containerd and podman show), a non-zero exit status, and leaves nothing behind: no state
directory, no cgroup, no mount, no process, no file descriptor (see tests/leaks.py).

Real containers: these tests run as root with a busybox rootfs."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid

import pytest

from leaks import LeakCheck, cgroup_dirs, run_hawser

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def new_id() -> str:
    # cgroups are /sys/fs/cgroup/*/hawser/<id> whatever the --root: ids must be unique machine-wide
    return "bad-" + uuid.uuid4().hex[:12]


@pytest.fixture
def fail(hawser, tmp_path):
    """fail(*args, match=[...]) runs `hawser --log L --log-format json ARGS`, expects it to fail
    with one line on stderr that contains every `match` string, the same message as the last
    error line of the json log; returns that message."""
    counter = [0]

    def run(*args, match=(), status=None, timeout=30):
        counter[0] += 1
        log = tmp_path / f"fail{counter[0]}.log.json"
        r = run_hawser(hawser.cmd(*args), log=str(log), timeout=timeout)
        assert r.returncode != 0, r
        if status is not None:
            assert r.returncode == status, r
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected a one-line error on stderr: {r}"
        errors = [e for e in r.log if e.get("level") == "error"]
        assert errors, f"no error line in the json log: {r}"
        for entry in r.log:
            assert {"level", "msg", "time"} <= set(entry), r
        msg = errors[-1]["msg"]
        assert msg and msg in lines[0], r
        assert "Traceback" not in r.stderr + r.log_text, r
        for m in match:
            assert m in msg, f"{m!r} not in {msg!r}"
        return msg

    return run


def edited(make_bundle, args=("true",), edit=None):
    bundle = make_bundle(args=args)
    if edit is not None:
        edit(bundle.config)
    return bundle.write()


def create_fails(hawser, fail, bundle, match=(), cid=None, watch=(), markers=(), timeout=30):
    cid = cid or new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path, *watch], markers=markers):
        msg = fail("create", "--bundle", bundle.path, cid, match=match, timeout=timeout)
    return msg


def create_ok(hawser, bundle, cid):
    r = run_hawser(hawser.cmd("create", "--bundle", bundle.path, cid))
    assert r.returncode == 0, r
    return hawser.state(cid)


# -- config.json ---------------------------------------------------------------------------------

def test_malformed_json(hawser, fail, make_bundle):
    bundle = make_bundle()
    (bundle.path / "config.json").write_text('{"ociVersion": "1.0.2", "process": {')
    create_fails(hawser, fail, bundle, match=["config.json", "invalid JSON"])


def test_missing_config_json(hawser, fail, make_bundle):
    bundle = make_bundle()
    (bundle.path / "config.json").unlink()
    create_fails(hawser, fail, bundle, match=["config.json", "does not exist"])


@pytest.mark.parametrize("edit, match", [
    (lambda c: c["process"]["user"].update(uid="x"),
     ["process.user.uid", "is not of type 'integer'"]),
    (lambda c: c.pop("ociVersion"), ["ociVersion", "is a required property"]),
    (lambda c: c["process"].update(args="sh"), ["process.args", "is not of type 'array'"]),
    (lambda c: c["linux"]["namespaces"].append({"type": "bogus"}),
     ["linux.namespaces[6].type", "'bogus'"]),
    (lambda c: c["process"].update(cwd="tmp"), ["process.cwd", "tmp"]),
], ids=["uid-not-integer", "no-ociVersion", "args-not-array", "unknown-namespace", "relative-cwd"])
def test_schema_violation(hawser, fail, make_bundle, edit, match):
    create_fails(hawser, fail, edited(make_bundle, edit=edit), match=match)


def test_seccomp_unknown_syscall_name(hawser, fail, make_bundle):
    """A name that is a system call on no architecture is a mistake in the profile."""
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW",
               "syscalls": [{"names": ["mkdir", "mkdri"], "action": "SCMP_ACT_ERRNO"}]}
    bundle = edited(make_bundle, edit=lambda c: c["linux"].update(seccomp=seccomp))
    create_fails(hawser, fail, bundle,
                 match=["linux.seccomp.syscalls[0].names[1]", "unknown system call", "mkdri"])


@pytest.mark.parametrize("where", ["defaultAction", "syscalls"])
def test_bad_seccomp_action(hawser, fail, make_bundle, where):
    seccomp = {"defaultAction": "SCMP_ACT_ALLOW"}
    if where == "defaultAction":
        seccomp["defaultAction"] = "SCMP_ACT_BOGUS"
        match = ["linux.seccomp.defaultAction", "SCMP_ACT_BOGUS"]
    else:
        seccomp["syscalls"] = [{"names": ["getpid"], "action": "SCMP_ACT_BOGUS"}]
        match = ["linux.seccomp.syscalls[0].action", "SCMP_ACT_BOGUS"]
    bundle = edited(make_bundle, edit=lambda c: c["linux"].update(seccomp=seccomp))
    create_fails(hawser, fail, bundle, match=match)


# -- the bundle and what the container needs -------------------------------------------------------

def test_missing_rootfs(hawser, fail, make_bundle):
    bundle = make_bundle()
    shutil.rmtree(bundle.rootfs)
    create_fails(hawser, fail, bundle, match=["rootfs", str(bundle.rootfs)])


def test_program_not_in_rootfs(hawser, fail, make_bundle):
    bundle = make_bundle(args=["no-such-program", "arg"])
    create_fails(hawser, fail, bundle, match=["no-such-program"])


def test_program_absolute_path_not_in_rootfs(hawser, fail, make_bundle):
    bundle = make_bundle(args=["/usr/local/bin/nothere"])
    create_fails(hawser, fail, bundle, match=["/usr/local/bin/nothere"])


def test_program_not_executable(hawser, fail, make_bundle):
    """args[0] names a file that is not executable: as runc, `permission denied`, not `no such
    file`."""
    bundle = make_bundle(args=["/etc/passwd"])
    create_fails(hawser, fail, bundle, match=["/etc/passwd", "permission denied"])


def test_run_with_missing_program(hawser, fail, make_bundle):
    """`run` fails as `create` does, and cleans up as well."""
    bundle = make_bundle(args=["no-such-program"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        fail("run", "--bundle", bundle.path, cid, match=["no-such-program"])
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        fail("run", "-d", "--bundle", bundle.path, cid, match=["no-such-program"])


def test_bundle_directory_missing(hawser, fail, tmp_path):
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[tmp_path / "nowhere"]):
        fail("create", "--bundle", tmp_path / "nowhere", cid, match=[str(tmp_path / "nowhere")])


def test_pid_file_directory_missing(hawser, fail, make_bundle, tmp_path):
    """The pid file cannot be written: create fails (as runc: `open DIR/.pid: no such file or
    directory`) and the container it had made is destroyed."""
    bundle = make_bundle(args=["sleep", "100"])
    pid_file = tmp_path / "no-such-dir" / "init.pid"
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        fail("create", "--bundle", bundle.path, "--pid-file", pid_file, cid,
             match=[str(pid_file.parent)])


def test_console_socket_missing(hawser, fail, make_bundle, tmp_path):
    bundle = make_bundle(terminal=True)
    sock = tmp_path / "no-such.sock"
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        fail("create", "--bundle", bundle.path, "--console-socket", sock, cid,
             match=["--console-socket", str(sock)])


def test_rlimit_soft_above_hard(hawser, fail, make_bundle):
    bundle = edited(make_bundle, edit=lambda c: c["process"].update(
        rlimits=[{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]))
    create_fails(hawser, fail, bundle, match=["RLIMIT_NOFILE"])


def test_mount_of_unknown_filesystem_type(hawser, fail, make_bundle):
    bundle = edited(make_bundle, edit=lambda c: c["mounts"].append(
        {"destination": "/mnt", "type": "no-such-fs", "source": "none"}))
    create_fails(hawser, fail, bundle, match=["/mnt", "No such device"])


def test_bind_mount_source_missing(hawser, fail, make_bundle, tmp_path):
    source = tmp_path / "no-such-dir"
    bundle = edited(make_bundle, edit=lambda c: c["mounts"].append(
        {"destination": "/mnt", "type": "bind", "source": str(source), "options": ["rbind"]}))
    create_fails(hawser, fail, bundle, match=[str(source)], watch=[source])


def test_hostname_without_uts_namespace(hawser, fail, make_bundle):
    def edit(c):
        c["hostname"] = "box"
        c["linux"]["namespaces"] = [n for n in c["linux"]["namespaces"] if n["type"] != "uts"]
    create_fails(hawser, fail, edited(make_bundle, edit=edit), match=["hostname", "uts"])


def test_cwd_that_cannot_exist_in_rootfs(hawser, fail, make_bundle):
    """A missing cwd is created, as runc does (test_security covers that); one under a regular
    file cannot be, and create fails naming it."""
    bundle = edited(make_bundle, edit=lambda c: c["process"].update(cwd="/etc/passwd/sub"))
    create_fails(hawser, fail, bundle, match=["cwd", "/etc/passwd/sub"])


def test_terminal_without_console_socket(hawser, fail, make_bundle):
    bundle = make_bundle(terminal=True)
    create_fails(hawser, fail, bundle, match=["terminal", "--console-socket"])


def failing_hook_bundle(make_bundle, ran):
    hook = {"path": "/bin/sh",
            "args": ["sh", "-c", f"cat > {ran}; echo hook says no >&2; exit 1"]}
    return edited(make_bundle, edit=lambda c: c.update(hooks={"createRuntime": [hook]}))


def test_failing_create_runtime_hook(hawser, fail, make_bundle, tmp_path):
    """A createRuntime hook that exits 1 fails create, which undoes everything (the init, which
    exists by then, included); the error names the hook and its exit status."""
    ran = tmp_path / "hook-ran"
    bundle = failing_hook_bundle(make_bundle, ran)
    msg = create_fails(hawser, fail, bundle, match=["createRuntime", "/bin/sh", "exit status 1"])
    state = json.loads(ran.read_text())  # the hook ran, with the state on stdin
    assert state["status"] == "creating" and state["pid"] > 0, msg
    assert state["bundle"] == str(bundle.path)


def test_failing_hook_error_carries_its_stderr(hawser, fail, make_bundle, tmp_path):
    """What the failing hook printed on stderr is in the error (runc: `stderr: ...`), however fast
    the hook exits: repeated, as a hook that exits at once used to lose it one time in four."""
    bundle = failing_hook_bundle(make_bundle, tmp_path / "hook-ran")
    for _ in range(8):
        create_fails(hawser, fail, bundle, match=["createRuntime", "hook says no"])


def test_hook_timeout(hawser, fail, make_bundle):
    """A hook that outlives its timeout is killed and create fails; the hook program is a copy of
    sleep inside the bundle directory so the leak check can recognise it by its executable."""
    bundle = make_bundle()
    slow = bundle.path / "slow-hook"
    shutil.copy2(shutil.which("sleep"), slow)
    bundle.config["hooks"] = {"createRuntime": [{"path": str(slow), "args": [str(slow), "30"],
                                                 "timeout": 1}]}
    bundle.write()
    t0 = time.monotonic()
    create_fails(hawser, fail, bundle, match=["createRuntime", "timed out", str(slow)], timeout=20)
    assert 1 <= time.monotonic() - t0 < 10


# -- ids ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cid", ["a/b", "..", "", "../x", "a b", "x" * 300],
                         ids=["slash", "dotdot", "empty", "escape", "space", "too-long"])
def test_invalid_container_id(hawser, fail, make_bundle, cid):
    """Refused by every command (`delete --force` too: an id that cannot exist is not "already
    gone"). An id too long for a file name fails as in runc, with an error that names it."""
    bundle = make_bundle()
    match = [cid[:50]] if len(cid) > 255 else ["invalid container id"]
    with LeakCheck(hawser.root, [cid or "-"], watch=[bundle.path]):
        fail("create", "--bundle", bundle.path, cid, match=match)
        for args in (("state", cid), ("start", cid), ("kill", cid, "KILL"), ("delete", cid),
                     ("delete", "--force", cid)):
            fail(*args, match=match)
    assert not (hawser.root.parent / "b").exists() and not (hawser.root.parent / "x").exists()


def test_duplicate_id(hawser, fail, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    other = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path, other.path]):
        first = create_ok(hawser, bundle, cid)
        fail("create", "--bundle", other.path, cid, match=["already exists", cid])
        # the first container is untouched by the failed attempt
        again = hawser.state(cid)
        assert (again["status"], again["pid"], again["bundle"]) == \
            ("created", first["pid"], str(bundle.path))
        assert os.path.exists(f"/proc/{first['pid']}")
        hawser("delete", cid)


@pytest.mark.parametrize("args", [("state",), ("start",), ("kill",), ("kill", "KILL"),
                                  ("delete",)],
                         ids=["state", "start", "kill", "kill-KILL", "delete"])
def test_unknown_id(hawser, fail, args):
    cid = new_id()
    with LeakCheck(hawser.root, cid):
        cmd = [args[0], cid, *args[1:]]
        fail(*cmd, match=[cid, "does not exist"], status=1)


# -- signals and states ----------------------------------------------------------------------------

@pytest.mark.parametrize("sig", ["FOO", "SIGFOO", "65", "RTMIN+40", "-9", "SIG"])
def test_bad_signal(hawser, fail, make_bundle, sig):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = create_ok(hawser, bundle, cid)["pid"]
        hawser("start", cid)
        fail("kill", cid, sig, match=["signal", sig])
        assert hawser.state(cid)["status"] == "running" and hawser.state(cid)["pid"] == pid
        hawser("delete", "--force", cid)


def wait_status(hawser, cid, want, timeout=10):
    deadline = time.monotonic() + timeout
    while True:
        st = hawser.state(cid)
        if st["status"] == want or time.monotonic() > deadline:
            return st
        time.sleep(0.02)


def test_wrong_state_operations(hawser, fail, make_bundle):
    """What each status refuses: start twice, delete without --force while running, start and
    kill once stopped. A refused operation changes nothing."""
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = create_ok(hawser, bundle, cid)["pid"]
        hawser("start", cid)
        fail("start", cid, match=["running"])
        fail("delete", cid, match=["running", cid])
        st = hawser.state(cid)
        assert (st["status"], st["pid"]) == ("running", pid)
        hawser("kill", cid, "KILL")
        assert wait_status(hawser, cid, "stopped")["status"] == "stopped"
        fail("start", cid, match=["stopped"])
        fail("kill", cid, "KILL", match=["container not running"])
        fail("kill", cid, match=["container not running"])
        hawser("delete", cid)
        assert not cgroup_dirs(cid)


def test_systemd_cgroup_refused(hawser, fail, make_bundle):
    bundle = make_bundle()
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        fail("--systemd-cgroup", "create", "--bundle", bundle.path, cid, match=["systemd"])


def test_systemd_cgroups_path_refused(hawser, fail, make_bundle):
    bundle = edited(make_bundle, edit=lambda c: c["linux"].update(
        cgroupsPath="system.slice:hawser:x"))
    create_fails(hawser, fail, bundle, match=["cgroupsPath", "system.slice:hawser:x"])


def test_usage_errors(hawser, fail):
    with LeakCheck(hawser.root, "none"):
        fail("frobnicate", match=["frobnicate"])
        fail("create", match=["create"])
        fail("create", "--no-such-flag", "x", match=["no-such-flag"])
        fail("kill", "a", "b", "c", match=["kill"])
        fail("list", "--format", "yaml", match=["yaml"])


def test_leak_check_sees_a_container(hawser, make_bundle, tmp_path):
    """The checker itself: a container left behind is reported by its state dir, its cgroups, its
    process, and a file descriptor the test forgot to close too."""
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    check = LeakCheck(hawser.root, cid, watch=[bundle.path]).__enter__()
    create_ok(hawser, bundle, cid)
    hawser("start", cid)
    fd = os.open(tmp_path, os.O_RDONLY)
    mnt = bundle.path / "leaked-mount"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "leak", mnt], check=True)
    try:
        left = "\n".join(check.leftovers())
    finally:
        subprocess.run(["umount", mnt], check=True)
        os.close(fd)
        hawser("delete", "--force", cid)
    assert f"state root entry {hawser.root}/{cid}" in left
    assert f"/sys/fs/cgroup/memory/hawser/{cid}" in left
    assert "'sleep 100'" in left
    assert f"file descriptor {fd} -> {tmp_path}" in left
    assert f" {mnt} " in left
    check.assert_clean()
