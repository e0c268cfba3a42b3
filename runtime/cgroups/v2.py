"""cgroup v2 (unified): one directory, paths() == {"": dir}. Controllers are enabled top-down
through each ancestor's cgroup.subtree_control; values are converted from the v1-shaped OCI
fields the way runc's fs2 driver does.

Not done here: device rules. v2 enforces them only through an eBPF program attached to the
cgroup, which hawser does not build yet, so set() refuses rules that would deny anything (the
default with no program is allow-all); rules that leave everything allowed are accepted.
"""
import errno
import os
import time

from runtime.errors import HawserError

from runtime.cgroups import devices
from runtime.cgroups.base import (MAX_U64, P, Manager, keyed, own_cgroups, read_int, read_or,
                                  write, write_raw)
from runtime.cgroups.resources import check

IN_MODIFY, IN_NONBLOCK, IN_CLOEXEC = 0x2, 0o4000, 0o2000000


def resolve(path: str, root: str, proc_cgroup: str) -> str:
    """The cgroup dir for a cleaned cgroupsPath: absolute under root; relative under the parent of
    our own cgroup, as runc does (our own cgroup holds us, and a cgroup with processes cannot
    enable controllers for children: the "no internal processes" rule)."""
    if path.startswith("/"):
        return root + path
    own = own_cgroups(proc_cgroup).get("", "/").rstrip("/")
    return root + os.path.dirname(own).rstrip("/") + "/" + path


def shares_to_weight(shares: int) -> int:
    """cpu.shares [2, 262144] -> cpu.weight [1, 10000], runc's linear map."""
    return 1 + ((shares - 2) * 9999) // 262142 if shares else 0


def blkio_to_io_weight(weight: int) -> int:
    """blkio weight [10, 1000] -> io.weight [1, 10000], runc's linear map."""
    return 1 + ((weight - 10) * 9999) // 990 if weight else 0


def _max(v: int) -> str:
    return "max" if v == -1 else str(v)


class V2Manager(Manager):
    version = "v2"

    def __init__(self, paths: dict[str, str], cgroups_path: str = "", root: str = "/sys/fs/cgroup",
                 enable_controllers: bool = True):
        super().__init__(paths, cgroups_path)
        self.root = root.rstrip("/")
        # False on a hybrid host's unified tree, which we only join: enabling a controller there
        # would take it away from the v1 side.
        self.enable_controllers = enable_controllers

    @property
    def dir(self) -> str:
        return self._paths[""]

    def to_dict(self) -> dict:
        return {**super().to_dict(), "root": self.root}

    @classmethod
    def from_dict(cls, d: dict) -> "V2Manager":
        return cls(d["paths"], d.get("cgroupsPath", ""), d.get("root", "/sys/fs/cgroup"))

    # ---- lifecycle -----------------------------------------------------------------------------
    def validate(self, res: dict | None, default_devices: bool = True) -> None:
        check(res, v2=True)
        if res and res.get("devices") is not None:
            rules = res["devices"] + (devices.DEFAULT_RULES if default_devices else [])
            if devices.restricts(devices.normalize(rules)):
                raise HawserError(f"{P}.devices: device cgroup rules need an eBPF program on "
                                  "cgroup v2, which hawser does not support yet")

    def create(self, resources: dict | None = None) -> None:
        """mkdir the cgroup (enabling controllers on the way), then apply resources (if given).
        Validates first and removes what it made on failure."""
        self.validate(resources)
        self._refuse_busy()
        made = self._makedirs(self.dir)
        try:
            if self.enable_controllers:
                self._enable()
            if resources:
                self.set(resources, validated=True)
        except BaseException:
            self._undo(made)
            raise

    def _enable(self) -> None:
        chain, d = [], os.path.dirname(self.dir)
        while d.startswith(self.root):
            chain.insert(0, d)
            d = os.path.dirname(d)
        for a in chain:
            have = read_or(a + "/cgroup.subtree_control").split()
            for c in read_or(a + "/cgroup.controllers").split():
                if c not in have:
                    try:  # one at a time: a controller we may not enable must not block the rest
                        write_raw(a + "/cgroup.subtree_control", "+" + c)
                    except OSError:
                        pass  # set() reports the missing file if a value needs it

    # ---- resources -----------------------------------------------------------------------------
    def set(self, res: dict, validated: bool = False, default_devices: bool = True) -> None:
        """Apply OCI linux.resources (zero/absent = leave alone); unified keys are written last so
        they override. Ignored as in runc: memory.kernel, kernelTCP, swappiness, disableOOMKiller,
        blockIO.leafWeight (no v2 equivalent)."""
        if not validated:
            self.validate(res, default_devices)
        d, cpu = self.dir, res.get("cpu") or {}
        if cpu.get("cpus"):
            write(d, "cpuset.cpus", cpu["cpus"], P + ".cpu.cpus")
        if cpu.get("mems"):
            write(d, "cpuset.mems", cpu["mems"], P + ".cpu.mems")
        if res.get("memory"):
            self._memory(d, res["memory"])
        self._cpu(d, cpu)
        limit = (res.get("pids") or {}).get("limit")
        if limit:
            write(d, "pids.max", limit if limit > 0 else "max", P + ".pids.limit")
        if res.get("blockIO"):
            self._io(d, res["blockIO"])
        for h in res.get("hugepageLimits") or []:
            f, size = f"{P}.hugepageLimits[{h['pageSize']}]", h["pageSize"]
            write(d, f"hugetlb.{size}.max", h["limit"], f)
            if os.path.exists(f"{d}/hugetlb.{size}.rsvd.max"):
                write(d, f"hugetlb.{size}.rsvd.max", h["limit"], f)
        for name, r in (res.get("rdma") or {}).items():
            line = name + "".join(f" {k}={r[o]}" for k, o in (("hca_handle", "hcaHandles"),
                                                             ("hca_object", "hcaObjects"))
                                  if r.get(o) is not None)
            write(d, "rdma.max", line, f"{P}.rdma.{name}")
        for key, value in (res.get("unified") or {}).items():
            # a multi-line value (e.g. several io.max devices) goes one line per write, as runc
            for line in [ln for ln in value.split("\n") if ln] or [value]:
                write(d, key, line, f"{P}.unified[{key!r}]")

    def _memory(self, d: str, mem: dict) -> None:
        f = P + ".memory"
        limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
        if mem.get("checkBeforeUpdate") and limit > 0:
            # v1's kernel refuses a limit below usage (EBUSY); v2 would reclaim/OOM instead.
            usage = read_int(d + "/memory.current")
            if usage >= limit:
                raise HawserError(f"{f}.limit: rejecting {limit}: the cgroup already uses "
                                  f"{usage} bytes (checkBeforeUpdate)")
            if swap > 0 and usage + read_int(d + "/memory.swap.current") >= swap:
                raise HawserError(f"{f}.swap: rejecting {swap}: below the current memory+swap "
                                  "usage (checkBeforeUpdate)")
        # OCI swap is memory+swap (v1 memsw); v2's memory.swap.max is swap alone.
        if limit == -1 and swap == 0:
            v2swap = -1
        elif swap in (0, -1):
            v2swap = swap
        else:
            v2swap = swap - limit
        if swap or v2swap:
            value = _max(v2swap)
            try:
                write_raw(d + "/memory.swap.max", value)
            except OSError as e:
                # no swap accounting: "unlimited" or "none" needs nothing from it (runc)
                if not (e.errno == errno.ENOENT and (v2swap in (-1, 0))):
                    raise HawserError(f"{f}.swap: cannot write {value} to {d}/memory.swap.max: "
                                      f"{e.strerror}") from None
        if limit:
            write(d, "memory.max", _max(limit), f + ".limit")
        if mem.get("reservation"):
            write(d, "memory.low", _max(mem["reservation"]), f + ".reservation")

    def _cpu(self, d: str, cpu: dict) -> None:
        f = P + ".cpu"
        if cpu.get("idle") is not None:
            write(d, "cpu.idle", cpu["idle"], f + ".idle")
        if cpu.get("shares"):
            write(d, "cpu.weight", shares_to_weight(cpu["shares"]), f + ".shares")
        quota, period = cpu.get("quota") or 0, cpu.get("period") or 0
        if quota or period:
            if not quota:  # keep the current quota when only the period changes
                quota = read_or(d + "/cpu.max", "max").split()[0]
            value = "max" if quota in (-1, "max") else str(quota)
            write(d, "cpu.max", value + (f" {period}" if period else ""), f + ".quota")
        if cpu.get("burst") is not None:
            write(d, "cpu.max.burst", cpu["burst"], f + ".burst")

    def _io(self, d: str, bio: dict) -> None:
        f = P + ".blockIO"
        # BFQ takes the blkio weight as is; otherwise io.weight with runc's conversion.
        bfq = os.path.exists(d + "/io.bfq.weight")
        wfile = "io.bfq.weight" if bfq else "io.weight"
        conv = (lambda w: w) if bfq else blkio_to_io_weight
        if bio.get("weight"):
            write(d, wfile, conv(bio["weight"]), f + ".weight")
        for e in bio.get("weightDevice") or []:
            if e.get("weight"):
                write(d, wfile, f"{e['major']}:{e['minor']} {conv(e['weight'])}",
                      f + ".weightDevice")
        for key, name in (("throttleReadBpsDevice", "rbps"), ("throttleWriteBpsDevice", "wbps"),
                          ("throttleReadIOPSDevice", "riops"),
                          ("throttleWriteIOPSDevice", "wiops")):
            for e in bio.get(key) or []:
                write(d, "io.max", f"{e['major']}:{e['minor']} {name}={e['rate']}", f"{f}.{key}")

    # ---- freezer -------------------------------------------------------------------------------
    def freeze(self) -> None:
        write(self.dir, "cgroup.freeze", "1", "pause")
        for _ in range(2000):  # the kernel reports completion in cgroup.events
            if keyed(self.dir + "/cgroup.events").get("frozen") == 1:
                return
            time.sleep(0.001)
        write(self.dir, "cgroup.freeze", "0", "pause")
        raise HawserError(f"cannot freeze cgroup {self.dir}: not frozen after 2 seconds")

    def thaw(self) -> None:
        write(self.dir, "cgroup.freeze", "0", "resume")

    def is_frozen(self) -> bool:
        return read_or(self.dir + "/cgroup.freeze").strip() == "1"

    # ---- OOM -----------------------------------------------------------------------------------
    def oom_event_fd(self) -> int:
        """A non-blocking inotify fd watching memory.events (IN_MODIFY): readable whenever any of
        its counters moves. Drain with os.read(fd, 4096); compare oom_kill_count() to tell OOM
        kills from other events (high, max, oom)."""
        import ctypes  # not on the CLI's hot path: only the shim / `events` watch OOMs
        libc = ctypes.CDLL(None, use_errno=True)
        fd = libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise HawserError(f"inotify_init1: {os.strerror(ctypes.get_errno())}")
        path = self.dir + "/memory.events"
        if libc.inotify_add_watch(fd, os.fsencode(path), IN_MODIFY) < 0:
            err = ctypes.get_errno()
            os.close(fd)
            raise HawserError(f"cannot watch {path} for OOM events: {os.strerror(err)}")
        return fd

    def oom_kill_count(self) -> int:
        return keyed(self.dir + "/memory.events").get("oom_kill", 0)

    # ---- stats (runc `events --stats` data) ----------------------------------------------------
    def stats(self) -> dict:
        d = self.dir
        st = keyed(d + "/cpu.stat")
        out = {"cpu": {"usage": {"total": st.get("usage_usec", 0) * 1000,
                                 "kernel": st.get("system_usec", 0) * 1000,
                                 "user": st.get("user_usec", 0) * 1000},
                       "throttling": {"periods": st.get("nr_periods", 0),
                                      "throttledPeriods": st.get("nr_throttled", 0),
                                      "throttledTime": st.get("throttled_usec", 0) * 1000}},
               "memory": {}, "pids": {}, "blkio": {}, "hugetlb": {}}
        if os.path.exists(d + "/memory.current"):
            raw = keyed(d + "/memory.stat")
            usage = {"limit": read_int(d + "/memory.max"), "usage": read_int(d + "/memory.current"),
                     "max": read_int(d + "/memory.peak"),
                     "failcnt": keyed(d + "/memory.events").get("max", 0)}
            # runc reports v1-style memory+swap so clients see the same meaning on both versions
            swap = {"limit": read_int(d + "/memory.swap.max"),
                    "usage": read_int(d + "/memory.swap.current") + usage["usage"],
                    "max": read_int(d + "/memory.swap.peak"), "failcnt": 0}
            if swap["limit"] != MAX_U64 and usage["limit"] != MAX_U64:
                swap["limit"] += usage["limit"]
            out["memory"] = {"cache": raw.get("file", 0), "usage": usage, "swap": swap,
                             "kernel": {}, "kernelTCP": {}, "raw": raw}
        if os.path.exists(d + "/pids.current"):
            limit = read_or(d + "/pids.max").strip()
            out["pids"] = {"current": read_int(d + "/pids.current"),
                           "limit": 0 if limit == "max" else read_int(d + "/pids.max")}
        rows = {"ioServiceBytesRecursive": [], "ioServicedRecursive": []}
        for line in read_or(d + "/io.stat").splitlines():
            dev, *kv = line.split()
            major, _, minor = dev.partition(":")
            vals = dict(x.split("=", 1) for x in kv if "=" in x)
            for key, r, w in (("ioServiceBytesRecursive", "rbytes", "wbytes"),
                              ("ioServicedRecursive", "rios", "wios")):
                for op, k in (("Read", r), ("Write", w)):
                    rows[key].append({"major": int(major), "minor": int(minor), "op": op,
                                      "value": int(vals.get(k, 0))})
        out["blkio"] = rows
        for name in sorted(os.listdir(d)):
            parts = name.split(".")
            if len(parts) == 3 and parts[0] == "hugetlb" and parts[2] == "max":
                size = parts[1]
                out["hugetlb"][size] = {
                    "usage": read_int(f"{d}/hugetlb.{size}.current"), "max": 0,
                    "failcnt": keyed(f"{d}/hugetlb.{size}.events").get("max", 0)}
        return out
