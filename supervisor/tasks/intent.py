"""Intent before side effects: an operation on a container (task, remove, update) is recorded in
its bundle (hawserd-intent.json: the operation and the status before it) before its first side
effect and removed once it is done, so that recovery (tasks/recovery.py) can finish or roll back
what a crash interrupted."""
import json
import os

INTENT = "hawserd-intent.json"


def begin(bundle: str, op: str, rec: dict) -> None:
    """Record that op is under way on the container (before its first side effect), with the
    status it had before: what a rollback returns to."""
    prev = {k: rec[k] for k in ("status", "pid", "exit_status", "exited_at")}
    tmp = os.path.join(bundle, "." + INTENT)
    with open(tmp, "w") as f:
        json.dump({"op": op, "prev": prev}, f)
    os.replace(tmp, os.path.join(bundle, INTENT))


def end(bundle: str) -> None:
    try:
        os.unlink(os.path.join(bundle, INTENT))
    except FileNotFoundError:
        pass


def pending(bundle: str) -> dict:
    try:
        with open(os.path.join(bundle, INTENT)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}
