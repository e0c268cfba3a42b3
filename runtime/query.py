"""`hawser list`."""
import os

from runtime import jsonlite, state


def list_containers(root: str, fmt: str, quiet: bool) -> str:
    entries = []
    for cid in state.list_ids(root):
        try:
            entries.append(state.load(root, cid, lock=False).oci_state())
        except Exception:  # noqa: BLE001 - a container being deleted meanwhile is skipped
            continue
    if quiet:
        return "".join(e["id"] + "\n" for e in entries)
    if fmt == "json":
        return jsonlite.compact(entries) + "\n"
    rows = [("ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER")]
    for e in entries:
        rows.append((e["id"], str(e["pid"]), e["status"], e["bundle"], e["created"],
                     _owner(e["bundle"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return "".join("".join(col.ljust(w + 3) for col, w in zip(r, widths)) + r[-1] + "\n"
                   for r in rows)


def _owner(bundle: str) -> str:
    try:
        uid = os.stat(bundle).st_uid
    except OSError:
        return ""
    return "root" if uid == 0 else str(uid)


