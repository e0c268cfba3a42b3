"""hawser.v1.Containers over the Supervisor: records as messages, filters, logs."""
from google.protobuf import empty_pb2

from supervisor.api import containers_pb2 as cpb
from supervisor.api import containers_pb2_grpc as cgrpc
from supervisor.containers import copying
from supervisor.errors import ApiError
from supervisor.grpcutil import abort, api_errors, ts
from supervisor.tasks import logs
from supervisor.tasks.supervisor import Supervisor

STATUS = {"created": cpb.CREATED, "running": cpb.RUNNING, "stopped": cpb.STOPPED,
          "paused": cpb.PAUSED}
CONFIG_FIELDS = ("args", "env", "cwd", "user", "hostname", "terminal", "memory_limit",
                 "pids_limit", "cpus", "read_only", "stop_signal", "restart_policy", "open_stdin",
                 "entrypoint", "entrypoint_set", "exposed_ports", "volumes", "network_mode",
                 "network_aliases", "publish_all", "links", "dns", "dns_search", "extra_hosts")
REPEATED = ("args", "env", "entrypoint", "exposed_ports", "volumes", "network_aliases", "links",
            "dns", "dns_search", "extra_hosts")
MOUNT_FIELDS = ("source", "destination", "read_only", "type", "options", "propagation")
PORT_FIELDS = ("host_ip", "host_port", "container_port", "protocol")


def config_dict(c: cpb.ContainerConfig) -> dict:
    d = {f: getattr(c, f) for f in CONFIG_FIELDS}
    for f in REPEATED:
        d[f] = list(d[f])
    d["mounts"] = [{"source": m.source, "destination": m.destination, "read_only": m.read_only,
                    "type": m.type or "bind", "options": list(m.options)} for m in c.mounts]
    d["ports"] = [{f: getattr(p, f) for f in PORT_FIELDS} for p in c.ports]
    return d


def _mount_msg(m: dict) -> cpb.Mount:
    return cpb.Mount(**{f: m[f] for f in MOUNT_FIELDS if f in m})


def container_msg(rec: dict, sup: Supervisor) -> cpb.Container:
    conf = rec["config"]
    config = cpb.ContainerConfig(**{f: conf[f] for f in CONFIG_FIELDS if f in conf},
                                 mounts=[_mount_msg(m) for m in conf.get("mounts") or ()],
                                 ports=[cpb.PortBinding(**p) for p in conf.get("ports") or ()])
    endpoints = [cpb.Endpoint(**ep) for ep in sup.networks.endpoints(rec["id"])] \
        if conf.get("network_mode") not in (None, "", "host", "none") else []
    return cpb.Container(id=rec["id"], name=rec["name"], config=config, rootfs=rec["rootfs"],
                         runtime=rec["runtime"], labels=rec["labels"],
                         created_at=ts(rec["created"]), status=STATUS[rec["status"]],
                         pid=rec["pid"] if rec["status"] in ("running", "paused", "created")
                         else 0, exit_status=rec["exit_status"], exited_at=ts(rec["exited_at"]),
                         bundle=rec["bundle"], log_path=sup.log_path(rec["id"]),
                         restart_count=rec["restart_count"], image=rec["image"],
                         image_id=rec["image_id"], started_at=ts(rec["started_at"]),
                         snapshot=rec["snapshot"], endpoints=endpoints,
                         published=[cpb.PortBinding(**p) for p in conf.get("published") or ()])


def entry_msg(e: dict) -> cpb.LogEntry:
    return cpb.LogEntry(stream=e.get("stream", "stdout"), log=e.get("log", ""),
                        time=e.get("time", ""))


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
                                        req.runtime, dict(req.labels), req.image)
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
        self.sup.delete_container(req.id, req.force, req.volumes)
        return empty_pb2.Empty()

    @api_errors
    def Diff(self, req, context):
        from supervisor.images import commit
        rec = self.sup.resolve(req.id)
        return cpb.DiffResponse(changes=[cpb.Change(kind=k, path=p)
                                         for k, p in commit.changes(self.sup.images, rec)])

    def CopyFrom(self, req, context):
        try:
            pieces = copying.copy_from(self.sup, req.id, req.path)
        except ApiError as e:
            abort(context, e)
        for data in pieces:
            yield cpb.CopyChunk(data=data)

    @api_errors
    def CopyTo(self, requests, context):
        copying.copy_to(self.sup, requests)
        return empty_pb2.Empty()

    def Logs(self, req, context):
        try:
            rec = self.sup.resolve(req.id)
        except ApiError as e:
            abort(context, e)
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



