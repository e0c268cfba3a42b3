"""hawserd under faults and bad input: many clients at once, clients that vanish mid-stream,
unknown and duplicate names, invalid limits, missing rootfs or runtime; after each, the right gRPC
status code, a daemon that keeps serving, and nothing left behind (no shim, no runtime state, no
cgroup, no mount)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading

import grpc
import pytest

from hawserd_harness import REPO, alive, leftovers, no_leftovers, wait_until
from supervisor.api import (containers_pb2 as cpb, containers_pb2_grpc as cgrpc,
                            events_pb2 as epb, events_pb2_grpc as egrpc, tasks_pb2 as tpb,
                            tasks_pb2_grpc as tgrpc, version_pb2_grpc as vgrpc)
from google.protobuf import empty_pb2


class Api:
    def __init__(self, address: str):
        self.channel = grpc.insecure_channel(address)
        self.c = cgrpc.ContainersStub(self.channel)
        self.t = tgrpc.TasksStub(self.channel)
        self.e = egrpc.EventsStub(self.channel)
        self.v = vgrpc.VersionStub(self.channel)

    def close(self):
        self.channel.close()


@pytest.fixture
def api(hawserd):
    a = Api(hawserd.address)
    yield a
    a.close()


def code(fn, req, timeout=60):
    """(status code, details) of one call; (OK, response) when it succeeds."""
    try:
        return grpc.StatusCode.OK, fn(req, timeout=timeout)
    except grpc.RpcError as e:
        return e.code(), e.details()


def config(*args, **kw):
    return cpb.ContainerConfig(args=list(args), **kw)


def run_detached(api: Api, rootfs, name: str, *args: str) -> str:
    cid = api.c.Create(cpb.CreateContainerRequest(name=name, config=config(*args),
                                                  rootfs=str(rootfs)), timeout=60).container.id
    api.t.Create(tpb.CreateTaskRequest(container_id=cid), timeout=60)
    api.t.Start(tpb.StartRequest(container_id=cid), timeout=60)
    return cid


def still_serving(hawserd, api: Api, rootfs) -> None:
    assert hawserd.proc.poll() is None, "hawserd died"
    api.v.Version(empty_pb2.Empty(), timeout=10)
    p = hawserd.ctl("run", "--rm", "--rootfs", rootfs, "sh", "-c", "echo alive", timeout=60)
    assert p.stdout == "alive\n"


# -- many clients ------------------------------------------------------------------------------
def test_fifty_clients_at_once_on_the_same_container(hawserd, api, busybox_rootfs):
    cid = run_detached(api, busybox_rootfs, "crowd", "sleep", "1000")
    pid = api.c.Get(cpb.GetContainerRequest(id="crowd")).container.pid
    assert pid > 0 and alive(pid)
    n = 50
    start = threading.Barrier(n)
    errors: list[str] = []

    def client(i: int) -> None:
        a = Api(hawserd.address)
        try:
            start.wait(30)
            for _ in range(5):
                ref = ("crowd", cid, cid[:12])[i % 3]
                c = a.c.Get(cpb.GetContainerRequest(id=ref), timeout=60).container
                assert (c.id, c.name, c.status, c.pid) == (cid, "crowd", cpb.RUNNING, pid)
                s = a.t.State(tpb.StateRequest(container_id=ref), timeout=60)
                assert (s.container_id, s.status, s.pid) == (cid, tpb.TASK_RUNNING, pid)
                pids = [p.pid for p in a.t.Pids(tpb.PidsRequest(container_id=ref),
                                                 timeout=60).processes]
                assert pid in pids, pids
                listed = a.c.List(cpb.ListContainersRequest(filters=["name==crowd"]),
                                  timeout=60).containers
                assert [x.id for x in listed] == [cid]
        except Exception as e:  # noqa: BLE001 - reported below with the client's number
            errors.append(f"client {i}: {e!r}")
        finally:
            a.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    # docker-style clients at the same time: hawserctl inspect (a process each)
    ctls = [subprocess.Popen([sys.executable, "-m", "supervisor.client.ctl", "--address",
                              hawserd.address, "inspect", "crowd"], cwd=REPO,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(8)]
    for t in threads:
        t.join(120)
    assert not [t for t in threads if t.is_alive()], "clients hung"
    assert errors == []
    for p in ctls:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0 and cid in out, err
    still_serving(hawserd, api, busybox_rootfs)
    assert alive(pid)
    hawserd.ctl("rm", "-f", "crowd")
    assert no_leftovers(hawserd, cid), leftovers(hawserd, cid)


def test_clients_that_disconnect_mid_stream(hawserd, api, busybox_rootfs):
    """More abandoned subscriptions than hawserd has worker threads (64): if an abandoned
    Subscribe kept its worker, the daemon would stop answering."""
    channels = []
    for _ in range(40):
        ch = grpc.insecure_channel(hawserd.address)
        channels.append((ch, egrpc.EventsStub(ch).Subscribe(epb.SubscribeRequest())))
    # the first streams get an event, then every channel goes away without a word
    hawserd.ctl("create", "--name", "ping", "--rootfs", busybox_rootfs, "true")
    for _, stream in channels[:5]:
        assert next(stream).topic == "/containers/create"
    for ch, _ in channels:
        ch.close()
    # and a client process that dies (SIGKILL) while reading 40 streams
    reader = subprocess.Popen([sys.executable, "-c", f"""
import grpc, sys, time
sys.path.insert(0, {str(REPO)!r})
from supervisor.api import events_pb2 as epb, events_pb2_grpc as egrpc
streams = []
for _ in range(40):
    ch = grpc.insecure_channel({hawserd.address!r})
    streams.append(egrpc.EventsStub(ch).Subscribe(epb.SubscribeRequest()))
print(next(streams[0]).topic, flush=True)
time.sleep(600)
"""], stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: False, 1.0)    # its subscriptions are in place
        hawserd.ctl("create", "--name", "ping2", "--rootfs", busybox_rootfs, "true")
        assert reader.stdout.readline().strip() == "/containers/create"
    finally:
        reader.kill()
        reader.wait(10)
    # a new subscriber still gets every event, and everything else works
    stream = api.e.Subscribe(epb.SubscribeRequest(filters=["/containers/delete"]))
    try:
        wait_until(lambda: False, 0.3)
        hawserd.ctl("rm", "ping", "ping2")
        got = [next(stream).topic for _ in range(2)]
        assert got == ["/containers/delete"] * 2
    finally:
        stream.cancel()
    still_serving(hawserd, api, busybox_rootfs)
    # more calls at once than the pool has workers: none waits behind a dead stream
    done = []

    def health():
        done.append(code(api.v.Version, empty_pb2.Empty(), timeout=20)[0])

    threads = [threading.Thread(target=health) for _ in range(70)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert done == [grpc.StatusCode.OK] * 70


# -- bad references ----------------------------------------------------------------------------
def test_unknown_names_and_ids_are_not_found(hawserd, api, busybox_rootfs):
    cid = api.c.Create(cpb.CreateContainerRequest(name="gone", config=config("true"),
                                                  rootfs=str(busybox_rootfs))).container.id
    api.c.Delete(cpb.DeleteContainerRequest(id=cid))
    for ref in ("no-such-container", cid, "gone", cid[:12], "ffffffffffff", "%", "_"):
        calls = [
            (api.c.Get, cpb.GetContainerRequest(id=ref)),
            (api.c.UpdateLabels, cpb.UpdateLabelsRequest(id=ref, set={"a": "b"})),
            (api.c.Delete, cpb.DeleteContainerRequest(id=ref)),
            (api.c.Delete, cpb.DeleteContainerRequest(id=ref, force=True)),
            (api.t.Create, tpb.CreateTaskRequest(container_id=ref)),
            (api.t.Start, tpb.StartRequest(container_id=ref)),
            (api.t.Kill, tpb.KillRequest(container_id=ref, signal=9)),
            (api.t.Wait, tpb.WaitRequest(container_id=ref)),
            (api.t.Delete, tpb.DeleteTaskRequest(container_id=ref, force=True)),
            (api.t.Pause, tpb.PauseRequest(container_id=ref)),
            (api.t.Resume, tpb.ResumeRequest(container_id=ref)),
            (api.t.Pids, tpb.PidsRequest(container_id=ref)),
            (api.t.State, tpb.StateRequest(container_id=ref)),
        ]
        for fn, req in calls:
            got, details = code(fn, req, timeout=20)
            assert got == grpc.StatusCode.NOT_FOUND, (ref, type(req).__name__, got, details)
            assert ref in details and "no such container" in details
    assert api.c.List(cpb.ListContainersRequest(all=True)).containers == []
    for verb in ("inspect", "start", "stop", "kill", "rm", "pause", "unpause", "wait", "logs"):
        p = hawserd.ctl(verb, "no-such-container", check=False)
        assert p.returncode != 0 and "no such" in p.stderr.lower(), (verb, p.stderr)
    still_serving(hawserd, api, busybox_rootfs)


def test_duplicate_names_and_ids_are_already_exists(hawserd, api, busybox_rootfs):
    first = api.c.Create(cpb.CreateContainerRequest(name="twin", config=config("true"),
                                                    rootfs=str(busybox_rootfs))).container
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="twin", config=config("true"), rootfs=str(busybox_rootfs)))
    assert got == grpc.StatusCode.ALREADY_EXISTS and "twin" in details
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        id=first.id, name="other", config=config("true"), rootfs=str(busybox_rootfs)))
    assert got == grpc.StatusCode.ALREADY_EXISTS and first.id in details
    # 12 clients race for one name: exactly one wins, the others get ALREADY_EXISTS
    results = []
    barrier = threading.Barrier(12)

    def racer():
        a = Api(hawserd.address)
        try:
            barrier.wait(30)
            results.append(code(a.c.Create, cpb.CreateContainerRequest(
                name="race", config=config("true"), rootfs=str(busybox_rootfs)))[0])
        finally:
            a.close()

    threads = [threading.Thread(target=racer) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results, key=str) == sorted([grpc.StatusCode.OK] +
                                              [grpc.StatusCode.ALREADY_EXISTS] * 11, key=str)
    recs = hawserd.records()
    assert sorted(r["name"] for r in recs) == ["race", "twin"]
    bundles = hawserd.state / "bundles"
    assert sorted(os.listdir(bundles)) == sorted(r["id"] for r in recs)
    logs = hawserd.root / "containers"      # a log directory comes with a first task: none yet
    assert not logs.exists() or os.listdir(logs) == []
    # the name is free again once its container is gone
    hawserd.ctl("rm", "twin")
    hawserd.ctl("run", "--rm", "--name", "twin", "--rootfs", busybox_rootfs, "true")


# -- invalid input -----------------------------------------------------------------------------
@pytest.mark.parametrize("limits", [
    {"memory_limit": -1}, {"memory_limit": -(1 << 40)}, {"pids_limit": -1},
    {"pids_limit": -(1 << 62)}, {"cpus": -0.5}, {"cpus": -1e9},
], ids=lambda d: "{}={}".format(*next(iter(d.items()))))
def test_invalid_limits_are_invalid_argument(hawserd, api, busybox_rootfs, limits):
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="limited", config=config("true", **limits), rootfs=str(busybox_rootfs)))
    assert got == grpc.StatusCode.INVALID_ARGUMENT, (got, details)
    assert next(iter(limits)) in details and "negative" in details
    assert hawserd.records() == []
    assert not os.listdir(hawserd.state / "bundles") if (hawserd.state / "bundles").exists() \
        else True


@pytest.mark.parametrize("request_kw,words", [
    ({"name": "bad name!"}, "invalid name"),
    ({"name": "-leading-dash"}, "invalid name"),
    ({"name": "x" * 129}, "invalid name"),
    ({"id": "../../escape"}, "invalid name"),
    ({"args": []}, "no command"),
    ({"cwd": "relative/dir"}, "not an absolute path"),
    ({"user": "nosuchuser"}, "nosuchuser"),
    ({"rootfs": "relative/rootfs"}, "absolute path"),
    ({"rootfs": ""}, "absolute path"),
], ids=["name-chars", "name-dash", "name-long", "id-path", "no-args", "cwd", "user",
        "rootfs-relative", "rootfs-empty"])
def test_invalid_requests_are_invalid_argument(hawserd, api, busybox_rootfs, request_kw, words):
    kw = dict(request_kw)
    args = kw.pop("args", ["true"])
    cfg = config(*args, **{k: kw.pop(k) for k in ("cwd", "user") if k in kw})
    kw.setdefault("rootfs", str(busybox_rootfs))
    got, details = code(api.c.Create, cpb.CreateContainerRequest(config=cfg, **kw))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and words in details, (got, details)
    assert hawserd.records() == []
    assert not (hawserd.state.parent / "escape").exists()


def test_a_rootfs_that_does_not_exist(hawserd, api, busybox_rootfs, tmp_path):
    missing = tmp_path / "missing"
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="nofs", config=config("true"), rootfs=str(missing)))
    assert got == grpc.StatusCode.INVALID_ARGUMENT
    assert details == f"rootfs {missing}: no such directory"
    a_file = tmp_path / "file"
    a_file.write_text("not a directory")
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="nofs", config=config("true"), rootfs=str(a_file)))
    assert got == grpc.StatusCode.INVALID_ARGUMENT and "no such directory" in details
    assert hawserd.records() == []
    # a rootfs that vanishes between create and start
    vanishing = tmp_path / "vanishing"
    vanishing.mkdir()
    cid = api.c.Create(cpb.CreateContainerRequest(name="vanish", config=config("true"),
                                                  rootfs=str(vanishing))).container.id
    vanishing.rmdir()
    got, details = code(api.t.Create, tpb.CreateTaskRequest(container_id="vanish"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION
    assert details == f"rootfs {vanishing}: no such directory"
    assert no_leftovers(hawserd, cid), leftovers(hawserd, cid)
    got, details = code(api.t.Start, tpb.StartRequest(container_id="vanish"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "no task" in details
    # a rootfs without the command: the runtime's own error reaches the client
    empty = tmp_path / "empty"
    empty.mkdir()
    eid = api.c.Create(cpb.CreateContainerRequest(name="empty", config=config("/bin/sh"),
                                                  rootfs=str(empty))).container.id
    got, details = code(api.t.Create, tpb.CreateTaskRequest(container_id="empty"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION, (got, details)
    assert "/bin/sh" in details and "no such file" in details
    assert no_leftovers(hawserd, eid), leftovers(hawserd, eid)
    for ref in ("vanish", "empty"):
        api.c.Delete(cpb.DeleteContainerRequest(id=ref))
    assert hawserd.records() == []
    assert no_leftovers(hawserd, cid) and no_leftovers(hawserd, eid)
    assert not os.listdir(hawserd.state / "bundles")
    still_serving(hawserd, api, busybox_rootfs)


def test_a_runtime_binary_that_is_missing_or_fails(hawserd, api, busybox_rootfs, tmp_path):
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="nort", config=config("true"), rootfs=str(busybox_rootfs),
        runtime="/nonexistent/runc"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION
    assert "/nonexistent/runc" in details and "no such executable" in details
    got, details = code(api.c.Create, cpb.CreateContainerRequest(
        name="nort", config=config("true"), rootfs=str(busybox_rootfs),
        runtime="no-such-runtime-binary"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "no-such-runtime-binary" in details
    assert hawserd.records() == []
    # the binary goes away after the container was created
    rt = tmp_path / "rt"
    rt.write_text("#!/bin/sh\nexit 1\n")
    rt.chmod(0o755)
    cid = api.c.Create(cpb.CreateContainerRequest(name="lost", config=config("true"),
                                                  rootfs=str(busybox_rootfs),
                                                  runtime=str(rt))).container.id
    rt.unlink()
    got, details = code(api.t.Create, tpb.CreateTaskRequest(container_id="lost"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION
    assert str(rt) in details and "no such executable" in details
    assert no_leftovers(hawserd, cid), leftovers(hawserd, cid)
    # a runtime that is there but fails: the shim started for the task goes away again
    rt.write_text("#!/bin/sh\necho 'broken runtime' >&2\nexit 1\n")
    rt.chmod(0o755)
    bid = api.c.Create(cpb.CreateContainerRequest(name="broken", config=config("true"),
                                                  rootfs=str(busybox_rootfs),
                                                  runtime=str(rt))).container.id
    got, details = code(api.t.Create, tpb.CreateTaskRequest(container_id="broken"))
    assert got == grpc.StatusCode.FAILED_PRECONDITION and "broken" in details
    assert no_leftovers(hawserd, bid), leftovers(hawserd, bid)
    assert [r["shim_pid"] for r in hawserd.records() if r["id"] == bid] == [0]
    for ref in ("lost", "broken"):
        api.c.Delete(cpb.DeleteContainerRequest(id=ref))
    assert hawserd.records() == []
    assert no_leftovers(hawserd, cid) and no_leftovers(hawserd, bid)
    still_serving(hawserd, api, busybox_rootfs)

