"""TaskOOM: the kernel's OOM notifications of a container's v1 memory cgroup (an eventfd
registered in cgroup.event_control with memory.oom_control). The kernel also signals the eventfd
when the cgroup is removed: the watching thread then ends."""
import os

from shim import cgroup, threads


class Watch:
    def __init__(self, path: str, callback):
        self.path, self.callback = path, callback
        self.lock = threads.Lock()
        self.closed = False
        self.efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            ofd = os.open(os.path.join(path, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                with open(os.path.join(path, "cgroup.event_control"), "w") as f:
                    f.write(f"{self.efd} {ofd}")
            finally:
                os.close(ofd)    # the kernel holds its own reference
        except OSError:
            os.close(self.efd)
            raise
        threads.spawn(self._run)

    def _run(self) -> None:
        while True:
            os.eventfd_read(self.efd)
            if self.closed or not os.path.isdir(self.path):
                break
            self.callback()
        with self.lock:
            self.closed = True
            os.close(self.efd)
            self.efd = -1

    def close(self) -> None:
        with self.lock:
            if not self.closed:
                self.closed = True
                os.eventfd_write(self.efd, 1)    # wakes the thread, which closes the eventfd


def watch(pid: int, callback) -> Watch | None:
    path = cgroup.v1_path(pid, "memory")
    if path is None or not os.path.exists(os.path.join(path, "cgroup.event_control")):
        return None    # cgroup v2 only: not watched
    return Watch(path, callback)
