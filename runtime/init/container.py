"""The container's init, top to bottom: from a fork of `hawser create` to execve of the user's
program. Each step is a named function; the order follows runc's standard_init_linux.go.

    intermediate (child of `hawser create`)      init (PID 1 of the new pid namespace)
      non-dumpable, join the cgroup                new session
      join namespaces by path                      rootfs: propagation, bind, mounts, /dev
      unshare (user first: parent writes maps)     parent runs prestart+createRuntime hooks
      fork init, report its pid, exit              createContainer hooks, pivot_root
                                                   sysctl, masked/readonly paths, ro root
                                                   hostname, console, oom, keyring
                                                   cwd, rlimits, bounding set, user, caps, nnp
                                                   seccomp, close fds, "ready", wait for start
                                                   startContainer hooks, execve
"""
import _signal
import _socket
import os

from runtime import log, syscall
from runtime.errors import HawserError
from runtime.hooks import run_hooks
from runtime.init import console, process, rootfs
from runtime.init.namespaces import create_namespaces, join_namespaces
from runtime.init.paths import ensure_in_root, open_in_root
from runtime.syscall.consts import CLONE_NEWUSER, CLOSE_RANGE_CLOEXEC

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


def intermediate(ctx: InitContext) -> None:
    """Never returns: exits once init's pid is reported (or an error is)."""
    try:
        syscall.get().set_dumpable(False)  # before any namespace of the container is joined
        linux = ctx.spec.linux
        # The parent makes the cgroup while we make namespaces; we join it on its "go" (init
        # and all it starts inherit it), before the cgroup namespace. A user namespace (or a
        # mount namespace joined by path) would change our rights on, or view of, cgroupfs:
        # then join first.
        mnt = linux.namespace("mount")
        first = linux.namespace("user") is not None or (mnt is not None and bool(mnt.path))
        if first:
            join_cgroup(ctx)
        join_namespaces(linux)
        flags = create_namespaces(linux, ctx.chan, None if first else lambda: join_cgroup(ctx))
        ctx.in_userns = bool(flags & CLONE_NEWUSER) or bool(ctx.spec.linux.namespace("user"))
        # init shares our channel to the parent: it waits for this pipe to close (when we exit)
        # so that the parent always reads our "pid" before anything init says.
        gate_r, gate_w = os.pipe2(os.O_CLOEXEC)
        pid = fork_in_cgroup()
        if pid == 0:
            os.close(gate_w)
            os.read(gate_r, 1)
            os.close(gate_r)
            container_init(ctx)
        ctx.chan.send("pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a forked child must report and _exit, whatever
        _report(ctx.chan, e)
        os._exit(1)


def join_cgroup(ctx: InitContext) -> None:
    ctx.chan.expect("go")
    ctx.cgroup.apply_self()


def fork_in_cgroup() -> int:
    """fork() once we are in the container's cgroup, where a pids limit can refuse it."""
    try:
        return os.fork()
    except BlockingIOError:
        raise HawserError("cannot fork: the container's pids limit "
                          "(linux.resources.pids.limit) is reached") from None


def container_init(ctx: InitContext) -> None:
    """PID 1 of the container. Never returns: execve()s the user's program or exits 1."""
    conn = None
    try:
        os.setsid()
        prepare_rootfs(ctx)
        finish_rootfs(ctx)
        set_identity(ctx)
        env, path = prepare_process(ctx)
        drop_privileges(ctx)
        close_fds(ctx)
        ctx.chan.send("ready")
        conn = wait_for_start(ctx)
        run_hooks("startContainer", ctx.spec.hooks["startContainer"],
                  {**ctx.hook_state, "status": "created", "pid": os.getpid()})
        exec_process(ctx, path, env)
    except BaseException as e:  # noqa: BLE001
        if conn is None:
            _report(ctx.chan, e)
        else:
            _report_start(conn, e)
        os._exit(1)


def prepare_rootfs(ctx: InitContext) -> None:
    spec = ctx.spec
    rootfs.make_root_private(spec, ctx.rootfs)
    rootfs.bind_rootfs(ctx.rootfs)
    rootfd = os.open(ctx.rootfs, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        dev_bound = rootfs.mount_all(spec, rootfd, ctx.cgroup.paths())
        if not dev_bound:
            rootfs.setup_dev(spec, rootfd, ctx.in_userns)
        # A missing cwd is made (inside the rootfs), as runc does, before the root may turn ro.
        try:
            os.close(ensure_in_root(rootfd, spec.process.cwd))
        except OSError as e:
            raise HawserError(f"process.cwd {spec.process.cwd}: {e.strerror}") from None
        # prestart and createRuntime hooks run in the runtime's namespaces, by the parent.
        ctx.chan.send("hooks")
        ctx.hook_state = ctx.chan.expect("hooks-done")["state"]
        # Hooks run in the container's namespaces see the pid as the container does (the spec).
        run_hooks("createContainer", spec.hooks["createContainer"],
                  {**ctx.hook_state, "pid": os.getpid()})
    finally:
        os.close(rootfd)
    rootfs.pivot(ctx.rootfs, ctx.no_pivot)


def finish_rootfs(ctx: InitContext) -> None:
    spec = ctx.spec
    rootfs.write_sysctls(spec.linux.sysctl)
    rootfs.mask_paths(spec.linux.masked_paths)
    rootfs.readonly_paths(spec.linux.readonly_paths)
    if spec.root_readonly:
        rootfs.readonly_root()
    rootfs.apply_root_propagation(spec)


def set_identity(ctx: InitContext) -> None:
    spec, sc = ctx.spec, syscall.get()
    if spec.hostname is not None:
        sc.sethostname(spec.hostname)
    if spec.domainname is not None:
        sc.setdomainname(spec.domainname)
    proc = spec.process
    if proc.terminal:
        console.setup_console(ctx.console_sock, proc.console_size, proc.user.uid, proc.user.gid,
                              dev_console=True)
    if proc.oom_score_adj is not None:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(proc.oom_score_adj))
    if not ctx.no_new_keyring:
        try:
            sc.join_session_keyring(None)
        except OSError as e:
            if e.errno != 38:  # ENOSYS: kernels without keyrings
                raise


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


def wait_for_start(ctx: InitContext):
    """Block until `hawser start` connects and says "start"."""
    while True:
        conn, _ = ctx.start_sock._accept()
        sock = _socket.socket(fileno=conn)
        if sock.recv(16) == b"start":
            return sock
        sock.close()


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


def _report_start(conn, e: BaseException) -> None:
    try:
        conn.send(_message(e).encode())
    except OSError:
        pass
