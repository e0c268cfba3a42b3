"""The OCI distribution API, as containerd's remotes/docker: a client with docker's auth
(client.py, auth.py), pull.py (a registry's image into the content store) and push.py (the
other way). RegistryError lives here so that every module raises the same one."""

# A registry's error codes (distribution's errcode) -> the gRPC status hawserd answers with.
_GRPC_BY_CODE = {
    "MANIFEST_UNKNOWN": "NOT_FOUND", "NAME_UNKNOWN": "NOT_FOUND", "BLOB_UNKNOWN": "NOT_FOUND",
    "BLOB_UPLOAD_UNKNOWN": "NOT_FOUND", "UNAUTHORIZED": "UNAUTHENTICATED",
    "DENIED": "PERMISSION_DENIED", "TOOMANYREQUESTS": "RESOURCE_EXHAUSTED",
    "UNSUPPORTED": "UNIMPLEMENTED", "DIGEST_INVALID": "INVALID_ARGUMENT",
    "MANIFEST_INVALID": "INVALID_ARGUMENT", "NAME_INVALID": "INVALID_ARGUMENT",
    "TAG_INVALID": "INVALID_ARGUMENT", "SIZE_INVALID": "INVALID_ARGUMENT",
    "MANIFEST_BLOB_UNKNOWN": "FAILED_PRECONDITION", "UNAVAILABLE": "UNAVAILABLE",
}
_GRPC_BY_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                   404: "NOT_FOUND", 405: "UNIMPLEMENTED", 409: "ALREADY_EXISTS",
                   416: "OUT_OF_RANGE", 429: "RESOURCE_EXHAUSTED"}


class RegistryError(Exception):
    """What a registry (or the way to it) refused. `status` is the HTTP status (0: no answer),
    `code` the registry's error code ("MANIFEST_UNKNOWN"), `message` its words; str() is
    docker's "manifest unknown: manifest unknown". `grpc_code` is the status hawserd gives."""

    def __init__(self, status: int, code: str, message: str, grpc_code: str | None = None):
        self.status, self.code, self.message = status, code or "", message
        self._grpc = grpc_code
        described = self.code.lower().replace("_", " ")
        super().__init__(f"{described}: {message}" if described and message
                         else message or described)

    @property
    def grpc_code(self) -> str:
        if self._grpc:
            return self._grpc
        if self.code in _GRPC_BY_CODE:
            return _GRPC_BY_CODE[self.code]
        if self.status == 0 or self.status >= 500:
            return "UNAVAILABLE"
        return _GRPC_BY_STATUS.get(self.status, "UNKNOWN")
