"""Whether a process (a shim, a container's) is still there, and waiting for it to go: a zombie
counts as gone, since its exit is all that is left of it."""
import time


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    """Until process pid has exited (or is a zombie), at most timeout seconds: whether it has."""
    deadline = time.monotonic() + timeout
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.005)
    return True
