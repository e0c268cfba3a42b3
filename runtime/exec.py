"""`hawser exec`: start another process in a running container, in all its namespaces and its
cgroup, with the container's process settings unless overridden; without --detach, wait for it
(as its subreaper) and exit with its status."""
import os

from runtime import cgroups, state, syscall
from runtime.common import check_preserved_fds, prepare_seccomp_profile, wait_init, write_pid_file
from runtime.errors import HawserError
from runtime.init.console import connect as connect_console
from runtime.init.execution import ExecSpec, exec_intermediate
from runtime.init.steps import InitContext
from runtime.spec import Process
from runtime.sync import Channel


class ExecOptions:
    __slots__ = ("process_file", "args", "tty", "console_socket", "detach", "pid_file", "env",
                 "cwd", "user", "additional_gids", "caps", "no_new_privs", "preserve_fds",
                 "ignore_paused")

    def __init__(self, **kw):
        for name in self.__slots__:
            setattr(self, name, kw.get(name))


def build_process(c: state.Container, opts: ExecOptions) -> Process:
    """The process to run: --process FILE as given, or the container's process with the
    command line's overrides (what runc does)."""
    if opts.process_file:
        from runtime.validate import validate_process
        try:
            with open(opts.process_file, "rb") as f:
                raw = f.read()
        except OSError as e:
            raise HawserError(f"--process {opts.process_file}: {e.strerror}") from None
        proc = Process(validate_process(raw, opts.process_file))
        if not proc.args:
            raise HawserError(f"{opts.process_file}: args must not be empty")
        if not proc.cwd.startswith("/"):
            raise HawserError(f"{opts.process_file}: cwd {proc.cwd!r} must be an absolute path")
        return proc
    if not opts.args:
        raise HawserError("exec: a command is required (or --process FILE)")
    d = dict(c.data.get("process") or {})
    d["args"] = list(opts.args)
    d["terminal"] = bool(opts.tty)
    d.pop("consoleSize", None)
    d["env"] = list(d.get("env") or ()) + list(opts.env or ())
    if opts.cwd:
        if not opts.cwd.startswith("/"):
            raise HawserError(f"--cwd {opts.cwd!r}: must be an absolute path")
        d["cwd"] = opts.cwd
    if opts.user:
        uid, _, gid = opts.user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise HawserError(f"--user {opts.user!r}: expected UID[:GID] as numbers")
        d["user"] = {"uid": int(uid), "gid": int(gid or 0)}
    if opts.additional_gids:
        for g in opts.additional_gids:
            if not (g.isascii() and g.isdigit()):
                raise HawserError(f"--additional-gids {g!r}: not a number")
        d.setdefault("user", {})["additionalGids"] = [int(g) for g in opts.additional_gids]
    if opts.caps:
        caps = {k: list(v) for k, v in (d.get("capabilities") or {}).items()}
        for cap in opts.caps:
            cap = cap if cap.startswith("CAP_") else "CAP_" + cap.upper()
            for kind in ("bounding", "effective", "permitted", "ambient", "inheritable"):
                if cap not in caps.setdefault(kind, []):
                    caps[kind].append(cap)
        d["capabilities"] = caps
    if opts.no_new_privs:
        d["noNewPrivileges"] = True
    return Process(d)


def exec_in(root: str, cid: str, opts: ExecOptions) -> int:
    c = state.load(root, cid)
    try:
        status = c.status()
        if status == "paused" and not opts.ignore_paused:
            raise HawserError("cannot exec in a paused container (--ignore-paused to do it anyway)")
        if status not in ("running", "created", "paused"):
            raise HawserError("cannot exec in a stopped container")
        proc = build_process(c, opts)
        check_preserved_fds(int(opts.preserve_fds or 0))
        if proc.terminal and not opts.console_socket and opts.detach:
            raise HawserError("--tty with --detach needs --console-socket")
        if opts.console_socket and not proc.terminal:
            raise HawserError("--console-socket given but the process has no terminal (--tty)")
        pid, console = spawn(c, proc, opts)
        if opts.pid_file:
            write_pid_file(opts.pid_file, pid)
    finally:
        c.unlock()
    if opts.detach:
        return 0
    if console is not None:
        from runtime.relay import relay_console
        return relay_console(console, pid, wait_init)
    return wait_init(pid)


def spawn(c: state.Container, proc: Process, opts: ExecOptions):
    """Fork the intermediate; return (pid of the exec'd process, our console end or None) once
    it has execve()d, or raise the reason it could not."""
    if not opts.detach:
        syscall.get().set_child_subreaper()  # the process is our grandchild: reap it ourselves
    seccomp_filter = prepare_seccomp_profile(c.data.get("seccomp"), proc.no_new_privileges,
                                             c.root)
    mgr = cgroups.from_dict(c.data["cgroup"]) if c.data.get("cgroup") else None
    console_sock = ours = None
    if opts.console_socket:
        console_sock = connect_console(opts.console_socket)
    elif proc.terminal:
        import _socket
        ours, console_sock = _socket.socketpair(_socket.AF_UNIX,
                                                _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    parent, child = Channel.pair()
    ctx = InitContext(spec=ExecSpec(proc, c.data.get("seccomp")), chan=child, cgroup=mgr,
                      console_sock=console_sock, preserve_fds=int(opts.preserve_fds or 0),
                      seccomp=seccomp_filter)
    pid = os.fork()
    if pid == 0:
        c.unlock()  # the flock stays with this process only
        parent.close()
        exec_intermediate(ctx, c.pid, c.data.get("namespaces", []))
    child.close()
    if console_sock is not None:
        console_sock.close()
    try:
        msg = parent.recv()
        os.waitpid(pid, 0)
        if msg["kind"] == "error":
            raise HawserError(msg["message"])
        exec_pid = msg["pid"]
        try:
            msg = parent.recv()  # EOF: the process execve()d (the socket is close-on-exec)
        except EOFError:
            return exec_pid, ours
        raise HawserError(msg.get("message", "exec failed"))
    finally:
        parent.close()
