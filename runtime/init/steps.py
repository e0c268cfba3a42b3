"""The steps from a forked, namespaced child to execve() that the container's init and the
process of `hawser exec` share (see runtime.init.container and runtime.init.execution): `exec`
imports these without init's rootfs, mount and hook modules."""
import _signal
import os

from runtime import log, syscall
from runtime.errors import HawserError
from runtime.init import process
from runtime.init.paths import open_in_root
from runtime.syscall.consts import CLOSE_RANGE_CLOEXEC

SIG_DFL = 0
SIGPIPE, SIGXFSZ = 13, 25


class InitContext:
    """Everything init needs, handed over by fork: no serialisation of the spec."""
    __slots__ = ("spec", "rootfs", "chan", "start_sock", "console_sock", "preserve_fds",
                 "no_pivot", "no_new_keyring", "cgroup", "in_userns", "hook_state", "seccomp")

    def __init__(self, **kw):
        self.in_userns = False
        self.hook_state = {}
        self.seccomp = None
        for k, v in kw.items():
            setattr(self, k, v)


def fork_in_cgroup() -> int:
    """fork() once we are in the container's cgroup, where a pids limit can refuse it."""
    try:
        return os.fork()
    except BlockingIOError:
        raise HawserError("cannot fork: the container's pids limit "
                          "(linux.resources.pids.limit) is reached") from None


def prepare_process(ctx: InitContext) -> tuple[dict, str]:
    proc = ctx.spec.process
    env = process.env_dict(proc)
    path = process.find_executable(proc.args[0], env)
    enter_cwd(proc.cwd)
    process.apply_rlimits(proc)
    return env, path


def enter_cwd(cwd: str) -> None:
    """chdir to process.cwd resolved inside our root: no symlink, `..` or /proc/self/fd/N link
    (an inherited host fd, CVE-2024-21626) can put the process's cwd outside the container."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = open_in_root(root, cwd, os.O_DIRECTORY)
    except OSError as e:
        raise HawserError(f"process.cwd {cwd}: {e.strerror}") from None
    finally:
        os.close(root)
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)
    if os.getcwd().startswith("(unreachable)"):
        raise HawserError(f"process.cwd {cwd}: outside the container's root")


def drop_privileges(ctx: InitContext) -> None:
    proc, sc = ctx.spec.process, syscall.get()
    # Without no_new_privs the kernel wants CAP_SYS_ADMIN to load a filter: load it while we
    # still have it (runc's order). With no_new_privs, load it as late as possible.
    if ctx.seccomp is not None and not proc.no_new_privileges:
        ctx.seccomp.load()
    process.drop_bounding_set(proc, log.warn)
    process.set_user(proc, allow_setgroups=not ctx.in_userns or _setgroups_allowed())
    process.apply_caps(proc, log.warn, log.debug)
    if proc.no_new_privileges:
        sc.set_no_new_privs()  # the filter itself is loaded last, just before execve


def _setgroups_allowed() -> bool:
    try:
        with open("/proc/self/setgroups") as f:
            return f.read().strip() == "allow"
    except OSError:
        return True


def close_fds(ctx: InitContext) -> None:
    """Nothing but stdio and --preserve-fds may reach the container: mark every other fd
    close-on-exec (our own sockets are needed until execve)."""
    first = 3 + ctx.preserve_fds
    for fd in range(3, first):
        os.set_inheritable(fd, True)
    try:
        syscall.get().close_range(first, 0xFFFFFFFF, CLOSE_RANGE_CLOEXEC)
    except OSError:
        # A seccomp profile loaded already (no no_new_privs) may deny close_range.
        for name in os.listdir("/proc/self/fd"):
            if int(name) >= first:
                try:
                    os.set_inheritable(int(name), False)
                except OSError:
                    pass


def exec_process(ctx: InitContext, path: str, env: dict) -> None:
    # CPython ignores SIGPIPE and SIGXFSZ; ignored dispositions survive execve.
    _signal.signal(SIGPIPE, SIG_DFL)
    _signal.signal(SIGXFSZ, SIG_DFL)
    if ctx.seccomp is not None and ctx.spec.process.no_new_privileges:
        # Last, as runc: the profile only has to allow execve, not the runtime's own calls.
        ctx.seccomp.load()
    try:
        os.execve(path, ctx.spec.process.args, env)
    except OSError as e:
        raise HawserError(f"exec {path}: {e.strerror}") from None


def _message(e: BaseException) -> str:
    if isinstance(e, HawserError):
        return str(e)
    if isinstance(e, OSError):
        return f"container init: {e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    return f"container init: {type(e).__name__}: {e}"


def _report(chan, e: BaseException) -> None:
    try:
        chan.send("error", message=_message(e))
        # Leave nothing unread: closing a unix socket with unread data resets the connection,
        # and the parent would read ECONNRESET instead of our message.
        chan.sock.setblocking(False)
        while chan.sock.recv(65536):
            pass
    except OSError:
        pass
