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
    for m in spec.mounts:
        # A relative bind source is relative to the bundle, as with runc, not to our cwd.
        bind = m.type == "bind" or "bind" in m.options or "rbind" in m.options
        if bind and m.source and not m.source.startswith("/"):
            m.source = f"{bundle}/{m.source}"
    rootfs = spec.root_path if spec.root_path.startswith("/") else f"{bundle}/{spec.root_path}"
    rootfs = os.path.realpath(rootfs)
    if not os.path.isdir(rootfs):
        raise HawserError(f"root.path: rootfs {rootfs} does not exist or is not a directory")
    check_spec(spec, rootfs)
    return spec, rootfs


IPC_SYSCTLS = frozenset(("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
                         "kernel.shmall", "kernel.shmmax", "kernel.shmmni",
                         "kernel.shm_rmid_forced"))


def check_sysctls(spec: Spec) -> None:
    """A sysctl is only set inside a namespace of the container's own: anything else would change
    the host (runc's rules)."""
    linux = spec.linux
    for key in linux.sysctl:
        where = f'linux.sysctl["{key}"]'
        if key in IPC_SYSCTLS or key.startswith("fs.mqueue."):
            if linux.namespace("ipc") is None:
                raise HawserError(f"{where}: not allowed in the host's ipc namespace")
        elif key.startswith("net."):
            net = linux.namespace("network")
            if net is None or (net.path and _same_ns(net.path, "net")):
                raise HawserError(f"{where}: not allowed in the host's network namespace")
        elif key == "kernel.domainname" and linux.namespace("uts") is not None:
            pass
        elif key == "kernel.hostname":
            raise HawserError(f"{where}: set the hostname with `hostname`, not a sysctl")
        else:
            raise HawserError(f"{where}: not in a namespace of the container's own, so it "
                              f"would change the host")


def _same_ns(path: str, name: str) -> bool:
    try:
        return os.stat(path).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino
    except OSError:
        return False


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
    check_sysctls(spec)
    proc = spec.process
    if proc is not None:
        if not proc.args:
            raise HawserError("process.args: at least one argument (the program) is required")
        if not proc.cwd.startswith("/"):
            raise HawserError(f"process.cwd: {proc.cwd!r} must be an absolute path")
