"""OCI hooks: each runs with its path, args and env, the state JSON on stdin, and its timeout.

Spawned with fork/execve rather than subprocess (which imports selectors, signal, threading...).
"""
import os
import select
import time

from runtime import jsonlite
from runtime.errors import HawserError
from runtime.spec import Hook

SIGKILL = 9


def run_hook(kind: str, index: int, hook: Hook, state: dict) -> None:
    """Run one hook to completion; HawserError naming the hook if it fails or times out."""
    stdin_r, stdin_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:  # child: never returns
        try:
            os.dup2(stdin_r, 0)
            os.dup2(err_w, 2)
            os.closerange(3, 0x7FFFFFFF)  # a hook gets stdio only, none of our (or our caller's) fds
            env = dict(e.split("=", 1) if "=" in e else (e, "") for e in hook.env)
            os.execve(hook.path, hook.args, env)
        except BaseException as e:  # noqa: BLE001 - report anything, then leave without cleanup
            os.write(2, f"exec {hook.path}: {getattr(e, 'strerror', e)}".encode())
        finally:
            os._exit(127)
    os.close(stdin_r)
    os.close(err_w)
    try:
        os.write(stdin_w, jsonlite.compact(state).encode())
    except BrokenPipeError:
        pass  # a hook need not read its stdin
    os.close(stdin_w)
    status, stderr = _wait(pid, err_r, hook.timeout)
    os.close(err_r)
    what = f"{kind} hook #{index} ({hook.path})"
    if status is None:
        raise HawserError(f"{what} timed out after {hook.timeout}s")
    if status != 0:
        detail = stderr.decode(errors="replace").strip().splitlines()
        reason = f"exit status {os.waitstatus_to_exitcode(status)}" \
            if os.WIFEXITED(status) else f"killed by signal {os.WTERMSIG(status)}"
        raise HawserError(f"{what} failed: {reason}" + (f": {detail[-1]}" if detail else ""))


def _wait(pid: int, err_fd: int, timeout: int | None) -> tuple[int | None, bytes]:
    """Wait for the hook, collecting its stderr; (None, ...) once the timeout killed it."""
    deadline = None if timeout is None else time.monotonic() + timeout
    pidfd = os.pidfd_open(pid)
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(err_fd, select.POLLIN)
    stderr = b""
    try:
        while True:
            left = None if deadline is None else max(0, int((deadline - time.monotonic()) * 1000))
            events = poller.poll(left)
            if not events:
                os.kill(pid, SIGKILL)
                os.waitpid(pid, 0)
                return None, stderr
            for fd, _ in events:
                if fd == err_fd:
                    chunk = os.read(err_fd, 4096)
                    if not chunk:
                        poller.unregister(err_fd)
                    stderr = (stderr + chunk)[-4096:]
                else:
                    _, status = os.waitpid(pid, 0)
                    return status, stderr + _drain(err_fd)
    finally:
        os.close(pidfd)


def _drain(fd: int) -> bytes:
    """What the hook wrote just before exiting; never blocks (a child of the hook may still
    hold the pipe open)."""
    os.set_blocking(fd, False)
    out = b""
    try:
        while len(out) < 4096:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            out += chunk
    except BlockingIOError:
        pass
    return out


def run_hooks(kind: str, hooks: list[Hook], state: dict) -> None:
    for i, hook in enumerate(hooks):
        run_hook(kind, i, hook, state)


def run_hooks_warn(kind: str, hooks: list[Hook], state: dict, warn) -> None:
    """For hooks whose failure the spec turns into a warning (poststop)."""
    for i, hook in enumerate(hooks):
        try:
            run_hook(kind, i, hook, state)
        except HawserError as e:
            warn(str(e))
