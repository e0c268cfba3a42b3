"""The stdio of a container process: the FIFOs (or files) containerd names in Create and Exec.

Without a terminal nothing is copied: the FIFOs themselves become the process's stdin, stdout and
stderr (the runtime hands its own stdio to the process), so output written just before an exit
cannot be lost in the shim. The shim only holds, while the process runs:
- a reader on each output FIFO, so that the process never gets EPIPE when the client (ctr, or a
  detached `ctr run -d` that has gone) stops reading; released when the process exits, so the
  client sees EOF once the last writer is gone;
- a writer on the stdin FIFO, so that the process does not see EOF before a client has opened it;
  CloseIO releases it (the process then sees EOF when the client closes its end too).

With a terminal the runtime sends the pty master over a console socket the shim listens on; one
thread copies the master to the stdout FIFO (until EIO: the pty's last bytes are read first), one
copies the stdin FIFO to the master. ResizePty sets the master's window size.
"""
import _socket
import os
import stat
import struct

from shim import threads

DEVNULL = "/dev/null"


def _is_fifo(path: str) -> bool:
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except FileNotFoundError:
        return False


def _path(uri: str) -> str:
    """A FIFO path or a file:// URI -> the path; binary:// (a logging binary) is not supported."""
    if uri.startswith("file://"):
        return uri[len("file://"):]
    if "://" in uri:
        raise ValueError(f"unsupported stdio URI {uri!r} (FIFO paths and file:// only)")
    return uri


class ProcessIO:
    def __init__(self, stdin: str, stdout: str, stderr: str, terminal: bool):
        self.stdin, self.stdout, self.stderr, self.terminal = stdin, stdout, stderr, terminal
        self.child = [None, None, None]    # fds the runtime gets as its stdio
        self.held: list[int] = []          # readers kept on output FIFOs while the process runs
        self.stdin_writer = None           # ours on the stdin FIFO, until CloseIO
        self.copy_in = self.copy_out = None    # terminal: FIFO ends the copy threads use
        self.master = None
        self.output_done = threads.Event()
        self.output_done.set()
        self.lock = threads.Lock()

    def open(self) -> None:
        """Open the FIFOs/files before the runtime runs (closes what it opened on failure)."""
        try:
            if self.stdin:
                self._open_stdin(_path(self.stdin))
            for target, uri in ((1, self.stdout), (2, self.stderr)):
                if uri and not (self.terminal and target == 2):
                    self._open_output(target, _path(uri))
        except BaseException:
            self.close()
            raise

    def _open_stdin(self, path: str) -> None:
        if not _is_fifo(path):
            self._set_child(0, os.open(path, os.O_RDONLY | os.O_CLOEXEC))
            return
        reader = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            self.stdin_writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError:
            os.close(reader)
            raise
        os.set_blocking(reader, True)
        if self.terminal:
            self.copy_in = reader
        else:
            self._set_child(0, reader)

    def _open_output(self, target: int, path: str) -> None:
        if not _is_fifo(path):
            if os.path.dirname(path):
                os.makedirs(os.path.dirname(path), exist_ok=True)
            self._set_child(target, os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT |
                                            os.O_CLOEXEC, 0o644))
            return
        keep = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.held.append(keep)
        writer = os.open(path, os.O_WRONLY | os.O_CLOEXEC)    # a reader exists: no blocking
        if self.terminal:
            self.copy_out = writer
            self.output_done.clear()
        else:
            self._set_child(target, writer)

    def _set_child(self, target: int, fd: int) -> None:
        self.child[target] = fd

    def child_stdio(self) -> tuple:
        return tuple(self.child)

    def spawned(self) -> None:
        """The runtime has started (or failed): our copies of its stdio are not needed."""
        for i, fd in enumerate(self.child):
            if fd is not None:
                os.close(fd)
                self.child[i] = None

    # -- terminal -----------------------------------------------------------------------------

    def attach_console(self, master: int) -> None:
        """Copy between the pty master and the FIFOs; each thread owns a dup of the master, so a
        close elsewhere never makes it write to a reused fd number."""
        self.master = master
        if self.copy_out is not None:
            threads.spawn(self._copy_out, os.dup(master), self.copy_out)
            self.copy_out = None
        if self.copy_in is not None:
            threads.spawn(self._copy_in, self.copy_in, os.dup(master))
            self.copy_in = None

    def _copy_out(self, src: int, dest: int) -> None:
        try:
            while True:
                try:
                    data = os.read(src, 65536)
                except OSError:    # EIO: every slave fd is closed and the buffer is drained
                    break
                if not data:
                    break
                _write_all(dest, data)
        except OSError:
            pass
        finally:
            os.close(src)
            os.close(dest)
            self.output_done.set()

    def _copy_in(self, src: int, dest: int) -> None:
        try:
            while data := os.read(src, 65536):
                _write_all(dest, data)
        except OSError:
            pass
        finally:
            os.close(src)
            os.close(dest)

    def resize(self, width: int, height: int) -> None:
        if self.master is not None:
            import fcntl
            import termios
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", height, width, 0, 0))

    # -- lifetime -----------------------------------------------------------------------------

    def close_stdin(self) -> None:
        with self.lock:
            fd, self.stdin_writer = self.stdin_writer, None
        if fd is not None:
            os.close(fd)

    def process_exited(self) -> None:
        """Release the FIFO readers (clients see EOF when the last writer closes)."""
        if self.terminal:
            return    # the output copy ends at EIO and releases them itself (see close())
        self._release_held()

    def _release_held(self) -> None:
        with self.lock:
            held, self.held = self.held, []
        for fd in held:
            os.close(fd)

    def wait_output(self, timeout: float) -> bool:
        return self.output_done.wait(timeout)

    def close(self) -> None:
        self.spawned()
        self.close_stdin()
        self._release_held()
        for name in ("copy_in", "copy_out", "master"):
            fd = getattr(self, name)
            if fd is not None:
                setattr(self, name, None)
                os.close(fd)
        self.output_done.set()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class ConsoleSocket:
    """A unix socket the runtime connects to with --console-socket and sends the pty master
    over (SCM_RIGHTS)."""

    def __init__(self, path: str):
        self.path = path
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        self.sock.bind(path)
        self.sock.listen(1)

    def receive_master(self, timeout: float = 10.0) -> int:
        self.sock.settimeout(timeout)
        fd, _ = self.sock._accept()
        conn = _socket.socket(fileno=fd)
        try:
            conn.settimeout(timeout)
            size = _socket.CMSG_SPACE(4)
            _, ancdata, _, _ = conn.recvmsg(4096, size, _socket.MSG_CMSG_CLOEXEC)
        finally:
            conn.close()
        fds = []
        for level, kind, data in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(data) // 4}i", data[:len(data) - len(data) % 4])
        if not fds:
            raise OSError("the runtime sent no pty master over the console socket")
        for extra in fds[1:]:
            os.close(extra)
        return fds[0]

    def close(self) -> None:
        self.sock.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
