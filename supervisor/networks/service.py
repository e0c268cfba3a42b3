"""hawser.v1.Networks over the Supervisor's NetworkManager: docker's networks, the predefined
ones (bridge, host, none) listed as docker lists them."""
from google.protobuf import empty_pb2

from supervisor.api import containers_pb2 as cpb
from supervisor.api import networks_pb2 as npb
from supervisor.api import networks_pb2_grpc as ngrpc
from supervisor import filters
from supervisor.errors import ApiError
from supervisor.grpcutil import api_errors, ts
from supervisor.networks.manager import DEFAULT

# docker's: the modes host and none are networks of their own in `network ls`
MODES = ({"id": "host", "name": "host", "driver": "host"},
         {"id": "none", "name": "none", "driver": "null"})


def network_msg(sup, net: dict) -> npb.Network:
    eps = []
    if net.get("subnet"):
        names = {r["id"]: r["name"] for r in sup.store.all()}
        eps = [npb.NetworkEndpoint(container_id=ep["container_id"],
                                   container_name=names.get(ep["container_id"], ""),
                                   endpoint=cpb.Endpoint(**sup.networks.endpoint_of(net, ep)))
               for ep in sup.networks.store.endpoints(network_id=net["id"])]
    return npb.Network(id=net["id"], name=net["name"], driver=net.get("driver") or "bridge",
                       subnet=net.get("subnet", ""), gateway=net.get("gateway", ""),
                       bridge=net.get("bridge", ""), internal=bool(net.get("internal")),
                       labels=net.get("labels") or {}, created=ts(net.get("created") or 0),
                       endpoints=eps)


def matches(net: dict, flt: str) -> bool:
    key, value = filters.split(flt)
    if key == "name":
        return value in net["name"]            # docker's name filter matches a part
    if key == "id":
        return net["id"].startswith(value)
    if key == "driver":
        return (net.get("driver") or "bridge") == value
    if key == "label":
        return filters.label_matches(net.get("labels") or {}, value)
    raise ApiError("INVALID_ARGUMENT", f"invalid filter {key!r}: name, id, driver or label")


class NetworksService(ngrpc.NetworksServicer):
    def __init__(self, sup):
        self.sup = sup

    @api_errors
    def Create(self, req, context):
        net = self.sup.networks.create(req.name, req.subnet, req.gateway, req.internal,
                                       dict(req.labels))
        return npb.NetworkResponse(network=network_msg(self.sup, net))

    @api_errors
    def List(self, req, context):
        nets = [self.sup.networks.default()] + [
            n for n in self.sup.networks.store.list() if n["name"] != DEFAULT] + list(MODES)
        return npb.ListNetworksResponse(networks=[
            network_msg(self.sup, n) for n in nets if all(matches(n, f) for f in req.filters)])

    def _get(self, ref: str) -> dict:
        for mode in MODES:
            if ref == mode["name"]:
                return mode
        return self.sup.networks.default() if ref == DEFAULT else self.sup.networks.get(ref)

    @api_errors
    def Get(self, req, context):
        return npb.NetworkResponse(network=network_msg(self.sup, self._get(req.ref)))

    @api_errors
    def Delete(self, req, context):
        self.sup.networks.delete(req.ref)
        return empty_pb2.Empty()

    @api_errors
    def Connect(self, req, context):
        self.sup.connect(req.container, req.network, list(req.aliases), req.ip_address)
        return empty_pb2.Empty()

    @api_errors
    def Disconnect(self, req, context):
        self.sup.disconnect(req.container, req.network, req.force)
        return empty_pb2.Empty()
