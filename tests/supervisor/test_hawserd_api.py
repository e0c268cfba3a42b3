"""hawserd's gRPC API directly: events from the shims reach Subscribe; pause/unpause, kill -s."""
from __future__ import annotations

import threading

import grpc

from supervisor.api import events_pb2, events_pb2_grpc


def test_subscribe_gets_the_shims_task_events_in_order(hawserd, busybox_rootfs):
    channel = grpc.insecure_channel(hawserd.address)
    stream = events_pb2_grpc.EventsStub(channel).Subscribe(
        events_pb2.SubscribeRequest(filters=["/tasks/", "/containers/create"]))
    got, done = [], threading.Event()

    def read():
        try:
            for ev in stream:
                got.append((ev.topic, ev.container_id, ev.exit_status))
                if ev.topic == "/tasks/delete":
                    done.set()
                    return
        except grpc.RpcError:
            pass

    threading.Thread(target=read, daemon=True).start()
    try:
        threading.Event().wait(0.3)    # the subscription is in place before the run
        p = hawserd.ctl("run", "--rm", "--rootfs", busybox_rootfs, "sh", "-c", "exit 4",
                        check=False)
        assert p.returncode == 4
        assert done.wait(10), got
    finally:
        stream.cancel()
        channel.close()
    cid = got[0][1]
    assert [t for t, c, _ in got if c == cid] == ["/containers/create", "/tasks/create",
                                                  "/tasks/start", "/tasks/exit", "/tasks/delete"]
    assert [s for t, _, s in got if t == "/tasks/exit"] == [4]


def test_pause_unpause_and_kill_with_a_signal(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "p", "--rootfs", busybox_rootfs, "sh", "-c",
                "trap 'exit 9' USR1; while true; do sleep 0.1; done")
    hawserd.ctl("pause", "p")
    assert hawserd.info("p")["status"] == "paused"
    hawserd.ctl("unpause", "p")
    assert hawserd.info("p")["status"] == "running"
    hawserd.ctl("kill", "-s", "USR1", "p")
    assert hawserd.ctl("wait", "p").stdout == "9\n"
