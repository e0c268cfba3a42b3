"""A container's resource limits in its config (memory_limit in bytes, pids_limit, cpus; 0 =
none): their checks, and the OCI LinuxResources they make."""
import math
import os

FIELDS = ("memory_limit", "pids_limit", "cpus")
CPU_PERIOD = 100000


def check(values: dict) -> None:
    """ValueError for a negative or non-finite limit, or more CPUs than the host could have."""
    for limit in FIELDS:
        value = values.get(limit) or 0
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{limit} must be a finite number, not negative")
    if (values.get("cpus") or 0) > (os.cpu_count() or 1) * 1024:
        raise ValueError(f"cpus {values['cpus']} is more than this host has")


def resources(config: dict) -> dict:
    """LinuxResources for the limits config sets."""
    res = {}
    if config.get("memory_limit"):
        res["memory"] = {"limit": int(config["memory_limit"])}
    if config.get("pids_limit"):
        res["pids"] = {"limit": int(config["pids_limit"])}
    if config.get("cpus"):
        res["cpu"] = {"period": CPU_PERIOD, "quota": int(float(config["cpus"]) * CPU_PERIOD)}
    return res
