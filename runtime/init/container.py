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
import _socket
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.hooks import run_hooks
from runtime.init import console, rootfs
from runtime.init.namespaces import create_namespaces, join_namespaces
from runtime.init.paths import ensure_in_root
# The steps init shares with `hawser exec`'s process (InitContext is create's and exec's too).
from runtime.init.steps import (InitContext, _message, _report, close_fds, drop_privileges,
                                exec_process, fork_in_cgroup, prepare_process)
from runtime.syscall.consts import CLONE_NEWPID, CLONE_NEWUSER


def intermediate(ctx: InitContext) -> None:
    """Never returns: exits once init's pid is reported (or an error is)."""
    try:
        syscall.get().set_dumpable(False)  # before any namespace of the container is joined
        enter_namespaces(ctx)
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


def direct_init(ctx: InitContext) -> None:
    """init forked by `hawser create` itself, without the intermediate (see create.direct_init):
    the parent made the new pid namespace for its children, so this process is already its
    PID 1; it makes the other namespaces as the intermediate would, then goes on as init.
    Never returns."""
    try:
        syscall.get().set_dumpable(False)  # before any namespace of the container is joined
        enter_namespaces(ctx, skip=CLONE_NEWPID)
    except BaseException as e:  # noqa: BLE001
        _report(ctx.chan, e)
        os._exit(1)
    container_init(ctx)


def enter_namespaces(ctx: InitContext, skip: int = 0) -> None:
    """Join the namespaces given by path, make the new ones (but `skip`), and join the cgroup."""
    linux = ctx.spec.linux
    # The parent makes the cgroup while we make namespaces; we join it on its "go" (init and all
    # it starts inherit it), before the cgroup namespace. A user namespace (or a mount namespace
    # joined by path) would change our rights on, or view of, cgroupfs: then join first.
    mnt = linux.namespace("mount")
    first = linux.namespace("user") is not None or (mnt is not None and bool(mnt.path))
    if first:
        join_cgroup(ctx)
    join_namespaces(linux)
    flags = create_namespaces(linux, ctx.chan, None if first else lambda: join_cgroup(ctx), skip)
    ctx.in_userns = bool(flags & CLONE_NEWUSER) or bool(linux.namespace("user"))


def join_cgroup(ctx: InitContext) -> None:
    ctx.chan.expect("go")
    ctx.cgroup.apply_self()


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


def wait_for_start(ctx: InitContext):
    """Block until `hawser start` connects and says "start"."""
    while True:
        conn, _ = ctx.start_sock._accept()
        sock = _socket.socket(fileno=conn)
        if sock.recv(16) == b"start":
            return sock
        sock.close()


def _report_start(conn, e: BaseException) -> None:
    try:
        conn.send(_message(e).encode())
    except OSError:
        pass
