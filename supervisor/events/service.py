"""hawser.v1.Events: the hub's events as a stream, filtered."""
import queue

from supervisor.api import events_pb2 as epb
from supervisor.api import events_pb2_grpc as egrpc
from supervisor.grpcutil import ts
from supervisor.tasks.supervisor import Supervisor


class EventsService(egrpc.EventsServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup

    def Subscribe(self, req, context):
        q = self.sup.hub.subscribe(list(req.filters))
        try:
            while context.is_active():
                try:
                    ev = q.get(timeout=0.5)
                except queue.Empty:
                    continue
                yield epb.Envelope(timestamp=ts(ev["timestamp"]), topic=ev["topic"],
                                   container_id=ev["container_id"],
                                   exec_id=ev.get("exec_id", ""), pid=ev.get("pid", 0),
                                   exit_status=ev.get("exit_status", 0))
        finally:
            self.sup.hub.unsubscribe(q)

