"""`hawser ps`: the container's processes, as host pids (json) or as `ps` lines (table)."""
import subprocess

from runtime import cgroups, jsonlite, state
from runtime.errors import HawserError


def container_pids(root: str, cid: str) -> list[int]:
    c = state.load(root, cid, lock=False)
    if not c.data.get("cgroup"):
        return [c.pid] if c.alive() else []
    return cgroups.from_dict(c.data["cgroup"]).pids()


def ps(root: str, cid: str, fmt: str, ps_args: list[str]) -> str:
    pids = container_pids(root, cid)
    if fmt == "json":
        return jsonlite.compact(pids) + "\n"
    try:
        out = subprocess.run(["ps"] + (ps_args or ["-ef"]), capture_output=True, text=True,
                             check=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        raise HawserError(f"running ps: {e}") from None
    lines = out.splitlines()
    if not lines:
        return ""
    try:
        col = lines[0].split().index("PID")
    except ValueError:
        raise HawserError("ps output has no PID column") from None
    wanted = {str(p) for p in pids}
    keep = [lines[0]] + [ln for ln in lines[1:] if ln.split()[col:col + 1] and ln.split()[col] in wanted]
    return "\n".join(keep) + "\n"
