"""The runtime's commands without a new interpreter, when the runtime is hawser itself.

Every `hawser` command is a Python process: ~8 ms of interpreter start-up and ~10 ms of imports
before `create` does any work, on the path of every container's creation and start. The daemon
forks a fork server first thing, while it is still single-threaded (serve(), before any thread
or signal handler): a process that imports the runtime's modules once, then, for each command the
shim sends it (argv and three fds over a SOCK_SEQPACKET socketpair), forks a child that runs
runtime.cli.main(argv) with those fds as its stdio, waits for it and answers its exit code.
Forks happen only there, in a single-threaded process: never from the shim's threads.

The child is what `hawser ARGS` would be: the same interpreter (so /proc/self/exe is python3 as
for the launcher), the same environment and cwd (the bundle), no fd but 0-2, the shim as the
nearest subreaper (the fork server is not one: the attribute is not inherited by fork), so the
container's init is re-parented to the shim when the command exits, as after a command the shim
spawned itself.

It lives only around a container's creation: the shim closes it once the init process has
started (or at Delete or Shutdown), so an idle shim is one process; later commands (kill,
delete, exec, ps) are spawned as usual. Any failure to reach it falls back to spawning.
HAWSER_SHIM_FORKSERVER=0 turns it off.
"""
import _socket
import os
import struct

PRELOAD = ("runtime.cli", "runtime.log", "runtime.create", "runtime.start", "runtime.delete",
           "runtime.kill", "runtime.state", "runtime.cgroups.v1", "runtime.validate")
MAX_MSG = 1 << 16


class Unavailable(Exception):
    """The fork server is gone (closed, or died): spawn the command instead."""


class ForkServer:
    def __init__(self, pid: int, sock):
        from shim import threads
        self.pid, self.sock = pid, sock
        self.lock = threads.Lock()
        self.closed = False

    def run(self, argv: list[str], fds: tuple[int, int, int]) -> int:
        """Run `argv[0] argv[1:]` as hawser would, with fds as its stdin, stdout and stderr;
        its exit code (128 + signal when killed). Unavailable if nothing was started."""
        from runtime import jsonlite
        data = jsonlite.dumps(list(argv)).encode()
        with self.lock:
            if self.closed:
                raise Unavailable("closed")
            try:
                self.sock.sendmsg([data], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                                            struct.pack("3i", *fds))])
            except OSError as e:
                self._close()
                raise Unavailable(str(e)) from None
            try:
                answer = self.sock.recv(64)
            except OSError:
                answer = b""
            if not answer.startswith(b"E"):
                self._close()    # died under the command: its outcome is unknown
                raise OSError("the runtime's fork server ended during the command")
            return int(answer[1:])

    def close(self) -> None:
        with self.lock:
            self._close()

    def _close(self) -> None:
        if not self.closed:
            self.closed = True
            try:
                self.sock.shutdown(_socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


def enabled() -> bool:
    return os.environ.get("HAWSER_SHIM_FORKSERVER", "1") not in ("0", "false", "no")


def start() -> ForkServer | None:
    """Fork the server (the caller must have no thread but its own); None when disabled."""
    if not enabled():
        return None
    mine, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET)
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            mine.close()
            _serve(theirs)
        except BaseException:
            code = 1
        finally:
            os._exit(code)
    theirs.close()
    return ForkServer(pid, mine)


def set_cmdline(args: list[str]) -> None:
    """Rewrite this process's /proc/self/cmdline in place (its argument area, truncated to the
    original's length), as setproctitle does: what scans /proc for shims (hawserd's recovery,
    containerd's tests, the benchmarks) must not take the fork server for a shim, nor a command
    it forked (and the container's init, until its execve) for anything but a `hawser` command."""
    try:
        with open("/proc/self/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
        start, end = int(fields[45]), int(fields[46])    # arg_start, arg_end (fields 48, 49)
        data = b"\0".join(a.encode(errors="replace") for a in args)[:end - start - 1]
        with open("/proc/self/mem", "r+b", buffering=0) as mem:
            mem.seek(start)
            mem.write(data + b"\0" * (end - start - len(data)))
    except (OSError, ValueError, IndexError):
        pass


def _serve(sock) -> None:
    keep = sock.fileno()
    os.closerange(3, keep)
    os.closerange(keep + 1, 1 << 16)
    import sys
    set_cmdline([os.path.basename(sys.argv[0] if sys.argv else "") + ".forkserver"] +
                [a for flag in ("-namespace", "-id") if flag in sys.argv[:-1]
                 for a in (flag, sys.argv[sys.argv.index(flag) + 1])])
    for name in PRELOAD:    # best effort: a module that is not there is imported by the command
        try:
            __import__(name)
        except Exception:
            pass
    from runtime import jsonlite
    while True:
        try:
            data, ancdata, _, _ = sock.recvmsg(MAX_MSG, _socket.CMSG_SPACE(3 * 4))
        except InterruptedError:
            continue
        if not data:
            return
        fds = []
        for level, kind, payload in ancdata:
            if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
                fds += struct.unpack(f"{len(payload) // 4}i", payload[:len(payload) // 4 * 4])
        try:
            argv = jsonlite.loads(data)
            if len(fds) != 3 or not isinstance(argv, list) or not argv:
                raise ValueError("bad request")
            pid = os.fork()
        except (OSError, ValueError):
            for fd in fds:
                os.close(fd)
            sock.send(b"E127")
            continue
        if pid == 0:
            _child(sock, argv, fds)
        for fd in fds:
            os.close(fd)
        _, status = os.waitpid(pid, 0)
        code = os.waitstatus_to_exitcode(status)
        sock.send(b"E%d" % (128 - code if code < 0 else code))


def _child(sock, argv: list[str], fds: list[int]) -> None:
    """The command, as .venv/bin/hawser runs it (runtime.cli.main, then flush and _exit)."""
    import sys
    code = 1
    try:
        sock.close()
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
        for fd in set(fds):
            if fd > 2:
                os.close(fd)
        sys.argv = list(argv)
        with open("/proc/self/comm", "w") as f:    # `hawser`, as a spawned command is named
            f.write(os.path.basename(argv[0])[:15])
        set_cmdline(argv)
        from runtime.cli import main
        code = main(argv[1:])
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        try:
            import traceback
            traceback.print_exc()
        except BaseException:
            pass
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code & 0xFF if isinstance(code, int) else 1)
