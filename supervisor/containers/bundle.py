"""The OCI bundle of a container: config.json made like `hawser spec`, with the request's
process settings and limits, root.path = the given rootfs directory."""
import json
import os

from runtime.specgen import default_spec
from supervisor.containers import resources

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BadConfig(ValueError):
    pass


def make_spec(cid: str, config: dict, rootfs: str, cgroup_parent: str = "hawserd") -> dict:
    spec = default_spec()
    proc = spec["process"]
    if not config.get("args"):
        raise BadConfig("no command: give the command to run after the rootfs")
    proc["args"] = list(config["args"])
    env = [e for e in config.get("env") or () if "=" in e]
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    proc["env"] = env
    proc["cwd"] = config.get("cwd") or "/"
    if not proc["cwd"].startswith("/"):
        raise BadConfig(f"working directory {proc['cwd']!r} is not an absolute path")
    proc["terminal"] = bool(config.get("terminal"))
    proc["user"] = resolve_user(config.get("user") or "", rootfs)
    spec["hostname"] = config.get("hostname") or cid[:12]
    spec["root"] = {"path": rootfs, "readonly": bool(config.get("read_only"))}
    for m in config.get("mounts") or ():
        spec["mounts"].append({"destination": m["destination"], "type": "bind",
                               "source": m["source"],
                               "options": ["rbind", "ro" if m.get("read_only") else "rw"]})
    spec["linux"].setdefault("resources", {}).update(resources.resources(config))
    spec["linux"]["cgroupsPath"] = f"/{cgroup_parent}/{cid}"
    return spec


def resolve_user(user: str, rootfs: str) -> dict:
    """"uid[:gid]" or "name[:group]", names looked up in the rootfs' /etc/passwd and group."""
    if not user:
        return {"uid": 0, "gid": 0}
    name, _, group = user.partition(":")
    uid, gid = _lookup(name, os.path.join(rootfs, "etc/passwd"), 2, 3)
    if group:
        gid = _lookup(group, os.path.join(rootfs, "etc/group"), 2, None)[0]
    return {"uid": uid, "gid": gid}


def _lookup(name: str, path: str, id_field: int, gid_field) -> tuple[int, int]:
    if name.isdigit():
        return int(name), 0
    try:
        with open(path) as f:
            for line in f:
                parts = line.strip().split(":")
                if len(parts) > id_field and parts[0] == name:
                    return int(parts[id_field]), int(parts[gid_field]) if gid_field else 0
    except OSError:
        pass
    raise BadConfig(f"unable to find user or group {name!r} in {path}")


def write_bundle(path: str, spec: dict) -> None:
    os.makedirs(path, mode=0o711, exist_ok=True)
    tmp = os.path.join(path, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
    os.rename(tmp, os.path.join(path, "config.json"))
