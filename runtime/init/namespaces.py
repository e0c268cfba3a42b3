"""Namespace work of the intermediate process: join the configured ones, create the new ones.

Runs in a freshly forked, single-threaded process (setns/unshare of a user namespace refuses
threaded callers). New pid and time namespaces apply to children only, hence the second fork.
"""
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.spec import Linux
from runtime.syscall.consts import CLONE_NEWCGROUP, CLONE_NEWNET, CLONE_NEWTIME, CLONE_NEWUSER

SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def join_namespaces(linux: Linux) -> None:
    """setns into every namespace given by path: the user namespace first, so that the others are
    joined with its privileges; all paths are opened before any join changes what they mean."""
    joins = [ns for ns in linux.namespaces if ns.path]
    joins.sort(key=lambda ns: ns.type != "user")
    fds = []
    try:
        for ns in joins:
            try:
                fds.append((os.open(ns.path, os.O_RDONLY | os.O_CLOEXEC), ns))
            except OSError as e:
                raise HawserError(f"linux.namespaces: {ns.type} namespace path {ns.path}: "
                                  f"{e.strerror}") from None
        for fd, ns in fds:
            try:
                syscall.get().setns(fd, ns.flag)
            except OSError as e:
                raise HawserError(f"linux.namespaces: joining {ns.type} namespace {ns.path}: "
                                  f"{e.strerror}") from None
    finally:
        for fd, _ in fds:
            os.close(fd)


def new_namespace_flags(linux: Linux) -> int:
    flags = 0
    for ns in linux.namespaces:
        if not ns.path:
            flags |= ns.flag
    return flags


def write_id_maps(pid: int, linux: Linux) -> None:
    """Done by the parent, which is privileged in the parent user namespace."""
    for name, maps in (("uid_map", linux.uid_mappings), ("gid_map", linux.gid_mappings)):
        text = "".join(f"{m.container_id} {m.host_id} {m.size}\n" for m in maps)
        try:
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(text)
        except OSError as e:
            raise HawserError(f"linux.{'uidMappings' if name == 'uid_map' else 'gidMappings'}: "
                              f"writing {name}: {e.strerror}") from None


def write_time_offsets(linux: Linux) -> None:
    lines = []
    for clock in ("monotonic", "boottime"):
        off = linux.time_offsets.get(clock)
        if off:
            lines.append(f"{clock} {off.get('secs', 0)} {off.get('nanosecs', 0)}\n")
    if lines:
        with open("/proc/self/timens_offsets", "w") as f:
            f.write("".join(lines))


def loopback_up() -> None:
    """A new network namespace starts with lo down; runc and crun bring it up."""
    import _socket
    import fcntl
    s = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM | _socket.SOCK_CLOEXEC)
    try:
        req = bytearray(b"lo".ljust(40, b"\0"))
        fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req)
        flags = int.from_bytes(req[16:18], "little") | IFF_UP
        req[16:18] = flags.to_bytes(2, "little")
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, bytes(req))
    finally:
        s.close()


def create_namespaces(linux: Linux, chan, before_cgroup_ns=None, skip: int = 0) -> int:
    """unshare the new namespaces but `skip` (made by the parent already); for a user namespace,
    have the parent write our id maps first. before_cgroup_ns, if given, runs once the others
    exist and before the cgroup namespace is made (whose root is the cgroup we are in then).
    Returns the flags that were unshared."""
    sc = syscall.get()
    flags = new_namespace_flags(linux) & ~skip
    if flags & CLONE_NEWUSER:
        try:
            sc.unshare(CLONE_NEWUSER)
        except OSError as e:
            raise HawserError(f"linux.namespaces: creating the user namespace: {e.strerror}") \
                from None
        chan.send("idmap")
        chan.expect("idmap-done")
        try:
            sc.setresgid(0)
            sc.setresuid(0)
        except OSError as e:
            raise HawserError(f"linux.namespaces: becoming root in the user namespace "
                              f"(check uidMappings/gidMappings map 0): {e.strerror}") from None
    rest = flags & ~CLONE_NEWUSER
    later = rest & CLONE_NEWCGROUP if before_cgroup_ns is not None else 0
    _unshare(rest & ~later)
    if rest & CLONE_NEWTIME:
        write_time_offsets(linux)
    if rest & CLONE_NEWNET:
        loopback_up()
    if before_cgroup_ns is not None:
        before_cgroup_ns()
        _unshare(later)
    return flags


def _unshare(flags: int) -> None:
    if flags:
        try:
            syscall.get().unshare(flags)
        except OSError as e:
            raise HawserError(f"linux.namespaces: creating namespaces: {e.strerror}") from None
