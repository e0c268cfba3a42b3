"""The process `hawser exec` starts in a running container, from fork to execve.

    intermediate (child of `hawser exec`)        the exec'd process
      non-dumpable, join the container's cgroup    new session, console
      open /proc/PID/ns/* of the init, then        find args[0], cwd, rlimits
      setns: user first, then the others           seccomp/caps/user/nnp (as init does)
      fork (pid and time namespaces apply to       close fds beyond stdio and --preserve-fds
      children), report the pid, exit              execve: the sync socket closes on success
"""
import os

from runtime import syscall
from runtime.errors import HawserError
from runtime.init import console
from runtime.init.steps import (InitContext, _report, close_fds, drop_privileges, exec_process,
                                fork_in_cgroup, prepare_process)
from runtime.syscall.consts import NAMESPACES


class ExecSpec:
    """What the shared init steps read from a spec: the process (and no hooks or rootfs)."""
    __slots__ = ("process", "linux")

    def __init__(self, process, seccomp):
        self.process = process
        self.linux = type("L", (), {"seccomp": seccomp})()


def join_container(init_pid: int, ns_types: list[str]) -> bool:
    """setns into the init's namespaces that differ from ours; True if that included a user
    namespace. All are opened first: joining the mount namespace changes what paths mean."""
    fds = []
    try:
        for ns_type in sorted(ns_types, key=lambda t: t != "user"):
            flag, name = NAMESPACES[ns_type]
            theirs = f"/proc/{init_pid}/ns/{name}"
            try:
                if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                    continue
                fds.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), flag, ns_type))
            except FileNotFoundError:
                raise HawserError("container not running") from None
        for fd, flag, ns_type in fds:
            try:
                syscall.get().setns(fd, flag)
            except OSError as e:
                raise HawserError(f"joining the container's {ns_type} namespace: {e.strerror}") \
                    from None
        return any(t == "user" for _, _, t in fds)
    finally:
        for fd, _, _ in fds:
            os.close(fd)


def exec_intermediate(ctx: InitContext, init_pid: int, ns_types: list[str]) -> None:
    """Never returns."""
    try:
        syscall.get().set_dumpable(False)
        if ctx.cgroup is not None:
            ctx.cgroup.apply_self()
        ctx.in_userns = join_container(init_pid, ns_types)
        pid = fork_in_cgroup()
        if pid == 0:
            exec_child(ctx)
        ctx.chan.send("pid", pid=pid)
        os._exit(0)
    except BaseException as e:  # noqa: BLE001 - a forked child reports and _exits
        _report(ctx.chan, e)
        os._exit(1)


def exec_child(ctx: InitContext) -> None:
    try:
        os.setsid()
        proc = ctx.spec.process
        if proc.terminal:
            console.setup_console(ctx.console_sock, proc.console_size, proc.user.uid,
                                  proc.user.gid)
        if proc.oom_score_adj is not None:  # as runc: the container's score, not our caller's
            with open("/proc/self/oom_score_adj", "w") as f:
                f.write(str(proc.oom_score_adj))
        env, path = prepare_process(ctx)
        drop_privileges(ctx)
        close_fds(ctx)
        exec_process(ctx, path, env)
    except BaseException as e:  # noqa: BLE001
        _report(ctx.chan, e)
        os._exit(1)
