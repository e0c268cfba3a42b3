"""`hawser pause` / `hawser resume`: freeze and thaw every process of the container (the v1
freezer, or cgroup.freeze on v2)."""
from runtime import cgroups, state
from runtime.errors import HawserError


def _manager(c: state.Container):
    if not c.data.get("cgroup"):
        raise HawserError(f"container {c.id} has no cgroup to freeze")
    return cgroups.from_dict(c.data["cgroup"])


def pause(root: str, cid: str) -> None:
    c = state.load(root, cid)
    try:
        status = c.status()
        if status not in ("running", "created"):  # runc pauses a created container too
            raise HawserError(f"container not running (it is {status})" if status != "paused"
                              else "container already paused")
        _manager(c).freeze()
    finally:
        c.unlock()


def resume(root: str, cid: str) -> None:
    c = state.load(root, cid)
    try:
        if c.status() != "paused":
            raise HawserError("container not paused")
        _manager(c).thaw()
    finally:
        c.unlock()
