"""What every hawser.v1 servicer shares: Timestamps from epoch seconds, and ApiError as the
call's status."""
import grpc
from google.protobuf import timestamp_pb2

from supervisor.errors import ApiError


def ts(seconds: float) -> timestamp_pb2.Timestamp:
    t = timestamp_pb2.Timestamp()
    if seconds:
        t.FromNanoseconds(int(seconds * 1e9))
    return t


def abort(context, e: ApiError):
    context.abort(getattr(grpc.StatusCode, e.code), e.message)


def api_errors(method):
    """A unary method whose ApiError becomes its status."""
    def wrapper(self, request, context):
        try:
            return method(self, request, context)
        except ApiError as e:
            abort(context, e)
    wrapper.__name__ = method.__name__
    return wrapper
