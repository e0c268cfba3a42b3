"""Threads, locks and events on the C module _thread alone.

The shim starts a thread per connection and per call; `threading` would cost ~3 ms of every
container's creation (its import, with functools and collections, is on the path between `start`
and the first Create) and ~1 MiB of memory in a process that lives as long as its container.
"""
import _thread
import time

Lock = _thread.allocate_lock


def spawn(fn, *args) -> None:
    """Run fn(*args) in a new thread (never joined: the shim exits with os._exit)."""
    _thread.start_new_thread(fn, args)


def after(delay: float, fn) -> None:
    spawn(lambda: (time.sleep(delay), fn()))


class Event:
    """threading.Event's set / clear / is_set / wait(timeout)."""
    __slots__ = ("_flag", "_lock", "_waiters")

    def __init__(self):
        self._flag = False
        self._lock = Lock()
        self._waiters: list = []

    def is_set(self) -> bool:
        return self._flag

    def set(self) -> None:
        with self._lock:
            self._flag = True
            waiters, self._waiters = self._waiters, []
        for w in waiters:
            w.release()

    def clear(self) -> None:
        with self._lock:
            self._flag = False

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            if self._flag:
                return True
            waiter = Lock()
            waiter.acquire()
            self._waiters.append(waiter)
        if waiter.acquire(True, -1 if timeout is None else max(timeout, 0)):
            return True
        with self._lock:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
                return self._flag
        waiter.acquire()    # set() took it off the list: its release is on the way
        return True
