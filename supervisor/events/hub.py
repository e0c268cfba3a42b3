"""Events: the shims forward theirs over ttrpc (containerd.services.events.ttrpc.v1.Events/Forward
on a small unix socket of hawserd's, passed to them as TTRPC_ADDRESS); hawserd adds its own
(/containers/...); every Subscribe stream gets those its filters select."""
import _socket
import os
import queue
import threading
import time

from shim import ttrpc, wire

EVENTS_SERVICE = "containerd.services.events.ttrpc.v1.Events"
Empty = wire.message("google.protobuf.Empty")


class Hub:
    def __init__(self):
        self.lock = threading.Lock()
        self.subscribers: list[tuple[queue.Queue, list[str]]] = []
        self.listeners = []    # callables(topic, fields) run for every event (the exit watcher)

    def subscribe(self, filters: list[str]) -> queue.Queue:
        q: queue.Queue = queue.Queue(maxsize=1000)
        with self.lock:
            self.subscribers.append((q, list(filters)))
        return q

    def unsubscribe(self, q: queue.Queue) -> None:
        with self.lock:
            self.subscribers = [(s, f) for s, f in self.subscribers if s is not q]

    def publish(self, topic: str, container_id: str, **fields) -> None:
        event = dict(fields, topic=topic, container_id=container_id, timestamp=time.time())
        for listener in list(self.listeners):
            listener(event)
        with self.lock:
            subs = list(self.subscribers)
        for q, filters in subs:
            if matches(event, filters):
                try:
                    q.put_nowait(event)
                except queue.Full:    # a client that does not read loses events, not hawserd
                    pass


def matches(event: dict, filters: list[str]) -> bool:
    topics = [f for f in filters if f.startswith("/")]
    ids = [f.split("==", 1)[1] for f in filters if f.startswith("container==")]
    return (not topics or any(event["topic"].startswith(t) for t in topics)) and \
        (not ids or event["container_id"] in ids)


class ForwardServer:
    """The ttrpc events service the shims publish to."""

    def __init__(self, path: str, hub: Hub):
        self.path, self.hub = path, hub
        self.server = ttrpc.Server()
        self.server.register(EVENTS_SERVICE, self)
        if os.path.exists(path):
            os.unlink(path)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.bind(path)
        os.chmod(path, 0o600)
        sock.listen(64)
        threading.Thread(target=self.server.serve, args=(sock,), daemon=True,
                         name="shim-events").start()

    def Forward(self, req):
        env = req.envelope
        name = wire.any_name(env.event)
        try:
            ev = wire.message(name).decode(env.event.value)
        except (KeyError, wire.DecodeError):
            return Empty()
        cid = getattr(ev, "container_id", "") or getattr(ev, "id", "")
        fields = {}
        for attr in ("exec_id", "pid", "exit_status"):
            if attr in ev.__slots__:
                fields[attr] = getattr(ev, attr) or 0 if attr != "exec_id" else getattr(ev, attr)
        self.hub.publish(env.topic, cid, **fields)
        return Empty()

    @property
    def address(self) -> str:
        return "unix://" + self.path

    def close(self) -> None:
        """Stop serving; the socket goes too (shims publishing until the next hawserd binds it
        again fail the same way on a missing socket as on a dead one)."""
        self.server.shutdown()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
