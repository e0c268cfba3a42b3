"""runtime.cgroups.

cgroup v1 is tested for real: this host is a v1 hybrid (controllers under /sys/fs/cgroup/<name>).
Every cgroup made here is named hawser-test-*, holds only processes these tests started, and is
removed by a finalizer even when a test fails.

cgroup v2 has no real hierarchy with controllers here (the hybrid host's /sys/fs/cgroup/unified
holds no usable controller), so V2Manager's file writes are tested against a temporary directory
laid out like cgroup2 (cgroup.controllers, cgroup.subtree_control, memory.max, ...): a plain
filesystem keeps the last value written, which is what those tests read back. Where
/sys/fs/cgroup/unified is a real cgroup2 mount, create/apply/pids/freeze/destroy also run there
for real, in a hawser-test-* child, without enabling any controller.
"""
from __future__ import annotations

import errno
import os
import select
import subprocess
import sys
import time

import pytest

import runtime.cgroups as cg
from runtime.cgroups import base, devices
from runtime.cgroups.v2 import V2Manager, blkio_to_io_weight, shares_to_weight
from runtime.errors import HawserError
from waits import cpu_ticks

ROOT = "/sys/fs/cgroup"
UNIFIED = "/sys/fs/cgroup/unified"
MB = 1 << 20
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _mounted():
    try:
        return base.mounts()
    except OSError:
        return []


HAVE_V1 = os.geteuid() == 0 and any(
    t == "cgroup" and p == f"{ROOT}/memory" for _, p, t, _ in _mounted())
HAVE_UNIFIED = os.geteuid() == 0 and any(
    t == "cgroup2" and p == UNIFIED for _, p, t, _ in _mounted())
v1_only = pytest.mark.skipif(not HAVE_V1, reason="needs root and cgroup v1 at /sys/fs/cgroup")

_seq = iter(range(1_000_000))


def test_name(tag: str = "") -> str:
    return f"hawser-test-{os.getpid()}-{next(_seq)}{tag}"


test_name.__test__ = False  # a helper, not a test


# ---- process and cgroup bookkeeping ----------------------------------------------------------
class Lab:
    """Managers and processes made by one test; cleanup() undoes all of it."""

    def __init__(self):
        self.managers, self.procs, self.extra_dirs = [], [], []

    def manager(self, path=None, **kw):
        m = cg.open_manager(path or "/" + test_name(), "unused", **kw)
        self.managers.append(m)
        return m

    def start(self, m, code="import time; time.sleep(60)"):
        """A python child that joins m before running code (it waits for a line on stdin)."""
        p = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.readline()\n" + code],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        self.procs.append(p)
        m.apply(p.pid)
        p.stdin.write("go\n")
        p.stdin.flush()
        return p

    def cleanup(self):
        for m in self.managers:  # frozen tasks cannot die: thaw first
            try:
                if m.is_frozen():
                    m.thaw()
            except (HawserError, OSError):
                pass
        for p in self.procs:  # only the processes we started, by pid
            if p.poll() is None:
                p.kill()
            p.wait()
            for f in (p.stdin, p.stdout, p.stderr):
                f.close()
        for m in self.managers:
            try:
                m.destroy()
            except HawserError:
                pass
        for d in reversed(self.extra_dirs):
            try:
                os.rmdir(d)
            except OSError:
                pass


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.cleanup()


def rd(path: str) -> str:
    with open(path) as f:
        return f.read().strip()


def block_dev() -> tuple[int, int]:
    st = os.stat("/dev/loop0")
    return os.major(st.st_rdev), os.minor(st.st_rdev)


# ---- pure logic -------------------------------------------------------------------------------
MOUNTINFO = """\
20 1 0:5 / / rw - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
PROC_CGROUP = """\
9:name=systemd:/user.slice
4:memory:/docker/abc/inner
2:cpu,cpuacct:/mine
0::/user.slice/session-1.scope
"""


@pytest.fixture
def fake_proc(tmp_path):
    (tmp_path / "mountinfo").write_text(MOUNTINFO)
    (tmp_path / "cgroup").write_text(PROC_CGROUP)
    return {"mountinfo": str(tmp_path / "mountinfo"), "proc_cgroup": str(tmp_path / "cgroup")}


def test_detect(tmp_path):
    mi = tmp_path / "mi"
    mi.write_text(MOUNTINFO)
    assert cg.detect(str(mi)) == "v1"  # hybrid counts as v1
    mi.write_text("30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
    assert cg.detect(str(mi)) == "v2"
    mi.write_text("20 1 0:5 / / rw - ext4 /dev/vda rw\n")
    with pytest.raises(HawserError, match="no cgroup filesystem"):
        cg.detect(str(mi))


def test_cgroups_path_resolution_v1(fake_proc):
    m = cg.open_manager("/a/b", "c1", version="v1", **fake_proc)
    assert m.paths() == {"cpu": "/sys/fs/cgroup/cpu,cpuacct/a/b",
                         "cpuacct": "/sys/fs/cgroup/cpu,cpuacct/a/b",
                         "memory": "/sys/fs/cgroup/memory/a/b",
                         "name=systemd": "/sys/fs/cgroup/systemd/a/b"}
    # absent -> /hawser/<id>; ".." cannot climb out
    assert cg.open_manager(None, "c1", version="v1", **fake_proc).paths()["memory"] \
        == "/sys/fs/cgroup/memory/hawser/c1"
    assert cg.open_manager("/../../x/../y", "c1", version="v1", **fake_proc).paths()["memory"] \
        == "/sys/fs/cgroup/memory/y"
    # relative -> under our own cgroup per hierarchy, minus the mount root (no cgroupns)
    rel = cg.open_manager("../../rel", "c1", version="v1", **fake_proc).paths()
    assert rel["cpu"] == "/sys/fs/cgroup/cpu,cpuacct/mine/rel"
    assert rel["memory"] == "/sys/fs/cgroup/memory/inner/rel"
    assert rel["name=systemd"] == "/sys/fs/cgroup/systemd/user.slice/rel"


def test_cgroups_path_resolution_v2(fake_proc):
    kw = dict(version="v2", proc_cgroup=fake_proc["proc_cgroup"])
    assert cg.open_manager("/a/b", "c1", **kw).paths() == {"": "/sys/fs/cgroup/a/b"}
    # relative: beside our own cgroup (under its parent), like runc
    assert cg.open_manager("x", "c1", **kw).paths() == {"": "/sys/fs/cgroup/user.slice/x"}
    assert cg.open_manager(None, "c1", **kw).paths() == {"": "/sys/fs/cgroup/hawser/c1"}


def test_cgroups_path_refusals(fake_proc):
    with pytest.raises(HawserError, match="systemd-style"):
        cg.open_manager("system.slice:docker:abc", "c1", version="v1", **fake_proc)
    for p in ("/", "/..", "."):
        with pytest.raises(HawserError, match="root cgroup"):
            cg.open_manager(p, "c1", version="v1", **fake_proc)


def test_to_dict_round_trip(fake_proc):
    for version in ("v1", "v2"):
        m = cg.open_manager("/a/b", "c1", version=version, **fake_proc)
        d = m.to_dict()
        back = cg.from_dict(d)
        assert type(back) is type(m) and back.paths() == m.paths() and back.to_dict() == d


def test_conversions():
    assert shares_to_weight(2) == 1 and shares_to_weight(262144) == 10000
    assert shares_to_weight(1024) == 39  # runc: 1 + ((1024-2)*9999)/262142
    assert blkio_to_io_weight(10) == 1 and blkio_to_io_weight(1000) == 10000
    assert blkio_to_io_weight(500) == 4950


def test_device_emulator():
    n = devices.normalize
    deny_all = [{"allow": False, "access": "rwm"}]
    target = devices.emulate(n(deny_all + devices.DEFAULT_RULES))
    assert target[0] is False
    assert target[1][("c", 1, 3)] == "rwm" and target[1][("c", -1, -1)] == "m"
    assert devices.restricts(n(deny_all))
    assert not devices.restricts(n([{"allow": True, "type": "c", "major": 1, "minor": 3}]))
    assert not devices.restricts(n(deny_all + [{"allow": True}]))  # deny all, then allow all
    # a partial "a" rule means c and b, never a reset
    assert n([{"allow": False, "type": "a", "major": 7}]) == [
        (False, "c", 7, -1, "rwm"), (False, "b", 7, -1, "rwm")]
    # transitions between two deny-default states need no reset
    cur = devices.parse_list("c 1:3 rwm\nc 1:5 rw\nc 136:* rwm\n")
    tgt = devices.emulate(n(deny_all + [{"allow": True, "type": "c", "major": 1, "minor": 3},
                                        {"allow": True, "type": "c", "major": 1, "minor": 5}]))
    assert devices.v1_writes(cur, tgt) == [("devices.allow", "c 1:5 m"),
                                           ("devices.deny", "c 136:* rwm")]
    for bad, msg in (({"allow": True, "type": "u"}, "not a device type"),
                     ({"allow": True, "access": "rwx"}, "access"),
                     ({"allow": "yes"}, "allow"), ({"allow": True, "major": -3}, "major")):
        with pytest.raises(HawserError, match=msg):
            n([bad])


# ---- cgroup v1, for real ----------------------------------------------------------------------
BAD_V1 = [
    ({"memory": {"limit": -5}}, "linux.resources.memory.limit: -5 is invalid"),
    ({"memory": {"limit": "1G"}}, "linux.resources.memory.limit: '1G' is invalid"),
    ({"memory": {"limit": 64 * MB, "swap": 32 * MB}}, "linux.resources.memory.swap: "),
    ({"memory": {"swappiness": 101}}, "linux.resources.memory.swappiness: 101 is invalid"),
    ({"cpu": {"shares": 1}}, "linux.resources.cpu.shares: 1 is invalid"),
    ({"cpu": {"quota": 5}}, "linux.resources.cpu.quota: 5 is invalid"),
    ({"cpu": {"period": 10}}, "linux.resources.cpu.period: 10 is invalid"),
    ({"cpu": {"cpus": "0-a"}}, "linux.resources.cpu.cpus: '0-a' is invalid"),
    ({"pids": {"limit": True}}, "linux.resources.pids.limit: True is invalid"),
    ({"blockIO": {"weight": 5}}, "linux.resources.blockIO.weight: 5 is invalid"),
    ({"blockIO": {"throttleReadBpsDevice": [{"major": 7}]}}, r"throttleReadBpsDevice\[0\].minor"),
    ({"devices": [{"allow": False, "type": "x"}]}, r"linux.resources.devices\[0\].type"),
    ({"hugepageLimits": [{"pageSize": "3MB", "limit": 1}]}, r"hugepageLimits\[0\].pageSize"),
    ({"unified": {"memory.high": "1G"}},
     "linux.resources.unified: can only be used with cgroup v2"),
    ({"network": {"classID": 1}}, "net_cls cgroup v1 controller"),  # not mounted here
    ({"rdma": {"mlx5_1": {"hcaHandles": -1}}}, "linux.resources.rdma.mlx5_1.hcaHandles"),
]


@v1_only
@pytest.mark.parametrize("res,msg", BAD_V1, ids=[m for _, m in BAD_V1])
def test_v1_bad_values_create_nothing(lab, res, msg):
    m = lab.manager("/" + test_name() + "/leaf")
    with pytest.raises(HawserError, match=msg.replace("(", r"\(").replace(")", r"\)")):
        m.create(res)
    for d in m.dirs():
        assert not os.path.exists(d) and not os.path.exists(os.path.dirname(d))


@v1_only
def test_v1_create_set_apply_pids_destroy(lab):
    parent = "/" + test_name()
    m = lab.manager(parent + "/c1")
    lab.extra_dirs += [d.rsplit("/", 1)[0] for d in m.dirs()]
    major, minor = block_dev()
    res = {"memory": {"limit": 64 * MB, "swap": 64 * MB, "reservation": 32 * MB,
                      "kernel": 128 * MB, "kernelTCP": 16 * MB, "swappiness": 10,
                      "disableOOMKiller": False},
           "cpu": {"shares": 512, "quota": 50000, "period": 100000, "burst": 1000, "cpus": "0",
                   "mems": "0", "idle": 0},
           "pids": {"limit": 50},
           "blockIO": {"weight": 500, "throttleReadBpsDevice": [
               {"major": major, "minor": minor, "rate": 1048576}],
               "throttleWriteIOPSDevice": [{"major": major, "minor": minor, "rate": 100}]},
           "devices": [{"allow": False, "access": "rwm"}]}
    m.create(res)
    p = m.paths()
    assert rd(p["memory"] + "/memory.limit_in_bytes") == str(64 * MB)
    assert rd(p["memory"] + "/memory.memsw.limit_in_bytes") == str(64 * MB)
    assert rd(p["memory"] + "/memory.soft_limit_in_bytes") == str(32 * MB)
    assert rd(p["memory"] + "/memory.swappiness") == "10"
    assert rd(p["cpu"] + "/cpu.shares") == "512"
    assert rd(p["cpu"] + "/cpu.cfs_quota_us") == "50000"
    assert rd(p["cpu"] + "/cpu.cfs_period_us") == "100000"
    assert rd(p["cpu"] + "/cpu.cfs_burst_us") == "1000"
    assert rd(p["cpuset"] + "/cpuset.cpus") == "0"
    # the new intermediate cpuset got cpus/mems from its parent, or no task could join below it
    assert rd(os.path.dirname(p["cpuset"]) + "/cpuset.cpus") == rd(ROOT + "/cpuset/cpuset.cpus")
    assert rd(p["pids"] + "/pids.max") == "50"
    assert rd(p["blkio"] + "/blkio.throttle.read_bps_device") == f"{major}:{minor} 1048576"
    assert rd(p["blkio"] + "/blkio.throttle.write_iops_device") == f"{major}:{minor} 100"
    if os.path.exists(p["blkio"] + "/blkio.bfq.weight"):
        assert "500" in rd(p["blkio"] + "/blkio.bfq.weight")
    listed = rd(p["devices"] + "/devices.list").splitlines()
    assert "c 1:3 rwm" in listed and "c 136:* rwm" in listed and "a *:* rwm" not in listed

    sleeper = lab.start(m)
    for d in m.dirs():
        assert str(sleeper.pid) in rd(d + "/cgroup.procs").split()
    assert m.pids() == [sleeper.pid]
    again = cg.from_dict(m.to_dict())  # what a later `hawser ps` would do
    assert again.pids() == [sleeper.pid]
    with pytest.raises(HawserError, match="holds processes"):
        m.destroy()  # destroy kills nothing: the busy cgroup stays
    sleeper.kill()
    sleeper.wait()
    m.destroy()
    m.destroy()  # already gone: fine
    for d in m.dirs():
        assert not os.path.exists(d)
    assert all(os.path.isdir(os.path.dirname(d)) for d in m.dirs())  # shared parent stays


@v1_only
def test_v1_existing_cgroup_with_processes_is_refused(lab):
    path = "/" + test_name()
    m = lab.manager(path)
    m.create()
    lab.start(m)
    other = lab.manager(path)
    with pytest.raises(HawserError, match=r"cgroupsPath .* already holds processes \(1\)"):
        other.create({"pids": {"limit": 3}})
    assert rd(m.paths()["pids"] + "/pids.max") == "max"  # nothing written
    empty = lab.manager("/" + test_name())
    empty.create()
    lab.manager(empty.cgroups_path).create({"pids": {"limit": 7}})  # an empty one is reused
    assert rd(empty.paths()["pids"] + "/pids.max") == "7"


@v1_only
def test_v1_freeze_thaw_stops_a_busy_loop(lab):
    m = lab.manager()
    m.create()
    spin = lab.start(m, "while True: pass")
    time.sleep(0.2)
    m.freeze()
    assert m.is_frozen()
    t0 = cpu_ticks(spin.pid)
    time.sleep(0.5)
    assert cpu_ticks(spin.pid) == t0, "a frozen process kept running"
    m.thaw()
    assert not m.is_frozen()
    time.sleep(0.5)
    assert cpu_ticks(spin.pid) > t0 + 10  # ticks are 10 ms: it ran most of the time


@v1_only
def test_v1_memory_limit_oom_kills(lab):
    m = lab.manager()
    m.create({"memory": {"limit": 48 * MB, "swap": 48 * MB}})
    fd = m.oom_event_fd()
    try:
        assert m.oom_kill_count() == 0
        hog = lab.start(m, "x = 'x' * (400 << 20)\nprint('survived')")
        out, _ = hog.communicate(timeout=60)
        assert hog.returncode == -9 and "survived" not in out
        assert select.select([fd], [], [], 5)[0] == [fd]
        assert int.from_bytes(os.read(fd, 8), sys.byteorder) >= 1
        assert m.oom_kill_count() >= 1
        usage = m.stats()["memory"]["usage"]
        assert usage["max"] == usage["limit"] == 48 * MB  # it hit the limit
    finally:
        os.close(fd)


@v1_only
def test_v1_pids_limit_stops_fork(lab):
    m = lab.manager()
    m.create({"pids": {"limit": 4}})
    code = """
import os, time
kids, err = [], None
for _ in range(10):
    try:
        pid = os.fork()
    except OSError as e:
        err = e.errno
        break
    if pid == 0:
        time.sleep(30)
        os._exit(0)
    kids.append(pid)
print(len(kids), err, flush=True)
for k in kids:
    os.kill(k, 9)
    os.waitpid(k, 0)
"""
    p = lab.start(m, code)
    out, err = p.communicate(timeout=30)
    n, errno_ = out.split()
    assert int(n) == 3 and errno_ == str(errno.EAGAIN)  # 4 tasks: itself + 3 children
    assert rd(m.paths()["pids"] + "/pids.events").startswith("max ")


@v1_only
def test_v1_cpu_quota_throttles(lab):
    m = lab.manager()
    m.create({"cpu": {"quota": 10000, "period": 100000}})  # 10% of one CPU
    spin = lab.start(m, "while True: pass")
    time.sleep(0.6)
    st = base.keyed(m.paths()["cpu"] + "/cpu.stat")
    assert st["nr_throttled"] > 0 and st["throttled_time"] > 0
    stats = m.stats()
    assert stats["cpu"]["throttling"]["throttledPeriods"] > 0
    assert 0 < stats["cpu"]["usage"]["total"] < 0.3e9  # ~60 ms of CPU in 0.6 s
    assert stats["pids"]["current"] == 1 and stats["pids"]["limit"] == 0
    spin.kill()


@v1_only
def test_v1_device_rules_enforced_and_updated_without_reset(lab, monkeypatch):
    m = lab.manager()
    deny_all = [{"allow": False, "access": "rwm"}]
    m.create({"devices": deny_all})
    probe = ("import os\nfor p in ('/dev/null', '/dev/loop0'):\n"
             "    try:\n        os.close(os.open(p, os.O_RDONLY)); print(p, 'ok')\n"
             "    except OSError as e: print(p, e.errno)\n")
    out, _ = lab.start(m, probe).communicate(timeout=30)
    assert out.split("\n")[:2] == ["/dev/null ok", f"/dev/loop0 {errno.EPERM}"]
    major, minor = block_dev()
    writes = []
    real = base.write_raw
    monkeypatch.setattr(base, "write_raw", lambda p, v: (writes.append((p, v)), real(p, v)))
    m.set({"devices": deny_all + [{"allow": True, "type": "b", "major": major,
                                   "minor": minor, "access": "r"}]})
    # only the new grant is written: no "deny all" reset that would cut off the running container
    assert [(os.path.basename(p), v) for p, v in writes] == [
        ("devices.allow", f"b {major}:{minor} r")]
    out, _ = lab.start(m, probe).communicate(timeout=30)
    assert out.split("\n")[:2] == ["/dev/null ok", "/dev/loop0 ok"]


@v1_only
def test_v1_memory_and_swap_write_order(lab):
    m = lab.manager()
    m.create({"memory": {"limit": 64 * MB, "swap": 64 * MB}})
    d = m.paths()["memory"]
    m.set({"memory": {"limit": 128 * MB, "swap": 256 * MB}})  # raise: swap must go first
    assert (rd(d + "/memory.limit_in_bytes"), rd(d + "/memory.memsw.limit_in_bytes")) == \
        (str(128 * MB), str(256 * MB))
    m.set({"memory": {"limit": 32 * MB, "swap": 32 * MB}})  # lower: limit must go first
    assert (rd(d + "/memory.limit_in_bytes"), rd(d + "/memory.memsw.limit_in_bytes")) == \
        (str(32 * MB), str(32 * MB))
    m.set({"memory": {"limit": -1}})  # unlimited memory means unlimited memory+swap
    assert int(rd(d + "/memory.limit_in_bytes")) > 1 << 60
    assert int(rd(d + "/memory.memsw.limit_in_bytes")) > 1 << 60


@v1_only
def test_v1_limit_below_usage_is_a_clear_error(lab):
    m = lab.manager()
    m.create()
    hog = lab.start(m, "x = 'x' * (64 << 20)\nprint('ready', flush=True)\nimport time\n"
                       "time.sleep(60)")
    assert hog.stdout.readline().strip() == "ready"
    # no swap here: 64 MB of anonymous memory cannot be reclaimed, so the kernel says EBUSY
    with pytest.raises(HawserError, match=r"linux.resources.memory.limit: cannot set 16777216: "
                                          r"the cgroup already uses \d+ bytes"):
        m.set({"memory": {"limit": 16 * MB}})
    assert hog.poll() is None


@v1_only
def test_v1_stats_shape(lab):
    m = lab.manager()
    m.create({"pids": {"limit": 20}})
    p = lab.start(m, "sum(range(3_000_000))")
    p.wait(timeout=30)
    s = m.stats()
    assert set(s) >= {"cpu", "memory", "pids", "blkio", "hugetlb"}
    assert s["cpu"]["usage"]["total"] > 0 and len(s["cpu"]["usage"]["percpu"]) == os.cpu_count()
    assert s["cpu"]["usage"]["user"] > 0
    assert set(s["memory"]) >= {"cache", "usage", "swap", "kernel", "kernelTCP", "raw"}
    assert s["memory"]["usage"]["max"] > 0 and "rss" in s["memory"]["raw"]
    assert s["pids"] == {"current": 0, "limit": 20}
    assert set(s["blkio"]) == {"ioServiceBytesRecursive", "ioServicedRecursive"}


@v1_only
def test_v1_unavailable_controllers_are_named(lab):
    m = lab.manager()
    with pytest.raises(HawserError, match="hugetlb"):
        sizes = base.hugepage_sizes()
        m.create({"hugepageLimits": [{"pageSize": sizes[0], "limit": 0}]} if sizes else
                 {"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]})
    assert not any(os.path.exists(d) for d in m.dirs())


# ---- cgroup v2 on a fake hierarchy ------------------------------------------------------------
CONTROLLERS = "cpuset cpu io memory hugetlb pids rdma"
FILES = {"cgroup.procs": "", "cgroup.controllers": CONTROLLERS, "cgroup.subtree_control": "",
         "cgroup.freeze": "0", "cgroup.events": "populated 0\nfrozen 0\n", "cpu.max": "max 100000",
         "cpu.weight": "100", "cpu.max.burst": "0", "cpu.idle": "0", "cpu.stat": "",
         "cpuset.cpus": "", "cpuset.mems": "", "memory.max": "max", "memory.swap.max": "max",
         "memory.low": "0", "memory.high": "max", "memory.current": "0", "memory.events": "",
         "memory.stat": "", "pids.max": "max", "pids.current": "0", "io.max": "",
         "io.weight": "default 100", "hugetlb.2MB.max": "max", "hugetlb.2MB.current": "0",
         "hugetlb.2MB.events": "max 0", "rdma.max": ""}


def fake_cgroup(path: str) -> None:
    os.mkdir(path)
    for name, text in FILES.items():
        with open(f"{path}/{name}", "w") as f:
            f.write(text)


@pytest.fixture
def fake_v2(tmp_path, monkeypatch):
    """A cgroup2-shaped directory tree; V2Manager's mkdir also lays out the files."""
    root = tmp_path / "cg2"
    fake_cgroup(str(root))
    monkeypatch.setattr(V2Manager, "_mkdir", lambda self, p: fake_cgroup(p))
    monkeypatch.setattr(base, "hugepage_sizes", lambda: ["2MB", "1GB"])
    import runtime.cgroups.resources as r
    monkeypatch.setattr(r, "hugepage_sizes", lambda: ["2MB", "1GB"])
    return str(root)


def v2(root, path="/hawser-test-v2/c1", **kw):
    return cg.open_manager(path, "c1", root=root, version="v2", **kw)


def test_v2_fake_create_set(fake_v2, monkeypatch):
    enabled = []
    real = base.write_raw
    import runtime.cgroups.v2 as v2mod

    def record(p, v):
        if p.endswith("subtree_control"):
            enabled.append((os.path.dirname(p), v))
        real(p, v)
    monkeypatch.setattr(v2mod, "write_raw", record)
    m = v2(fake_v2)
    res = {"memory": {"limit": 64 * MB, "swap": 96 * MB, "reservation": 32 * MB,
                      "swappiness": 60, "kernel": 1, "disableOOMKiller": True},
           "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "burst": 500,
                   "cpus": "0-1", "mems": "0", "idle": 1},
           "pids": {"limit": -1},
           "blockIO": {"weight": 500, "throttleWriteBpsDevice": [
               {"major": 8, "minor": 0, "rate": 1000}]},
           "hugepageLimits": [{"pageSize": "2MB", "limit": 4 * MB}],
           "rdma": {"mlx5_1": {"hcaHandles": 3}},
           "devices": [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}],
           "unified": {"memory.high": "50M"}}
    m.create(res)
    d = m.paths()[""]
    assert d == fake_v2 + "/hawser-test-v2/c1"
    got = {n: rd(f"{d}/{n}") for n in ("memory.max", "memory.swap.max", "memory.low", "cpu.weight",
                                      "cpu.max", "cpu.max.burst", "cpu.idle", "cpuset.cpus",
                                      "pids.max", "io.weight", "io.max", "hugetlb.2MB.max",
                                      "rdma.max", "memory.high")}
    assert got == {"memory.max": str(64 * MB), "memory.swap.max": str(32 * MB),
                   "memory.low": str(32 * MB), "cpu.weight": "39", "cpu.max": "50000 100000",
                   "cpu.max.burst": "500", "cpu.idle": "1", "cpuset.cpus": "0-1",
                   "pids.max": "max", "io.weight": "4950", "io.max": "8:0 wbps=1000",
                   "hugetlb.2MB.max": str(4 * MB), "rdma.max": "mlx5_1 hca_handle=3",
                   "memory.high": "50M"}
    # every controller enabled in the root and the new parent, none in the leaf
    parents = [fake_v2, fake_v2 + "/hawser-test-v2"]
    assert [p for p, _ in enabled] == [p for p in parents for _ in CONTROLLERS.split()]
    assert {v for _, v in enabled} == {"+" + c for c in CONTROLLERS.split()}

    m.set({"cpu": {"period": 50000}})  # period alone keeps the quota
    assert rd(d + "/cpu.max") == "50000 50000"
    m.set({"cpu": {"quota": -1}})
    assert rd(d + "/cpu.max") == "max"
    m.set({"memory": {"limit": -1}})
    assert rd(d + "/memory.max") == "max" and rd(d + "/memory.swap.max") == "max"


def test_v2_fake_refusals_create_nothing(fake_v2):
    cases = [
        ({"devices": [{"allow": False, "access": "rwm"}]},
         "device cgroup rules need an eBPF program on cgroup v2, which hawser does not support"),
        ({"devices": [{"allow": False, "type": "c", "major": 10, "minor": 200, "access": "w"}]},
         "eBPF"),
        ({"cpu": {"realtimeRuntime": 1000}}, "real-time"),
        ({"network": {"classID": 5}}, "net_cls/net_prio exist only in cgroup v1"),
        ({"memory": {"swap": 64 * MB}}, "linux.resources.memory.swap: .* together with"),
        ({"unified": {"../x": "1"}}, "linux.resources.unified"),
        ({"memory": {"limit": -5}}, "linux.resources.memory.limit: -5 is invalid"),
    ]
    for res, msg in cases:
        m = v2(fake_v2)
        with pytest.raises(HawserError, match=msg):
            m.create(res)
        assert not os.path.exists(fake_v2 + "/hawser-test-v2"), res
    # rules that deny nothing need no program
    v2(fake_v2).create({"devices": [{"allow": False, "access": "rwm"}, {"allow": True}]})


def test_v2_fake_missing_controller_is_named(fake_v2):
    m = v2(fake_v2)
    m.create()
    os.unlink(m.paths()[""] + "/pids.max")  # as if pids were not enabled for it
    with pytest.raises(HawserError, match=r"linux.resources.pids.limit: .*pids.max.*not available"):
        m.set({"pids": {"limit": 5}})


def test_v2_fake_check_before_update(fake_v2):
    m = v2(fake_v2)
    m.create()
    d = m.paths()[""]
    with open(d + "/memory.current", "w") as f:
        f.write(str(100 * MB))
    with pytest.raises(HawserError, match="checkBeforeUpdate"):
        m.set({"memory": {"limit": 50 * MB, "checkBeforeUpdate": True}})
    assert rd(d + "/memory.max") == "max"
    m.set({"memory": {"limit": 50 * MB}})  # without the check the kernel would reclaim / OOM
    assert rd(d + "/memory.max") == str(50 * MB)


def test_v2_fake_busy_apply_pids_freeze(fake_v2):
    m = v2(fake_v2)
    m.create()
    d = m.paths()[""]
    m.apply(4242)
    assert rd(d + "/cgroup.procs") == "4242"
    fake_cgroup(d + "/nested")
    with open(d + "/nested/cgroup.procs", "w") as f:
        f.write("7\n8\n")
    assert sorted(m.pids()) == [7, 8, 4242]
    with pytest.raises(HawserError, match="already holds processes"):
        v2(fake_v2).create()
    with open(d + "/cgroup.events", "w") as f:
        f.write("populated 1\nfrozen 1\n")  # what the kernel reports once frozen
    m.freeze()
    assert m.is_frozen() and rd(d + "/cgroup.freeze") == "1"
    m.thaw()
    assert not m.is_frozen()


def test_v2_fake_oom_fd_and_stats(fake_v2):
    m = v2(fake_v2)
    m.create()
    d = m.paths()[""]
    fd = m.oom_event_fd()
    try:
        assert select.select([fd], [], [], 0)[0] == []
        with open(d + "/memory.events", "w") as f:
            f.write("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
        assert select.select([fd], [], [], 2)[0] == [fd]
        os.read(fd, 4096)
        assert m.oom_kill_count() == 1
    finally:
        os.close(fd)
    for name, text in {"cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n"
                                   "nr_periods 10\nnr_throttled 4\nthrottled_usec 20\n",
                       "memory.current": str(10 * MB), "memory.max": str(64 * MB),
                       "memory.stat": "anon 100\nfile 200\n", "pids.current": "3",
                       "pids.max": "max",
                       "io.stat": "8:0 rbytes=4096 wbytes=8192 rios=1 wios=2 dbytes=0 dios=0\n",
                       "hugetlb.2MB.current": "2097152"}.items():
        with open(f"{d}/{name}", "w") as f:
            f.write(text)
    s = m.stats()
    assert s["cpu"] == {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                        "throttling": {"periods": 10, "throttledPeriods": 4,
                                       "throttledTime": 20000}}
    assert s["memory"]["cache"] == 200 and s["memory"]["usage"]["usage"] == 10 * MB
    assert s["memory"]["usage"]["limit"] == 64 * MB and s["memory"]["usage"]["failcnt"] == 3
    assert s["pids"] == {"current": 3, "limit": 0}
    assert {"major": 8, "minor": 0, "op": "Write", "value": 8192} in \
        s["blkio"]["ioServiceBytesRecursive"]
    assert s["hugetlb"]["2MB"]["usage"] == 2 * MB


# ---- cgroup v2, for real, on the hybrid host's unified tree -------------------------------------
@pytest.mark.skipif(not HAVE_UNIFIED, reason="no cgroup2 mount at /sys/fs/cgroup/unified")
def test_v2_real_unified_create_apply_freeze_destroy(lab):
    before = rd(UNIFIED + "/cgroup.subtree_control")
    m = lab.manager("/" + test_name(), root=UNIFIED, version="v2", enable_controllers=False)
    with pytest.raises(HawserError, match="pids.max"):  # no pids controller there
        m.create({"pids": {"limit": 5}})
    assert not m.exists()
    m.create()
    assert m.exists() and rd(UNIFIED + "/cgroup.subtree_control") == before
    spin = lab.start(m, "while True: pass")
    assert m.pids() == [spin.pid]
    m.freeze()  # cgroup.freeze is core cgroup2: works without controllers
    assert m.is_frozen()
    t0 = cpu_ticks(spin.pid)
    time.sleep(0.4)
    assert cpu_ticks(spin.pid) == t0
    m.thaw()
    time.sleep(0.4)
    assert cpu_ticks(spin.pid) > t0
    spin.kill()
    spin.wait()
    m.destroy()
    assert not m.exists()


def test_hot_path_imports_stay_lean():
    """The CLI imports this package on every create/delete/kill: no re, enum, json, typing..."""
    code = ("import sys; sys.path.insert(0, %r); before = set(sys.modules)\n"
            "import runtime.cgroups as c, runtime.cgroups.v1, runtime.cgroups.v2\n"
            "c.open_manager(None, 'x', version='v1'); c.detect()\n"
            "print(' '.join(sorted(set(sys.modules) - before)))" % str(REPO))
    loaded = set(subprocess.run([sys.executable, "-I", "-S", "-c", code], check=True,
                                capture_output=True, text=True).stdout.split())
    forbidden = {"re", "enum", "json", "typing", "dataclasses", "pathlib", "subprocess", "shutil",
                 "logging", "ctypes", "signal", "socket", "threading"}
    assert not loaded & forbidden
