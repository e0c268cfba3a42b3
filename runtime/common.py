"""What `create`, `run` and `exec` share, apart from create's modules: `exec` imports none of
the rootfs, mount, hook or bundle code (a dozen modules, ~3 ms a call)."""
import os

from runtime.errors import HawserError

FORWARDED = (1, 2, 3, 10, 12, 15, 28)  # HUP INT QUIT USR1 USR2 TERM WINCH


def prepare_seccomp_profile(profile, no_new_privileges: bool, root: str):
    """Build the seccomp filter before forking: a bad profile fails here, with nothing started,
    and the child only has to load it (the BPF is cached by profile digest under the root)."""
    if not profile:
        return None
    from runtime import seccomp
    return seccomp.prepare(profile, no_new_privileges, cache_dir=f"{root}/.seccomp")


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


def wait_init(pid: int, forwarded=FORWARDED) -> int:
    import _signal

    def forward(signum, _frame):
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for sig in forwarded:
        _signal.signal(sig, forward)
    while True:
        # Reap everything: without a pid namespace of its own the container's orphans are ours.
        try:
            child, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if child == pid:
            code = os.waitstatus_to_exitcode(status)
            return code if code >= 0 else 128 - code
