"""`hawser start`: tell the waiting init to exec the user's program, then run poststart hooks."""
import _socket
import os

from runtime import HawserError, state

SIGKILL = 9


def start(root: str, cid: str) -> None:
    c = state.load(root, cid)
    try:
        start_container(c)
    finally:
        c.unlock()


def start_container(c: state.Container) -> None:
    status = c.status()
    if status == "stopped":
        raise HawserError("cannot start a container that has stopped")
    if status != "created":
        raise HawserError(f"cannot start an already {status} container")
    error = _signal_init(c.dir)
    try:
        os.unlink(f"{c.dir}/{state.START_SOCKET}")
    except FileNotFoundError:
        pass
    if error:
        raise HawserError(error)
    raw_hooks = c.data.get("hooks", {}).get("poststart", [])
    if not raw_hooks:
        return
    from runtime.hooks import run_hooks  # only when there are hooks: start stays lean
    from runtime.spec import Hook
    try:
        run_hooks("poststart", [Hook(h) for h in raw_hooks], c.hook_state("running"))
    except HawserError:
        # runtime-spec 1.3: a failing poststart hook fails start and stops the container.
        try:
            os.kill(c.pid, SIGKILL)
        except ProcessLookupError:
            pass
        raise


def _signal_init(state_dir: str) -> str:
    """Connect to init's start socket; EOF without data means its execve succeeded (the
    connection is close-on-exec), otherwise init sent the reason it failed."""
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM | _socket.SOCK_CLOEXEC)
    dfd = os.open(state_dir, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        s.connect(f"/proc/self/fd/{dfd}/{state.START_SOCKET}")
        s.sendall(b"start")
        chunks = []
        while True:
            data = s.recv(4096)
            if not data:
                break
            chunks.append(data)
    except OSError as e:
        return f"cannot reach the container's init: {e.strerror}"
    finally:
        os.close(dfd)
        s.close()
    return b"".join(chunks).decode(errors="replace")
