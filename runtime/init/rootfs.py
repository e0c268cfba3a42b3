"""The container's root filesystem: mounts, /dev, pivot_root, masked and read-only paths."""
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.init import devices
from runtime.init.mounts import PROPAGATION, current_flags, mount_entry
from runtime.init.paths import ensure_in_root, fd_path, open_in_root
from runtime.spec import Spec
from runtime.syscall import consts as c


def make_root_private(spec: Spec, rootfs: str) -> None:
    """/ gets rootfsPropagation (default rslave: nothing we mount reaches the host), then the
    mount holding the rootfs is made private, so the bind below is not shared (pivot_root refuses
    a shared new root) while `rshared` bind mounts stay peers of the host's (runc's order)."""
    sc = syscall.get()
    prop = PROPAGATION.get(spec.linux.rootfs_propagation, c.MS_SLAVE)
    sc.mount(None, "/", None, prop | c.MS_REC)
    if prop & c.MS_SHARED:  # otherwise nothing is shared any more
        parent, shared = _mount_of(rootfs)
        if shared:
            sc.mount(None, parent, None, c.MS_PRIVATE)


def _mount_of(path: str) -> tuple[str, bool]:
    """The mount point holding `path` (its longest prefix in mountinfo) and whether it is shared."""
    best, shared = "/", False
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            point = fields[4]
            if (path == point or path.startswith(point.rstrip("/") + "/")) and len(point) >= len(best):
                best = point
                shared = any(x.startswith("shared:") for x in fields[6:fields.index("-")])
    return best, shared


def bind_rootfs(rootfs: str) -> None:
    """pivot_root needs the new root to be a mount point of its own."""
    syscall.get().mount(rootfs, rootfs, None, c.MS_BIND | c.MS_REC)


def mount_all(spec: Spec, rootfd: int, cgroup_paths: dict[str, str]) -> bool:
    """Mount every config mount; return whether /dev is a bind mount (then leave it as it is)."""
    dev_bound = False
    for i, m in enumerate(spec.mounts):
        mount_entry(rootfd, m, i, lambda target, plan, phase: mount_cgroups(target, plan, phase,
                                                                      cgroup_paths))
        if m.destination.rstrip("/") == "/dev" and ("bind" in m.options or "rbind" in m.options
                                                   or m.type == "bind"):
            dev_bound = True
    return dev_bound


def setup_dev(spec: Spec, rootfd: int, in_userns: bool) -> None:
    devices.create_devices(rootfd, spec.linux.devices, in_userns)
    devices.create_symlinks(rootfd)


def _host_cgroup_mounts() -> list[tuple[str, str]]:
    """(mount point, fstype) of the host's cgroup hierarchies, from our mountinfo."""
    found = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            fields = line.split()
            fstype = fields[fields.index("-") + 1]
            if fstype in ("cgroup", "cgroup2"):
                found.append((fields[4], fstype))
    return found


def mount_cgroups(target: str, plan, phase: str, cgroup_paths: dict[str, str]) -> None:
    """A `cgroup` mount: on v1 a tmpfs with each hierarchy's container cgroup bound beneath it, on
    v2 the container's cgroup2 directory; read-only when the entry says ro."""
    sc = syscall.get()
    ro = plan.flags & c.MS_RDONLY
    base = c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC
    mine = list(cgroup_paths.values())
    hierarchies = _host_cgroup_mounts()
    unified = len(hierarchies) == 1 and hierarchies[0][1] == "cgroup2"
    if phase == "mount":
        if unified:
            sc.mount(mine[0] if mine else hierarchies[0][0], target, None, c.MS_BIND)
        else:
            sc.mount("tmpfs", target, "tmpfs", base, "mode=755")
        return
    if unified:
        sc.mount(None, target, None, c.MS_REMOUNT | c.MS_BIND | base | ro)
        return
    tfd = os.open(target, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for mountpoint, _ in hierarchies:
            src = next((p for p in mine if p == mountpoint or p.startswith(mountpoint + "/")), None)
            if src is None:
                continue
            name = mountpoint.rsplit("/", 1)[1]
            sub = ensure_in_root(tfd, name)
            try:
                sc.mount(src, fd_path(sub), None, c.MS_BIND)
            finally:
                os.close(sub)
            sub = open_in_root(tfd, name)
            try:
                sc.mount(None, fd_path(sub), None, c.MS_REMOUNT | c.MS_BIND | base | ro)
            finally:
                os.close(sub)
    finally:
        os.close(tfd)
    if ro:
        # As runc 1.1: the tmpfs stays read-write but mode 0555, the hierarchies are read-only.
        os.chmod(target, 0o555)


def pivot(rootfs: str, no_pivot: bool) -> None:
    """Make rootfs the container's /, detaching the host's tree (or chroot with --no-pivot)."""
    sc = syscall.get()
    os.chdir(rootfs)
    if no_pivot:
        sc.mount(rootfs, "/", None, c.MS_MOVE)
        os.chroot(".")
    else:
        oldroot = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            sc.pivot_root(".", ".")
            # The old root now sits on top of the new one. Step into it explicitly (the kernel
            # does not promise where "." is after pivot_root), make it rslave so unmounting it
            # cannot propagate to the host, and detach it. Acting on "." without the fchdir can
            # reach the new root's tree and turn `rshared` bind mounts into slaves.
            os.fchdir(oldroot)
            sc.mount(None, ".", None, c.MS_SLAVE | c.MS_REC)
            sc.umount2(".", c.MNT_DETACH)
        finally:
            os.close(oldroot)
    os.chdir("/")


def apply_root_propagation(spec: Spec) -> None:
    prop = spec.linux.rootfs_propagation
    if prop:
        syscall.get().mount(None, "/", None, PROPAGATION[prop] | c.MS_REC)


def mask_paths(paths: list[str]) -> None:
    """Hide each path: an empty read-only tmpfs over a directory, /dev/null over anything else.
    The /dev/null used is checked to be the null device (1:3): a /dev the container controls
    could make it a link to something to expose instead (CVE-2025-31133); a masked path that is a
    symlink is refused for the same reason."""
    if not paths:
        return
    sc = syscall.get()
    null = _open_null()
    try:
        for p in paths:
            try:
                st = os.lstat(p)
            except (FileNotFoundError, NotADirectoryError):
                continue
            kind = st.st_mode & 0o170000
            if kind == 0o120000:
                raise HawserError(f"linux.maskedPaths: {p} is a symbolic link in the container")
            if kind == 0o040000:
                sc.mount("tmpfs", p, "tmpfs", c.MS_RDONLY, None)
            else:
                sc.mount(fd_path(null), p, None, c.MS_BIND)
    finally:
        os.close(null)


def _open_null() -> int:
    fd = os.open("/dev/null", os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    st = os.fstat(fd)
    if (st.st_mode & 0o170000) != 0o020000 or st.st_rdev != os.makedev(1, 3):
        os.close(fd)
        raise HawserError("linux.maskedPaths: the container's /dev/null is not the null device")
    return fd


def readonly_paths(paths: list[str]) -> None:
    sc = syscall.get()
    for p in paths:
        try:
            sc.mount(p, p, None, c.MS_BIND | c.MS_REC)
        except FileNotFoundError:
            continue
        sc.mount(None, p, None, c.MS_REMOUNT | c.MS_BIND | c.MS_REC | c.MS_RDONLY | current_flags(p))


def readonly_root() -> None:
    syscall.get().mount(None, "/", None, c.MS_REMOUNT | c.MS_BIND | c.MS_RDONLY | current_flags("/"))


def write_sysctls(sysctl: dict[str, str]) -> None:
    for key, value in sysctl.items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as e:
            raise HawserError(f"linux.sysctl: {key}: {e.strerror}") from None


def check_rootfs(rootfs: str) -> None:
    if not os.path.isdir(rootfs):
        raise HawserError(f"root.path: rootfs {rootfs} does not exist or is not a directory")
