"""`hawser delete`: remove a stopped (or, with --force, any) container: processes, cgroup, state,
then the poststop hooks."""
import os

from runtime import HawserError, NotExist, cgroups, state
from runtime.kill import signal_container

SIGKILL = 9


def delete(root: str, cid: str, force: bool) -> None:
    try:
        c = state.load(root, cid)
    except NotExist:
        if force:
            return  # containerd deletes --force what may already be gone: not an error
        raise
    delete_container(c, force)


def delete_container(c: state.Container, force: bool) -> None:
    status = c.status()
    if status in ("running", "paused") and not force:
        raise HawserError(f"cannot delete container {c.id} that is not stopped: {status}")
    if status != "stopped":
        # A created container may be deleted without --force, as with runc.
        signal_container(c, SIGKILL, all_processes=True)
        wait_stopped(c)
    if c.data.get("cgroup"):
        mgr = cgroups.from_dict(c.data["cgroup"])
        # Without a pid namespace of its own, processes outlive the container's init: they are
        # still in its cgroup, and go with it (as runc does).
        kill_leftovers(c, mgr)
        try:
            mgr.destroy()
        except (OSError, HawserError) as e:
            # Keep the state: a later delete can still find and remove the cgroup.
            raise HawserError(f"removing the cgroup of {c.id}: {e}") from None
    raw_hooks = c.data.get("hooks", {}).get("poststop", [])
    hook_state = c.hook_state("stopped")
    state.remove(c)
    if raw_hooks:
        from runtime import log
        from runtime.hooks import run_hooks_warn  # only when there are hooks
        from runtime.spec import Hook
        run_hooks_warn("poststop", [Hook(h) for h in raw_hooks], hook_state, log.warn)


def kill_leftovers(c: state.Container, mgr, timeout: float = 10.0) -> None:
    for _ in state.polls(timeout):
        try:
            pids = mgr.pids()
        except OSError:
            return  # the cgroup is already gone
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, SIGKILL)
            except ProcessLookupError:
                pass
        if mgr.is_frozen():
            mgr.thaw()
    raise HawserError(f"container {c.id}: processes {pids[:5]} survive SIGKILL")


def wait_stopped(c: state.Container, timeout: float = 10.0) -> None:
    for _ in state.polls(timeout):
        if not c.alive():
            return
    raise HawserError(f"container {c.id} did not stop after SIGKILL")
