"""`hawser kill`: signal the container's init, or with --all every process in its cgroup."""
import os

from runtime import HawserError, cgroups, state

SIGKILL = 9


def kill(root: str, cid: str, sig: int, all_processes: bool) -> None:
    c = state.load(root, cid)
    try:
        if c.status() == "stopped":
            # containerd matches "container not running" to know the task is already gone.
            raise HawserError("container not running")
        signal_container(c, sig, all_processes)
    finally:
        c.unlock()


def signal_container(c: state.Container, sig: int, all_processes: bool) -> None:
    mgr = cgroups.from_dict(c.data["cgroup"]) if c.data.get("cgroup") else None
    if all_processes and mgr is not None:
        for pid in mgr.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
    else:
        try:
            os.kill(c.pid, sig)
        except ProcessLookupError:
            raise HawserError("container not running") from None
    if sig == SIGKILL and mgr is not None and mgr.is_frozen():
        mgr.thaw()  # frozen tasks only die once thawed
