"""The long-lived shim process: `start` creates its socket and forks it; serve() runs it.

start: the socket is bound by `start` itself, so containerd can connect as soon as `start` has
printed the address (connections wait in the backlog until the daemon accepts). The daemon is
`start` forked, not a new program: no second interpreter start-up and import on the path of every
container creation (containerd's Go shims must re-exec; Python need not). It leaves the session
and the stdio of `start` (containerd reads `start`'s output to EOF), takes an OOM score one above
containerd's, and makes itself a child subreaper.

serve: first, while single-threaded, it forks the fork server for hawser's commands
(shim/forkserver.py); the main thread reaps children (shim.reaper); a thread accepts ttrpc
connections; events go out from their own thread. It exits on Shutdown once no container is
left, or on SIGTERM/SIGINT.
"""
import errno
import os
import time

import _socket

from shim import cli

TASK_SERVICE = "containerd.task.v2.Task"


def _write_address(address: str) -> None:
    """`address` in the bundle (the cwd), replaced atomically: containerd reads it to reconnect."""
    with open(".address", "w") as f:
        f.write(address)
    os.replace(".address", "address")


def _can_connect(path: str) -> bool:
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.settimeout(0.2)
    try:
        s.connect(path)
        return True
    except OSError:
        return False
    finally:
        s.close()


def start(flags: dict) -> str:
    ns, cid, address = flags["namespace"], flags.get("id", ""), flags.get("address", "")
    if not cid:
        raise cli.UsageError("-id is required")
    if not os.isatty(0):
        while os.read(0, 65536):    # containerd writes the create options here; unused by start
            pass
    shim_address = cli.socket_address(address, ns, cid)
    path = shim_address[len("unix://"):]
    os.makedirs(cli.SOCKET_DIR, mode=0o711, exist_ok=True)
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        try:
            sock.bind(path)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
            if _can_connect(path):    # a shim serves this container already: reuse it
                _write_address(shim_address)
                return shim_address
            os.unlink(path)
            sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(128)
        try:
            _write_address(shim_address)
            _fork_daemon(sock, flags)
        except BaseException:
            os.unlink(path)
            raise
    finally:
        sock.close()
    return shim_address


def _fork_daemon(sock, flags: dict) -> None:
    try:
        with open(f"/proc/{os.getppid()}/oom_score_adj") as f:
            score = min(int(f.read()) + 1, 1000)
    except (OSError, ValueError):
        score = None
    if os.fork():
        return
    code = 1
    try:    # the daemon
        os.setsid()
        null = os.open("/dev/null", os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
        if score is not None:
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(score))
        code = serve(flags, sock)
    except BaseException as e:
        os.write(2, f"containerd-shim-hawser-v2: daemon: {type(e).__name__}: {e}\n".encode())
    finally:
        os._exit(code)


def _unlink(path) -> None:
    if isinstance(path, str) and path.startswith("/"):
        try:
            os.unlink(path)
        except OSError:
            pass


class Log:
    """logrus-style lines on stderr: the bundle's `log` FIFO, which containerd copies to its own
    log (non-blocking: a line is dropped rather than the shim blocked when nobody reads)."""

    def __init__(self, debug: bool, cid: str):
        self.debug, self.cid = debug, cid
        try:
            fd = os.open("log", os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.dup2(fd, 2)
            os.close(fd)
        except OSError:
            pass

    def __call__(self, level: str, msg: str) -> None:
        if level == "debug" and not self.debug:
            return
        now = time.time_ns()
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now // 1_000_000_000))
        text = msg.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        line = (f'time="{stamp}.{now % 1_000_000_000:09d}Z" level={level} msg="{text}" '
                f'id={self.cid} runtime=io.containerd.hawser.v2\n')
        try:
            os.write(2, line.encode(errors="replace"))
        except OSError:
            pass


def serve(flags: dict, listener=None) -> int:
    """The daemon: listener is the socket `start` bound, else -socket PATH is bound, else the
    socket is fd 3 (how containerd's Go shims hand it over)."""
    from runtime import syscall
    # container processes are re-parented to the shim when the runtime's processes exit; set
    # before the fork server is forked: the kernel looks for a subreaper above an exiting
    # process only when one was set above it when it was forked (has_child_subreaper)
    syscall.get().set_child_subreaper()
    # then, while this process has no thread and no signal handler of its own: the fork
    # server for the runtime's commands (shim/forkserver.py)
    from shim import forkserver
    hawser = cli.default_runtime()
    forks = forkserver.start() if os.path.isabs(hawser) and \
        os.path.basename(hawser) == "hawser" else None
    from shim import state, threads, ttrpc
    from shim.events import Publisher
    from shim.reaper import Reaper
    from shim.service import TaskService

    ns, cid, address = flags["namespace"], flags.get("id", ""), flags.get("address", "")
    log = Log(bool(flags.get("debug")), cid)
    if listener is None and flags.get("socket"):
        listener = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        listener.bind(ttrpc.unix_path(flags["socket"]))
        listener.listen(128)
    elif listener is None:
        listener = _socket.socket(fileno=cli.LISTEN_FD)
        os.set_inheritable(cli.LISTEN_FD, False)
    socket_path = listener.getsockname()
    reaper = Reaper()
    if forks is not None:
        reaper.adopt(forks.pid)    # its exit is reaped here, not taken for a container's
    reaper.install()
    sdir = cli.state_dir(address, ns, cid)
    os.makedirs(sdir, mode=0o700, exist_ok=True)

    left = []

    def leave() -> None:
        """No task left (Shutdown): the socket and the state directory go at once (containerd
        runs `delete` as soon as it has closed its connection), the process a moment later, once
        the answer is out. Only then: a new shim for the same id may have them by the time this
        process exits (same paths), so the exit must not remove them again."""
        _unlink(socket_path)
        state.remove_dir(sdir)
        left.append(True)
        threads.after(0.02, reaper.wake_shutdown)

    publisher = Publisher(ns, os.environ.get("TTRPC_ADDRESS", ""), flags.get("publish-binary", ""),
                          address, reaper, log)
    service = TaskService(ns, reaper, publisher, sdir, cli.default_runtime(), log, leave,
                          forks=forks)
    server = ttrpc.Server(log)
    server.register(TASK_SERVICE, service)
    threads.spawn(server.serve, listener)
    why = reaper.run()
    log("info" if why == "shutdown" else "warn", f"shim exiting ({why})")
    server.shutdown()
    if not left:
        _unlink(socket_path)
    # queued events still go out (within 5 s), while this thread goes on reaping: the publish
    # binary, when it is used, is a child too
    threads.spawn(lambda: (publisher.close(5.0), reaper.wake_shutdown()))
    reaper.run()
    if not service.containers and not left:
        state.remove_dir(sdir)
    os._exit(0)
