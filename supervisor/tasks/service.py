"""hawser.v1.Tasks over the Supervisor: a container's process, its execs, its stdio."""
import threading

import grpc
from google.protobuf import empty_pb2

from supervisor.api import tasks_pb2 as tpb
from supervisor.api import tasks_pb2_grpc as tgrpc
from supervisor.containers.service import STATUS
from supervisor.errors import ApiError
from supervisor.grpcutil import abort, api_errors, ts
from supervisor.tasks import limits
from supervisor.tasks.attach import Attachment
from supervisor.tasks.supervisor import Supervisor


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
            abort(context, e)
        try:
            att.handle(first.stdin, first.close_stdin, first.width, first.height)
            threading.Thread(target=self._attach_input, args=(att, requests), daemon=True,
                             name=f"attach-{att.cid[:12]}").start()
            yield tpb.AttachResponse()
            for stream, data in att.output(context.is_active):
                yield tpb.AttachResponse(stream=stream, data=data)
        except ApiError as e:
            abort(context, e)
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

