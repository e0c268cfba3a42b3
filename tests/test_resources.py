"""linux.resources through real hawser containers (as root, cgroup v1 as on this host): limits
really enforced (OOM kill, fork failure, CPU throttling), `events`, `update` (flags, -r FILE,
-r -), cgroupsPath placement, and bad values refused before anything is left behind.

Every container has a unique id and is force-deleted in a finalizer; cgroups outside /hawser are
all named hawser-test-<uuid>, made by hawser or by these tests, and removed by finalizers. Only
processes these tests started are signalled.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
import uuid

import pytest
from waits import cpu_ticks, read_pid_file

CG = "/sys/fs/cgroup"
MB = 1 << 20


def _v1_mounts() -> dict[str, str]:
    """controller -> mount point of every v1 hierarchy under /sys/fs/cgroup."""
    out = {}
    try:
        lines = open("/proc/self/mountinfo").read().splitlines()
    except OSError:
        return out
    for line in lines:
        pre, _, post = line.partition(" - ")
        fstype, _, opts = (post.split(" ") + ["", "", ""])[:3]
        point = pre.split(" ")[4]
        if fstype == "cgroup" and point.startswith(CG + "/"):
            for o in opts.split(","):
                if o in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                         "pids", "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc",
                         "name=systemd"):
                    out[o] = point
    return out


def _v2_mounts() -> list[str]:
    """cgroup2 mount points under /sys/fs/cgroup (a hybrid host's `unified`): cleaned too."""
    out = []
    for line in read_lines("/proc/self/mountinfo"):
        pre, _, post = line.partition(" - ")
        if post.split(" ")[0] == "cgroup2" and pre.split(" ")[4].startswith(CG):
            out.append(pre.split(" ")[4])
    return out


def read_lines(path) -> list[str]:
    try:
        with open(path) as f:
            return f.read().splitlines()
    except OSError:
        return []


MOUNTS = _v1_mounts()
CONTROLLERS = [c for c in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                           "pids") if c in MOUNTS]
pytestmark = pytest.mark.skipif(os.geteuid() != 0 or "memory" not in MOUNTS,
                                reason="needs root and cgroup v1 controllers (this host's setup)")


# ---- helpers ---------------------------------------------------------------------------------
def read(path) -> str:
    with open(path) as f:
        return f.read().strip()


def keyed(path) -> dict[str, int]:
    return {k: int(v) for k, v in (ln.split() for ln in read(path).splitlines())}


def procs(d) -> list[int]:
    return [int(x) for x in read(f"{d}/cgroup.procs").split()]


def own_cgroup(ctrl: str) -> str:
    """This process's cgroup in a v1 hierarchy (relative cgroupsPaths hang from it)."""
    for line in read("/proc/self/cgroup").splitlines():
        _, names, path = line.split(":", 2)
        if ctrl in names.split(",") or (ctrl == "" and names == ""):
            return path
    return "/"


def remove_tree(d: str) -> None:
    """rmdir a test cgroup and its children (only hawser-test-* ones: never anything else)."""
    assert "hawser-test-" in d, d
    if not os.path.isdir(d):
        return
    for e in os.scandir(d):
        if e.is_dir(follow_symlinks=False):
            remove_tree(e.path)
    for _ in range(50):
        try:
            os.rmdir(d)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"cannot remove test cgroup {d}")


class Ctr:
    def __init__(self, cid, bundle, pid, cgroups_path=None):
        self.id, self.bundle, self.pid = cid, bundle, pid
        self.cgroups_path = cgroups_path or f"/hawser/{cid}"

    def cgdir(self, ctrl: str) -> str:
        p = self.cgroups_path
        if not p.startswith("/"):
            p = own_cgroup(ctrl).rstrip("/") + "/" + p
        return MOUNTS[ctrl] + p

    def file(self, ctrl: str, name: str) -> str:
        return read(f"{self.cgdir(ctrl)}/{name}")


def detached(hawser, *args, timeout=30, **kw):
    """hawser with stdio on files (a detached container keeps inherited stdio open)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(hawser.cmd(*args), stdout=out, stderr=err, timeout=timeout,
                           stdin=kw.pop("stdin", subprocess.DEVNULL), **kw)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


def new_id(tag="hr") -> str:
    return f"{tag}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def start(hawser, make_bundle, request):
    """start(resources=None, cgroups_path=None, edit=None) -> Ctr running `sleep 1000`."""

    def factory(resources=None, cgroups_path=None, edit=None, args=("sleep", "1000")) -> Ctr:
        cid = new_id()
        b = make_bundle(args=args)
        if resources is not None:
            b.linux["resources"] = resources
        if cgroups_path is not None:
            b.linux["cgroupsPath"] = cgroups_path
        if edit:
            edit(b.config)
        b.write()
        request.addfinalizer(lambda: subprocess.run(hawser.cmd("delete", "--force", cid),
                                                    capture_output=True, timeout=60))
        r = detached(hawser, "run", "-d", "--bundle", str(b.path), cid)
        assert r.returncode == 0, f"run -d failed: {r.stderr}"
        st = hawser.state(cid)
        assert st["status"] == "running", st
        return Ctr(cid, b, st["pid"], cgroups_path)

    return factory


@pytest.fixture
def test_cgroup_parent(request):
    """A fresh `/hawser-test-<uuid>` name; every hierarchy's copy is removed afterwards (also
    under this process's own cgroup, where relative cgroupsPaths land)."""
    name = f"hawser-test-{uuid.uuid4().hex[:12]}"

    def cleanup():
        points = [(point, own_cgroup(ctrl)) for ctrl, point in MOUNTS.items()]
        points += [(point, own_cgroup("")) for point in _v2_mounts()]
        for point, own in points:
            remove_tree(f"{point}/{name}")
            if own.rstrip("/"):
                remove_tree(f"{point}{own.rstrip('/')}/{name}")

    request.addfinalizer(cleanup)
    return name


def no_traceback(r):
    assert "Traceback" not in r.stderr, r.stderr


class EventReader:
    """`hawser events` in the background; its JSON lines collected by a thread."""

    def __init__(self, hawser, *args):
        self.proc = subprocess.Popen(hawser.cmd("events", *args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.raw.append(line)
            self.lines.append(json.loads(line))

    def wait_for(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(pred(e) for e in list(self.lines)):
                return True
            if self.proc.poll() is not None and not self.t.is_alive():
                break
            time.sleep(0.05)
        return any(pred(e) for e in list(self.lines))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.t.join(5)
        return self.proc.stderr.read()


# ---- limits really enforced --------------------------------------------------------------------
def test_memory_limit_oom_kills_and_events_reports_oom(hawser, start):
    """Every OOM kill gets an `oom` event (runc prints one per kill: 3 kills, 3 events)."""
    c = start({"memory": {"limit": 32 * MB}})
    assert int(c.file("memory", "memory.limit_in_bytes")) == 32 * MB
    kills = 3
    ev = EventReader(hawser, "--interval", "100ms", c.id)
    try:
        assert ev.wait_for(lambda e: e.get("type") == "stats", 10), \
            f"no stats line from events: {ev.raw}"
        for i in range(kills):
            # busybox tail keeps the whole "line" of /dev/zero in memory: it grows until killed
            r = hawser("exec", c.id, "tail", "/dev/zero", check=False, timeout=60)
            assert r.returncode == 128 + signal.SIGKILL, (r.returncode, r.stderr)
            assert keyed(c.cgdir("memory") + "/memory.oom_control")["oom_kill"] == i + 1
        assert int(c.file("memory", "memory.failcnt")) > 0
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and \
                sum(e.get("type") == "oom" for e in list(ev.lines)) < kills:
            time.sleep(0.05)
    finally:
        err = ev.stop()
    ooms = [e for e in ev.lines if e.get("type") == "oom"]
    assert len(ooms) >= kills, \
        f"{kills} OOM kills but {len(ooms)} oom events:\n{''.join(ev.raw[-2:])}{err}"
    assert all(e["id"] == c.id for e in ooms)
    assert hawser.state(c.id)["status"] == "running", "only the offender is killed"


def test_pids_limit_stops_fork(hawser, start):
    c = start({"pids": {"limit": 10}})
    assert c.file("pids", "pids.max") == "10"
    r = hawser("exec", c.id, "sh", "-c",
               "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do sleep 5 & done; wait",
               check=False, timeout=60)
    assert "can't fork" in r.stderr, (r.returncode, r.stderr)
    assert int(c.file("pids", "pids.current")) <= 10
    events = dict(ln.split() for ln in c.file("pids", "pids.events").splitlines())
    assert int(events["max"]) >= 1


def test_cpu_quota_is_applied_and_throttles(hawser, start, tmp_path):
    c = start({"cpu": {"quota": 10000, "period": 100000}})
    assert c.file("cpu", "cpu.cfs_quota_us") == "10000"
    assert c.file("cpu", "cpu.cfs_period_us") == "100000"
    pid_file = tmp_path / "busy.pid"
    r = detached(hawser, "exec", "-d", "--pid-file", pid_file, c.id, "sh", "-c",
                 "while :; do :; done")
    assert r.returncode == 0, r.stderr
    busy = read_pid_file(pid_file)
    time.sleep(0.35)
    s1, t1 = keyed(c.cgdir("cpu") + "/cpu.stat"), cpu_ticks(busy)
    time.sleep(1.0)
    s2, t2 = keyed(c.cgdir("cpu") + "/cpu.stat"), cpu_ticks(busy)
    assert s2["nr_throttled"] > s1["nr_throttled"], (s1, s2)
    assert s2["throttled_time"] > s1["throttled_time"]
    ticks_per_s = os.sysconf("SC_CLK_TCK")
    # 10% of one CPU over 1 s is 0.1 s; allow generous slack, far below an unthrottled 1 s
    assert t2 - t1 <= 0.35 * ticks_per_s, f"{t2 - t1} ticks in 1 s at a 10% quota"


def test_events_stats_prints_one_line(hawser, start):
    c = start({"memory": {"limit": 64 * MB}, "pids": {"limit": 100}})
    r = hawser("events", "--stats", c.id, timeout=20)
    lines = r.stdout.splitlines()
    assert len(lines) == 1, r.stdout
    e = json.loads(lines[0])
    assert e["type"] == "stats" and e["id"] == c.id
    data = e["data"]
    assert data["cpu"]["usage"]["total"] > 0
    assert data["memory"]["usage"]["limit"] == 64 * MB
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["current"] >= 1 and data["pids"]["limit"] == 100
    r = hawser("events", "--stats", "no-such-container-q", check=False)
    assert r.returncode != 0 and "no-such-container-q" in r.stderr


def test_events_of_a_stopped_container_fails(hawser, start):
    c = start()
    hawser("kill", c.id, "KILL")
    deadline = time.monotonic() + 10
    while hawser.state(c.id)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    r = hawser("events", "--stats", c.id, check=False)
    assert r.returncode != 0 and "not running" in r.stderr, r.stderr


def test_events_follows_until_the_container_stops(hawser, start):
    c = start()
    ev = EventReader(hawser, "--interval", "100ms", c.id)
    try:
        assert ev.wait_for(lambda e: e.get("type") == "stats", 10), ev.raw
        hawser("kill", c.id, "KILL")
        ev.proc.wait(10)  # events ends once the container is gone
    finally:
        err = ev.stop()
    assert all(e["id"] == c.id and e["type"] == "stats" for e in ev.lines), err
    assert all("pids" in e["data"] and "memory" in e["data"] for e in ev.lines)


@pytest.mark.parametrize("interval", ["0s", "abc", "-1s", "5"])
def test_events_bad_interval(hawser, start, interval):
    c = start()
    r = hawser("events", "--interval", interval, c.id, check=False, timeout=10)
    assert r.returncode != 0 and "interval" in r.stderr, r.stderr
    no_traceback(r)


# ---- update ------------------------------------------------------------------------------------
def _all_cpus() -> str:
    return read(f"{MOUNTS['cpuset']}/cpuset.cpus")


def test_update_flags_read_back(hawser, start):
    c = start()
    hawser("update", "--memory", "64m", "--memory-swap", "128m", "--cpu-quota", "20000",
           "--cpu-period", "50000", "--cpu-shares", "512", "--cpuset-cpus", "0",
           "--pids-limit", "50", c.id)
    assert int(c.file("memory", "memory.limit_in_bytes")) == 64 * MB
    if os.path.exists(c.cgdir("memory") + "/memory.memsw.limit_in_bytes"):
        assert int(c.file("memory", "memory.memsw.limit_in_bytes")) == 128 * MB
    assert c.file("cpu", "cpu.cfs_quota_us") == "20000"
    assert c.file("cpu", "cpu.cfs_period_us") == "50000"
    assert c.file("cpu", "cpu.shares") == "512"
    assert c.file("cpuset", "cpuset.cpus") == "0"
    assert c.file("pids", "pids.max") == "50"
    # each flag alone changes only its own value; --memory can go down and up again
    hawser("update", "--pids-limit", "60", c.id)
    assert c.file("pids", "pids.max") == "60"
    assert int(c.file("memory", "memory.limit_in_bytes")) == 64 * MB
    hawser("update", "--memory", "100m", "--memory-swap", "200m", c.id)
    assert int(c.file("memory", "memory.limit_in_bytes")) == 100 * MB
    hawser("update", "--cpu-quota", "-1", c.id)
    assert c.file("cpu", "cpu.cfs_quota_us") == "-1"
    hawser("update", "--cpuset-cpus", _all_cpus(), c.id)
    assert c.file("cpuset", "cpuset.cpus") == _all_cpus()
    assert hawser.state(c.id)["status"] == "running"


CONTAINERD_RESOURCES = {
    # what containerd's shim pipes into `update --resources -`: a whole LinuxResources, devices
    # included (update leaves device rules alone), zero values for what is unset
    "devices": [{"allow": False, "access": "rwm"},
                {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
    "memory": {"limit": 96 * MB, "swap": 192 * MB, "reservation": 48 * MB},
    "cpu": {"shares": 256, "quota": 30000, "period": 100000, "realtimeRuntime": 0,
            "realtimePeriod": 0, "cpus": "0", "mems": ""},
    "pids": {"limit": 40},
    "blockIO": {"weight": 500},
}


@pytest.mark.parametrize("via", ["file", "stdin"])
def test_update_resources_json(hawser, start, tmp_path, via):
    c = start()
    devices_before = c.file("devices", "devices.list")
    doc = json.dumps(CONTAINERD_RESOURCES)
    if via == "file":
        f = tmp_path / "resources.json"
        f.write_text(doc)
        hawser("update", "-r", f, c.id)
    else:
        hawser("update", "--resources", "-", c.id, input=doc)
    assert int(c.file("memory", "memory.limit_in_bytes")) == 96 * MB
    assert int(c.file("memory", "memory.soft_limit_in_bytes")) == 48 * MB
    if os.path.exists(c.cgdir("memory") + "/memory.memsw.limit_in_bytes"):
        assert int(c.file("memory", "memory.memsw.limit_in_bytes")) == 192 * MB
    assert c.file("cpu", "cpu.shares") == "256"
    assert c.file("cpu", "cpu.cfs_quota_us") == "30000"
    assert c.file("cpu", "cpu.cfs_period_us") == "100000"
    assert c.file("cpuset", "cpuset.cpus") == "0"
    assert c.file("pids", "pids.max") == "40"
    weight = next(n for n in ("blkio.weight", "blkio.bfq.weight")
                  if os.path.exists(f"{c.cgdir('blkio')}/{n}"))
    assert c.file("blkio", weight).split()[-1] == "500"
    assert c.file("devices", "devices.list") == devices_before
    assert hawser("exec", c.id, "true").returncode == 0


def test_update_of_a_stopped_container_fails(hawser, start):
    c = start({"pids": {"limit": 20}})
    hawser("kill", c.id, "KILL")
    deadline = time.monotonic() + 10
    while hawser.state(c.id)["status"] != "stopped" and time.monotonic() < deadline:
        time.sleep(0.05)
    r = hawser("update", "--pids-limit", "30", c.id, check=False)
    assert r.returncode != 0
    assert "stopped" in r.stderr or "not running" in r.stderr, r.stderr
    no_traceback(r)
    r = hawser("update", "--pids-limit", "30", "no-such-container-u", check=False)
    assert r.returncode != 0 and "no-such-container-u" in r.stderr


SNAPSHOT = [("memory", "memory.limit_in_bytes"), ("memory", "memory.soft_limit_in_bytes"),
            ("cpu", "cpu.shares"), ("cpu", "cpu.cfs_quota_us"), ("cpu", "cpu.cfs_period_us"),
            ("cpuset", "cpuset.cpus"), ("pids", "pids.max")]


@pytest.mark.parametrize("args, stdin, word", [
    (["--memory", "-5"], None, "-5"),
    (["--memory", "abc"], None, "abc"),
    (["--memory", "1x"], None, "1x"),
    (["--pids-limit", "x"], None, "x"),
    (["--cpu-shares", "many"], None, "many"),
    (["--memory", "80m", "--pids-limit", "x"], None, "x"),
    (["--pids-limit", "70", "--memory", "abc"], None, "abc"),
    (["--cpu-quota", "5"], None, "quota"),
    (["--cpuset-cpus", "0-", "--pids-limit", "70"], None, "cpus"),
    (["-r", "-"], "{not json", "resources"),
    (["-r", "-"], '["memory"]', "LinuxResources"),
    (["-r", "-"], '{"memory": {"limit": -7}, "pids": {"limit": 70}}', "memory.limit"),
    (["-r", "-"], '{"memory": {"limit": "64m"}}', "memory.limit"),
    (["-r", "-"], '{"pids": {"limit": 70}, "cpu": {"shares": 1}}', "cpu.shares"),
    (["-r", "/nonexistent/resources.json"], None, "/nonexistent/resources.json"),
    (["-r", "-", "--memory", "80m"], "{}", "resources"),
])
def test_update_invalid_values_change_nothing(hawser, start, args, stdin, word):
    c = start({"memory": {"limit": 128 * MB}, "pids": {"limit": 90}})
    before = {(ctrl, n): c.file(ctrl, n) for ctrl, n in SNAPSHOT}
    r = hawser("update", *args, c.id, check=False, input=stdin)
    assert r.returncode != 0, f"update {args} succeeded"
    assert word in r.stderr, r.stderr
    no_traceback(r)
    after = {(ctrl, n): c.file(ctrl, n) for ctrl, n in SNAPSHOT}
    assert after == before
    assert hawser.state(c.id)["status"] == "running"


# ---- cgroupsPath -------------------------------------------------------------------------------
def test_cgroups_path_absent_is_hawser_id(hawser, start):
    c = start({"pids": {"limit": 33}})
    for ctrl in CONTROLLERS:
        d = f"{MOUNTS[ctrl]}/hawser/{c.id}"
        assert procs(d) == [c.pid], d
    assert read(f"{MOUNTS['pids']}/hawser/{c.id}/pids.max") == "33"
    hawser("delete", "--force", c.id)
    for ctrl in CONTROLLERS:
        assert not os.path.exists(f"{MOUNTS[ctrl]}/hawser/{c.id}")


def test_cgroups_path_absolute(hawser, start, test_cgroup_parent):
    path = f"/{test_cgroup_parent}/c1"
    c = start({"pids": {"limit": 34}, "memory": {"limit": 100 * MB}}, cgroups_path=path)
    for ctrl in CONTROLLERS:
        assert procs(MOUNTS[ctrl] + path) == [c.pid], ctrl
    assert read(f"{MOUNTS['pids']}{path}/pids.max") == "34"
    assert int(read(f"{MOUNTS['memory']}{path}/memory.limit_in_bytes")) == 100 * MB
    assert json.loads(hawser("ps", "--format", "json", c.id).stdout) == [c.pid]
    hawser("update", "--pids-limit", "35", c.id)
    assert read(f"{MOUNTS['pids']}{path}/pids.max") == "35"
    hawser("delete", "--force", c.id)
    for ctrl in CONTROLLERS:
        assert not os.path.exists(MOUNTS[ctrl] + path), ctrl


def test_cgroups_path_relative(hawser, start, test_cgroup_parent):
    rel = f"{test_cgroup_parent}/c1"
    c = start({"pids": {"limit": 36}}, cgroups_path=rel)
    for ctrl in CONTROLLERS:
        d = MOUNTS[ctrl] + own_cgroup(ctrl).rstrip("/") + "/" + rel
        assert procs(d) == [c.pid], d
    assert c.file("pids", "pids.max") == "36"
    hawser("delete", "--force", c.id)
    for ctrl in CONTROLLERS:
        assert not os.path.exists(c.cgdir(ctrl)), ctrl


def test_cgroups_path_with_processes_is_refused(hawser, make_bundle, test_cgroup_parent):
    busy = f"{MOUNTS['pids']}/{test_cgroup_parent}/busy"
    os.makedirs(busy)
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        with open(f"{busy}/cgroup.procs", "w") as f:
            f.write(str(sleeper.pid))
        cid = new_id()
        b = make_bundle(args=["sleep", "1000"])
        b.linux["cgroupsPath"] = f"/{test_cgroup_parent}/busy"
        b.write()
        r = detached(hawser, "run", "-d", "--bundle", str(b.path), cid)
        if r.returncode == 0:
            subprocess.run(hawser.cmd("delete", "--force", cid), capture_output=True)
        assert r.returncode != 0, "a cgroup that already holds processes must be refused"
        assert "busy" in r.stderr and "process" in r.stderr, r.stderr
        no_traceback(r)
        assert cid not in hawser.ids(), "no state is left"
        assert procs(busy) == [sleeper.pid], "the foreign cgroup is left as it was"
        assert sleeper.poll() is None, "its process is not killed"
        for ctrl in CONTROLLERS:
            if ctrl != "pids":
                assert not os.path.exists(f"{MOUNTS[ctrl]}/{test_cgroup_parent}/busy"), ctrl
    finally:
        sleeper.kill()
        sleeper.wait()


# ---- bad values in config.json -----------------------------------------------------------------
@pytest.mark.parametrize("resources, words", [
    ({"memory": {"limit": -5}}, ["memory.limit", "-5"]),
    ({"memory": {"limit": 64 * MB, "swap": 32 * MB}}, ["memory.swap"]),
    ({"devices": [{"allow": False, "access": "rwm"},
                  {"allow": True, "type": "x", "major": 1, "minor": 3, "access": "rwm"}]},
     ["devices", "type"]),
    ({"devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwz"}]},
     ["devices", "access"]),
    ({"blockIO": {"weight": 5}}, ["blockIO.weight", "5"]),
    ({"pids": {"limit": "ten"}}, ["pids.limit"]),
    ({"cpu": {"shares": 1}}, ["cpu.shares"]),
    ({"cpu": {"quota": 20000, "period": 5}}, ["cpu.period"]),
    ({"cpu": {"cpus": "0-"}}, ["cpu.cpus"]),
    ({"cpu": {"cpus": "99"}}, ["cpu.cpus", "99"]),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 0}]}, ["pageSize"]),
])
def test_bad_resources_fail_create_and_leave_nothing(hawser, make_bundle, resources, words):
    cid = new_id()
    b = make_bundle(args=["true"])
    b.linux["resources"] = resources
    b.write()
    r = detached(hawser, "create", "--bundle", b.path, cid)
    if r.returncode == 0:
        hawser("delete", "--force", cid, check=False)
    assert r.returncode != 0, f"create accepted {resources}"
    for w in words:
        assert w in r.stderr, r.stderr
    no_traceback(r)
    assert hawser.ids() == [], "no state dir is left"
    for ctrl in MOUNTS:
        assert not os.path.exists(f"{MOUNTS[ctrl]}/hawser/{cid}"), ctrl


def test_bad_resources_with_an_absolute_path_leave_no_cgroup(hawser, make_bundle,
                                                             test_cgroup_parent):
    """A failure after mkdir (the kernel refuses cpus 99) removes the container's cgroup in
    every hierarchy (intermediate parents may stay, as with runc: the fixture removes them)."""
    cid = new_id()
    b = make_bundle(args=["true"])
    b.linux["cgroupsPath"] = f"/{test_cgroup_parent}/a/b"
    b.linux["resources"] = {"pids": {"limit": 5}, "cpu": {"cpus": "99"}}
    b.write()
    r = detached(hawser, "create", "--bundle", b.path, cid)
    if r.returncode == 0:
        hawser("delete", "--force", cid, check=False)
    assert r.returncode != 0 and "cpu.cpus" in r.stderr, r.stderr
    assert hawser.ids() == []
    for ctrl, point in MOUNTS.items():
        assert not os.path.exists(f"{point}/{test_cgroup_parent}/a/b"), ctrl


def test_memory_limit_too_small_for_init_fails_clearly(hawser, make_bundle):
    """A 1024-byte limit (the kernel rounds it to one page) cannot hold any init. runc: `unable
    to set memory limit to 1024 (current usage: ..., peak usage: ...)`, or `container init was
    OOM-killed (memory limit too low?)`."""
    cid = new_id()
    b = make_bundle(args=["true"])
    b.linux["resources"] = {"memory": {"limit": 1024}}
    b.write()
    r = detached(hawser, "create", "--bundle", b.path, cid)
    if r.returncode == 0:
        hawser("delete", "--force", cid, check=False)
    assert r.returncode != 0
    no_traceback(r)
    assert "memory" in r.stderr, r.stderr
    assert hawser.ids() == []
    for ctrl in MOUNTS:
        assert not os.path.exists(f"{MOUNTS[ctrl]}/hawser/{cid}"), ctrl
