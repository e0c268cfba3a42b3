"""The OCI lifecycle as a user of `hawser` sees it, with real busybox containers (root needed):
create / start / state / kill / delete / run / list, what each status allows, races on one id,
logging, `features` and `spec`.

The container's status is derived each time from its init pid (and that pid's start time), so a
container that exits is `stopped` with no hawser process watching it. Containers' stdio go to
files (tests/leaks.run_hawser): a created container keeps the stdio of `hawser create`."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from leaks import LeakCheck, cgroup_dirs, process_table, run_hawser
from runtime import OCI_VERSION
from runtime.validate import validate_config, validate_features
from waits import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

ALL_HOOKS = ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
             "poststop"]
ALL_NAMESPACES = ["pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time"]


def new_id() -> str:
    # cgroups are /sys/fs/cgroup/*/hawser/<id> whatever the --root: ids must be unique machine-wide
    return "lc-" + uuid.uuid4().hex[:12]


def alive(pid: int) -> bool:
    """A live, non-zombie process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"


def wait_status(hawser, cid, want, timeout=10.0) -> dict:
    box = {}

    def check():
        box["st"] = hawser.state(cid)
        return box["st"]["status"] == want
    wait_for(check, timeout, f"{cid} to be {want}")
    return box["st"]


def with_host_dir(bundle, host: Path, dest="/tmp"):
    """Bind-mount a host directory into the container so the test can see what it does."""
    host.mkdir(exist_ok=True)
    os.chmod(host, 0o777)
    bundle.config["mounts"].append({"destination": dest, "type": "bind", "source": str(host),
                                    "options": ["rbind", "rw"]})
    return bundle.write()


def create(hawser, bundle, cid, *extra) -> dict:
    r = run_hawser(hawser.cmd("create", "--bundle", bundle.path, *extra, cid))
    assert r.returncode == 0, r
    return hawser.state(cid)


def started(hawser, bundle, cid) -> dict:
    create(hawser, bundle, cid)
    hawser("start", cid)
    return hawser.state(cid)


def hawser_processes(root) -> list[str]:
    """hawser commands (of this test's --root) still running."""
    me = os.getpid()
    return [p["cmdline"] for pid, p in process_table().items()
            if pid != me and str(root) in p["cmdline"] and p["state"] not in "ZX"]


# -- create / start / stopped / delete -------------------------------------------------------------

def test_lifecycle(hawser, make_bundle, tmp_path):
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(args=[
        "sh", "-c", "echo ran > /tmp/marker; while [ ! -e /tmp/go ]; do sleep 0.05; done"]), host)
    cid = new_id()
    pid_file = tmp_path / "init.pid"
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        st = create(hawser, bundle, cid, "--pid-file", pid_file)
        assert st["status"] == "created"
        assert st["id"] == cid and st["bundle"] == str(bundle.path)
        assert st["ociVersion"] and st["created"]
        pid = st["pid"]
        assert pid > 0 and alive(pid)
        assert pid_file.read_text() == str(pid)  # as runc: the bare number, no newline
        assert f"/hawser/{cid}" in Path(f"/proc/{pid}/cgroup").read_text()
        assert (hawser.root / cid).is_dir()
        assert cgroup_dirs(cid), "no cgroup made for the container"
        # the user's program has not run yet, and does not run by itself
        time.sleep(0.3)
        assert not (host / "marker").exists()
        assert hawser.state(cid)["status"] == "created"

        hawser("start", cid)
        st = hawser.state(cid)
        assert (st["status"], st["pid"]) == ("running", pid)
        wait_for(lambda: (host / "marker").exists(), what="the program to run")
        assert (host / "marker").read_text() == "ran\n"

        # the program exits: stopped, with no hawser process left to notice it
        assert not hawser_processes(hawser.root)
        (host / "go").touch()
        st = wait_status(hawser, cid, "stopped")
        assert st["pid"] == 0
        wait_for(lambda: not alive(pid), what="init to be gone")
        assert hawser("list", "-f", "json").stdout and \
            json.loads(hawser("list", "-f", "json").stdout)[0]["status"] == "stopped"

        assert cgroup_dirs(cid)
        hawser("delete", cid)
        assert not (hawser.root / cid).exists()
        assert cgroup_dirs(cid) == []
    assert hawser("list", "-q").stdout == ""


def test_container_writes_to_the_stdio_of_create(hawser, make_bundle, tmp_path):
    """Without a terminal, the program inherits the stdio `hawser create` was given (as runc's
    pass-through): what it prints after `start` lands there."""
    bundle = make_bundle(args=["sh", "-c", "read line; echo out:$line; echo err >&2"])
    cid = new_id()
    stdin, out, err = tmp_path / "in", tmp_path / "out", tmp_path / "err"
    stdin.write_text("hello\n")
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        with open(stdin) as i, open(out, "w") as o, open(err, "w") as e:
            subprocess.run(hawser.cmd("create", "--bundle", bundle.path, cid), stdin=i, stdout=o,
                           stderr=e, check=True, timeout=30)
        assert out.read_text() == "" and err.read_text() == ""
        hawser("start", cid)
        wait_status(hawser, cid, "stopped")
        assert out.read_text() == "out:hello\n"
        assert err.read_text() == "err\n"
        hawser("delete", cid)


def test_created_container_whose_init_died(hawser, make_bundle):
    """The status is derived from the init: killed behind hawser's back (or by `hawser kill`) a
    created container is stopped, cannot start, and is deleted without --force."""
    bundle = make_bundle(args=["true"])
    for how in ("outside", "hawser kill"):
        cid = new_id()
        with LeakCheck(hawser.root, cid, watch=[bundle.path]):
            pid = create(hawser, bundle, cid)["pid"]
            if how == "outside":
                os.kill(pid, signal.SIGKILL)
            else:
                hawser("kill", cid, "KILL")
            st = wait_status(hawser, cid, "stopped")
            assert st["pid"] == 0
            r = hawser("start", cid, check=False)
            assert r.returncode != 0 and "stopped" in r.stderr, r.stderr
            hawser("delete", cid)


def test_start_refused_unless_created(hawser, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = started(hawser, bundle, cid)["pid"]
        r = hawser("start", cid, check=False)
        assert r.returncode != 0
        assert "already running" in r.stderr, r.stderr
        assert hawser.state(cid)["pid"] == pid
        hawser("kill", cid, "KILL")
        wait_status(hawser, cid, "stopped")
        r = hawser("start", cid, check=False)
        assert r.returncode != 0
        assert "cannot start a container that has stopped" in r.stderr, r.stderr
        hawser("delete", cid)


def test_delete_running_needs_force(hawser, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = started(hawser, bundle, cid)["pid"]
        r = hawser("delete", cid, check=False)
        assert r.returncode != 0
        assert "running" in r.stderr and cid in r.stderr, r.stderr
        assert alive(pid) and hawser.state(cid)["status"] == "running"
        hawser("delete", "--force", cid)
        assert not alive(pid)
        assert not (hawser.root / cid).exists() and cgroup_dirs(cid) == []


def test_delete_created_without_force(hawser, make_bundle, tmp_path):
    """As runc: a created container is deleted without --force, and its program never runs."""
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(args=["sh", "-c", "echo ran > /tmp/marker"]), host)
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = create(hawser, bundle, cid)["pid"]
        hawser("delete", cid)
        assert not alive(pid)
        assert not (hawser.root / cid).exists() and cgroup_dirs(cid) == []
    assert not (host / "marker").exists()


def reap_cgroup(cid):
    """Last-resort cleanup after a failed test: kill whatever is left in the container's cgroups
    and remove them (hawser's own delete is what is under test)."""
    for d in cgroup_dirs(cid):
        try:
            for pid in Path(d, "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), 9)
                except ProcessLookupError:
                    pass
        except OSError:
            pass
    deadline = time.monotonic() + 5
    while cgroup_dirs(cid) and time.monotonic() < deadline:
        for d in cgroup_dirs(cid):
            try:
                os.rmdir(d)
            except OSError:
                pass
        time.sleep(0.02)


@pytest.mark.parametrize("how", ["delete", "delete-force", "run"])
def test_delete_kills_leftovers_without_pid_namespace(hawser, make_bundle, how):
    """Without a pid namespace of its own, the container's other processes outlive its init. Once
    the container is stopped, deleting it (or `run` ending) kills them and removes the cgroup, as
    runc's destroy does (signalAllProcesses when the pid namespace is not the container's)."""
    bundle = make_bundle(args=["sh", "-c", "sleep 123 & sleep 0.2; exit 0"])
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    bundle.write()
    cid = new_id()
    try:
        with LeakCheck(hawser.root, cid, watch=[bundle.path]):
            if how == "run":
                r = run_hawser(hawser.cmd("run", "--bundle", bundle.path, cid), timeout=20)
                assert r.returncode == 0, r
            else:
                started(hawser, bundle, cid)
                wait_status(hawser, cid, "stopped")
                assert len(cgroup_pids(cid)) == 1  # the orphaned sleep
                r = run_hawser(hawser.cmd("delete", *(["--force"] if how == "delete-force"
                                                       else []), cid))
                assert r.returncode == 0, r
            assert not (hawser.root / cid).exists()
            assert cgroup_dirs(cid) == []
    finally:
        reap_cgroup(cid)


def test_delete_unknown_id(hawser):
    cid = new_id()
    with LeakCheck(hawser.root, cid):
        r = hawser("delete", "--force", cid, check=False)
        assert (r.returncode, r.stderr) == (0, "")
        r = hawser("delete", cid, check=False)
        assert r.returncode == 1
        assert f"container {cid} does not exist" in r.stderr


def test_recycled_pid_is_not_the_container(hawser, make_bundle):
    """state.json records the init's start time (field 22 of /proc/PID/stat) beside its pid; a pid
    whose process started at another time is a recycled pid, not the container. Simulated by
    changing the recorded start time while the container runs: the container is then `stopped`,
    and `kill` refuses rather than signal the stranger that holds the pid."""
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = started(hawser, bundle, cid)["pid"]
        path = hawser.root / cid / "state.json"
        saved = path.read_text()
        data = json.loads(saved)
        assert data["pid"] == pid and isinstance(data["pidStart"], int)
        data["pidStart"] += 12345
        path.write_text(json.dumps(data))
        st = hawser.state(cid)
        assert (st["status"], st["pid"]) == ("stopped", 0)
        r = hawser("kill", cid, "KILL", check=False)
        assert r.returncode != 0 and "container not running" in r.stderr
        time.sleep(0.1)
        assert alive(pid), "kill signalled a process that is not the container's"
        path.write_text(saved)
        assert hawser.state(cid)["status"] == "running"
        hawser("delete", "--force", cid)
        assert not alive(pid)


# -- run ------------------------------------------------------------------------------------------

def test_run_returns_exit_code_and_inherits_stdio(hawser, make_bundle):
    bundle = make_bundle(args=["sh", "-c", "echo to-stdout; echo to-stderr >&2; exit 42"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        r = hawser("run", "--bundle", bundle.path, cid, check=False)
        assert r.returncode == 42, r
        assert r.stdout == "to-stdout\n"
        assert r.stderr == "to-stderr\n"
    assert not (hawser.root / cid).exists()


def test_run_killed_returns_128_plus_signal(hawser, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        proc = subprocess.Popen(hawser.cmd("run", "--bundle", bundle.path, cid),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: (hawser.root / cid / "state.json").exists() and
                     hawser.state(cid)["status"] == "running", what="running")
            killer = threading.Thread(target=hawser, args=("kill", cid, "KILL"))
            killer.start()
            killer.join()
            assert proc.wait(timeout=20) == 137
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert not (hawser.root / cid).exists()


def test_run_detach(hawser, make_bundle, tmp_path):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    pid_file = tmp_path / "run.pid"
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        t0 = time.monotonic()
        r = run_hawser(hawser.cmd("run", "-d", "--pid-file", pid_file, "--bundle", bundle.path,
                                  cid), timeout=20)
        assert r.returncode == 0, r
        assert time.monotonic() - t0 < 5
        st = hawser.state(cid)
        assert st["status"] == "running" and alive(st["pid"])
        assert pid_file.read_text() == str(st["pid"])
        hawser("kill", cid, "KILL")
        wait_status(hawser, cid, "stopped")
        assert not alive(st["pid"])
        hawser("delete", cid)


# -- kill -----------------------------------------------------------------------------------------

TRAPPER = 'trap "exit {code}" {sig}; touch /tmp/ready; while :; do sleep 0.1; done'


@pytest.mark.parametrize("given, trapped, code", [
    ("TERM", "TERM", 7), ("SIGTERM", "TERM", 7), ("15", "TERM", 7), (None, "TERM", 7),
    ("USR1", "USR1", 3), ("sigusr1", "USR1", 3), ("KILL", "TERM", 137), ("9", "TERM", 137),
], ids=["TERM", "SIGTERM", "15", "default", "USR1", "sigusr1", "KILL", "9"])
def test_kill_signal(hawser, make_bundle, tmp_path, given, trapped, code):
    """The container's shell (PID 1 of its pid namespace: only signals it handles reach it) traps
    the signal and exits with a code of its own; `hawser run` returns that code."""
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(
        args=["sh", "-c", TRAPPER.format(code=code if code < 128 else 1, sig=trapped)]), host)
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        proc = subprocess.Popen(hawser.cmd("run", "--bundle", bundle.path, cid),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: (host / "ready").exists(), what="the trap to be set")
            hawser("kill", cid, *([given] if given else []))
            assert proc.wait(timeout=20) == code
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.mark.parametrize("sig", ["TERM", "USR2", "HUP"])
def test_run_forwards_signals(hawser, make_bundle, tmp_path, sig):
    """A signal sent to the foreground `hawser run` goes on to the container (as runc's)."""
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(args=["sh", "-c", TRAPPER.format(code=9, sig=sig)]), host)
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        proc = subprocess.Popen(hawser.cmd("run", "--bundle", bundle.path, cid),
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: (host / "ready").exists(), what="the trap to be set")
            proc.send_signal(getattr(signal, "SIG" + sig))
            assert proc.wait(timeout=20) == 9
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def cgroup_pids(cid) -> set[int]:
    with open(f"/sys/fs/cgroup/pids/hawser/{cid}/cgroup.procs") as f:
        return {int(x) for x in f.read().split()}


def test_kill_all(hawser, make_bundle, tmp_path):
    """Plain kill signals the init only (a shell as PID 1 ignores TERM); --all signals every
    process of the container: the sleeps die, the shell's wait returns, the container stops."""
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(
        args=["sh", "-c", "sleep 100 & sleep 100 & touch /tmp/ready; wait"]), host)
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = started(hawser, bundle, cid)["pid"]
        wait_for(lambda: (host / "ready").exists() and len(cgroup_pids(cid)) == 3,
                 what="three processes")
        procs = cgroup_pids(cid)
        hawser("kill", cid, "TERM")
        time.sleep(0.3)
        assert cgroup_pids(cid) == procs and hawser.state(cid)["status"] == "running"
        hawser("kill", "--all", cid, "TERM")
        wait_status(hawser, cid, "stopped")
        wait_for(lambda: not any(alive(p) for p in procs), what="every process gone")
        assert not alive(pid)
        r = hawser("kill", cid, "KILL", check=False)
        assert r.returncode != 0 and "container not running" in r.stderr
        r = hawser("kill", "--all", cid, "KILL", check=False)
        assert r.returncode != 0 and "container not running" in r.stderr
        hawser("delete", cid)


# -- list -----------------------------------------------------------------------------------------

def test_list(hawser, make_bundle):
    b1, b2 = make_bundle(args=["sleep", "100"]), make_bundle(args=["sleep", "100"])
    c1, c2 = sorted([new_id(), new_id()])
    assert hawser("list").stdout.split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert hawser("list", "--format", "json").stdout.strip() in ("[]", "null")
    with LeakCheck(hawser.root, [c1, c2], watch=[b1.path, b2.path]):
        s1 = create(hawser, b1, c1)
        s2 = started(hawser, b2, c2)
        lines = hawser("list").stdout.splitlines()
        assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
        rows = [line.split() for line in lines[1:]]
        assert rows == [[c1, str(s1["pid"]), "created", str(b1.path), s1["created"], "root"],
                        [c2, str(s2["pid"]), "running", str(b2.path), s2["created"], "root"]]
        entries = json.loads(hawser("list", "--format", "json").stdout)
        assert isinstance(entries, list)
        got = [{k: e[k] for k in ("id", "pid", "status", "bundle", "created")} for e in entries]
        assert got == [{k: s[k] for k in ("id", "pid", "status", "bundle", "created")}
                       for s in (s1, s2)]
        assert hawser("list", "-q").stdout == f"{c1}\n{c2}\n"
        assert hawser("list", "--quiet").stdout == f"{c1}\n{c2}\n"
        hawser("delete", "--force", c1)
        hawser("delete", "--force", c2)
    assert hawser("list", "-q").stdout == ""


# -- one id, many callers -------------------------------------------------------------------------

def parallel(n, fn):
    barrier = threading.Barrier(n)

    def go(i):
        barrier.wait()
        return fn(i)
    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


def test_parallel_create_same_id(hawser, make_bundle):
    bundles = [make_bundle(args=["sleep", "100"]) for _ in range(10)]
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[b.path for b in bundles]):
        results = parallel(10, lambda i: run_hawser(
            hawser.cmd("create", "--bundle", bundles[i].path, cid), timeout=60))
        ok = [i for i, r in enumerate(results) if r.returncode == 0]
        assert len(ok) == 1, results
        for i, r in enumerate(results):
            if i not in ok:
                assert "already exists" in r.stderr, r
                assert r.stderr.count("\n") == 1, r
        st = hawser.state(cid)
        assert st["status"] == "created" and st["bundle"] == str(bundles[ok[0]].path)
        assert alive(st["pid"])
        # exactly one init: the losers started nothing
        inits = [p for pid, p in process_table().items()
                 if f"/hawser/{cid}" in p["cgroup"] and p["state"] not in "ZX"]
        assert len(inits) == 1, inits
        hawser("delete", cid)


def test_parallel_start(hawser, make_bundle, tmp_path):
    host = tmp_path / "host"
    bundle = with_host_dir(make_bundle(
        args=["sh", "-c", "echo ran >> /tmp/runs; exec sleep 100"]), host)
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = create(hawser, bundle, cid)["pid"]
        results = parallel(10, lambda i: run_hawser(hawser.cmd("start", cid), timeout=60))
        codes = [r.returncode for r in results]
        assert codes.count(0) == 1, results
        for r in results:
            if r.returncode:
                assert "running" in r.stderr, r
        st = hawser.state(cid)
        assert (st["status"], st["pid"]) == ("running", pid)
        wait_for(lambda: (host / "runs").exists())
        time.sleep(0.2)
        assert (host / "runs").read_text() == "ran\n"
        hawser("delete", "--force", cid)


def test_parallel_delete_force(hawser, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        pid = started(hawser, bundle, cid)["pid"]
        results = parallel(10, lambda i: run_hawser(hawser.cmd("delete", "--force", cid),
                                                    timeout=60))
        assert [r.returncode for r in results] == [0] * 10, results
        assert all(r.stderr == "" for r in results), results
        assert not alive(pid)
        assert not (hawser.root / cid).exists() and cgroup_dirs(cid) == []


# -- global flags, logging ------------------------------------------------------------------------

RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def test_log_json(hawser, tmp_path):
    log = tmp_path / "log.json"
    cid = new_id()
    r = run_hawser(hawser.cmd("state", cid), log=str(log))
    assert r.returncode == 1
    lines = log.read_text().splitlines()
    assert lines
    entries = [json.loads(line) for line in lines]
    for e in entries:
        assert {"level", "msg", "time"} <= set(e)
        assert RFC3339.match(e["time"]), e
    errors = [e for e in entries if e["level"] == "error"]
    assert errors[-1]["msg"] == f"container {cid} does not exist"
    # the same error for a person reading stderr, on one line
    assert r.stderr.strip().splitlines() == [f"hawser: container {cid} does not exist"] or \
        r.stderr.strip().endswith(f"container {cid} does not exist")
    # appended, not truncated
    run_hawser(hawser.cmd("kill", cid), log=str(log))
    entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(entries) > len(lines)
    assert entries[-1]["level"] == "error" and "does not exist" in entries[-1]["msg"]


def test_log_text(hawser, tmp_path):
    log = tmp_path / "log.txt"
    cid = new_id()
    r = run_hawser(hawser.cmd("state", cid), log=str(log), log_format="text")
    assert r.returncode == 1
    last = log.read_text().splitlines()[-1]
    m = re.fullmatch(r'time="([^"]+)" level=error msg="(.*)"', last)
    assert m, last
    assert RFC3339.match(m.group(1))
    assert m.group(2) == f"container {cid} does not exist"


def test_bad_log_format(hawser):
    r = hawser("--log-format", "xml", "list", check=False)
    assert r.returncode != 0 and "xml" in r.stderr


def test_version(hawser):
    r = hawser("--version")
    lines = r.stdout.splitlines()
    assert re.fullmatch(r"hawser version \S+", lines[0]), r.stdout
    assert f"spec: {OCI_VERSION}" in lines
    assert hawser("-v").stdout == r.stdout


def test_help(hawser):
    r = hawser("--help")
    for cmd in ("create", "start", "run", "state", "kill", "delete", "list", "spec", "features"):
        assert re.search(rf"^\s+{cmd}\s", r.stdout, re.M), cmd
    assert "--root" in r.stdout and "--log-format" in r.stdout
    assert hawser("-h").stdout == r.stdout


def test_systemd_cgroup_is_refused(hawser, make_bundle):
    bundle = make_bundle(args=["sleep", "100"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[bundle.path]):
        r = run_hawser(hawser.cmd("--systemd-cgroup", "create", "--bundle", bundle.path, cid))
        assert r.returncode != 0
        assert len(r.stderr.strip().splitlines()) == 1
        assert "--systemd-cgroup" in r.stderr and "not supported" in r.stderr, r


# -- features, spec -------------------------------------------------------------------------------

def test_features(hawser):
    doc = json.loads(hawser("features").stdout)
    validate_features(doc)
    assert doc["ociVersionMax"] == OCI_VERSION
    assert doc["hooks"] == ALL_HOOKS
    assert sorted(doc["linux"]["namespaces"]) == sorted(ALL_NAMESPACES)
    assert {"bind", "rbind", "ro", "nosuid"} <= set(doc["mountOptions"])
    assert "CAP_SYS_ADMIN" in doc["linux"]["capabilities"]
    assert doc["linux"]["cgroup"]["systemd"] is False  # --systemd-cgroup is refused


def test_spec(hawser, tmp_path):
    d = tmp_path / "spec"
    d.mkdir()
    hawser("spec", "--bundle", d)
    text = (d / "config.json").read_text()
    config = validate_config(text.encode())
    assert config["ociVersion"] == OCI_VERSION
    assert config["root"]["path"] == "rootfs"
    assert "user" not in [n["type"] for n in config["linux"]["namespaces"]]
    # refuses to overwrite
    r = hawser("spec", "--bundle", d, check=False)
    assert r.returncode != 0 and "exists" in r.stderr, r.stderr
    assert (d / "config.json").read_text() == text
    # without --bundle: the current directory
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    hawser("spec", cwd=cwd)
    assert json.loads((cwd / "config.json").read_text()) == config


def test_spec_rootless(hawser, tmp_path):
    hawser("spec", "--rootless", "--bundle", tmp_path)
    config = validate_config((tmp_path / "config.json").read_bytes())
    types = [n["type"] for n in config["linux"]["namespaces"]]
    assert "user" in types and "network" not in types  # as runc spec --rootless
    for key, host_id in (("uidMappings", os.getuid()), ("gidMappings", os.getgid())):
        assert config["linux"][key] == [{"containerID": 0, "hostID": host_id, "size": 1}]
