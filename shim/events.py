"""Task events to containerd, in order, from one sender thread.

With TTRPC_ADDRESS (set by containerd for its shims): containerd.services.events.ttrpc.v1.Events/
Forward with an Envelope{timestamp, namespace, topic, event Any}; the connection is made again
when containerd restarts, an event is retried a few times before it is dropped. Without it: the
-publish-binary (`containerd --address A publish --topic T --namespace NS`, the Any on stdin).
With neither, events are only logged.
"""
import os
import time
from _collections import deque

from shim import threads, ttrpc, wire

FORWARD = ("containerd.services.events.ttrpc.v1.Events", "Forward")
NAMESPACE_KEY = "containerd-namespace-ttrpc"
TOPICS = {
    "TaskCreate": "/tasks/create", "TaskStart": "/tasks/start", "TaskExit": "/tasks/exit",
    "TaskDelete": "/tasks/delete", "TaskExecAdded": "/tasks/exec-added",
    "TaskExecStarted": "/tasks/exec-started", "TaskOOM": "/tasks/oom",
    "TaskPaused": "/tasks/paused", "TaskResumed": "/tasks/resumed",
    "TaskCheckpointed": "/tasks/checkpointed",
}
ATTEMPTS = 5

evt = wire.package("containerd.services.events.ttrpc.v1")
Empty = wire.message("google.protobuf.Empty")


class Publisher:
    def __init__(self, namespace: str, ttrpc_address: str = "", publish_binary: str = "",
                 containerd_address: str = "", reaper=None, log=None):
        self.namespace = namespace
        self.ttrpc_address = ttrpc_address
        self.publish_binary, self.containerd_address = publish_binary, containerd_address
        self.reaper = reaper
        self.log = log or (lambda level, msg: None)
        self.queue: deque = deque()
        self.wake = threads.Event()      # set when the queue has grown, or at close()
        self.done = threads.Event()
        self.closing = False
        self.client = None
        threads.spawn(self._run)

    def publish(self, event) -> None:
        """Queue an event message (containerd.events.*); returns at once."""
        envelope = evt.Envelope(timestamp=wire.timestamp(time.time_ns()),
                                namespace=self.namespace, topic=TOPICS[type(event).__name__],
                                event=wire.pack_any(event))
        self.queue.append(envelope)    # deque.append is atomic
        self.wake.set()

    def close(self, timeout: float = 5.0) -> None:
        """Send what is queued (within timeout), then stop."""
        self.closing = True
        self.wake.set()
        self.done.wait(timeout)
        if self.client is not None:
            self.client.close()

    def _run(self) -> None:
        while True:
            if not self.queue:
                if self.closing:
                    self.done.set()
                    return
                self.wake.wait()
                self.wake.clear()    # whatever is queued from here on sets it again
                continue
            envelope = self.queue[0]
            for attempt in range(ATTEMPTS):
                try:
                    self._send(envelope)
                    break
                except Exception as e:
                    self.log("warn", f"publish {envelope.topic} (attempt {attempt + 1}): {e}")
                    if self.client is not None:
                        self.client.close()
                        self.client = None
                    if self.closing and attempt >= 1:
                        break
                    time.sleep(0.2 * (attempt + 1))
            else:
                self.log("error", f"dropped event {envelope.topic}")
            self.queue.popleft()

    def _send(self, envelope) -> None:
        if self.ttrpc_address:
            if self.client is None:
                self.client = ttrpc.Client(self.ttrpc_address, timeout=5)
            self.client.call(*FORWARD, evt.ForwardRequest(envelope=envelope), Empty, timeout=5,
                             metadata={NAMESPACE_KEY: self.namespace})
        elif self.publish_binary and self.reaper is not None:
            self._send_binary(envelope)
        else:
            self.log("info", f"event {envelope.topic} {wire.any_name(envelope.event)}")

    def _send_binary(self, envelope) -> None:
        r, w = os.pipe()
        try:
            child = self.reaper.spawn([self.publish_binary, "--address", self.containerd_address,
                                       "publish", "--topic", envelope.topic, "--namespace",
                                       self.namespace], stdin=r)
            os.close(r)
            r = -1
            os.write(w, envelope.event.encode())
            os.close(w)
            w = -1
            code = child.wait(10)
            if code != 0:
                raise RuntimeError(f"{self.publish_binary} publish exited {code}")
        finally:
            for fd in (r, w):
                if fd >= 0:
                    os.close(fd)
