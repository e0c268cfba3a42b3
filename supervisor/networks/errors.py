"""The networks package's errors. Each is an ApiError with its gRPC code, so a service method
wrapped by grpcutil.api_errors reports it as the call's status with no translation."""
from supervisor.errors import ApiError


class NetworkError(ApiError):
    code = "INTERNAL"

    def __init__(self, message: str):
        super().__init__(self.code, message)


class NotFound(NetworkError):
    code = "NOT_FOUND"


class AlreadyExists(NetworkError):
    code = "ALREADY_EXISTS"


class Exhausted(NetworkError):
    code = "RESOURCE_EXHAUSTED"


class InUse(NetworkError):
    code = "FAILED_PRECONDITION"


class InvalidConfig(NetworkError):
    """A subnet, gateway, address, interface name or port binding that cannot be used."""
    code = "INVALID_ARGUMENT"


class PortAllocated(NetworkError):
    """A host port already taken (docker's 'port is already allocated')."""
    code = "FAILED_PRECONDITION"


class KernelError(NetworkError):
    """netlink or nftables refused a change (the message says which and why)."""
    code = "INTERNAL"
