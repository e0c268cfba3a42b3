"""A container's cgroup v1 directories, read from its init's /proc/PID/cgroup."""
import os

ROOT = "/sys/fs/cgroup"


def v1_path(pid: int, controller: str) -> str | None:
    """The directory of pid's cgroup in a v1 hierarchy, None without that hierarchy."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controller in controllers.split(","):
                mount = os.path.join(ROOT, controllers)
                if not os.path.isdir(mount):
                    mount = os.path.join(ROOT, controller)
                return mount + path
    return None


def read_int(path: str) -> int:
    try:
        with open(path) as f:
            value = f.read().strip()
    except OSError:
        return 0
    return int(value) if value.isdigit() else 0


def read_keyed(path: str) -> dict[str, int]:
    """A "key value" per line file (memory.stat, cpu.stat, memory.oom_control)."""
    out = {}
    try:
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) == 2 and parts[1].isdigit():
                    out[parts[0]] = int(parts[1])
    except OSError:
        pass
    return out
