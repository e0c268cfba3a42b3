"""OCI hooks with real busybox containers: every kind runs at its point of the lifecycle, in the
right namespaces, with the state on stdin, its args, env and timeout; failures fail (or, for
poststop, only warn) the operation as runtime-spec 1.3 says, and leave nothing behind.

Each hook appends its kind to an `order` file and saves what it saw. prestart, createRuntime,
poststart and poststop run in the runtime's namespaces and use host paths. createContainer runs in
the container's mount namespace before pivot_root, so it still reaches host paths.
startContainer runs inside the container after pivot_root: its program is the rootfs's busybox
(/hooks/hook.sh) and it writes to /hostlog, a bind mount of the host log directory."""
from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from leaks import LeakCheck, run_hawser
from waits import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop")
IN_CONTAINER = ("createContainer", "startContainer")  # run in the container's namespaces
STATUS = {"prestart": "creating", "createRuntime": "creating", "createContainer": "creating",
          "startContainer": "created", "poststart": "running", "poststop": "stopped"}

HOOK_SCRIPT = """#!/bin/sh
# hook.sh KIND: record what this hook saw under $LOGDIR
kind=$1
cat > "$LOGDIR/$kind.json"
readlink /proc/self/ns/mnt > "$LOGDIR/$kind.mntns"
cat /etc/hostname > "$LOGDIR/$kind.hostname" 2>/dev/null
echo "$kind" >> "$LOGDIR/order"
"""


def new_id(prefix: str = "hook") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class HookSetup:
    """A bundle whose every hook runs hook.sh, logging into a host directory."""

    def __init__(self, make_bundle, tmp_path, args=None, hooks=None, annotations=None):
        self.log = tmp_path / "hooklog"
        self.log.mkdir()
        self.host_script = tmp_path / "hook.sh"
        self.host_script.write_text(HOOK_SCRIPT)
        self.host_script.chmod(0o755)
        b = make_bundle(args=args or ["sh", "-c", "echo process >> /hostlog/order"])
        (b.rootfs / "hooks").mkdir()
        (b.rootfs / "hooks" / "hook.sh").write_text(HOOK_SCRIPT)
        (b.rootfs / "hooks" / "hook.sh").chmod(0o755)
        b.config["mounts"].append({"destination": "/hostlog", "type": "bind",
                                   "source": str(self.log), "options": ["rbind", "rw"]})
        if annotations:
            b.config["annotations"] = annotations
        b.config["hooks"] = hooks if hooks is not None else {k: [self.hook(k)] for k in KINDS}
        self.bundle = b.write()

    def hook(self, kind: str, **extra) -> dict:
        if kind == "startContainer":
            h = {"path": "/hooks/hook.sh", "args": ["hook.sh", kind], "env": ["LOGDIR=/hostlog"]}
        else:
            h = {"path": str(self.host_script), "args": ["hook.sh", kind],
                 "env": [f"LOGDIR={self.log}"]}
        h.update(extra)
        return h

    def order(self) -> list[str]:
        try:
            return (self.log / "order").read_text().split()
        except FileNotFoundError:
            return []

    def state(self, kind: str) -> dict:
        return json.loads((self.log / f"{kind}.json").read_text())

    def seen(self, kind: str, what: str) -> str:
        return (self.log / f"{kind}.{what}").read_text().strip()


def create(hawser, bundle, cid):
    return run_hawser(hawser.cmd("create", "--bundle", bundle.path, cid))


def wait_stopped(hawser, cid):
    wait_for(lambda: hawser.state(cid)["status"] == "stopped", what=f"{cid} to stop")


def lifecycle(hawser, setup: HookSetup) -> tuple[str, int, str]:
    """create, start, wait for the program to exit, delete; (id, init pid, init's mnt ns)."""
    cid = new_id()
    r = create(hawser, setup.bundle, cid)
    assert r.returncode == 0, r
    pid = hawser.state(cid)["pid"]
    mntns = os.readlink(f"/proc/{pid}/ns/mnt")
    hawser("start", cid)
    wait_stopped(hawser, cid)
    hawser("delete", cid)
    return cid, pid, mntns


# --- order, state, namespaces -------------------------------------------------------------------

def test_hooks_run_in_lifecycle_order(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path)
    cid = new_id()
    r = create(hawser, s.bundle, cid)
    assert r.returncode == 0, r
    assert s.order() == ["prestart", "createRuntime", "createContainer"]

    hawser("start", cid)
    # start returns after the poststart hooks; the program may still be writing
    wait_for(lambda: "process" in s.order(), what="the container's program")
    order = s.order()
    assert order[:4] == ["prestart", "createRuntime", "createContainer", "startContainer"]
    assert sorted(order[4:]) == ["poststart", "process"]
    wait_stopped(hawser, cid)
    assert "poststop" not in s.order()

    hawser("delete", cid)
    assert s.order()[-1] == "poststop"
    assert len(s.order()) == 7


def test_hooks_receive_the_state_on_stdin(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, annotations={"org.hawser.test": "yes"})
    cid, _, _ = lifecycle(hawser, s)
    for kind in KINDS:
        st = s.state(kind)
        assert st["id"] == cid, kind
        assert st["bundle"] == str(s.bundle.path), kind
        assert st["status"] == STATUS[kind], kind
        assert st["ociVersion"], kind
        assert st.get("annotations") == {"org.hawser.test": "yes"}, kind


def test_hook_state_pid_as_seen_by_the_hook(hawser, make_bundle, tmp_path):
    """runtime-spec (State): "For hooks executed in the runtime namespace, it is the pid as seen by
    the runtime. For hooks executed in the container namespace, it is the pid as seen by the
    container." createContainer and startContainer run in the container's pid namespace, where
    the container process is pid 1 (runc passes 1 there)."""
    s = HookSetup(make_bundle, tmp_path)
    _, pid, _ = lifecycle(hawser, s)
    seen = {kind: s.state(kind).get("pid") for kind in KINDS if kind != "poststop"}
    assert seen == {"prestart": pid, "createRuntime": pid, "createContainer": 1,
                    "startContainer": 1, "poststart": pid}


def test_hooks_run_in_the_right_namespaces(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path)
    _, _, container_mnt = lifecycle(hawser, s)
    host_mnt = os.readlink("/proc/self/ns/mnt")
    assert container_mnt != host_mnt
    for kind in KINDS:
        assert s.seen(kind, "mntns") == (container_mnt if kind in IN_CONTAINER else host_mnt), kind
    # createContainer: before pivot_root, the runtime's filesystem; startContainer: the rootfs's
    host_hostname = Path("/etc/hostname").read_text().strip() if Path("/etc/hostname").exists() else ""
    assert s.seen("createContainer", "hostname") == host_hostname
    assert s.seen("startContainer", "hostname") == "busybox"


# --- args, env ---------------------------------------------------------------------------------

# The shell opens its own /proc/self/cmdline (fd 3) and tr reads it: a createContainer hook runs
# in the container's pid namespace but sees the host's /proc (before pivot_root), so /proc/$$
# would name another process there.
RECORD_ARGV_ENV = ('exec 3</proc/self/cmdline; tr "\\0" "\\n" <&3 > "$LOGDIR/argv.$KIND"; '
                   'env > "$LOGDIR/env.$KIND"')


@pytest.mark.parametrize("kind", KINDS)
def test_hook_args_and_env(hawser, make_bundle, tmp_path, kind):
    """args[0] is the program's argv[0], the rest its arguments; env is its whole environment
    (nothing of the runtime's own leaks in). startContainer runs the container's busybox, which
    picks its applet by argv[0]: there argv[0] must stay "sh"."""
    s = HookSetup(make_bundle, tmp_path, args=["true"], hooks={})
    logdir = "/hostlog" if kind == "startContainer" else str(s.log)
    argv0 = "sh" if kind == "startContainer" else "custom-argv0"
    hook = {"path": "/bin/sh",
            "args": [argv0, "-c", RECORD_ARGV_ENV, "script-name", "one", "two words"],
            "env": [f"LOGDIR={logdir}", f"KIND={kind}", "FOO=bar baz"]}
    s.bundle.config["hooks"] = {kind: [hook]}
    s.bundle.write()
    env = {**os.environ, "HAWSER_TEST_LEAK": "leaked"}
    hawser("run", "--bundle", s.bundle.path, new_id(), env=env, stdin=subprocess.DEVNULL)
    argv = (s.log / f"argv.{kind}").read_text().split("\n")[:-1]
    assert argv == [argv0, "-c", RECORD_ARGV_ENV, "script-name", "one", "two words"]
    env_seen = dict(line.split("=", 1) for line in (s.log / f"env.{kind}").read_text().splitlines()
                    if "=" in line)
    assert env_seen["FOO"] == "bar baz"
    assert env_seen["KIND"] == kind
    assert "HAWSER_TEST_LEAK" not in env_seen


# --- timeouts and failures -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_hook_timeout_kills_it_and_fails_create(hawser, make_bundle, tmp_path, kind):
    s = HookSetup(make_bundle, tmp_path, hooks={})
    s.bundle.config["hooks"] = {kind: [{"path": "/bin/sleep", "args": ["sleep", "37.25"],
                                        "timeout": 1}]}
    s.bundle.write()
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[s.bundle.path], markers=["sleep 37.25"]):
        t0 = time.monotonic()
        r = create(hawser, s.bundle, cid)
        elapsed = time.monotonic() - t0
        assert r.returncode != 0, r
        assert elapsed < 10, f"create took {elapsed:.1f}s with a 1s hook timeout"
        assert kind in r.stderr and "timed out" in r.stderr, r
    assert s.order() == []


def test_start_container_hook_timeout_fails_start(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, hooks={})
    s.bundle.config["hooks"] = {"startContainer": [{"path": "/bin/sleep", "args": ["sleep", "37.5"],
                                                    "timeout": 1}]}
    s.bundle.write()
    cid = new_id()
    assert create(hawser, s.bundle, cid).returncode == 0
    t0 = time.monotonic()
    r = hawser("start", cid, check=False)
    assert r.returncode != 0
    assert time.monotonic() - t0 < 10
    assert "startContainer" in r.stderr and "timed out" in r.stderr, r.stderr
    wait_stopped(hawser, cid)
    assert "process" not in s.order()
    hawser("delete", cid)


def test_hook_leaving_a_child_behind_does_not_block(hawser, make_bundle, tmp_path):
    """A hook that exits while a child of its own still holds its stdout/stderr: the runtime
    waits for the hook, not for the end of its output."""
    s = HookSetup(make_bundle, tmp_path, args=["true"], hooks={})
    s.bundle.config["hooks"] = {"prestart": [{"path": "/bin/sh",
                                              "args": ["sh", "-c", "(sleep 4.25 &); exit 0"]}]}
    s.bundle.write()
    t0 = time.monotonic()
    r = run_hawser(hawser.cmd("run", "--bundle", s.bundle.path, new_id()), timeout=30)
    assert r.returncode == 0, r
    assert time.monotonic() - t0 < 3, "the runtime waited for the hook's child"


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_fails_create_and_leaves_nothing(hawser, make_bundle, tmp_path, kind):
    s = HookSetup(make_bundle, tmp_path, hooks={})
    s.bundle.config["hooks"] = {kind: [{"path": "/bin/sh",
                                        "args": ["sh", "-c", "echo hook-broke >&2; exit 3"]}]}
    s.bundle.write()
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[s.bundle.path]):
        r = create(hawser, s.bundle, cid)
        assert r.returncode != 0, r
        assert kind in r.stderr and "hook-broke" in r.stderr, r
        assert hawser("state", cid, check=False).returncode != 0
    assert hawser.ids() == []


@pytest.mark.parametrize("kind", ["prestart", "createRuntime", "createContainer"])
def test_failing_create_hook_still_runs_poststop(hawser, make_bundle, tmp_path, kind):
    """runtime-spec lifecycle: a failing prestart/createRuntime/createContainer hook makes the
    runtime "stop the container, and continue the lifecycle at step 12" - destroy the container,
    then (step 13) run the poststop hooks. runc does run them."""
    s = HookSetup(make_bundle, tmp_path, hooks={})
    s.bundle.config["hooks"] = {kind: [{"path": "/bin/false", "args": ["false"]}],
                                "poststop": [s.hook("poststop")]}
    s.bundle.write()
    cid = new_id()
    r = create(hawser, s.bundle, cid)
    assert r.returncode != 0
    assert hawser.ids() == []
    assert s.order() == ["poststop"]
    assert s.state("poststop")["id"] == cid


def test_failing_start_container_hook_fails_start(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, hooks={})
    s.bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false", "args": ["false"]}],
                                "poststart": [s.hook("poststart")]}
    s.bundle.write()
    cid = new_id()
    assert create(hawser, s.bundle, cid).returncode == 0
    r = hawser("start", cid, check=False)
    assert r.returncode != 0
    assert "startContainer" in r.stderr
    wait_stopped(hawser, cid)
    assert s.order() == [], "the program or poststart ran after startContainer failed"
    hawser("delete", cid)
    assert hawser.ids() == []


def test_failing_poststart_fails_start_and_stops_the_container(hawser, make_bundle, tmp_path):
    """runtime-spec 1.3: a failing poststart hook fails `start` and stops the container."""
    s = HookSetup(make_bundle, tmp_path, args=["sleep", "60"], hooks={})
    s.bundle.config["hooks"] = {"poststart": [{"path": "/bin/sh",
                                               "args": ["sh", "-c", "echo poststart-broke >&2; exit 1"]}],
                                "poststop": [s.hook("poststop")]}
    s.bundle.write()
    cid = new_id()
    assert create(hawser, s.bundle, cid).returncode == 0
    pid = hawser.state(cid)["pid"]
    r = hawser("start", cid, check=False)
    assert r.returncode != 0
    assert "poststart" in r.stderr and "poststart-broke" in r.stderr, r.stderr
    wait_stopped(hawser, cid)
    wait_for(lambda: not Path(f"/proc/{pid}").exists() or
             Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] in "ZX",
             what="the container's process to die")
    hawser("delete", cid)
    assert s.order() == ["poststop"]


def test_failing_poststart_fails_run(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, args=["sleep", "60"], hooks={})
    s.bundle.config["hooks"] = {"poststart": [{"path": "/bin/false", "args": ["false"]}]}
    s.bundle.write()
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[s.bundle.path]):
        t0 = time.monotonic()
        r = run_hawser(hawser.cmd("run", "--bundle", s.bundle.path, cid))
        assert r.returncode != 0, r
        assert time.monotonic() - t0 < 10
        assert "poststart" in r.stderr
    assert hawser.ids() == []


def test_failing_poststop_only_warns(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, args=["true"], hooks={})
    s.bundle.config["hooks"] = {"poststop": [
        {"path": "/bin/sh", "args": ["sh", "-c", "echo poststop-broke >&2; exit 1"]},
        s.hook("poststop")]}  # the remaining hooks still run
    s.bundle.write()
    cid = new_id()
    assert create(hawser, s.bundle, cid).returncode == 0
    hawser("start", cid)
    wait_stopped(hawser, cid)
    r = hawser("delete", cid, check=False)
    assert r.returncode == 0, r.stderr
    assert "poststop" in r.stderr and "poststop-broke" in r.stderr
    assert hawser.ids() == []
    assert s.order() == ["poststop"]


def test_failing_poststop_does_not_fail_run(hawser, make_bundle, tmp_path):
    s = HookSetup(make_bundle, tmp_path, args=["sh", "-c", "exit 7"], hooks={})
    s.bundle.config["hooks"] = {"poststop": [{"path": "/bin/false", "args": ["false"]}]}
    s.bundle.write()
    r = hawser("run", "--bundle", s.bundle.path, new_id(), check=False, stdin=subprocess.DEVNULL)
    assert r.returncode == 7, r.stderr  # the container's exit code, not the hook's failure
    assert "poststop" in r.stderr
    assert hawser.ids() == []
