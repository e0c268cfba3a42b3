"""What hawserd holds for a live task."""
import threading

from supervisor.tasks import logs, shims


class Task:
    """What hawserd holds for a live task: the shim connection and the log collector."""

    def __init__(self, shim: shims.ShimClient, collector: logs.Collector, log: logs.JsonLog):
        self.shim, self.collector, self.log = shim, collector, log
        self.exited = threading.Event()
