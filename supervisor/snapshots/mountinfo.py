"""Which mounts of this mount namespace use a snapshot's directories: a mount point at or under
one, or an overlay that has one as a lower, upper or work dir. A snapshot in use is not
removed nor committed (its files would go from under a running container), and a leftover
directory is never deleted through a mount point into what is mounted there."""
import re

OVERLAY_DIRS = ("lowerdir", "upperdir", "workdir", "lowerdir+", "datadir+")
_ESCAPE = re.compile(r"\\([0-7]{3})")


def _unescape(field: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def users(paths: list[str]) -> list[str]:
    """Descriptions of the mounts using any of paths ("" when none)."""
    paths = [p.rstrip("/") for p in paths]
    if not paths:
        return []
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            head, _, tail = line.partition(" - ")
            fields, extra = head.split(), tail.split()
            target = _unescape(fields[4])
            if any(_under(target, p) for p in paths):
                found.append(f"a mount on {target}")
                continue
            if extra and extra[0] == "overlay" and len(extra) > 2:
                for opt in _unescape(extra[2]).split(","):
                    key, _, value = opt.partition("=")
                    if key in OVERLAY_DIRS and any(_under(d, p) for d in value.split(":")
                                                   for p in paths):
                        found.append(f"{key} of the overlay on {target}")
                        break
    return found


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top + "/")
