"""`terminal: true`: a pty from the container's own devpts, its master sent over --console-socket
(SCM_RIGHTS, with the pty's name as the message, as runc does), its slave the process's stdio and
controlling terminal."""
import _socket
import fcntl
import os
import struct

from runtime import syscall
from runtime.errors import HawserError
from runtime.syscall.consts import MS_BIND

TIOCSCTTY = 0x540E
TIOCSWINSZ = 0x5414


def connect(path: str):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    dfd = None
    try:
        if len(path) < 100:
            s.connect(path)
        else:
            # unix socket addresses hold 108 bytes: reach a long path through its directory's fd
            d, _, name = path.rpartition("/")
            dfd = os.open(d or "/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
            s.connect(f"/proc/self/fd/{dfd}/{name}")
    except OSError as e:
        s.close()
        raise HawserError(f"--console-socket {path}: {e.strerror}") from None
    finally:
        if dfd is not None:
            os.close(dfd)
    return s


def bind_dev_console(pty_name: str) -> None:
    try:
        os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW,
                         0o600))
    except OSError:
        return  # /dev is read-only or bound from the host: leave it as it is
    syscall.get().mount(pty_name, "/dev/console", None, MS_BIND)


def send_fd(sock, fd: int, name: str) -> None:
    sock.sendmsg([name.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, struct.pack("i", fd))])


def setup_console(sock, size, uid: int, gid: int, dev_console: bool = False) -> None:
    """dev_console: also bind the pty onto /dev/console (the spec's default devices), for the
    container's init; not for exec'd processes."""
    master, slave = os.openpty()
    try:
        name = os.ttyname(slave)
        if dev_console:
            bind_dev_console(name)
        if size:
            fcntl.ioctl(slave, TIOCSWINSZ, struct.pack("HHHH", size[0], size[1], 0, 0))
        os.fchown(slave, uid, gid)
        send_fd(sock, master, name)
    finally:
        os.close(master)
        sock.close()
    fcntl.ioctl(slave, TIOCSCTTY, 0)
    for target in (0, 1, 2):
        os.dup2(slave, target)
    if slave > 2:
        os.close(slave)
