"""Validation of OCI linux.resources before anything is created or written. Every error names the
field (`linux.resources.memory.limit: -5 is invalid (...)`), so a bad config fails before a cgroup
exists. Zero means "unset" for the numeric limits, as in runc.
"""
from runtime.errors import HawserError

from runtime.cgroups import devices
from runtime.cgroups.base import P, hugepage_sizes

U32 = (1 << 32) - 1
U64 = (1 << 64) - 1


def bad(field: str, value, why: str):
    raise HawserError(f"{field}: {value!r} is invalid ({why})")


def _num(d: dict, key: str, f: str, lo: int = 0, hi: int = U64, why: str = "",
         minus_one: bool = False) -> int:
    """d[key] as an int (0 when absent), checked against [lo, hi] (and -1 when minus_one)."""
    v = d.get(key)
    if v is None:
        return 0
    if type(v) is not int:  # bool is an int subclass: type() keeps true/false out
        bad(f"{f}.{key}", v, "must be an integer")
    if not (lo <= v <= hi or (minus_one and v == -1) or v == 0):
        bad(f"{f}.{key}", v, why or f"must be between {lo} and {hi}")
    return v


def _bool(d: dict, key: str, f: str) -> None:
    if key in d and d[key] is not None and type(d[key]) is not bool:
        bad(f"{f}.{key}", d[key], "must be true or false")


def _section(res: dict, key: str, kind):
    v = res.get(key)
    if v is None:
        return kind()
    if not isinstance(v, kind):
        raise HawserError(f"{P}.{key}: must be {'an object' if kind is dict else 'a list'}")
    return v


def _cpulist(d: dict, key: str, f: str) -> None:
    v = d.get(key)
    if v is None:
        return
    ok = isinstance(v, str) and all(c in "0123456789-, " for c in v)
    for part in v.split(",") if ok and v.strip() else ():
        ends = part.strip().split("-")
        ok = ok and len(ends) <= 2 and all(e.isdigit() for e in ends)
    if not ok:
        bad(f"{f}.{key}", v, "must be a list like 0-3,5")


def _entries(items, f: str, value_keys: tuple[str, ...], required: bool) -> None:
    """weightDevice / throttle*Device entries: {major, minor, <value keys>}."""
    if not isinstance(items, list):
        raise HawserError(f"{f}: must be a list")
    for i, e in enumerate(items):
        fi = f"{f}[{i}]"
        if not isinstance(e, dict):
            raise HawserError(f"{fi}: must be an object")
        for k in ("major", "minor"):
            if type(e.get(k)) is not int or e[k] < 0:
                bad(f"{fi}.{k}", e.get(k), "must be a device number >= 0")
        for k in value_keys:
            if required and k not in e:
                raise HawserError(f"{fi}.{k}: missing")
            if k.endswith("eight"):
                _num(e, k, fi, 10, 1000)
            else:
                _num(e, k, fi)


def check(res: dict | None, v2: bool) -> None:
    """Raise HawserError on the first invalid or unsupported value; write nothing."""
    if not res:
        return
    if not isinstance(res, dict):
        raise HawserError(f"{P}: must be an object")

    f, mem = P + ".memory", _section(res, "memory", dict)
    limit_why = "must be -1 (unlimited), 0 (unset) or a byte count"
    for k in ("limit", "reservation", "swap", "kernel", "kernelTCP"):
        _num(mem, k, f, 1, U64 >> 1, limit_why, minus_one=True)
    if mem.get("swappiness") not in (None, -1):  # docker sends -1 for "not set"
        _num(mem, "swappiness", f, 0, 100)
    _bool(mem, "disableOOMKiller", f)
    _bool(mem, "checkBeforeUpdate", f)
    limit, swap = mem.get("limit") or 0, mem.get("swap") or 0
    if 0 < swap < limit:
        bad(f + ".swap", swap, f"it counts memory+swap, so it must be >= memory.limit {limit}")
    if v2 and swap > 0 and limit <= 0:
        bad(f + ".swap", swap, "cgroup v2 can only limit swap together with memory.limit")

    f, cpu = P + ".cpu", _section(res, "cpu", dict)
    _num(cpu, "shares", f, 2, 262144)
    _num(cpu, "quota", f, 1000, U64 >> 1, "must be -1 (unlimited) or at least 1000 microseconds",
         minus_one=True)
    _num(cpu, "period", f, 1000, 1000000)
    _num(cpu, "burst", f)
    _num(cpu, "realtimeRuntime", f, 1, U64 >> 1, minus_one=True)
    _num(cpu, "realtimePeriod", f)
    _num(cpu, "idle", f, 0, 1)
    _cpulist(cpu, "cpus", f)
    _cpulist(cpu, "mems", f)
    if v2 and (cpu.get("realtimeRuntime") or cpu.get("realtimePeriod")):
        raise HawserError(f"{f}.realtimeRuntime/realtimePeriod: cgroup v2 has no real-time "
                          "CPU bandwidth control")

    _num(_section(res, "pids", dict), "limit", P + ".pids", -(1 << 63), U64 >> 1)

    f, bio = P + ".blockIO", _section(res, "blockIO", dict)
    _num(bio, "weight", f, 10, 1000)
    _num(bio, "leafWeight", f, 10, 1000)
    _entries(bio.get("weightDevice") or [], f + ".weightDevice", ("weight", "leafWeight"), False)
    for k in ("throttleReadBpsDevice", "throttleWriteBpsDevice", "throttleReadIOPSDevice",
              "throttleWriteIOPSDevice"):
        _entries(bio.get(k) or [], f"{f}.{k}", ("rate",), True)

    if res.get("devices") is not None:
        devices.normalize(res["devices"])

    sizes = None
    for i, h in enumerate(_section(res, "hugepageLimits", list)):
        fi = f"{P}.hugepageLimits[{i}]"
        if not isinstance(h, dict):
            raise HawserError(f"{fi}: must be an object")
        sizes = sizes if sizes is not None else hugepage_sizes()
        if h.get("pageSize") not in sizes:
            bad(fi + ".pageSize", h.get("pageSize"), f"this host's sizes are {sizes}")
        if type(h.get("limit")) is not int or h["limit"] < 0:
            bad(fi + ".limit", h.get("limit"), "must be a byte count >= 0")

    f, net = P + ".network", _section(res, "network", dict)
    _num(net, "classID", f, 0, U32)
    prios = net.get("priorities") or []
    if not isinstance(prios, list):
        raise HawserError(f"{f}.priorities: must be a list")
    for i, p in enumerate(prios):
        fi = f"{f}.priorities[{i}]"
        if not isinstance(p, dict) or not isinstance(p.get("name"), str) or not p["name"] \
                or " " in p["name"]:
            raise HawserError(f"{fi}.name: must be an interface name")
        _num(p, "priority", fi, 0, U32)
    if v2 and (net.get("classID") or prios):
        raise HawserError(f"{f}: net_cls/net_prio exist only in cgroup v1; this host uses v2")

    for name, r in _section(res, "rdma", dict).items():
        if not isinstance(r, dict):
            raise HawserError(f"{P}.rdma.{name}: must be an object")
        _num(r, "hcaHandles", f"{P}.rdma.{name}", 0, U32)
        _num(r, "hcaObjects", f"{P}.rdma.{name}", 0, U32)

    unified = _section(res, "unified", dict)
    if unified and not v2:
        raise HawserError(f"{P}.unified: can only be used with cgroup v2; this host uses cgroup "
                          "v1")
    for k, v in unified.items():
        if "/" in k or "." not in k.strip(".") or not isinstance(v, str):
            raise HawserError(f"{P}.unified[{k!r}]: must map a file name like memory.high to a "
                              "string value")


def requested(res: dict | None) -> set[str]:
    """The v1 controllers a resources document needs (to fail early when one is not mounted)."""
    res = res or {}
    need = set()
    mem, cpu, net = res.get("memory") or {}, res.get("cpu") or {}, res.get("network") or {}
    if any(v not in (None, 0) for v in mem.values()):
        need.add("memory")
    if any(cpu.get(k) for k in ("shares", "quota", "period", "burst", "realtimeRuntime",
                                "realtimePeriod")) or cpu.get("idle") is not None:
        need.add("cpu")
    if cpu.get("cpus") or cpu.get("mems"):
        need.add("cpuset")
    if (res.get("pids") or {}).get("limit"):
        need.add("pids")
    if any(res.get("blockIO") or {}):
        need.add("blkio")
    if res.get("devices") is not None:
        need.add("devices")
    if res.get("hugepageLimits"):
        need.add("hugetlb")
    if net.get("classID"):
        need.add("net_cls")
    if net.get("priorities"):
        need.add("net_prio")
    if res.get("rdma"):
        need.add("rdma")
    return need
