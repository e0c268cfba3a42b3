"""shim/ttrpc.py: the server and client on real unix sockets (a socketpair and a bound listener):
round trips, errors as status codes, concurrent calls (a blocking Wait does not hold up others),
frames that are truncated, oversized or garbage close that connection only."""
from __future__ import annotations

import _socket
import os
import struct
import threading
import time

import pytest

import shim_harness  # noqa: F401  (puts the repository first on sys.path)

from shim import ttrpc, wire

TASK = "containerd.task.v2.Task"
task = wire.package("containerd.task.v2")


class FakeTask:
    """A Task service with three methods: State echoes, Wait blocks until Kill."""

    def __init__(self):
        self.released = threading.Event()

    def State(self, req):
        if req.id == "missing":
            raise ttrpc.Error(ttrpc.NOT_FOUND, "container not created")
        if req.id == "boom":
            raise RuntimeError("handler bug")
        return task.StateResponse(id=req.id, exec_id=req.exec_id, pid=len(req.id),
                                  bundle="b" * 1000)

    def Wait(self, req):
        self.released.wait(10)
        return task.WaitResponse(exit_status=7)

    def Kill(self, req):
        self.released.set()
        return wire.message("google.protobuf.Empty")()


@pytest.fixture
def server(tmp_path):
    srv = ttrpc.Server()
    impl = FakeTask()
    srv.register(TASK, impl)
    path = str(tmp_path / "t.sock")
    lsock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(16)
    thread = threading.Thread(target=srv.serve, args=(lsock,), daemon=True)
    thread.start()
    yield "unix://" + path, impl
    srv.shutdown()
    thread.join(5)
    assert not thread.is_alive()


def state(client, cid, exec_id=""):
    return client.call(TASK, "State", task.StateRequest(id=cid, exec_id=exec_id),
                       task.StateResponse, timeout=5)


def test_round_trip_over_a_socketpair():
    a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
    srv = ttrpc.Server()
    srv.register(TASK, FakeTask())
    threading.Thread(target=srv._connection, args=(a,), daemon=True).start()
    # a raw request, decoded by hand: the frame layout itself
    req = ttrpc.Request(service=TASK, method="State", payload=task.StateRequest(id="abc").encode())
    data = req.encode()
    b.sendall(struct.pack(">IIBB", len(data), 1, 1, 0) + data)
    length, stream, kind, flags = struct.unpack(">IIBB", ttrpc._recv_exact(b, 10))
    assert (stream, kind, flags) == (1, ttrpc.RESPONSE, 0)
    resp = ttrpc.Response.decode(ttrpc._recv_exact(b, length))
    assert resp.status is None or resp.status.code == 0
    assert task.StateResponse.decode(resp.payload).pid == 3
    b.close()


def test_calls_errors_and_unknown_methods(server):
    address, _ = server
    c = ttrpc.Client(address)
    try:
        r = state(c, "c1", "e1")
        assert (r.id, r.exec_id, r.pid, len(r.bundle)) == ("c1", "e1", 2, 1000)
        with pytest.raises(ttrpc.Error) as e:
            state(c, "missing")
        assert (e.value.code, e.value.message) == (ttrpc.NOT_FOUND, "container not created")
        with pytest.raises(ttrpc.Error) as e:
            state(c, "boom")
        assert e.value.code == ttrpc.UNKNOWN and "handler bug" in e.value.message
        with pytest.raises(ttrpc.Error) as e:
            c.call(TASK, "Pids", task.PidsRequest(id="x"), task.PidsResponse, timeout=5)
        assert e.value.code == ttrpc.UNIMPLEMENTED and "Pids" in e.value.message
        with pytest.raises(ttrpc.Error) as e:
            c.call("no.Such", "X", task.PidsRequest(), task.PidsResponse, timeout=5)
        assert e.value.code == ttrpc.UNIMPLEMENTED and "no.Such" in e.value.message
        assert state(c, "still-ok").id == "still-ok"
    finally:
        c.close()


def test_concurrent_calls_do_not_wait_for_a_blocked_one(server):
    address, impl = server
    c = ttrpc.Client(address)
    try:
        results = []
        waiter = threading.Thread(target=lambda: results.append(c.call(
            TASK, "Wait", task.WaitRequest(id="c"), task.WaitResponse, timeout=10)))
        waiter.start()
        time.sleep(0.1)
        # many calls from many threads on the same connection while Wait blocks
        answers = {}

        def many(n):
            for i in range(20):
                answers[(n, i)] = state(c, f"id{n}-{i}").id

        workers = [threading.Thread(target=many, args=(n,)) for n in range(5)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(10)
        assert answers == {(n, i): f"id{n}-{i}" for n in range(5) for i in range(20)}
        assert waiter.is_alive() and not results
        c2 = ttrpc.Client(address)    # another connection releases the waiter
        c2.call(TASK, "Kill", task.KillRequest(id="c"), wire.message("google.protobuf.Empty"),
                timeout=5)
        c2.close()
        waiter.join(5)
        assert results[0].exit_status == 7
    finally:
        c.close()


def raw_connection(address):
    s = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    s.connect(ttrpc.unix_path(address))
    s.settimeout(5)
    return s


def closed_by_peer(s) -> bool:
    try:
        return s.recv(100) == b""
    except ConnectionResetError:
        return True


def good_request() -> bytes:
    data = ttrpc.Request(service=TASK, method="State",
                         payload=task.StateRequest(id="x").encode()).encode()
    return struct.pack(">IIBB", len(data), 1, 1, 0) + data


@pytest.mark.parametrize("frame", [
    pytest.param(struct.pack(">IIBB", 100, 1, 1, 0) + b"x" * 10, id="truncated"),
    pytest.param(struct.pack(">IIBB", (4 << 20) + 1, 1, 1, 0) + b"x" * 64, id="oversized"),
    pytest.param(struct.pack(">IIBB", 4, 1, 1, 0) + b"\xff\xff\xff\xff", id="garbage-payload"),
    pytest.param(struct.pack(">IIBB", 2, 1, 9, 0) + b"\x08\x01", id="unknown-type"),
    pytest.param(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", id="not-ttrpc"),
    pytest.param(struct.pack(">IIBB", 0, 1, 2, 0), id="response-to-server"),
])
def test_bad_frames_close_only_that_connection(server, frame):
    address, _ = server
    good = ttrpc.Client(address)
    try:
        bad = raw_connection(address)
        bad.sendall(frame)
        if frame.startswith(struct.pack(">I", 100)):
            bad.shutdown(_socket.SHUT_WR)    # the rest of the frame never comes
        assert closed_by_peer(bad)
        bad.close()
        assert state(good, "after").id == "after"
        fresh = raw_connection(address)
        fresh.sendall(good_request())
        assert struct.unpack(">IIBB", ttrpc._recv_exact(fresh, 10))[1:3] == (1, ttrpc.RESPONSE)
        fresh.close()
    finally:
        good.close()


def test_even_stream_id_is_refused_with_a_status(server):
    address, _ = server
    s = raw_connection(address)
    data = ttrpc.Request(service=TASK, method="State", payload=b"").encode()
    s.sendall(struct.pack(">IIBB", len(data), 2, 1, 0) + data)
    length, stream, kind, _ = struct.unpack(">IIBB", ttrpc._recv_exact(s, 10))
    assert (stream, kind) == (2, ttrpc.RESPONSE)
    assert ttrpc.Response.decode(ttrpc._recv_exact(s, length)).status.code == \
        ttrpc.INVALID_ARGUMENT
    s.close()


def test_client_fails_pending_calls_when_the_server_goes(tmp_path):
    path = str(tmp_path / "s.sock")
    lsock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    lsock.bind(path)
    lsock.listen(1)
    c = ttrpc.Client(path)
    conn_fd, _ = lsock._accept()
    errors = []
    t = threading.Thread(target=lambda: errors.append(pytest.raises(ttrpc.Error, state, c, "x")))
    t.start()
    time.sleep(0.1)
    os.close(conn_fd)
    t.join(5)
    assert errors and errors[0].value.code == ttrpc.UNAVAILABLE
    with pytest.raises(ttrpc.Error):
        state(c, "y")
    c.close()
    lsock.close()
