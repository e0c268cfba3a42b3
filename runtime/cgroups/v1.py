"""cgroup v1 (also the v1 half of a hybrid host): one directory per mounted hierarchy, keyed by
controller name as runc does ("cpu" and "cpuacct" share a dir when co-mounted; "name=systemd" is
joined but never configured). Writes follow runc's fs driver where order matters.
"""
import errno
import os
import time

from runtime.errors import HawserError

from runtime.cgroups.base import (P, Manager, keyed, mounts, own_cgroups, read, read_int, read_or,
                                  to_int, write, write_raw)

CONTROLLERS = ("cpuset", "cpu", "cpuacct", "memory", "devices", "freezer", "blkio", "pids",
               "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc", "name=systemd")


def resolve(path: str, root: str, mountinfo: str, proc_cgroup: str) -> dict[str, str]:
    """controller -> cgroup dir for a cleaned cgroupsPath. Absolute paths hang from each
    hierarchy's mount point; relative ones from this process's own cgroup in that hierarchy,
    as runc's subsysPath does."""
    own = {} if path.startswith("/") else own_cgroups(proc_cgroup)
    out = {}
    for mroot, point, fstype, opts in mounts(mountinfo):
        names = [o for o in opts.split(",") if o in CONTROLLERS]
        if fstype != "cgroup" or not names or not (point + "/").startswith(root + "/"):
            continue
        if path.startswith("/"):
            d = point + path
        else:
            mine = own.get(names[0], "/")
            # Without a cgroup namespace, a container sees its mount root as a sub-cgroup that
            # /proc/self/cgroup also prefixes: strip it.
            if mroot != "/" and (mine + "/").startswith(mroot + "/"):
                mine = mine[len(mroot):]
            d = point + mine.rstrip("/") + "/" + path
        for n in names:
            out.setdefault(n, d)
    return out


class V1Manager(Manager):
    version = "v1"
    _main_keys = ("freezer", "devices", "pids", "memory", "cpu")

    # ---- lifecycle -----------------------------------------------------------------------------

    def apply_self(self) -> None:
        """Writing our pid to cgroup.procs takes the kernel's global threadgroup lock, whose
        write side waits for an RCU grace period (5-17 ms here, most of a container start).
        Writing "0" to `tasks` moves just the calling thread and skips that lock; the caller is
        single-threaded, so that is the whole process."""
        for d in self.dirs():
            try:
                write_raw(d + "/tasks", "0")
            except OSError as e:
                raise HawserError(f"cannot move process {os.getpid()} into cgroup {d}: "
                                  f"{e.strerror}") from None
    def validate(self, res: dict | None) -> None:
        # resources/devices are imported by the methods that set limits: kill, delete, pause
        # and state never need them.
        from runtime.cgroups.resources import check, requested
        check(res, v2=False)
        missing = sorted(c for c in requested(res) if c not in self._paths)
        if missing:
            raise HawserError(f"{P}: the {', '.join(missing)} cgroup v1 controller(s) are not "
                              "mounted on this host, so these limits cannot be applied")

    def create(self, resources: dict | None = None) -> None:
        """mkdir in every hierarchy, then apply resources (if given). Validates first and removes
        what it made on failure, so a bad config leaves nothing behind."""
        self.validate(resources)
        self._refuse_busy()
        made = []
        try:
            for d in self.dirs():
                made += self._makedirs(d)
            if "cpuset" in self._paths:
                self._cpuset_fill(self._paths["cpuset"])
            if resources:
                self.set(resources, validated=True)
        except BaseException:
            self._undo(made)
            raise

    def _cpuset_fill(self, d: str) -> None:
        # A new cpuset cgroup starts with empty cpus/mems and refuses tasks until they are set;
        # copy them from the nearest ancestor that has them (runc's cpusetEnsureParent).
        parent = os.path.dirname(d)
        for name in ("cpuset.cpus", "cpuset.mems"):
            if read_or(f"{d}/{name}").strip():
                continue
            if not read_or(f"{parent}/{name}").strip() and os.path.exists(f"{parent}/{name}"):
                self._cpuset_fill(parent)
            write(d, name, read(f"{parent}/{name}").strip(), P + ".cpu")

    # ---- resources -----------------------------------------------------------------------------
    def set(self, res: dict, validated: bool = False, default_devices: bool = True) -> None:
        """Apply OCI linux.resources. Absent or zero values leave the current setting alone.
        With default_devices, runc's always-allowed devices (null, zero, tty, ptmx...) follow the
        config's rules, since the runtime creates those nodes itself."""
        from runtime.cgroups import devices
        from runtime.cgroups.resources import requested
        if not validated:
            self.validate(res)
        p = self._paths
        cpu = res.get("cpu") or {}
        if cpu.get("cpus"):
            write(p["cpuset"], "cpuset.cpus", cpu["cpus"], P + ".cpu.cpus")
        if cpu.get("mems"):
            write(p["cpuset"], "cpuset.mems", cpu["mems"], P + ".cpu.mems")
        if res.get("devices") is not None:
            rules = res["devices"] + (devices.DEFAULT_RULES if default_devices else [])
            self._devices(p["devices"], devices.normalize(rules))
        if res.get("memory"):
            self._memory(p["memory"], res["memory"])
        if "cpu" in requested(res):
            self._cpu(p["cpu"], cpu)
        limit = (res.get("pids") or {}).get("limit")
        if limit:
            write(p["pids"], "pids.max", limit if limit > 0 else "max", P + ".pids.limit")
        if res.get("blockIO"):
            self._blkio(p["blkio"], res["blockIO"])
        for h in res.get("hugepageLimits") or []:
            f, d = f"{P}.hugepageLimits[{h['pageSize']}]", p["hugetlb"]
            write(d, f"hugetlb.{h['pageSize']}.limit_in_bytes", h["limit"], f)
            if os.path.exists(f"{d}/hugetlb.{h['pageSize']}.rsvd.limit_in_bytes"):
                write(d, f"hugetlb.{h['pageSize']}.rsvd.limit_in_bytes", h["limit"], f)
        net = res.get("network") or {}
        if net.get("classID"):
            write(p["net_cls"], "net_cls.classid", net["classID"], P + ".network.classID")
        for prio in net.get("priorities") or []:
            write(p["net_prio"], "net_prio.ifpriomap", f"{prio['name']} {prio.get('priority', 0)}",
                  P + ".network.priorities")
        for name, r in (res.get("rdma") or {}).items():
            line = name + "".join(f" {k}={r[o]}" for k, o in (("hca_handle", "hcaHandles"),
                                                             ("hca_object", "hcaObjects"))
                                  if r.get(o) is not None)
            write(p["rdma"], "rdma.max", line, f"{P}.rdma.{name}")

    def _devices(self, d: str, rules) -> None:
        from runtime.cgroups import devices
        target = devices.emulate(rules)
        current = devices.parse_list(read(d + "/devices.list"))
        for name, line in devices.v1_writes(current, target):
            write(d, name, line, P + ".devices")

    def _memory(self, d: str, mem: dict) -> None:
        f = P + ".memory"
        limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
        has_swap = os.path.exists(d + "/memory.memsw.limit_in_bytes")
        if limit == -1 and swap == 0 and has_swap:
            swap = -1  # "unlimited memory" means unlimited memory+swap too (runc)
        if swap and not has_swap:
            if swap not in (-1, limit):  # "no swap"/"unlimited" needs no swap accounting
                raise HawserError(f"{f}.swap: this kernel has no swap accounting "
                                  "(memory.memsw.limit_in_bytes is missing)")
            swap = 0
        # memsw must stay >= limit at every step: raise swap first when it grows past the current
        # memory limit, otherwise set the limit first (runc's setMemoryAndSwap).
        if limit and swap and (swap == -1 or read_int(d + "/memory.limit_in_bytes") < swap):
            order = (("memory.memsw.limit_in_bytes", swap, "swap"),
                     ("memory.limit_in_bytes", limit, "limit"))
        else:
            order = (("memory.limit_in_bytes", limit, "limit"),
                     ("memory.memsw.limit_in_bytes", swap, "swap"))
        for name, value, key in order:
            if not value:
                continue
            try:
                write_raw(f"{d}/{name}", str(value))
            except OSError as e:
                if e.errno == errno.EBUSY:
                    raise HawserError(f"{f}.{key}: cannot set {value}: the cgroup already uses "
                                      f"{read_int(d + '/memory.usage_in_bytes')} bytes (peak "
                                      f"{read_int(d + '/memory.max_usage_in_bytes')})") from None
                raise HawserError(f"{f}.{key}: cannot write {value} to {d}/{name}: "
                                  f"{e.strerror}") from None
        for key, name in (("kernel", "memory.kmem.limit_in_bytes"),
                          ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
            if mem.get(key):
                try:  # deprecated by the kernel and the spec: skip where it is gone
                    write_raw(f"{d}/{name}", str(mem[key]))
                except OSError as e:
                    if e.errno not in (errno.ENOENT, errno.EOPNOTSUPP):
                        raise HawserError(f"{f}.{key}: cannot write {mem[key]} to {d}/{name}: "
                                          f"{e.strerror}") from None
        if mem.get("reservation"):
            write(d, "memory.soft_limit_in_bytes", mem["reservation"], f + ".reservation")
        if mem.get("disableOOMKiller") is not None:
            write(d, "memory.oom_control", int(mem["disableOOMKiller"]), f + ".disableOOMKiller")
        if mem.get("swappiness") not in (None, -1):
            write(d, "memory.swappiness", mem["swappiness"], f + ".swappiness")

    def _cpu(self, d: str, cpu: dict) -> None:
        f = P + ".cpu"
        if cpu.get("shares"):
            write(d, "cpu.shares", cpu["shares"], f + ".shares")
            got = read_int(d + "/cpu.shares")  # the kernel clamps silently: report it like runc
            if got != cpu["shares"]:
                raise HawserError(f"{f}.shares: {cpu['shares']} is out of this kernel's range "
                                  f"(it stored {got})")
        # A smaller period can be refused (EINVAL) while the old quota is in place; runc then
        # writes the quota first and retries the period. Same for burst (must be <= quota).
        later = []
        for key, name in (("period", "cpu.cfs_period_us"), ("burst", "cpu.cfs_burst_us")):
            if cpu.get(key) or (key == "burst" and cpu.get(key) is not None):
                try:
                    write_raw(f"{d}/{name}", str(cpu[key]))
                except OSError as e:
                    if e.errno != errno.EINVAL or not cpu.get("quota"):
                        raise HawserError(f"{f}.{key}: cannot write {cpu[key]} to {d}/{name}: "
                                          f"{e.strerror}") from None
                    later.append((name, cpu[key], key))
        if cpu.get("quota"):
            write(d, "cpu.cfs_quota_us", cpu["quota"], f + ".quota")
        for name, value, key in later:
            write(d, name, value, f"{f}.{key}")
        # Real-time budget: set before tasks join (a SCHED_RR task cannot join a cgroup with none).
        if cpu.get("realtimePeriod"):
            write(d, "cpu.rt_period_us", cpu["realtimePeriod"], f + ".realtimePeriod")
        if cpu.get("realtimeRuntime"):
            write(d, "cpu.rt_runtime_us", cpu["realtimeRuntime"], f + ".realtimeRuntime")
        if cpu.get("idle") is not None:
            write(d, "cpu.idle", cpu["idle"], f + ".idle")

    def _blkio(self, d: str, bio: dict) -> None:
        f = P + ".blockIO"
        # CFQ's blkio.weight is gone from recent kernels; BFQ offers blkio.bfq.weight (runc picks
        # whichever exists).
        wfile = next((n for n in ("blkio.weight", "blkio.bfq.weight")
                      if os.path.exists(f"{d}/{n}")), "blkio.weight")
        if bio.get("weight"):
            write(d, wfile, bio["weight"], f + ".weight")
        if bio.get("leafWeight"):
            write(d, "blkio.leaf_weight", bio["leafWeight"], f + ".leafWeight")
        for e in bio.get("weightDevice") or []:
            dev = f"{e['major']}:{e['minor']}"
            if e.get("weight"):
                write(d, wfile + "_device", f"{dev} {e['weight']}", f + ".weightDevice")
            if e.get("leafWeight"):
                write(d, "blkio.leaf_weight_device", f"{dev} {e['leafWeight']}",
                      f + ".weightDevice")
        for key, name in (("throttleReadBpsDevice", "read_bps_device"),
                          ("throttleWriteBpsDevice", "write_bps_device"),
                          ("throttleReadIOPSDevice", "read_iops_device"),
                          ("throttleWriteIOPSDevice", "write_iops_device")):
            for e in bio.get(key) or []:
                write(d, "blkio.throttle." + name, f"{e['major']}:{e['minor']} {e['rate']}",
                      f"{f}.{key}")

    # ---- freezer -------------------------------------------------------------------------------
    def _freezer(self) -> str:
        if "freezer" not in self._paths:
            raise HawserError("the freezer cgroup controller is not mounted: cannot pause")
        return self._paths["freezer"]

    def freeze(self) -> None:
        d = self._freezer()
        write(d, "freezer.state", "FROZEN", "pause")
        for i in range(1, 2001):
            if read(d + "/freezer.state").strip() == "FROZEN":
                return
            if i % 50 == 0:
                # A task can keep the cgroup in FREEZING (e.g. in vfork or a signal race); runc
                # thaws and freezes again to let it move on.
                write(d, "freezer.state", "THAWED", "pause")
                write(d, "freezer.state", "FROZEN", "pause")
            time.sleep(0.001)
        write(d, "freezer.state", "THAWED", "pause")
        raise HawserError(f"cannot freeze cgroup {d}: still FREEZING after 2 seconds")

    def thaw(self) -> None:
        write(self._freezer(), "freezer.state", "THAWED", "resume")

    def is_frozen(self) -> bool:
        d = self._paths.get("freezer")
        return bool(d) and read_or(d + "/freezer.state").strip() == "FROZEN"

    # ---- OOM -----------------------------------------------------------------------------------
    def oom_event_fd(self) -> int:
        """A non-blocking eventfd the kernel signals on every OOM in the cgroup (registered with
        memory.oom_control via cgroup.event_control). It also fires once when the cgroup is
        removed. Drain with os.read(fd, 8); compare oom_kill_count() to tell kills apart."""
        d = self._paths.get("memory")
        if not d:
            raise HawserError("the memory cgroup controller is not mounted: no OOM events")
        efd = os.eventfd(0, os.EFD_CLOEXEC | os.EFD_NONBLOCK)
        try:
            cfd = os.open(d + "/memory.oom_control", os.O_RDONLY | os.O_CLOEXEC)
            try:  # the kernel keeps its own references: cfd can be closed right away
                write_raw(d + "/cgroup.event_control", f"{efd} {cfd}")
            finally:
                os.close(cfd)
        except OSError as e:
            os.close(efd)
            raise HawserError(f"cannot register for OOM events on {d}: {e.strerror}") from None
        return efd

    def oom_kill_count(self) -> int:
        return keyed(self._paths.get("memory", "") + "/memory.oom_control").get("oom_kill", 0)

    # ---- stats (runc `events --stats` data) ----------------------------------------------------
    def stats(self) -> dict:
        p = self._paths
        out = {"cpu": {"usage": {}, "throttling": {}}, "memory": {}, "pids": {}, "blkio": {},
               "hugetlb": {}}
        if "cpuacct" in p:
            d, u = p["cpuacct"], out["cpu"]["usage"]
            u["total"] = read_int(d + "/cpuacct.usage")
            for key, name in (("percpu", "usage_percpu"), ("percpu_kernel", "usage_percpu_sys"),
                              ("percpu_user", "usage_percpu_user")):
                u[key] = [int(x) for x in read_or(f"{d}/cpuacct.{name}").split()]
            tick = 1_000_000_000 // os.sysconf("SC_CLK_TCK")
            st = keyed(d + "/cpuacct.stat")
            u["kernel"], u["user"] = st.get("system", 0) * tick, st.get("user", 0) * tick
        if "cpu" in p:
            st = keyed(p["cpu"] + "/cpu.stat")
            out["cpu"]["throttling"] = {"periods": st.get("nr_periods", 0),
                                        "throttledPeriods": st.get("nr_throttled", 0),
                                        "throttledTime": st.get("throttled_time", 0)}
        if "memory" in p:
            d, m = p["memory"], out["memory"]
            m["raw"] = keyed(d + "/memory.stat")
            m["cache"] = m["raw"].get("cache", 0)
            for key, prefix in (("usage", "memory"), ("swap", "memory.memsw"),
                                ("kernel", "memory.kmem"), ("kernelTCP", "memory.kmem.tcp")):
                m[key] = {"limit": read_int(f"{d}/{prefix}.limit_in_bytes"),
                          "usage": read_int(f"{d}/{prefix}.usage_in_bytes"),
                          "max": read_int(f"{d}/{prefix}.max_usage_in_bytes"),
                          "failcnt": read_int(f"{d}/{prefix}.failcnt")}
        if "pids" in p:
            limit = read_or(p["pids"] + "/pids.max").strip()
            out["pids"] = {"current": read_int(p["pids"] + "/pids.current"),
                           "limit": 0 if limit == "max" else to_int(limit)}
        if "blkio" in p:
            out["blkio"] = _blkio_stats(p["blkio"])
        if "hugetlb" in p:
            d = p["hugetlb"]
            for size in _hugetlb_sizes(d):
                out["hugetlb"][size] = {
                    "usage": read_int(f"{d}/hugetlb.{size}.usage_in_bytes"),
                    "max": read_int(f"{d}/hugetlb.{size}.max_usage_in_bytes"),
                    "failcnt": read_int(f"{d}/hugetlb.{size}.failcnt")}
        return out


def _hugetlb_sizes(d: str) -> list[str]:
    return sorted({n.split(".")[1] for n in os.listdir(d) if n.endswith(".limit_in_bytes")
                   and n.startswith("hugetlb.") and ".rsvd." not in n})


def _blkio_stats(d: str) -> dict:
    """Per-device byte and op counts: BFQ's files when it has data, else the throttle layer's
    (which counts all IO), as runc falls back."""
    out = {}
    for key, suffix in (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                        ("ioServicedRecursive", "io_serviced_recursive")):
        rows = []
        for prefix in ("blkio.bfq.", "blkio.throttle."):
            for line in read_or(d + "/" + prefix + suffix).splitlines():
                f = line.split()
                if len(f) == 3:  # "8:0 Read 4096"; the last "Total N" line has two fields
                    major, _, minor = f[0].partition(":")
                    rows.append({"major": int(major), "minor": int(minor), "op": f[1],
                                 "value": int(f[2])})
            if rows:
                break
        out[key] = rows
    return out
