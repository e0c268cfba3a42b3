"""The error every hawserd service raises: a gRPC status code name and a message
(supervisor/grpcutil.py turns it into the call's status)."""


class ApiError(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message
