"""The OCI bundle of a container: config.json made like `hawser spec`, with the request's
process settings and limits (its mounts and networking are tasks/sandbox.py's); root.path is
the given rootfs directory, or the bundle's rootfs/ where the shim mounts an image's
snapshot."""
import json
import os
import shutil

from runtime.specgen import default_spec
from supervisor.containers import resources
from supervisor.images import config as imgconfig

DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class BadConfig(ValueError):
    pass


def make_spec(cid: str, config: dict, rootfs: str, cgroup_parent: str = "hawserd",
              read=None) -> dict:
    """The container's config.json. rootfs is root.path (a directory, or "rootfs" for the
    bundle's own, where the shim mounts an image's snapshot); read(path) -> text or None reads
    the container's files (the image's /etc/passwd), from rootfs when not given."""
    spec = default_spec()
    proc = spec["process"]
    args = list(config.get("entrypoint") or ()) + list(config.get("args") or ())
    if not args:
        raise BadConfig("no command: give the command to run after the rootfs")
    proc["args"] = args
    env = [e for e in config.get("env") or () if "=" in e]
    if not any(e.startswith("PATH=") for e in env):
        env.insert(0, DEFAULT_PATH)
    proc["env"] = env
    proc["cwd"] = config.get("cwd") or "/"
    if not proc["cwd"].startswith("/"):
        raise BadConfig(f"working directory {proc['cwd']!r} is not an absolute path")
    proc["terminal"] = bool(config.get("terminal"))
    proc["user"] = resolve_user(config.get("user") or "", read or dir_reader(rootfs))
    spec["hostname"] = config.get("hostname") or cid[:12]
    spec["root"] = {"path": rootfs, "readonly": bool(config.get("read_only"))}
    spec["linux"].setdefault("resources", {}).update(resources.resources(config))
    spec["linux"]["cgroupsPath"] = f"/{cgroup_parent}/{cid}"
    return spec


def dir_reader(rootfs: str):
    """read(path) of a root filesystem directory (symlinks not followed out of it)."""
    return lambda path: imgconfig.read_layered([rootfs], path)


def resolve_user(user: str, read) -> dict:
    """docker's user forms ("uid[:gid]", "name[:group]"), names looked up through read in the
    container's /etc/passwd and /etc/group."""
    try:
        return imgconfig.resolve_user(user, read)
    except imgconfig.ConfigError as e:
        raise BadConfig(str(e)) from None


def write_bundle(path: str, spec: dict) -> None:
    os.makedirs(path, mode=0o711, exist_ok=True)
    tmp = os.path.join(path, "config.json.tmp")
    with open(tmp, "w") as f:
        json.dump(spec, f, indent=1)
    os.rename(tmp, os.path.join(path, "config.json"))


def remove_bundle(path: str) -> None:
    """A bundle's directory, after anything still mounted on its rootfs (a shim that died
    without unmounting): rmtree would otherwise delete the container's files through it."""
    from shim import mount
    rootfs = os.path.join(path, "rootfs")
    if os.path.ismount(rootfs):
        try:
            mount.unmount_all(rootfs)
        except OSError as e:
            raise OSError(e.errno, f"cannot unmount {rootfs}: {e.strerror}") from None
    shutil.rmtree(path, ignore_errors=True)
