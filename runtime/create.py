"""`hawser create`: validate the bundle, claim the id, make the cgroup, fork the container's init and
see it through namespaces, mounts and hooks to the point where it waits for `start`.
On any failure everything made so far is undone: init killed, cgroup and state dir removed."""
import _socket
import os
import time

from runtime import cgroups, log, state
from runtime.bundle import load_bundle
from runtime.errors import HawserError
from runtime.hooks import run_hooks, run_hooks_warn
from runtime.init.console import connect as connect_console
from runtime.init.container import InitContext, intermediate
from runtime.init.namespaces import write_id_maps
from runtime.sync import Channel

SIGKILL = 9


class CreateOptions:
    __slots__ = ("bundle", "pid_file", "console_socket", "no_pivot", "no_new_keyring",
                 "preserve_fds", "own_console")

    def __init__(self, bundle=".", pid_file=None, console_socket=None, no_pivot=False,
                 no_new_keyring=False, preserve_fds=0):
        self.bundle = bundle
        self.pid_file = pid_file
        self.console_socket = console_socket
        self.no_pivot = no_pivot
        self.no_new_keyring = no_new_keyring
        self.preserve_fds = preserve_fds
        # `run` in the foreground with a terminal and no --console-socket: the pty master comes
        # back to us (as with runc) on c.console.
        self.own_console = False


def create(root: str, cid: str, opts: CreateOptions) -> state.Container:
    """Returns the created container, still locked by this process."""
    state.check_id(cid)
    bundle = os.path.abspath(opts.bundle)
    spec, rootfs = load_bundle(bundle, f"{root}/.validated")
    check_preserved_fds(opts.preserve_fds)
    check_terminal(spec, opts)
    c = state.new_container(root, cid)
    cleanup = Cleanup(c)
    try:
        mgr = cgroups.open_manager(spec.linux.cgroups_path, cid)
        c.data = {"ociVersion": spec.oci_version, "id": cid, "pid": 0, "bundle": bundle,
                  "rootfs": rootfs, "created": state.rfc3339(time.time_ns()),
                  "annotations": spec.annotations, "cgroup": mgr.to_dict(),
                  "hooks": {k: spec.raw.get("hooks", {}).get(k, []) for k in ("poststart", "poststop")},
                  # what exec needs: the process to default to, the namespaces to join
                  "process": spec.raw.get("process"), "seccomp": spec.linux.seccomp,
                  "namespaces": [ns.type for ns in spec.linux.namespaces]}
        # Recorded before anything is made: were this process killed mid-way, `delete --force`
        # still finds the id (a stopped container, pid 0) and the cgroup to remove.
        c.save()
        start_sock = listen_start_socket(c.dir)
        console_sock = None
        if opts.console_socket:
            console_sock = connect_console(opts.console_socket)
        elif spec.process.terminal:
            c.console, console_sock = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
        seccomp_filter = prepare_seccomp_profile(spec.linux.seccomp,
                                                 spec.process.no_new_privileges, root)
        parent, child = Channel.pair()
        ctx = InitContext(spec=spec, rootfs=rootfs, chan=child, start_sock=start_sock,
                          console_sock=console_sock, preserve_fds=opts.preserve_fds,
                          no_pivot=opts.no_pivot, no_new_keyring=opts.no_new_keyring,
                          cgroup=mgr, seccomp=seccomp_filter)
        pid = os.fork()
        if pid == 0:
            # The flock belongs to this `hawser create`: were init to keep a copy of the locked
            # fd, `start` and `delete` would wait on the lock for as long as init lives.
            c.unlock()
            parent.close()
            intermediate(ctx)
        cleanup.intermediate = pid
        child.close()
        start_sock.close()
        if console_sock is not None:
            console_sock.close()
        try:
            # Made while the intermediate builds the namespaces: it joins on "go".
            mgr.create()
            cleanup.cgroup = mgr
            if spec.linux.resources:
                mgr.set(spec.linux.resources)
            run_init(c, spec, parent, pid, cleanup)
        finally:
            parent.close()
        if opts.pid_file:
            write_pid_file(opts.pid_file, c.pid)
        return c
    except BaseException:
        cleanup.run()
        if cleanup.init_pid:
            # The spec: a failed create still ends with the poststop hooks, once init existed.
            run_hooks_warn("poststop", spec.hooks["poststop"], c.hook_state("stopped"), log.warn)
        raise


class Cleanup:
    """Undo a failed create: kill init, remove the cgroup, remove the state directory."""

    def __init__(self, c: state.Container):
        self.c = c
        self.cgroup = None
        self.init_pid = 0
        self.intermediate = 0  # until reaped

    def run(self) -> None:
        if self.intermediate:
            try:
                os.kill(self.intermediate, SIGKILL)
                os.waitpid(self.intermediate, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        if self.init_pid:
            try:
                os.kill(self.init_pid, SIGKILL)
            except ProcessLookupError:
                pass
            wait_gone(self.init_pid)
        if self.cgroup is not None:
            try:
                self.cgroup.destroy()
            except (OSError, HawserError) as e:
                log.warn(f"removing cgroup: {e}")
        state.remove(self.c)


def run_init(c, spec, chan: Channel, pid: int, cleanup: Cleanup) -> None:
    """Drive the intermediate and init through the create sequence (see runtime.init.container)."""
    try:
        try:
            chan.send("go")
        except OSError:
            pass  # it failed already: its error (or EOF) is read next
        try:
            msg = chan.recv()
        except EOFError:
            raise HawserError(died_reason(c, "before it could report")) from None
        if msg["kind"] == "idmap":
            write_id_maps(pid, spec.linux)
            chan.send("idmap-done")
            msg = chan.recv()
        if msg["kind"] == "error":
            raise HawserError(msg["message"])
        init_pid = msg["pid"]
        cleanup.init_pid = init_pid
    finally:
        os.waitpid(pid, 0)
        cleanup.intermediate = 0
    c.data["pid"] = init_pid
    c.data["pidStart"] = state.proc_start_time(init_pid)
    c.save()
    try:
        chan.expect("hooks")
    except EOFError:
        raise HawserError(died_reason(c, "while setting up its root filesystem")) from None
    hook_state = c.hook_state("creating")
    run_hooks("prestart", spec.hooks["prestart"], hook_state)
    run_hooks("createRuntime", spec.hooks["createRuntime"], hook_state)
    chan.send("hooks-done", state=hook_state)
    try:
        chan.expect("ready")
    except EOFError:
        raise HawserError(died_reason(c, "during create")) from None


def prepare_seccomp_profile(profile, no_new_privileges: bool, root: str):
    """Build the seccomp filter before forking: a bad profile fails here, with nothing started,
    and the child only has to load it (the BPF is cached by profile digest under the root)."""
    if not profile:
        return None
    from runtime import seccomp
    return seccomp.prepare(profile, no_new_privileges, cache_dir=f"{root}/.seccomp")


def died_reason(c: state.Container, when: str) -> str:
    """Why the init vanished without a word: most often a memory limit it could not live in."""
    mgr = cgroups.from_dict(c.data["cgroup"]) if c.data.get("cgroup") else None
    try:
        if mgr is not None and mgr.oom_kill_count() > 0:
            return (f"container init was killed by the OOM killer {when}: "
                    f"linux.resources.memory.limit is too small")
    except (OSError, HawserError):
        pass
    return f"container init exited {when}"


def check_preserved_fds(n: int) -> None:
    """--preserve-fds N hands fds 3..3+N-1 to the process: each must be one the caller passed,
    never one of ours (the only fd we may have opened by now is the --log file)."""
    import fcntl
    import sys
    log = sys.modules.get("runtime.log")
    ours = log.file_fd() if log is not None else None
    for fd in range(3, 3 + n):
        try:
            fcntl.fcntl(fd, fcntl.F_GETFD)
        except OSError:
            ours = fd
        if fd == ours:
            raise HawserError(f"--preserve-fds {n}: fd {fd} was not passed to hawser")


def check_terminal(spec, opts: CreateOptions) -> None:
    if spec.process is None:
        raise HawserError("config.json: 'process' is required to create a container")
    if spec.process.terminal and not opts.console_socket and not opts.own_console:
        raise HawserError("process.terminal is true: --console-socket is required")
    if opts.console_socket and not spec.process.terminal:
        raise HawserError("--console-socket given but process.terminal is false")


def listen_start_socket(state_dir: str):
    """The socket init waits on for `start` (see docs/design.md). Bound through a /proc/self/fd
    path so a long --root cannot overflow the 108-byte address."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.bind(f"/proc/self/fd/{dfd}/{state.START_SOCKET}")
    finally:
        os.close(dfd)
    s.listen(1)
    return s


def write_pid_file(path: str, pid: int) -> None:
    """Written to a temporary name and renamed, so a reader never sees it half-written (as runc)."""
    path = os.path.abspath(path)
    tmp = f"{os.path.dirname(path)}/.{os.path.basename(path)}"
    try:
        with open(tmp, "w") as f:
            f.write(str(pid))
        os.rename(tmp, path)
    except OSError as e:
        raise HawserError(f"--pid-file {path}: {e.strerror}") from None


def wait_gone(pid: int, timeout: float = 5.0) -> None:
    for _ in state.polls(timeout):
        if state.proc_start_time(pid) is None:
            return
        try:
            os.waitpid(pid, os.WNOHANG)  # reaps it when we are its subreaper (hawser run)
        except ChildProcessError:
            pass
