"""`hawser update`: change the resources of a running container (flags or -r FILE/-)."""
import sys

from runtime import cgroups, jsonlite, state
from runtime.errors import HawserError

UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
         "g": 1 << 30, "gb": 1 << 30, "t": 1 << 40, "tb": 1 << 40}

# flag -> (path in LinuxResources, parser)
FLAGS = {
    "memory": (("memory", "limit"), "bytes"),
    "memory-reservation": (("memory", "reservation"), "bytes"),
    "memory-swap": (("memory", "swap"), "bytes"),
    "kernel-memory": (("memory", "kernel"), "bytes"),
    "kernel-memory-tcp": (("memory", "kernelTCP"), "bytes"),
    "cpu-shares": (("cpu", "shares"), "int"),
    "cpu-share": (("cpu", "shares"), "int"),
    "cpu-quota": (("cpu", "quota"), "int"),
    "cpu-period": (("cpu", "period"), "int"),
    "cpu-rt-period": (("cpu", "realtimePeriod"), "int"),
    "cpu-rt-runtime": (("cpu", "realtimeRuntime"), "int"),
    "cpuset-cpus": (("cpu", "cpus"), "str"),
    "cpuset-mems": (("cpu", "mems"), "str"),
    "pids-limit": (("pids", "limit"), "int"),
    "blkio-weight": (("blockIO", "weight"), "int"),
}


def parse_bytes(flag: str, text: str) -> int:
    """`512m`, `1g`, `1048576`, `-1` (unlimited), as docker and runc accept them."""
    t = text.strip().lower()
    if t == "-1":
        return -1
    num = t.rstrip("bkmgt")
    unit = t[len(num):]
    try:
        value = float(num)
    except ValueError:
        value = -2
    if unit not in UNITS or value < 0:
        raise HawserError(f"--{flag}: invalid size {text!r}")
    return int(value * UNITS[unit])


def resources_from_flags(flags: dict) -> dict:
    res: dict = {}
    for name, text in flags.items():
        (section, key), kind = FLAGS[name]
        if kind == "bytes":
            value = parse_bytes(name, text)
        elif kind == "int":
            try:
                value = int(text)
            except ValueError:
                raise HawserError(f"--{name}: {text!r} is not a number") from None
        else:
            value = text
        res.setdefault(section, {})[key] = value
    return res


def read_resources(path: str) -> dict:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else open(path, "rb").read()
        doc = jsonlite.loads(raw)
    except (OSError, ValueError) as e:
        raise HawserError(f"--resources {path}: {e}") from None
    if not isinstance(doc, dict):
        raise HawserError(f"--resources {path}: expected a JSON object (LinuxResources)")
    return doc


def update(root: str, cid: str, resources: dict) -> None:
    c = state.load(root, cid)
    try:
        if c.status() == "stopped":
            raise HawserError("container not running: cannot update a stopped container")
        if not c.data.get("cgroup"):
            raise HawserError(f"container {cid} has no cgroup")
        # runc's update leaves device rules alone; so do we.
        resources = {k: v for k, v in resources.items() if k != "devices"}
        cgroups.from_dict(c.data["cgroup"]).set(resources, default_devices=False)
    finally:
        c.unlock()
