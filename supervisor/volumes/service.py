"""hawser.v1.Volumes over the Supervisor's VolumeManager: docker's `volume` verbs. Which
containers have a volume is the containers' business (sandbox.volume_users); this service only
asks."""
from google.protobuf import empty_pb2

from supervisor.api import networks_pb2 as npb
from supervisor.api import networks_pb2_grpc as ngrpc
from supervisor import filters
from supervisor.errors import ApiError
from supervisor.grpcutil import api_errors, ts
from supervisor.tasks.sandbox import volume_users


def volume_msg(vol: dict, users: list) -> npb.Volume:
    return npb.Volume(name=vol["name"], driver=vol.get("driver") or "local",
                      mountpoint=vol["mountpoint"], created=ts(vol.get("created") or 0),
                      labels=vol.get("labels") or {}, containers=[cid for cid, _ in users],
                      anonymous=bool(vol.get("anonymous")))


def matches(vol: dict, users: list, flt: str) -> bool:
    key, value = filters.split(flt)
    if key == "name":
        return value in vol["name"]        # docker's name filter matches a part
    if key == "dangling":
        if value not in ("true", "false", "1", "0"):
            raise ApiError("INVALID_ARGUMENT", f"invalid filter 'dangling={value}'")
        return (not users) == (value in ("true", "1"))
    if key == "driver":
        return (vol.get("driver") or "local") == value
    if key == "label":
        return filters.label_matches(vol.get("labels") or {}, value)
    raise ApiError("INVALID_ARGUMENT",
                   f"invalid filter {key!r}: name, dangling, driver or label")


class VolumesService(ngrpc.VolumesServicer):
    def __init__(self, sup):
        self.sup = sup

    @api_errors
    def Create(self, req, context):
        vol = self.sup.volumes.create(req.name, dict(req.labels))
        return npb.VolumeResponse(volume=volume_msg(vol, volume_users(self.sup).get(vol["name"],
                                                                                     [])))

    @api_errors
    def List(self, req, context):
        users = volume_users(self.sup)
        vols = self.sup.volumes.list()
        return npb.ListVolumesResponse(volumes=[
            volume_msg(v, users.get(v["name"], [])) for v in vols
            if all(matches(v, users.get(v["name"], []), f) for f in req.filters)])

    @api_errors
    def Get(self, req, context):
        vol = self.sup.volumes.get(req.name)
        return npb.VolumeResponse(volume=volume_msg(vol, volume_users(self.sup).get(req.name,
                                                                                     [])))

    @api_errors
    def Delete(self, req, context):
        """docker's: refused while any container has it, running or not; force only makes a
        missing volume no error."""
        try:
            users = volume_users(self.sup).get(req.name, [])
            self.sup.volumes.delete(req.name, sorted(cid for cid, _ in users))
        except ApiError as e:
            if not (req.force and e.code == "NOT_FOUND"):
                raise
        return empty_pb2.Empty()

    @api_errors
    def Prune(self, req, context):
        users = volume_users(self.sup)
        in_use = set(users)
        for v in self.sup.volumes.list():     # filters narrow what may go
            if not all(matches(v, users.get(v["name"], []), f) for f in req.filters):
                in_use.add(v["name"])
        deleted, reclaimed = self.sup.volumes.prune(in_use, req.all)
        return npb.PruneVolumesResponse(deleted=deleted, space_reclaimed=reclaimed)
