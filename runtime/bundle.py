"""Reading an OCI bundle: config.json validated (cached by digest), parsed into runtime.spec.Spec,
and the checks the schema cannot make (rootfs, namespaces the config implies). args[0] is
looked up by the container's init, after its mounts, as runc does."""
import os

from runtime.errors import HawserError
from runtime.spec import Spec


def load_bundle(bundle: str, cache_dir: str) -> tuple[Spec, str]:
    """(spec, absolute rootfs path) of the bundle, or HawserError naming what is wrong."""
    path = f"{bundle}/config.json"
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise HawserError(f"bundle {bundle}: config.json does not exist") from None
    except OSError as e:
        raise HawserError(f"{path}: {e.strerror}") from None
    from runtime.validate import validate_config
    spec = Spec(validate_config(raw, cache_dir))
    rootfs = spec.root_path if spec.root_path.startswith("/") else f"{bundle}/{spec.root_path}"
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise HawserError(f"root.path: rootfs {rootfs} does not exist or is not a directory")
    check_spec(spec, rootfs)
    return spec, rootfs


def check_spec(spec: Spec, rootfs: str) -> None:
    """Rules of the runtime-spec the schema cannot express, checked before anything is made."""
    linux = spec.linux
    seen = set()
    for ns in linux.namespaces:
        if ns.type in seen:
            raise HawserError(f"linux.namespaces: {ns.type} namespace listed twice")
        seen.add(ns.type)
        if ns.path and not os.path.exists(ns.path):
            raise HawserError(f"linux.namespaces: {ns.type} namespace path {ns.path} does not exist")
    if "mount" not in seen:
        raise HawserError("linux.namespaces: a mount namespace is required")
    if spec.hostname and "uts" not in seen:
        raise HawserError("hostname: setting the hostname needs a uts namespace of the container's own")
    if spec.domainname and "uts" not in seen:
        raise HawserError("domainname: setting the domainname needs a uts namespace")
    user = linux.namespace("user")
    if user is not None and not user.path and not (linux.uid_mappings and linux.gid_mappings):
        raise HawserError("linux.uidMappings/gidMappings: a new user namespace needs both mappings")
    if user is None and (linux.uid_mappings or linux.gid_mappings):
        raise HawserError("linux.uidMappings: mappings given without a user namespace")
    if linux.time_offsets and "time" not in seen:
        raise HawserError("linux.timeOffsets: offsets need a time namespace")
    proc = spec.process
    if proc is not None:
        if not proc.args:
            raise HawserError("process.args: at least one argument (the program) is required")
        if not proc.cwd.startswith("/"):
            raise HawserError(f"process.cwd: {proc.cwd!r} must be an absolute path")
