"""`hawser events`: JSON lines as runc prints them: `stats` every interval (once with --stats)
and `oom` when the container's cgroup records an OOM kill."""
import os
import select
import sys

from runtime import cgroups, jsonlite, state
from runtime.errors import HawserError

DURATION_UNITS = (("ms", 0.001), ("us", 1e-6), ("ns", 1e-9), ("s", 1.0), ("m", 60.0), ("h", 3600.0))


def parse_duration(text: str) -> float:
    """Go durations as runc takes them: 5s, 100ms, 1m, 1.5s."""
    for suffix, scale in DURATION_UNITS:
        if text.endswith(suffix):
            try:
                value = float(text[:-len(suffix)]) * scale
            except ValueError:
                break
            if value > 0:
                return value
            break
    raise HawserError(f"--interval: invalid duration {text!r} (e.g. 5s, 500ms)")


def _emit(kind: str, cid: str, data=None) -> None:
    event = {"type": kind, "id": cid}
    if data is not None:
        event["data"] = data
    sys.stdout.write(jsonlite.compact(event) + "\n")
    sys.stdout.flush()


def events(root: str, cid: str, stats_once: bool, interval: float) -> None:
    c = state.load(root, cid, lock=False)
    if c.status() == "stopped":
        raise HawserError("container not running")
    if not c.data.get("cgroup"):
        raise HawserError(f"container {cid} has no cgroup")
    mgr = cgroups.from_dict(c.data["cgroup"])
    if stats_once:
        _emit("stats", cid, mgr.stats())
        return
    oom_fd = None
    try:
        oom_fd = mgr.oom_event_fd()
    except (OSError, HawserError):
        pass  # no memory controller: stats only
    # OOM kills reported so far. On v1 the eventfd fires before the kernel counts the kill, so a
    # wake-up is one OOM by itself (as runc reports it); the counter catches any missed wake-up.
    reported = mgr.oom_kill_count() if oom_fd is not None else 0
    counts_lag = mgr.to_dict().get("version") == "v1"
    poller = select.poll()
    if oom_fd is not None:
        poller.register(oom_fd, select.POLLIN)
    try:
        while c.alive():
            _emit("stats", cid, mgr.stats())
            for _ in poller.poll(int(interval * 1000)):
                try:
                    os.read(oom_fd, 4096)
                except BlockingIOError:
                    continue
                if counts_lag and mgr.exists():
                    reported += 1
                    _emit("oom", cid)
            if oom_fd is not None and mgr.exists():
                now = mgr.oom_kill_count()
                while now > reported:
                    reported += 1
                    _emit("oom", cid)
    except BrokenPipeError:
        pass
    finally:
        if oom_fd is not None:
            os.close(oom_fd)
