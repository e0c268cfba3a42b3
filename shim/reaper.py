"""The one place where the shim reaps its children (containerd's reaper "Monitor" design).

The shim is a child subreaper: besides the runtime commands it starts, the container's init and
every exec'd process are re-parented to it when the runtime's intermediate processes exit, and so
are orphans of a container without a pid namespace. A waitpid(-1) loop reaps them all, so nothing
else in the process may wait for a child (subprocess would lose its exit status to this loop, or
steal one): runtime commands are started with spawn() and waited for with wait().

Exits go to, in this order: the caller of spawn() waiting for that pid; the callback registered
with track() for a container process; otherwise they are kept for a while as unclaimed, because a
process can exit before its pid is read from the runtime's pid file: track() then reports it at
once.

SIGCHLD (and SIGTERM/SIGINT) wake the loop through Python's signal wakeup fd: the C-level handler
writes the signal number into a pipe, the main thread reads it.
"""
import _signal
import os
import time

from shim import threads

UNCLAIMED_TTL = 30.0    # seconds an exit nobody claimed is kept (pids are not reused that fast)
UNCLAIMED_MAX = 1024
WAKE_SHUTDOWN = 0       # a byte no signal number uses: shutdown asked from another thread
_RESET_SIGNALS = (_signal.SIGPIPE, _signal.SIGXFSZ)    # Python ignores them; children must not


def exit_code(wait_status: int) -> int:
    """A waitpid status as containerd reports it: the exit code, or 128 + the signal."""
    code = os.waitstatus_to_exitcode(wait_status)
    return 128 - code if code < 0 else code


class Reaper:
    def __init__(self, direct: bool = False):
        self.direct = direct    # no reaping loop (the `delete` command): wait() calls waitpid
        self.lock = threads.Lock()
        self.waiting: dict[int, Child] = {}    # spawn()ed, not exited yet
        self.tracked: dict[int, object] = {}   # pid -> callback(exit code, time ns)
        self.unclaimed: dict[int, tuple] = {}  # pid -> (exit code, time ns, monotonic)
        self.wake_r = self.wake_w = -1
        self.devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)

    # -- the loop (main thread) ---------------------------------------------------------------

    def install(self) -> None:
        """Route SIGCHLD, SIGTERM and SIGINT to the wakeup pipe (main thread only)."""
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_w, False)
        _signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in (_signal.SIGCHLD, _signal.SIGTERM, _signal.SIGINT):
            _signal.signal(sig, _ignore)

    def run(self) -> str:
        """Reap until SIGTERM/SIGINT or wake_shutdown(); returns why it stopped."""
        self.reap()    # children that exited before install()
        while True:
            data = os.read(self.wake_r, 256)
            self.reap()
            if WAKE_SHUTDOWN in data:
                return "shutdown"
            if _signal.SIGTERM in data or _signal.SIGINT in data:
                return "signal"

    def wake_shutdown(self) -> None:
        os.write(self.wake_w, bytes([WAKE_SHUTDOWN]))

    def reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._exited(pid, exit_code(status), time.time_ns())

    def _exited(self, pid: int, code: int, when: int) -> None:
        callback = None
        with self.lock:
            child = self.waiting.pop(pid, None)
            if child is not None:
                child.code, child.when = code, when
                child.done.set()
                return
            callback = self.tracked.pop(pid, None)
            if callback is None:
                self._prune()
                self.unclaimed[pid] = (code, when, time.monotonic())
                return
        callback(code, when)

    def _prune(self) -> None:
        now = time.monotonic()
        stale = [p for p, e in self.unclaimed.items() if now - e[2] > UNCLAIMED_TTL]
        for p in stale:
            del self.unclaimed[p]
        while len(self.unclaimed) >= UNCLAIMED_MAX:
            del self.unclaimed[next(iter(self.unclaimed))]

    # -- what the rest of the shim calls ------------------------------------------------------

    def spawn(self, argv: list[str], stdin=None, stdout=None, stderr=None, env=None) -> "Child":
        """Start argv (looked up on PATH when it has no slash) with the given fds as its stdio
        (None: /dev/null); every other fd of the shim is close-on-exec."""
        actions = [(os.POSIX_SPAWN_DUP2, self.devnull if fd is None else fd, target)
                   for target, fd in enumerate((stdin, stdout, stderr))]
        with self.lock:    # the exit cannot be dispatched before the waiter is registered
            pid = os.posix_spawnp(argv[0], argv, os.environ if env is None else env,
                                  file_actions=actions, setsigdef=_RESET_SIGNALS)
            child = Child(pid, self.direct)
            if not self.direct:
                self.waiting[pid] = child
        return child

    def adopt(self, pid: int) -> "Child":
        """A child forked by other means (the fork server): its exit goes to the Child's wait()."""
        child = Child(pid, self.direct)
        with self.lock:
            if not self.direct:
                self.waiting[pid] = child
        return child

    def track(self, pid: int, callback) -> None:
        """Call callback(exit code, time ns) when pid exits (at once if it already has)."""
        with self.lock:
            early = self.unclaimed.pop(pid, None)
            if early is None:
                self.tracked[pid] = callback
                return
        callback(early[0], early[1])

    def untrack(self, pid: int) -> None:
        with self.lock:
            self.tracked.pop(pid, None)


class Child:
    """A process started by Reaper.spawn(); wait() returns its exit code."""
    __slots__ = ("pid", "done", "code", "when", "direct")

    def __init__(self, pid: int, direct: bool = False):
        self.pid, self.done, self.code, self.when = pid, threads.Event(), None, None
        self.direct = direct

    def wait(self, timeout: float | None = None) -> int | None:
        """The exit code (None if it is still running at the timeout)."""
        if self.direct and self.code is None:
            _, status = os.waitpid(self.pid, 0)
            self.code, self.when = exit_code(status), time.time_ns()
            self.done.set()
        self.done.wait(timeout)
        return self.code


def _ignore(signum, frame):
    pass
