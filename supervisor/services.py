"""The hawser.v1 gRPC services over the Supervisor: message conversion and status codes."""
import queue
import threading

import grpc
from google.protobuf import empty_pb2, timestamp_pb2

from supervisor import VERSION, limits, logs
from supervisor.attach import Attachment
from supervisor.api import containers_pb2 as cpb
from supervisor.api import containers_pb2_grpc as cgrpc
from supervisor.api import events_pb2 as epb
from supervisor.api import events_pb2_grpc as egrpc
from supervisor.api import tasks_pb2 as tpb
from supervisor.api import tasks_pb2_grpc as tgrpc
from supervisor.api import version_pb2 as vpb
from supervisor.api import version_pb2_grpc as vgrpc
from supervisor.supervisor import ApiError, Supervisor

STATUS = {"created": cpb.CREATED, "running": cpb.RUNNING, "stopped": cpb.STOPPED,
          "paused": cpb.PAUSED}
CONFIG_FIELDS = ("args", "env", "cwd", "user", "hostname", "terminal", "memory_limit",
                 "pids_limit", "cpus", "read_only", "stop_signal", "restart_policy", "open_stdin")


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    if seconds:
        t.FromNanoseconds(int(seconds * 1e9))
    return t


def config_dict(c: cpb.ContainerConfig) -> dict:
    d = {f: getattr(c, f) for f in CONFIG_FIELDS}
    d["args"], d["env"] = list(c.args), list(c.env)
    d["mounts"] = [{"source": m.source, "destination": m.destination, "read_only": m.read_only}
                   for m in c.mounts]
    return d


def container_msg(rec: dict, sup: Supervisor) -> cpb.Container:
    conf = rec["config"]
    config = cpb.ContainerConfig(**{f: conf[f] for f in CONFIG_FIELDS if f in conf},
                                 mounts=[cpb.Mount(**m) for m in conf.get("mounts") or ()])
    return cpb.Container(id=rec["id"], name=rec["name"], config=config, rootfs=rec["rootfs"],
                         runtime=rec["runtime"], labels=rec["labels"],
                         created_at=ts(rec["created"]), status=STATUS[rec["status"]],
                         pid=rec["pid"] if rec["status"] in ("running", "paused", "created")
                         else 0, exit_status=rec["exit_status"], exited_at=ts(rec["exited_at"]),
                         bundle=rec["bundle"], log_path=sup.log_path(rec["id"]),
                         restart_count=rec["restart_count"])


def entry_msg(e: dict) -> cpb.LogEntry:
    return cpb.LogEntry(stream=e.get("stream", "stdout"), log=e.get("log", ""),
                        time=e.get("time", ""))


def api_errors(method):
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.code), e.message)
    wrapper.__name__ = method.__name__
    return wrapper


def list_filter(rec: dict, flt: str) -> bool:
    neg = "!=" in flt
    key, _, value = flt.partition("!=" if neg else "==")
    if key.startswith("labels."):
        have = rec["labels"].get(key[7:])
    else:
        have = str(rec.get(key.strip(), ""))
    return (have == value) != neg


class ContainersService(cgrpc.ContainersServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup

    @api_errors
    def Create(self, req, context):
        rec = self.sup.create_container(req.id, req.name, config_dict(req.config), req.rootfs,
                                        req.runtime, dict(req.labels))
        return cpb.CreateContainerResponse(container=container_msg(rec, self.sup))

    @api_errors
    def Get(self, req, context):
        return cpb.GetContainerResponse(container=container_msg(self.sup.resolve(req.id),
                                                                self.sup))

    @api_errors
    def List(self, req, context):
        for f in req.filters:
            if "==" not in f and "!=" not in f:
                raise ApiError("INVALID_ARGUMENT", f"filter {f!r}: use field==value or "
                                                   "field!=value")
        recs = [r for r in self.sup.store.all()
                if (req.all or r["status"] in ("running", "paused"))
                and all(list_filter(r, f) for f in req.filters)]
        return cpb.ListContainersResponse(containers=[container_msg(r, self.sup) for r in recs])

    @api_errors
    def UpdateLabels(self, req, context):
        rec = self.sup.update_labels(req.id, dict(req.set), list(req.remove))
        return cpb.UpdateLabelsResponse(container=container_msg(rec, self.sup))

    @api_errors
    def Delete(self, req, context):
        self.sup.delete_container(req.id, req.force)
        return empty_pb2.Empty()

    def Logs(self, req, context):
        try:
            rec = self.sup.resolve(req.id)
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.code), e.message)
        follower = logs.Follower(self.sup.log_path(rec["id"]), req.tail)
        try:
            for e in follower.initial:
                yield entry_msg(e)
            while req.follow and context.is_active():
                # the status first: what the container wrote before it stopped is in the log
                # by then, so the read after it is the last one needed
                cur = self.sup.store.get(rec["id"])
                done = cur is None or cur["status"] == "stopped" or \
                    (cur["status"] == "created" and rec["id"] not in self.sup.tasks)
                got = follower.poll()
                for e in got:
                    yield entry_msg(e)
                if done:
                    break
                if not got:
                    with self.sup.changed:
                        self.sup.changed.wait(0.05)
        finally:
            follower.close()


class TasksService(tgrpc.TasksServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup

    @api_errors
    def Create(self, req, context):
        rec = self.sup.create_task(req.container_id)
        return tpb.CreateTaskResponse(container_id=rec["id"], pid=rec["pid"])

    @api_errors
    def Start(self, req, context):
        if req.exec_id:
            return tpb.StartResponse(pid=self.sup.shim_call(req.container_id, "Start",
                                                            exec_id=req.exec_id).pid)
        return tpb.StartResponse(pid=self.sup.start_task(req.container_id)["pid"])

    @api_errors
    def Kill(self, req, context):
        self.sup.kill(req.container_id, req.signal or 15, req.all, req.exec_id)
        return empty_pb2.Empty()

    @api_errors
    def Stop(self, req, context):
        self.sup.stop(req.container_id, req.timeout if req.timeout >= 0 else 10.0)
        return empty_pb2.Empty()

    @api_errors
    def Wait(self, req, context):
        if req.exec_id:
            r = self.sup.shim_call(req.container_id, "Wait", exec_id=req.exec_id, timeout=None)
            return tpb.WaitResponse(exit_status=r.exit_status)
        rec = self.sup.wait(req.container_id)
        return tpb.WaitResponse(exit_status=rec["exit_status"], exited_at=ts(rec["exited_at"]))

    @api_errors
    def Delete(self, req, context):
        if req.exec_id:
            r = self.sup.delete_exec(req.container_id, req.exec_id)
            return tpb.DeleteTaskResponse(container_id=req.container_id, pid=r["pid"],
                                          exit_status=r["exit_status"])
        rec = self.sup.delete_task(req.container_id, req.force)
        return tpb.DeleteTaskResponse(container_id=rec["id"], pid=rec["pid"],
                                      exit_status=rec["exit_status"],
                                      exited_at=ts(rec["exited_at"]))

    @api_errors
    def Exec(self, req, context):
        self.sup.exec(req.container_id, req.exec_id, list(req.args), list(req.env), req.cwd,
                      req.user, req.terminal, req.stdin, req.stdout, req.stderr)
        return empty_pb2.Empty()

    @api_errors
    def ResizePty(self, req, context):
        self.sup.shim_call(req.container_id, "ResizePty", exec_id=req.exec_id, width=req.width,
                           height=req.height)
        return empty_pb2.Empty()

    @api_errors
    def CloseIO(self, req, context):
        self.sup.shim_call(req.container_id, "CloseIO", exec_id=req.exec_id, stdin=req.stdin)
        return empty_pb2.Empty()

    @api_errors
    def Pause(self, req, context):
        self.sup.pause(req.container_id)
        return empty_pb2.Empty()

    @api_errors
    def Resume(self, req, context):
        self.sup.resume(req.container_id)
        return empty_pb2.Empty()

    @api_errors
    def Pids(self, req, context):
        r = self.sup.shim_call(req.container_id, "Pids")
        return tpb.PidsResponse(processes=[tpb.ProcessInfo(pid=p.pid) for p in r.processes])

    @api_errors
    def Stats(self, req, context):
        from shim import wire
        r = self.sup.shim_call(req.container_id, "Stats")
        m = wire.message("io.containerd.cgroups.v1.Metrics").decode(r.stats.value)
        out = tpb.StatsResponse()
        if m.memory is not None and m.memory.usage is not None:
            out.memory_usage, out.memory_limit = m.memory.usage.usage, m.memory.usage.limit
        if m.cpu is not None and m.cpu.usage is not None:
            out.cpu_usage_ns = m.cpu.usage.total
        if m.pids is not None:
            out.pids_current, out.pids_limit = m.pids.current, m.pids.limit
        return out

    @api_errors
    def Update(self, req, context):
        limits.update(self.sup, req.container_id, {"memory_limit": req.memory_limit,
                                                   "pids_limit": req.pids_limit,
                                                   "cpus": req.cpus})
        return empty_pb2.Empty()

    def Attach(self, requests, context):
        try:
            first = next(requests)
            att = Attachment(self.sup, first.container_id)
        except StopIteration:
            return
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.code), e.message)
        try:
            att.handle(first.stdin, first.close_stdin, first.width, first.height)
            threading.Thread(target=self._attach_input, args=(att, requests), daemon=True,
                             name=f"attach-{att.cid[:12]}").start()
            yield tpb.AttachResponse()
            for stream, data in att.output(context.is_active):
                yield tpb.AttachResponse(stream=stream, data=data)
        except ApiError as e:
            context.abort(getattr(grpc.StatusCode, e.code), e.message)
        finally:
            att.close()

    @staticmethod
    def _attach_input(att: Attachment, requests) -> None:
        """The client's later requests, until it half-closes or the call ends."""
        try:
            for req in requests:
                att.handle(req.stdin, req.close_stdin, req.width, req.height)
        except (grpc.RpcError, ValueError):
            pass

    @api_errors
    def State(self, req, context):
        rec = self.sup.resolve(req.container_id)
        return tpb.StateResponse(container_id=rec["id"], status=STATUS[rec["status"]],
                                 pid=rec["pid"], exit_status=rec["exit_status"],
                                 exited_at=ts(rec["exited_at"]),
                                 terminal=bool(rec["config"].get("terminal")))


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


class VersionService(vgrpc.VersionServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup

    def Version(self, req, context):
        import os
        return vpb.VersionResponse(version=VERSION, api_version="hawser.v1",
                                   default_runtime=self.sup.default_runtime, pid=os.getpid())


class HealthService(vgrpc.HealthServicer):
    def Check(self, req, context):
        return vpb.HealthResponse(serving=True)


def register(server: grpc.Server, sup: Supervisor) -> None:
    cgrpc.add_ContainersServicer_to_server(ContainersService(sup), server)
    tgrpc.add_TasksServicer_to_server(TasksService(sup), server)
    egrpc.add_EventsServicer_to_server(EventsService(sup), server)
    vgrpc.add_VersionServicer_to_server(VersionService(sup), server)
    vgrpc.add_HealthServicer_to_server(HealthService(), server)
