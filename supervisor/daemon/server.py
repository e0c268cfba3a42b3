"""hawserd's gRPC server: every hawser.v1 service registered over one Supervisor."""
import grpc

from supervisor.api import containers_pb2_grpc as cgrpc
from supervisor.api import events_pb2_grpc as egrpc
from supervisor.api import images_pb2_grpc as igrpc
from supervisor.api import networks_pb2_grpc as ngrpc
from supervisor.api import tasks_pb2_grpc as tgrpc
from supervisor.api import version_pb2_grpc as vgrpc
from supervisor.containers.service import ContainersService
from supervisor.events.service import EventsService
from supervisor.images.service import ImagesService
from supervisor.tasks.service import TasksService
from supervisor.tasks.supervisor import Supervisor
from supervisor.version.service import HealthService, VersionService
from supervisor.volumes.service import VolumesService


def register(server: grpc.Server, sup: Supervisor) -> None:
    cgrpc.add_ContainersServicer_to_server(ContainersService(sup), server)
    tgrpc.add_TasksServicer_to_server(TasksService(sup), server)
    egrpc.add_EventsServicer_to_server(EventsService(sup), server)
    igrpc.add_ImagesServicer_to_server(ImagesService(sup), server)
    ngrpc.add_NetworksServicer_to_server(_lazy(ngrpc.NetworksServicer, lambda: __import__(
        "supervisor.networks.service", fromlist=["NetworksService"]).NetworksService(sup)), server)
    ngrpc.add_VolumesServicer_to_server(VolumesService(sup), server)
    vgrpc.add_VersionServicer_to_server(VersionService(sup), server)
    vgrpc.add_HealthServicer_to_server(HealthService(), server)


def _lazy(base: type, make):
    """A servicer of base's methods that makes the real one (make()) at its first call: the
    Networks service imports the network manager (~11 MiB) only when a client uses it."""
    import threading
    lock, made = threading.Lock(), []

    def target():
        with lock:
            if not made:
                made.append(make())
            return made[0]

    def forward(name):
        return lambda self, request, context: getattr(target(), name)(request, context)

    methods = {n: forward(n) for n, v in vars(base).items()
               if callable(v) and not n.startswith("_")}
    return type(f"Lazy{base.__name__}", (base,), methods)()
