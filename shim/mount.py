"""The container's root filesystem: containerd passes its snapshot as mounts (an overlay of the
image's layers, or a bind) in CreateTaskRequest.rootfs; the shim mounts them on <bundle>/rootfs
and unmounts them at Delete (and `delete` after a dead shim), as containerd's runc shim does.
mount(2) through hawser's syscall layer (the daemon has ctypes loaded anyway: it set itself a
child subreaper with it)."""
import errno
import os

from runtime import syscall
from runtime.syscall import consts as c

# fstab option -> (flags set, flags cleared)
FLAGS = {
    "defaults": (0, 0), "ro": (c.MS_RDONLY, 0), "rw": (0, c.MS_RDONLY),
    "nosuid": (c.MS_NOSUID, 0), "suid": (0, c.MS_NOSUID), "nodev": (c.MS_NODEV, 0),
    "dev": (0, c.MS_NODEV), "noexec": (c.MS_NOEXEC, 0), "exec": (0, c.MS_NOEXEC),
    "sync": (c.MS_SYNCHRONOUS, 0), "async": (0, c.MS_SYNCHRONOUS), "dirsync": (c.MS_DIRSYNC, 0),
    "noatime": (c.MS_NOATIME, 0), "atime": (0, c.MS_NOATIME),
    "nodiratime": (c.MS_NODIRATIME, 0), "diratime": (0, c.MS_NODIRATIME),
    "relatime": (c.MS_RELATIME, 0), "norelatime": (0, c.MS_RELATIME),
    "strictatime": (c.MS_STRICTATIME, 0), "remount": (c.MS_REMOUNT, 0),
    "bind": (c.MS_BIND, 0), "rbind": (c.MS_BIND | c.MS_REC, 0),
}
PROPAGATION = {"private": c.MS_PRIVATE, "rprivate": c.MS_PRIVATE | c.MS_REC,
               "shared": c.MS_SHARED, "rshared": c.MS_SHARED | c.MS_REC,
               "slave": c.MS_SLAVE, "rslave": c.MS_SLAVE | c.MS_REC,
               "unbindable": c.MS_UNBINDABLE, "runbindable": c.MS_UNBINDABLE | c.MS_REC}


def parse_options(options) -> tuple[int, list[int], str | None]:
    """(mount flags, propagation changes, data string) of fstab-style options."""
    flags, propagation, data = 0, [], []
    for opt in options:
        if opt in FLAGS:
            s, clr = FLAGS[opt]
            flags = (flags & ~clr) | s
        elif opt in PROPAGATION:
            propagation.append(PROPAGATION[opt])
        else:
            data.append(opt)
    return flags, propagation, ",".join(data) or None


def mount_all(mounts, target: str) -> None:
    """Mount each containerd Mount on target, in order; undo them all on a failure."""
    os.makedirs(target, mode=0o711, exist_ok=True)
    sys = syscall.get()
    done = 0
    try:
        for m in mounts:
            flags, propagation, data = parse_options(m.options)
            kind = None if m.type in ("bind", "none", "") else m.type
            if m.type == "bind":
                flags |= c.MS_BIND
            sys.mount(m.source, target, kind, flags & ~c.MS_RDONLY if flags & c.MS_BIND
                      else flags, data)
            done += 1
            if flags & c.MS_BIND and flags & c.MS_RDONLY:    # a bind is made read-only by a remount
                sys.mount(None, target, None, flags | c.MS_REMOUNT, None)
            for p in propagation:
                sys.mount(None, target, None, p, None)
    except BaseException:
        if done:
            unmount_all(target)
        raise


def unmount_all(target: str) -> None:
    """Unmount everything stacked on target (lazily when busy), as containerd's UnmountAll."""
    sys = syscall.get()
    for _ in range(64):
        try:
            sys.umount2(target, 0)
        except OSError as e:
            if e.errno == errno.EBUSY:
                sys.umount2(target, c.MNT_DETACH)
            elif e.errno in (errno.EINVAL, errno.ENOENT):    # nothing (more) mounted there
                return
            else:
                raise
