"""Polling helpers the tests share: wait for a condition, a pid file, a process's CPU time."""
import time


def wait_for(predicate, timeout: float = 10.0, what: str = "condition", interval: float = 0.02):
    """Poll predicate() until it returns something true; return that, or fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def read_pid_file(path, timeout: float = 5.0) -> int:
    """The pid a runtime wrote (it may not have written it yet)."""
    def read():
        try:
            text = open(path).read().strip()
        except FileNotFoundError:
            return 0
        return int(text) if text else 0
    return wait_for(read, timeout, f"a pid in {path}")


def cpu_ticks(pid: int) -> int:
    """utime + stime of pid, in clock ticks."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])
