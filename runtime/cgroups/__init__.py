"""hawser's cgroups: one Manager interface over cgroup v1 (including hybrid hosts) and v2, modelled
on youki's libcgroups. Imported by the CLI on every create/delete/kill: only os and project modules
(v1/v2 load lazily, ctypes only for v2 OOM watching).

    m = open_manager(spec_cgroups_path, container_id)   # paths only: nothing is touched yet
    m.create(resources)       # validate, mkdir, apply linux.resources; undone on failure
    m.apply(pid)              # then move the init in
    state["cgroup"] = m.to_dict();  later: from_dict(state["cgroup"]).pids() / freeze() / destroy()

cgroupsPath, as runc's cgroupfs driver (hawser has no systemd driver):
  - absolute "/a/b": that path under each hierarchy's mount point (v1) or under root (v2);
  - relative "a/b": under the caller's own cgroup, per hierarchy on v1 (from /proc/self/cgroup),
    under the parent of the caller's cgroup on v2 (the "no internal processes" rule);
  - absent: "/hawser/<id>" (runc would use "<id>" relative to the caller), so hawser's cgroups
    are easy to recognise and do not depend on where the caller happens to sit;
  - "slice:prefix:name" (systemd style, runc --systemd-cgroup) is refused.
  ".." cannot climb above the base (runc's CleanPath); the root cgroup itself is refused.

OOM events: oom_event_fd() returns a non-blocking fd that becomes readable when something
happened (v1: eventfd registered on memory.oom_control; v2: inotify on memory.events). Drain it
with os.read(fd, 4096) and compare oom_kill_count() with the previous value.
"""
import os

from runtime.errors import HawserError

DEFAULT_PARENT = "/hawser"
ROOT = "/sys/fs/cgroup"


def detect(mountinfo: str = "/proc/self/mountinfo", root: str = ROOT) -> str:
    """"v2" when a cgroup2 filesystem is mounted at root, else "v1" (hybrid hosts included)."""
    from runtime.cgroups.base import mounts
    found = mounts(mountinfo)
    if any(fstype == "cgroup2" and point == root for _, point, fstype, _ in found):
        return "v2"
    if any(fstype == "cgroup" for _, _, fstype, _ in found):
        return "v1"
    raise HawserError(f"no cgroup filesystem is mounted at {root}")


def clean_path(cgroups_path: str | None, container_id: str) -> str:
    """The cgroupsPath hawser uses: absolute or relative, normalised, never escaping its base."""
    if not cgroups_path:
        cgroups_path = f"{DEFAULT_PARENT}/{container_id}"
    if cgroups_path.count(":") == 2 and "/" not in cgroups_path.split(":")[0]:
        raise HawserError(f"cgroupsPath {cgroups_path!r} is a systemd-style slice:prefix:name "
                          "path; hawser only manages cgroupfs paths (no --systemd-cgroup)")
    # normpath of "/" + p resolves every ".." inside the base; strip the lead again for relatives
    cleaned = os.path.normpath("/" + cgroups_path.lstrip("/"))
    if cleaned == "/":
        raise HawserError(f"cgroupsPath {cgroups_path!r} names the root cgroup; a container "
                          "needs a cgroup of its own")
    return cleaned if cgroups_path.startswith("/") else cleaned[1:]


def open_manager(cgroups_path: str | None, container_id: str, root: str = ROOT,
                 version: str | None = None, *, mountinfo: str = "/proc/self/mountinfo",
                 proc_cgroup: str = "/proc/self/cgroup", enable_controllers: bool = True):
    """A V1Manager or V2Manager for the container's cgroup; computes paths, touches nothing."""
    root = root.rstrip("/")
    path = clean_path(cgroups_path, container_id)
    version = version or detect(mountinfo, root)
    if version == "v2":
        from runtime.cgroups.v2 import V2Manager, resolve
        return V2Manager({"": resolve(path, root, proc_cgroup)}, path, root, enable_controllers)
    if version != "v1":
        raise HawserError(f"unknown cgroup version {version!r}")
    from runtime.cgroups.v1 import V1Manager, resolve
    paths = resolve(path, root, mountinfo, proc_cgroup)
    if not paths:
        raise HawserError(f"no cgroup v1 hierarchy is mounted under {root}")
    return V1Manager(paths, path)


def from_dict(d: dict):
    """The manager recorded by Manager.to_dict() (in the state file)."""
    if d.get("version") == "v2":
        from runtime.cgroups.v2 import V2Manager
        return V2Manager.from_dict(d)
    from runtime.cgroups.v1 import V1Manager
    return V1Manager.from_dict(d)
