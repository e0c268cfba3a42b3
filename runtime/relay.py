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
    _, ancdata, _, _ = sock.recvmsg(1024, _socket.CMSG_SPACE(4))
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


def relay_console(sock, pid: int, wait) -> int:
    """Copy stdin -> master and master -> stdout until the container exits; its exit code."""
    master = recv_master(sock)
    sock.close()
    saved = None
    if os.isatty(0):
        import termios
        import tty
        saved = termios.tcgetattr(0)
        tty.setraw(0)
        copy_size(0, master)
    import _signal
    _signal.signal(SIGWINCH, lambda *_: copy_size(0, master))
    # The copy runs beside the wait, which owns reaping (we are the init's subreaper).
    stop_r, stop_w = os.pipe2(os.O_CLOEXEC)
    t = threading.Thread(target=_pump, args=(master, stop_r), daemon=True)
    t.start()
    try:
        code = wait(pid)
    finally:
        os.write(stop_w, b"x")
        t.join(2)
        if saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(master)
    return code


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
