"""supervisor/client/grpclite.py, hawserctl's gRPC client without grpc or protobuf, against a real
hawserd (grpcio's server): unary calls, status codes, server streams with flow control, concurrent
streams on one connection, deadlines, cancellation, a bidirectional call; and its messages
against protobuf's (the generated *_pb2 modules, MessageToDict)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import grpc
import pytest
from google.protobuf.json_format import MessageToDict

from hawserd_harness import HAWSERCTL
from supervisor.client import grpclite, h2
from supervisor.api import containers_pb2, containers_pb2_grpc, tasks_pb2

api = grpclite.package("hawser.v1")
# a container that writes 3000 lines of ~1 KB (3 MB: more than the stream and connection windows
# of test_large_output_with_small_windows, and than the default stream window)
BIG = ("x=$(head -c 1000 /dev/zero | tr '\\0' x); i=0; "
       "while [ $i -lt 3000 ]; do echo $i$x; i=$((i+1)); done")


@pytest.fixture
def lite(hawserd):
    ch = grpclite.insecure_channel(hawserd.address)
    yield ch, grpclite.Stub(ch, "hawser.v1.Containers"), grpclite.Stub(ch, "hawser.v1.Tasks")
    ch.close()


def run_detached(c, t, rootfs, *args, **config) -> str:
    cid = c.Create(api.CreateContainerRequest(
        rootfs=str(rootfs), config=api.ContainerConfig(args=list(args), **config))).container.id
    t.Create(api.CreateTaskRequest(container_id=cid))
    t.Start(api.StartRequest(container_id=cid))
    return cid


def test_hawserctl_version_imports_neither_grpc_nor_protobuf(hawserd):
    """Nor argparse, re or enum (supervisor/client/cliargs.py): each of these costs milliseconds."""
    p = subprocess.run([sys.executable, "-I", "-S", "-X", "importtime", HAWSERCTL, "--address",
                        hawserd.address, "version"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and p.stdout.startswith("Client: "), p.stderr
    modules = [line.split("|")[-1].strip() for line in p.stderr.splitlines()
               if line.startswith("import time:")]
    assert "supervisor.client.grpclite" in modules
    assert not [m for m in modules if m.split(".")[0] in ("grpc", "google", "argparse", "re",
                                                          "enum", "json")]


def test_unary_calls_match_grpcio(hawserd, lite, busybox_rootfs):
    ch, c, t = lite
    v = grpclite.Stub(ch, "hawser.v1.Version").Version(grpclite.Empty())
    assert (v.api_version, v.pid) == ("hawser.v1", hawserd.proc.pid)
    # grpc's generic form: method path, serializer, deserializer
    version = ch.unary_unary("/hawser.v1.Version/Version", request_serializer=lambda _: b"",
                             response_deserializer=api.VersionResponse.decode)
    assert version(None, timeout=10) == v
    created = c.Create(api.CreateContainerRequest(
        name="u", rootfs=str(busybox_rootfs), labels={"a": "1", "b": "é"},
        config=api.ContainerConfig(args=["sleep", "30"], env=["K=V"], memory_limit=64 << 20,
                                   cpus=0.5, mounts=[api.Mount(source="/tmp", destination="/t",
                                                               read_only=True)])))
    cid = created.container.id
    c.UpdateLabels(api.UpdateLabelsRequest(id="u", set={"c": "3"}, remove=["a"]))
    t.Create(api.CreateTaskRequest(container_id=cid))
    assert t.Start(api.StartRequest(container_id=cid)).pid > 0
    mine = c.Get(api.GetContainerRequest(id="u")).container
    with grpc.insecure_channel(hawserd.address) as gch:
        theirs = containers_pb2_grpc.ContainersStub(gch).Get(
            containers_pb2.GetContainerRequest(id="u")).container
    assert mine.encode() == theirs.SerializeToString(deterministic=True) or \
        api.Container.decode(theirs.SerializeToString()) == mine     # maps: any order
    assert grpclite.message_to_dict(mine) == MessageToDict(theirs,
                                                           preserving_proto_field_name=True)
    assert mine.labels == {"b": "é", "c": "3"} and mine.config.cpus == 0.5
    listed = c.List(api.ListContainersRequest(filters=["name==u"])).containers
    assert [x.id for x in listed] == [cid]
    assert t.Pids(api.PidsRequest(container_id=cid)).processes[0].pid == mine.pid


def test_error_status_codes_and_messages(hawserd, lite, busybox_rootfs):
    ch, c, t = lite

    def status(fn, *args, **kw):
        with pytest.raises(grpclite.RpcError) as e:
            fn(*args, **kw)
        return e.value.code().name, e.value.details()

    assert status(c.Get, api.GetContainerRequest(id="nosuch")) == \
        ("NOT_FOUND", "no such container: nosuch")
    # grpc-message is percent-encoded on the wire
    assert status(c.Get, api.GetContainerRequest(id="nö%such\t")) == \
        ("NOT_FOUND", "no such container: nö%such\t")
    assert status(c.Create, api.CreateContainerRequest(name="bad name", rootfs="/")) == \
        ("INVALID_ARGUMENT", "invalid name or id 'bad name': use letters, digits, '_', '.', '-'")
    dup = api.CreateContainerRequest(name="dup", rootfs=str(busybox_rootfs),
                                     config=api.ContainerConfig(args=["true"]))
    c.Create(dup)
    code, details = status(c.Create, dup)
    assert code == "ALREADY_EXISTS" and "'dup' is in use" in details
    assert status(t.Start, api.StartRequest(container_id="dup"))[0] == "FAILED_PRECONDITION"
    assert status(t.Update, api.UpdateTaskRequest(container_id="dup", cpus=-1)) == \
        ("INVALID_ARGUMENT", "cpus must be a finite number, not negative")
    nosuch = ch.unary_unary("/hawser.v1.Tasks/NoSuch",
                            response_deserializer=grpclite.message("google.protobuf.Empty").decode)
    assert status(nosuch, api.PidsRequest())[0] == "UNIMPLEMENTED"
    # the connection serves on after errors
    assert c.Get(api.GetContainerRequest(id="dup")).container.name == "dup"
    assert status(c.Get, api.GetContainerRequest(id="x"), timeout=-1)[0] == "DEADLINE_EXCEEDED"

    # an error response is trailers-only: one HEADERS frame, with END_STREAM and grpc-status
    st = ch.connection().open_stream(
        [(":method", "POST"), (":scheme", "http"), (":path", "/hawser.v1.Containers/Get"),
         (":authority", "localhost"), ("te", "trailers"), ("content-type", "application/grpc")],
        grpclite._frame(api.GetContainerRequest(id="nosuch")), end_stream=True)
    kind, headers, end = st.next_event(10)
    assert (kind, end) == ("headers", True) and ("grpc-status", "5") in headers

    p = hawserd.ctl("logs", "nosuch", check=False)
    assert (p.returncode, p.stderr) == (125, "hawserctl: no such container: nosuch (NOT_FOUND)\n")
    p = subprocess.run([HAWSERCTL, "--address", f"unix://{hawserd.base}/none.sock", "ps"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 125 and p.stderr.startswith(
        "hawserctl: failed to connect to all addresses; last error: ")
    assert p.stderr.endswith("No such file or directory (UNAVAILABLE)\n")


def collect_logs(c, cid: str, delay: float = 0) -> str:
    stream = c.Logs(api.LogsRequest(id=cid, follow=True, tail=-1))
    time.sleep(delay)          # the server fills the windows meanwhile
    return "".join(e.log for e in stream)


def expected_big() -> str:
    return "".join(f"{i}{'x' * 1000}\n" for i in range(3000))


def test_large_output_streams_through_the_default_windows(hawserd, lite, busybox_rootfs):
    ch, c, t = lite
    cid = run_detached(c, t, busybox_rootfs, "sh", "-c", BIG)
    assert collect_logs(c, cid, 1.0) == expected_big()
    assert t.Wait(api.WaitRequest(container_id=cid)).exit_status == 0
    # and through hawserctl run, attached, into a pipe
    p = hawserd.ctl("run", "--rm", "--rootfs", busybox_rootfs, "sh", "-c", BIG)
    assert p.stdout == expected_big()


def test_large_output_with_small_windows(hawserd, busybox_rootfs, monkeypatch):
    """With windows of 64 KiB (stream) and 256 KiB (connection), 3 MB need many WINDOW_UPDATEs:
    the stream would stall for good if one were missing."""
    monkeypatch.setattr(h2, "STREAM_WINDOW", 65536)
    monkeypatch.setattr(h2, "CONN_WINDOW", 262144)
    written = []
    real_write = h2.Connection._write

    def spy(self, data):
        if data[3:4] == bytes((h2.WINDOW_UPDATE,)):
            written.append(int.from_bytes(data[5:9], "big"))
        return real_write(self, data)

    monkeypatch.setattr(h2.Connection, "_write", spy)
    with grpclite.insecure_channel(hawserd.address) as ch:
        c, t = grpclite.Stub(ch, "hawser.v1.Containers"), grpclite.Stub(ch, "hawser.v1.Tasks")
        cid = run_detached(c, t, busybox_rootfs, "sh", "-c", BIG)
        assert collect_logs(c, cid, 1.0) == expected_big()
    assert written.count(0) >= 10 and len(written) - written.count(0) >= 40


def test_concurrent_streams_on_one_connection(hawserd, lite, busybox_rootfs):
    ch, c, t = lite
    e = grpclite.Stub(ch, "hawser.v1.Events")
    events = e.Subscribe(api.SubscribeRequest(filters=["/tasks/exit"]))
    cid = run_detached(c, t, busybox_rootfs, "sh", "-c",
                       "i=0; while [ $i -lt 20 ]; do echo $i; sleep 0.05; i=$((i+1)); done; "
                       "exit 7")
    waiter = t.Wait.future(api.WaitRequest(container_id=cid))
    seen, errors = [], []

    def poll():
        try:
            for _ in range(20):
                assert c.Get(api.GetContainerRequest(id=cid)).container.id == cid
                assert cid in [x.id for x in c.List(api.ListContainersRequest(all=True))
                               .containers]
        except Exception as exc:     # noqa: BLE001 (reported below)
            errors.append(exc)

    def follow():
        seen.append("".join(x.log for x in c.Logs(api.LogsRequest(id=cid, follow=True,
                                                                   tail=-1))))

    workers = [threading.Thread(target=poll) for _ in range(4)] + \
        [threading.Thread(target=follow) for _ in range(2)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert not errors and seen == ["".join(f"{i}\n" for i in range(20))] * 2
    assert waiter.result(10).exit_status == 7
    exit_event = next(events)
    assert (exit_event.topic, exit_event.container_id, exit_event.exit_status) == \
        ("/tasks/exit", cid, 7)
    assert events.cancel() and events.code().name == "CANCELLED"
    with pytest.raises(grpclite.RpcError) as err:
        next(events)
    assert err.value.code() is grpclite.StatusCode.CANCELLED
    conn = ch.connection()
    assert conn.next_id > 2 * 4 * 40 and not conn.streams    # all on one connection


def test_deadline_and_cancel_from_another_thread(hawserd, lite, busybox_rootfs):
    ch, c, t = lite
    cid = run_detached(c, t, busybox_rootfs, "sleep", "30")
    t0 = time.monotonic()
    with pytest.raises(grpclite.RpcError) as err:
        t.Wait(api.WaitRequest(container_id=cid), timeout=0.5)
    assert err.value.code().name == "DEADLINE_EXCEEDED" and time.monotonic() - t0 < 5
    stream = c.Logs(api.LogsRequest(id=cid, follow=True))
    threading.Timer(0.3, stream.cancel).start()
    with pytest.raises(grpclite.RpcError) as err:
        list(stream)
    assert err.value.code().name == "CANCELLED"
    t.Kill(api.KillRequest(container_id=cid, signal=9))
    assert t.Wait(api.WaitRequest(container_id=cid), timeout=10).exit_status == 137


def test_bidirectional_attach(hawserd, lite, busybox_rootfs):
    """Tasks.Attach is a stream-stream call: its requests come from an iterator (sent by a thread,
    as grpc does) or from write() in another thread than the one reading the responses."""
    ch, c, t = lite
    cid = run_detached(c, t, busybox_rootfs, "cat", open_stdin=True)
    requests = iter([api.AttachRequest(container_id=cid), api.AttachRequest(stdin=b"hello\n"),
                     api.AttachRequest(close_stdin=True)])
    out = [(r.stream, r.data) for r in t.Attach(requests, timeout=30)]
    assert out[0] == ("", b"")       # attached
    assert {s for s, _ in out[1:]} == {"stdout"} and b"".join(d for _, d in out) == b"hello\n"
    assert t.Wait(api.WaitRequest(container_id=cid), timeout=30).exit_status == 0

    cid = run_detached(c, t, busybox_rootfs, "cat", open_stdin=True)
    call = t.Attach(timeout=30)
    threading.Thread(target=call.write, args=(api.AttachRequest(container_id=cid),)).start()
    assert next(call).stream == ""
    data = bytes(range(256)) * 1024      # 256 KiB in 4 requests, while this thread reads

    def send():
        for i in range(0, len(data), 65536):
            call.write(api.AttachRequest(stdin=data[i:i + 65536]))
        call.write(api.AttachRequest(close_stdin=True))
        call.done_writing()

    writer = threading.Thread(target=send)
    writer.start()
    assert b"".join(r.data for r in call) == data and call.code().name == "OK"
    writer.join(10)
    with pytest.raises(ValueError):
        call.write(api.AttachRequest(stdin=b"late"))

    # a bidirectional call the server does not have ends with its status, cleanly
    nosuch = ch.stream_stream("/hawser.v1.Tasks/NoSuch",
                              response_deserializer=api.AttachResponse.decode)
    with pytest.raises(grpclite.RpcError) as err:
        list(nosuch(iter([api.AttachRequest(container_id=cid)]), timeout=30))
    assert err.value.code().name == "UNIMPLEMENTED" and err.value.details()


def test_server_going_away_ends_the_streams(hawserd, lite):
    ch, c, t = lite
    stream = grpclite.Stub(ch, "hawser.v1.Events").Subscribe(api.SubscribeRequest())
    threading.Timer(0.3, hawserd.stop).start()
    with pytest.raises(grpclite.RpcError) as err:
        list(stream)
    assert (err.value.code().name, err.value.details()) == ("UNAVAILABLE", "Cancelling all calls")
    with pytest.raises(grpclite.RpcError) as err:
        c.List(api.ListContainersRequest())
    assert err.value.code().name == "UNAVAILABLE"


def test_stop_then_start_at_once_keeps_the_new_shim_reachable(hawserd, lite, busybox_rootfs):
    """A fast client's `stop` then `start`: the old shim, exiting after its Shutdown, must not
    remove the socket the new shim of the same container has bound meanwhile (hawserd restarted
    would find the new shim unreachable and kill it)."""
    ch, c, t = lite
    cid = run_detached(c, t, busybox_rootfs, "sleep", "1000")
    t.Stop(api.StopRequest(container_id=cid, timeout=1))
    t.Create(api.CreateTaskRequest(container_id=cid))
    t.Start(api.StartRequest(container_id=cid))
    time.sleep(0.5)     # the old shim has exited by now
    [rec] = [r for r in hawserd.records() if r["id"] == cid]
    assert os.path.exists(rec["shim_address"][len("unix://"):])
    hawserd.sigkill()
    hawserd.start()
    with grpclite.insecure_channel(hawserd.address) as ch2:
        got = grpclite.Stub(ch2, "hawser.v1.Containers").Get(api.GetContainerRequest(id=cid))
    assert got.container.status == 2     # running: taken back by the new hawserd


# -- messages (no daemon)

def test_message_to_dict_matches_protobuf():
    """container_dict's JSON: proto names, defaults left out, int64 as strings, Timestamps in
    RFC 3339 with 0/3/6/9 digits, enums by name, doubles, maps, repeated messages, bytes."""
    pb = containers_pb2.Container(
        id="c", config=containers_pb2.ContainerConfig(
            args=["a", "b"], memory_limit=1 << 40, pids_limit=-5, cpus=1.25, read_only=True,
            mounts=[containers_pb2.Mount(source="/s", destination="/d"), containers_pb2.Mount()]),
        labels={"k": "v", "é": ""}, status=containers_pb2.PAUSED, pid=4000000000, exit_status=0)
    for nanos in (0, 5_000_000, 123_000, 1):
        pb.created_at.seconds, pb.created_at.nanos = 1_700_000_000, nanos
        pb.exited_at.Clear()
        mine = api.Container.decode(pb.SerializeToString())
        assert grpclite.message_to_dict(mine) == MessageToDict(
            pb, preserving_proto_field_name=True)
    for msg in (tasks_pb2.AttachResponse(stream="stdout", data=b"\x00\xff\n"),
                tasks_pb2.StateResponse(status=7, exited_at={}),       # an unknown enum number
                tasks_pb2.StatsResponse(memory_usage=2 ** 64 - 1, pids_current=3),
                tasks_pb2.StopRequest(timeout=float("inf"))):
        mine = grpclite.message(msg.DESCRIPTOR.full_name).decode(msg.SerializeToString())
        assert grpclite.message_to_dict(mine) == MessageToDict(
            msg, preserving_proto_field_name=True)
    ts = api.WaitResponse.decode(tasks_pb2.WaitResponse(
        exited_at={"seconds": 1_700_000_000, "nanos": 250_000_000}).SerializeToString())
    assert ts.exited_at.ToDatetime().isoformat() == "2023-11-14T22:13:20.250000"


def test_every_api_message_round_trips_through_protobuf():
    # their types in the pool
    from supervisor.api import events_pb2, images_pb2, networks_pb2, version_pb2  # noqa: F401
    from google.protobuf import descriptor_pool, message_factory
    from supervisor.api.schema import MESSAGES
    samples = {9: "s-é", 12: b"\x00b", 8: True, 13: 7, 4: 2 ** 63, 3: -3, 5: -2, 14: 1, 1: 0.5}
    for name in MESSAGES:
        cls = grpclite.message(name)
        msg = cls()
        for f in cls.FIELDS:
            if f.kind == 11:
                one = grpclite.message(f.type_name)
                value = one(seconds=5) if f.type_name.endswith("Timestamp") else one()
            else:
                value = samples[f.kind]
            setattr(msg, f.name, [value, value] if f.mode == 1 else
                    {"k": value} if f.mode == 2 else value)
        pb = message_factory.GetMessageClass(
            descriptor_pool.Default().FindMessageTypeByName(name)).FromString(msg.encode())
        assert cls.decode(pb.SerializeToString()) == msg, name
