"""Task.Stats: a container's cgroup v1 statistics as io.containerd.cgroups.v1.Metrics (what
`ctr task metrics` decodes): pids, cpu, memory and the OOM counters. Imported only when asked."""
import os

from shim import cgroup, wire

m = wire.package("io.containerd.cgroups.v1")
USER_HZ = os.sysconf("SC_CLK_TCK")
# memory.stat key -> MemoryStat field, where the names differ
MEMORY_KEYS = {"pgpgin": "pg_pg_in", "pgpgout": "pg_pg_out", "pgfault": "pg_fault",
               "pgmajfault": "pg_maj_fault", "hierarchical_memsw_limit": "hierarchical_swap_limit",
               "total_pgpgin": "total_pg_pg_in", "total_pgpgout": "total_pg_pg_out",
               "total_pgfault": "total_pg_fault", "total_pgmajfault": "total_pg_maj_fault"}


def _entry(path: str, prefix: str):
    j = lambda name: os.path.join(path, f"{prefix}.{name}")   # noqa: E731
    if not os.path.exists(j("usage_in_bytes")):
        return None
    return m.MemoryEntry(limit=cgroup.read_int(j("limit_in_bytes")),
                         usage=cgroup.read_int(j("usage_in_bytes")),
                         max=cgroup.read_int(j("max_usage_in_bytes")),
                         failcnt=cgroup.read_int(j("failcnt")))


def cgroup_v1_metrics(pid: int):
    """None when the memory and cpu controllers are not on v1 (a cgroup v2 host)."""
    mem = cgroup.v1_path(pid, "memory")
    cpu = cgroup.v1_path(pid, "cpuacct")
    if mem is None and cpu is None:
        return None
    metrics = m.Metrics()
    pids = cgroup.v1_path(pid, "pids")
    if pids:
        metrics.pids = m.PidsStat(current=cgroup.read_int(os.path.join(pids, "pids.current")),
                                  limit=cgroup.read_int(os.path.join(pids, "pids.max")))
    if cpu:
        ticks = cgroup.read_keyed(os.path.join(cpu, "cpuacct.stat"))
        try:
            with open(os.path.join(cpu, "cpuacct.usage_percpu")) as f:
                per_cpu = [int(x) for x in f.read().split()]
        except OSError:
            per_cpu = []
        throttle = cgroup.read_keyed(os.path.join(cgroup.v1_path(pid, "cpu") or cpu, "cpu.stat"))
        metrics.cpu = m.CPUStat(
            usage=m.CPUUsage(total=cgroup.read_int(os.path.join(cpu, "cpuacct.usage")),
                             kernel=ticks.get("system", 0) * 1_000_000_000 // USER_HZ,
                             user=ticks.get("user", 0) * 1_000_000_000 // USER_HZ,
                             per_cpu=per_cpu),
            throttling=m.Throttle(periods=throttle.get("nr_periods", 0),
                                  throttled_periods=throttle.get("nr_throttled", 0),
                                  throttled_time=throttle.get("throttled_time", 0)))
    if mem:
        stat = m.MemoryStat()
        fields = {f.name for f in stat.FIELDS}
        for key, value in cgroup.read_keyed(os.path.join(mem, "memory.stat")).items():
            name = MEMORY_KEYS.get(key, key)
            if name in fields and isinstance(getattr(stat, name), int):
                setattr(stat, name, value)
        stat.usage = _entry(mem, "memory")
        stat.swap = _entry(mem, "memory.memsw")
        stat.kernel = _entry(mem, "memory.kmem")
        stat.kernel_tcp = _entry(mem, "memory.kmem.tcp")
        metrics.memory = stat
        oom = cgroup.read_keyed(os.path.join(mem, "memory.oom_control"))
        metrics.memory_oom_control = m.MemoryOomControl(
            oom_kill_disable=oom.get("oom_kill_disable", 0), under_oom=oom.get("under_oom", 0),
            oom_kill=oom.get("oom_kill", 0))
    return metrics
