"""Tasks.Attach: a client on the live stdio of a container's main process (docker attach).

Output comes from the task's log collector (what it reads from the output FIFOs, as it reads
it), so an attached client and the json log see the same bytes and a slow client never holds
the container up: its queue grows instead. Input goes into the stdin FIFO of a container created
with open_stdin; the shim keeps its own writer on that FIFO, so a client that detaches does not
give the process EOF: only close_stdin does (our writer closed and the shim's released)."""
import errno
import os
import queue
import select
import threading

from supervisor.tasks import logs
from supervisor.errors import ApiError
from supervisor.tasks.supervisor import Supervisor


class Attachment:
    def __init__(self, sup: Supervisor, ref: str):
        rec = sup.resolve(ref)
        self.sup, self.cid, self.name = sup, rec["id"], rec["name"]
        if rec["status"] == "stopped" or self.cid not in sup.tasks:
            raise ApiError("FAILED_PRECONDITION", f"container {self.name} is not running: "
                                                  "start it first (start -a attaches as it starts)")
        self.open_stdin = bool(rec["config"].get("open_stdin"))
        self.terminal = bool(rec["config"].get("terminal"))
        self.stdin = logs.stdin_path(rec["bundle"])
        self.collector = sup.tasks[self.cid].collector
        self.queue, self.open_streams = self.collector.subscribe()
        self.writer = None
        self.writer_lock = threading.Lock()    # the request thread writes, close() closes
        self.error: ApiError | None = None
        self.closed = False

    def handle(self, stdin: bytes, close_stdin: bool, width: int, height: int) -> None:
        """One request from the client; an error is kept for the output side to report."""
        try:
            if width and height:
                if not self.terminal:
                    raise ApiError("FAILED_PRECONDITION", f"container {self.name} has no "
                                                          "terminal to resize (create it with -t)")
                self.sup.shim_call(self.cid, "ResizePty", width=width, height=height)
            if stdin:
                with self.writer_lock:
                    self._write(stdin)
            if close_stdin:
                self._close_writer()
                if self.open_stdin:
                    self.sup.shim_call(self.cid, "CloseIO", stdin=True)
        except ApiError as e:
            self.error = e

    def _write(self, data: bytes) -> None:
        if not self.open_stdin:
            raise ApiError("FAILED_PRECONDITION", f"container {self.name} has no stdin to write "
                                                  "to (create it with -i)")
        if self.writer is None:
            try:
                self.writer = os.open(self.stdin, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except OSError as e:    # ENXIO: the shim released the FIFO (the process is gone)
                raise ApiError("FAILED_PRECONDITION", f"stdin of {self.name}: {e.strerror}") \
                    from None
        view = memoryview(data)
        while view and not self.closed:
            try:
                view = view[os.write(self.writer, view):]
            except BlockingIOError:    # the process is not reading: wait, but not past close()
                select.select([], [self.writer], [], 0.5)
            except OSError as e:
                if e.errno == errno.EPIPE:
                    return
                raise ApiError("FAILED_PRECONDITION", f"stdin of {self.name}: {e.strerror}") \
                    from None

    def output(self, active):
        """(stream, bytes) as the process writes them, until its output ends (every stream at
        EOF), the client goes (active() false) or a request failed (the error is raised)."""
        left = self.open_streams
        while left > 0:
            if self.error is not None:
                raise self.error
            try:
                stream, data = self.queue.get(timeout=0.2)
            except queue.Empty:
                if not active():
                    return
                continue
            if data is None:
                left -= 1
            else:
                yield stream, data
        if self.error is not None:
            raise self.error

    def _close_writer(self) -> None:
        with self.writer_lock:
            if self.writer is not None:
                os.close(self.writer)
                self.writer = None

    def close(self) -> None:
        self.closed = True    # first: a write waiting on a full FIFO gives up
        self.collector.unsubscribe(self.queue)
        self._close_writer()
