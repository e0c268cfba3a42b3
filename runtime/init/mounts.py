"""config.json `mounts`: option parsing and mounting each entry at a target resolved in the rootfs."""
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.init.paths import ensure_in_root, fd_path, open_in_root
from runtime.spec import Mount
from runtime.syscall import consts as c

# option -> (set flags, clear flags)
FLAGS = {
    "defaults": (0, 0), "ro": (c.MS_RDONLY, 0), "rw": (0, c.MS_RDONLY),
    "nosuid": (c.MS_NOSUID, 0), "suid": (0, c.MS_NOSUID), "nodev": (c.MS_NODEV, 0),
    "dev": (0, c.MS_NODEV), "noexec": (c.MS_NOEXEC, 0), "exec": (0, c.MS_NOEXEC),
    "sync": (c.MS_SYNCHRONOUS, 0), "async": (0, c.MS_SYNCHRONOUS), "dirsync": (c.MS_DIRSYNC, 0),
    "remount": (c.MS_REMOUNT, 0), "mand": (c.MS_MANDLOCK, 0), "nomand": (0, c.MS_MANDLOCK),
    "noatime": (c.MS_NOATIME, 0), "atime": (0, c.MS_NOATIME),
    "nodiratime": (c.MS_NODIRATIME, 0), "diratime": (0, c.MS_NODIRATIME),
    "relatime": (c.MS_RELATIME, 0), "norelatime": (0, c.MS_RELATIME),
    "strictatime": (c.MS_STRICTATIME, 0), "nostrictatime": (0, c.MS_STRICTATIME),
    "lazytime": (c.MS_LAZYTIME, 0), "nolazytime": (0, c.MS_LAZYTIME),
    "silent": (c.MS_SILENT, 0), "loud": (0, c.MS_SILENT),
    "nosymfollow": (c.MS_NOSYMFOLLOW, 0), "symfollow": (0, c.MS_NOSYMFOLLOW),
    "bind": (c.MS_BIND, 0), "rbind": (c.MS_BIND | c.MS_REC, 0),
}
PROPAGATION = {
    "private": c.MS_PRIVATE, "rprivate": c.MS_PRIVATE | c.MS_REC,
    "shared": c.MS_SHARED, "rshared": c.MS_SHARED | c.MS_REC,
    "slave": c.MS_SLAVE, "rslave": c.MS_SLAVE | c.MS_REC,
    "unbindable": c.MS_UNBINDABLE, "runbindable": c.MS_UNBINDABLE | c.MS_REC,
}
# recursive mount attributes (mount_setattr with AT_RECURSIVE): option -> (set, clear)
RECURSIVE = {
    "rro": (c.MOUNT_ATTR_RDONLY, 0), "rrw": (0, c.MOUNT_ATTR_RDONLY),
    "rnosuid": (c.MOUNT_ATTR_NOSUID, 0), "rsuid": (0, c.MOUNT_ATTR_NOSUID),
    "rnodev": (c.MOUNT_ATTR_NODEV, 0), "rdev": (0, c.MOUNT_ATTR_NODEV),
    "rnoexec": (c.MOUNT_ATTR_NOEXEC, 0), "rexec": (0, c.MOUNT_ATTR_NOEXEC),
    "rnodiratime": (c.MOUNT_ATTR_NODIRATIME, 0), "rdiratime": (0, c.MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (c.MOUNT_ATTR_NOSYMFOLLOW, 0), "rsymfollow": (0, c.MOUNT_ATTR_NOSYMFOLLOW),
    # the access-time mode is one field: set the mode, clearing the field
    "rrelatime": (c.MOUNT_ATTR_RELATIME, c.MOUNT_ATTR__ATIME),
    "rnoatime": (c.MOUNT_ATTR_NOATIME, c.MOUNT_ATTR__ATIME),
    "rstrictatime": (c.MOUNT_ATTR_STRICTATIME, c.MOUNT_ATTR__ATIME),
}
IGNORED = {"tmpcopyup", "notmpcopyup", "copy-symlink"}
# statvfs f_flag bits -> mount flags, to keep a mount's locked flags when remounting it
ST_TO_MS = ((1, c.MS_RDONLY), (2, c.MS_NOSUID), (4, c.MS_NODEV), (8, c.MS_NOEXEC),
            (1024, c.MS_NOATIME), (2048, c.MS_NODIRATIME), (4096, c.MS_RELATIME))


class MountPlan:
    """A mount entry's options split into mount(2) flags, propagation, recursive attrs and data."""
    __slots__ = ("flags", "clear", "propagation", "rec_set", "rec_clr", "data")

    def __init__(self, options: list[str], where: str):
        self.flags = self.clear = self.rec_set = self.rec_clr = 0
        self.propagation: list[int] = []
        data = []
        for opt in options:
            if opt in FLAGS:  # the last of two opposite options wins, as with runc
                s, clr = FLAGS[opt]
                self.flags = (self.flags & ~clr) | s
                self.clear = (self.clear & ~s) | clr
            elif opt in PROPAGATION:
                self.propagation.append(PROPAGATION[opt])
            elif opt in RECURSIVE:
                s, clr = RECURSIVE[opt]
                self.rec_set = (self.rec_set & ~clr) | s
                self.rec_clr = (self.rec_clr & ~s) | clr
            elif opt in ("idmap", "ridmap"):
                raise HawserError(f"{where}: option {opt!r}: idmapped mounts are not supported")
            elif opt not in IGNORED:
                data.append(opt)
        self.data = ",".join(data) or None

    @property
    def is_bind(self) -> bool:
        return bool(self.flags & c.MS_BIND)


def current_flags(path: str) -> int:
    st = os.statvfs(path)
    return sum(ms for st_bit, ms in ST_TO_MS if st.f_flag & st_bit)


def mount_entry(rootfd: int, m: Mount, index: int, cgroups) -> None:
    """Mount one config.json mounts[index] entry inside the rootfs. `cgroups` mounts a `cgroup`
    entry: cgroups(target, plan, phase) with phase "mount", then "finish" on the new mount."""
    where = f"mounts[{index}] ({m.destination})"
    plan = MountPlan(m.options, where)
    sc = syscall.get()
    if m.type == "bind":
        plan.flags |= c.MS_BIND
    directory = True
    if plan.is_bind:
        try:
            directory = (os.stat(m.source).st_mode & 0o170000) == 0o040000
        except FileNotFoundError:
            raise HawserError(f"{where}: mount source {m.source} does not exist") from None
    try:
        fd = ensure_in_root(rootfd, m.destination, directory=directory)
        try:
            target = fd_path(fd)
            if m.type == "cgroup":
                cgroups(target, plan, "mount")
            elif plan.is_bind:
                sc.mount(m.source, target, None, plan.flags & (c.MS_BIND | c.MS_REC))
            else:
                _mount_fs(m, target, plan)
        finally:
            os.close(fd)
        # Everything else acts on the new mount: reopen the destination to reach its root.
        fd = open_in_root(rootfd, m.destination)
        try:
            _finish(m, fd_path(fd), plan, cgroups)
        finally:
            os.close(fd)
    except OSError as e:
        raise HawserError(f"{where}: {e.strerror or e}") from None


def _finish(m: Mount, target: str, plan: MountPlan, cgroups) -> None:
    sc = syscall.get()
    if m.type == "cgroup":
        cgroups(target, plan, "finish")
    elif plan.is_bind:
        extra = plan.flags & ~(c.MS_BIND | c.MS_REC | c.MS_REMOUNT)
        if extra or plan.clear:
            keep = current_flags(target) & ~plan.clear
            sc.mount(None, target, None, c.MS_REMOUNT | c.MS_BIND | keep | extra)
    for prop in plan.propagation:
        sc.mount(None, target, None, prop)
    if plan.rec_set or plan.rec_clr:
        sc.mount_setattr(-100, target, c.AT_RECURSIVE, plan.rec_set, plan.rec_clr)


def _mount_fs(m: Mount, target: str, plan: MountPlan) -> None:
    sc = syscall.get()
    try:
        sc.mount(m.source or m.type, target, m.type, plan.flags, plan.data)
    except PermissionError:
        # sysfs cannot be mounted without a network namespace of our own: bind the host's
        # read-only instead, as runc does.
        if m.type != "sysfs":
            raise
        sc.mount("/sys", target, None, c.MS_BIND | c.MS_REC)
        sc.mount(None, target, None, c.MS_REMOUNT | c.MS_BIND | c.MS_RDONLY | plan.flags)
