"""`hawser run` of a terminal container without --console-socket: receive the pty master from the
init and relay it to our own stdio (raw mode when stdin is a terminal), as runc does."""
import _socket
import fcntl
import os
import select
import struct
import threading

TIOCGWINSZ, TIOCSWINSZ = 0x5413, 0x5414
SIGWINCH = 28


def recv_master(sock) -> int:
    _, ancdata, _, _ = sock.recvmsg(1024, _socket.CMSG_SPACE(4), _socket.MSG_CMSG_CLOEXEC)
    for level, kind, data in ancdata:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            return struct.unpack("i", data[:4])[0]
    raise OSError("the container init sent no pty")


def copy_size(src: int, dst: int) -> None:
    try:
        size = fcntl.ioctl(src, TIOCGWINSZ, b"\0" * 8)
        fcntl.ioctl(dst, TIOCSWINSZ, size)
    except OSError:
        pass


class ConsoleRelay:
    """The pty master from the init, sized like our terminal (raw while we relay) before the
    container's program starts, so its first look at the window size is already right."""

    def __init__(self, sock):
        self.master = recv_master(sock)
        sock.close()
        self.saved = None
        if os.isatty(0):
            import termios
            import tty
            self.saved = termios.tcgetattr(0)
            tty.setraw(0)
            copy_size(0, self.master)

    def run(self, pid: int, wait) -> int:
        """Copy stdin -> master and master -> stdout until the container exits; its exit code."""
        import _signal
        master = self.master
        _signal.signal(SIGWINCH, lambda *_: copy_size(0, master))
        # The copy runs beside the wait, which owns reaping (we are the init's subreaper).
        stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
        t = threading.Thread(target=_pump, args=(master, stop_r), daemon=True)
        t.start()
        try:
            # SIGWINCH stays ours: it resizes the pty rather than going to the container.
            from runtime.common import FORWARDED
            code = wait(pid, tuple(s for s in FORWARDED if s != SIGWINCH))
        finally:
            os.write(stop_w, b"x")
            t.join(2)
            self.close()
        return code

    def close(self) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)
            self.saved = None
        if self.master >= 0:
            os.close(self.master)
            self.master = -1


def relay_console(sock, pid: int, wait) -> int:
    return ConsoleRelay(sock).run(pid, wait)


def _pump(master: int, stop: int) -> None:
    poller = select.poll()
    poller.register(master, select.POLLIN)
    poller.register(0, select.POLLIN)
    poller.register(stop, select.POLLIN)
    stopping = False
    while True:
        for fd, ev in poller.poll(50 if stopping else None):
            if fd == stop:
                stopping = True  # drain what the pty still holds, then leave
                poller.unregister(stop)
                continue
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            if not data:
                if fd == master:
                    return
                poller.unregister(0)
                continue
            os.write(1 if fd == master else master, data)
        else:
            if stopping:
                return
