"""/dev inside the container: the default devices, linux.devices, and the standard symlinks."""
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.init.paths import ensure_in_root, fd_path, open_in_root
from runtime.spec import Device
from runtime.syscall.consts import MS_BIND

S_IFMT = 0o170000
TYPE_BITS = {"c": 0o020000, "u": 0o020000, "b": 0o060000, "p": 0o010000}


def _dev(path, major, minor):
    return Device({"type": "c", "path": path, "major": major, "minor": minor, "fileMode": 0o666,
                   "uid": 0, "gid": 0})


# The runtime-spec's default devices (config-linux.md "Default Devices").
DEFAULT_DEVICES = [_dev("/dev/null", 1, 3), _dev("/dev/zero", 1, 5), _dev("/dev/full", 1, 7),
                   _dev("/dev/random", 1, 8), _dev("/dev/urandom", 1, 9), _dev("/dev/tty", 5, 0)]
SYMLINKS = (("/proc/self/fd", "/dev/fd"), ("/proc/self/fd/0", "/dev/stdin"),
            ("/proc/self/fd/1", "/dev/stdout"), ("/proc/self/fd/2", "/dev/stderr"))


def create_devices(rootfd: int, devices: list[Device], in_userns: bool) -> None:
    """Make each device node; inside a user namespace mknod is refused, so bind the host's node."""
    seen = set()
    for dev in list(devices) + DEFAULT_DEVICES:
        if dev.path in seen:
            continue  # linux.devices overrides a default device of the same path
        seen.add(dev.path)
        if dev.type not in TYPE_BITS:
            raise HawserError(f"linux.devices: {dev.path}: unknown device type {dev.type!r}")
        if in_userns:
            _bind_host_device(rootfd, dev)
        else:
            _mknod(rootfd, dev)


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rstrip("/").rpartition("/")
    return parent or "/", name


def _mknod(rootfd: int, dev: Device) -> None:
    parent, name = _split(dev.path)
    pfd = ensure_in_root(rootfd, parent)
    try:
        try:
            os.unlink(name, dir_fd=pfd)
        except FileNotFoundError:
            pass
        mode = (dev.file_mode if dev.file_mode is not None else 0o666) & 0o7777
        os.mknod(name, mode | TYPE_BITS[dev.type], os.makedev(dev.major, dev.minor), dir_fd=pfd)
        fd = open_in_root(rootfd, dev.path)
        try:
            target = fd_path(fd)
            os.chmod(target, mode)  # mknod's mode went through the umask
            os.chown(target, dev.uid or 0, dev.gid or 0)
        finally:
            os.close(fd)
    except OSError as e:
        raise HawserError(f"creating device {dev.path}: {e.strerror}") from None
    finally:
        os.close(pfd)


def _bind_host_device(rootfd: int, dev: Device) -> None:
    if not os.path.exists(dev.path):
        raise HawserError(f"device {dev.path} does not exist on the host to bind in a user namespace")
    fd = ensure_in_root(rootfd, dev.path, directory=False)
    try:
        syscall.get().mount(dev.path, fd_path(fd), None, MS_BIND)
    finally:
        os.close(fd)


def create_symlinks(rootfd: int) -> None:
    """/dev/fd, stdin, stdout, stderr, and /dev/ptmx -> pts/ptmx (the container's own devpts)."""
    links = list(SYMLINKS) + [("pts/ptmx", "/dev/ptmx")]
    if os.path.exists("/proc/kcore"):
        links.append(("/proc/kcore", "/dev/core"))
    dfd = ensure_in_root(rootfd, "/dev")
    try:
        for target, path in links:
            name = path.rsplit("/", 1)[1]
            if name == "ptmx":
                try:
                    os.unlink(name, dir_fd=dfd)
                except FileNotFoundError:
                    pass
            try:
                os.symlink(target, name, dir_fd=dfd)
            except FileExistsError:
                pass
    finally:
        os.close(dfd)
