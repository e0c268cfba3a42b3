"""hawser.v1.Version and Health."""
import os

from supervisor import VERSION
from supervisor.api import version_pb2 as vpb
from supervisor.api import version_pb2_grpc as vgrpc
from supervisor.tasks.supervisor import Supervisor


class VersionService(vgrpc.VersionServicer):
    def __init__(self, sup: Supervisor):
        self.sup = sup

    def Version(self, req, context):
        return vpb.VersionResponse(version=VERSION, api_version="hawser.v1",
                                   default_runtime=self.sup.default_runtime, pid=os.getpid())


class HealthService(vgrpc.HealthServicer):
    def Check(self, req, context):
        return vpb.HealthResponse(serving=True)

