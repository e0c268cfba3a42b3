"""An image's config into a container's, by docker's rules: the request's args replace the image's
Cmd; an entrypoint given (even empty) replaces the image's Entrypoint and drops its Cmd; the
request's env adds to the image's (a key given twice: the request's wins); the working directory,
user and stop signal default to the image's; exposed ports, volumes and labels are the image's plus
the request's. What a created container records is the result: its inspect shows docker's
Config, and a later image change does not change it."""
import os

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class ConfigError(ValueError):
    pass


def merge(image_config: dict, request: dict) -> dict:
    """The container config (ContainerConfig's fields) from the image config's "config" object
    and the request's fields."""
    img = image_config.get("config") or {}
    out = dict(request)
    if request.get("entrypoint_set"):
        entrypoint = list(request.get("entrypoint") or ())
        cmd = list(request.get("args") or ())
    else:
        entrypoint = list(img.get("Entrypoint") or ())
        cmd = list(request.get("args") or ()) or list(img.get("Cmd") or ())
    if not entrypoint and not cmd:
        raise ConfigError("no command specified: the image has no Cmd or Entrypoint and the "
                          "request gives none")
    out["entrypoint"], out["args"] = entrypoint, cmd
    out["entrypoint_set"] = bool(request.get("entrypoint_set"))
    out["env"] = merge_env(img.get("Env") or (), request.get("env") or ())
    out["cwd"] = request.get("cwd") or img.get("WorkingDir") or "/"
    if not out["cwd"].startswith("/"):
        raise ConfigError(f"working directory {out['cwd']!r} is not an absolute path")
    out["user"] = request.get("user") or img.get("User") or ""
    out["stop_signal"] = request.get("stop_signal") or img.get("StopSignal") or ""
    out["exposed_ports"] = _union(sorted(img.get("ExposedPorts") or {}),
                                  request.get("exposed_ports") or ())
    out["volumes"] = _union(sorted(img.get("Volumes") or {}), request.get("volumes") or ())
    return out


def merge_labels(image_config: dict, labels: dict) -> dict:
    return {**((image_config.get("config") or {}).get("Labels") or {}), **labels}


def merge_env(image_env, request_env) -> list[str]:
    """KEY=VALUE lists: the image's, each key replaced by the request's, the request's new keys
    after; a PATH when neither has one."""
    given = {}
    for e in request_env:
        key, sep, _ = e.partition("=")
        if sep:
            given[key] = e
    out = []
    for e in image_env:
        key = e.partition("=")[0]
        out.append(given.pop(key, e))
    out.extend(given.values())
    if not any(e.startswith("PATH=") for e in out):
        out.insert(0, DEFAULT_PATH)
    return out


def _union(first, second) -> list[str]:
    seen = dict.fromkeys(first)
    seen.update(dict.fromkeys(second))
    return list(seen)


# -- files of a layered root filesystem, read without mounting it --------------------------------
WHITEOUT_PREFIX = ".wh."
OPAQUE_XATTR = "trusted.overlay.opaque"


def read_layered(dirs: list[str], path: str, limit: int = 1 << 20) -> str | None:
    """The text of `path` (relative to the root) as an overlay of `dirs` (the top first) shows
    it, or None: the first dir that has it wins; a whiteout (a 0/0 character device) or an
    opaque directory on the way hides what the dirs below have. Each component is opened
    without following symlinks (a layer cannot point the read elsewhere on the host)."""
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or ".." in parts:
        return None
    for top in dirs:
        found, hidden = _read_in(top, parts, limit)
        if found is not None or hidden:
            return found
    return None


def _read_in(top: str, parts: list[str], limit: int) -> tuple[str | None, bool]:
    """(text, hidden below): the file in this one dir, and whether this dir hides the dirs
    below it for this path."""
    try:
        fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None, False
    try:
        for i, name in enumerate(parts):
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                return None, _opaque(fd)
            except OSError:
                return None, False
            if _is_whiteout(st):
                return None, True
            last = i == len(parts) - 1
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | (0 if last else os.O_DIRECTORY)
            try:
                nfd = os.open(name, flags, dir_fd=fd)
            except OSError:
                return None, False
            os.close(fd)
            fd = nfd
        with os.fdopen(fd, "rb", closefd=True) as f:
            fd = -1
            return f.read(limit).decode(errors="replace"), True
    finally:
        if fd >= 0:
            os.close(fd)


def _is_whiteout(st) -> bool:
    import stat
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(fd: int) -> bool:
    try:
        return os.getxattr(fd, OPAQUE_XATTR) == b"y"
    except OSError:
        return False


# -- the user, from the image's /etc/passwd and /etc/group ---------------------------------------
def resolve_user(user: str, read) -> dict:
    """docker's user forms ("", uid, name, uid:gid, name:group, ...) to an OCI process.user
    (uid, gid, additionalGids from the groups that list the user), names looked up with
    read(path) -> text or None. ConfigError for a name that is not there."""
    if not user:
        user = "0"
    name, _, group = user.partition(":")
    passwd = _entries(read("etc/passwd"))
    groups = _entries(read("etc/group"))
    if name.isdigit():
        uid = int(name)
        entry = next((e for e in passwd if len(e) > 3 and e[2] == name), None)
        gid = int(entry[3]) if entry and entry[3].isdigit() else 0
        login = entry[0] if entry else None
    else:
        entry = next((e for e in passwd if len(e) > 3 and e[0] == name), None)
        if entry is None or not entry[2].isdigit():
            raise ConfigError(f"unable to find user {name}: no matching entries in passwd file")
        uid, gid, login = int(entry[2]), int(entry[3]) if entry[3].isdigit() else 0, name
    if group:
        if group.isdigit():
            gid = int(group)
        else:
            g = next((e for e in groups if len(e) > 2 and e[0] == group), None)
            if g is None or not g[2].isdigit():
                raise ConfigError(f"unable to find group {group}: no matching entries in group "
                                  "file")
            gid = int(g[2])
    out = {"uid": uid, "gid": gid}
    if login and not group:
        extra = sorted({int(e[2]) for e in groups if len(e) > 3 and e[2].isdigit()
                        and login in e[3].split(",") and int(e[2]) != gid})
        if extra:
            out["additionalGids"] = extra
    return out


def _entries(text: str | None) -> list[list[str]]:
    if not text:
        return []
    return [line.split(":") for line in text.splitlines() if line and not line.startswith("#")]
