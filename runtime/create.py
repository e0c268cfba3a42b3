"""`hawser create`: validate the bundle, claim the id, make the cgroup, fork the container's init and
see it through namespaces, mounts and hooks to the point where it waits for `start`.
On any failure everything made so far is undone: init killed, cgroup and state dir removed."""
import _socket
import os
import time

from runtime import cgroups, log, state, syscall
from runtime.bundle import load_bundle
from runtime.common import check_preserved_fds, prepare_seccomp_profile, write_pid_file
from runtime.errors import HawserError
from runtime.hooks import run_hooks, run_hooks_warn
from runtime.init.console import connect as connect_console
from runtime.init.container import InitContext, direct_init, intermediate
from runtime.init.namespaces import write_id_maps
from runtime.sync import Channel
from runtime.syscall.consts import CLONE_NEWPID

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
        # Checked before the fork, which also imports the resource modules there: a bad value
        # fails with nothing started, and no process copies pages to import them after the fork
        # (2 ms on the path to init's start when the parent did it while the intermediate waited).
        mgr.validate(spec.linux.resources)
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
        direct = direct_init_possible(spec.linux)
        pid = fork_init(direct, spec.linux.namespace("pid"))
        if pid == 0:
            # The flock belongs to this `hawser create`: were init to keep a copy of the locked
            # fd, `start` and `delete` would wait on the lock for as long as init lives.
            c.unlock()
            parent.close()
            if direct:
                direct_init(ctx)
            intermediate(ctx)
        if direct:
            cleanup.init_pid = pid
        else:
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
                mgr.set(spec.linux.resources, validated=True)
            run_init(c, spec, parent, pid, cleanup, direct)
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


def direct_init_possible(linux) -> bool:
    """Whether init can be forked by us, without the intermediate: it only exists to fork init
    once the namespaces that apply to children are made. We can make a new pid namespace for
    our own children; a user namespace must own the pid namespace (so be made before it, by
    the child), and a time namespace or a pid namespace joined by path stay the intermediate's."""
    pid = linux.namespace("pid")
    return (linux.namespace("user") is None and linux.namespace("time") is None
            and (pid is None or not pid.path))


def fork_init(direct: bool, pid_ns) -> int:
    """os.fork(); for a direct init in a new pid namespace, with our pid_for_children set to a
    new namespace for the fork only (our own pid namespace never changes)."""
    if not (direct and pid_ns is not None):
        return os.fork()
    sc = syscall.get()
    own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            sc.unshare(CLONE_NEWPID)
        except OSError as e:
            raise HawserError(f"linux.namespaces: creating the pid namespace: {e.strerror}") \
                from None
        pid = -1
        try:
            pid = os.fork()  # the child is PID 1 of the new namespace
        finally:
            if pid != 0:
                # Back to our own for children: hooks and anything else we start stay there.
                sc.setns(own, CLONE_NEWPID)
        return pid
    finally:
        os.close(own)


def run_init(c, spec, chan: Channel, pid: int, cleanup: Cleanup, direct: bool = False) -> None:
    """Drive the intermediate and init through the create sequence (see runtime.init.container).
    `direct`: `pid` is init itself, forked without the intermediate."""
    if direct:
        try:
            chan.send("go")
        except OSError:
            pass  # it failed already: its error (or EOF) is read next
        _init_started(c, spec, chan, pid)
        return
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
    _init_started(c, spec, chan, init_pid)


def _init_started(c, spec, chan: Channel, init_pid: int) -> None:
    """Record init's pid, run the hooks it asks for, and wait until it is ready for start."""
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


def wait_gone(pid: int, timeout: float = 5.0) -> None:
    for _ in state.polls(timeout):
        if state.proc_start_time(pid) is None:
            return
        try:
            os.waitpid(pid, os.WNOHANG)  # reaps it when we are its subreaper (hawser run)
        except ChildProcessError:
            pass
