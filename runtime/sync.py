"""Parent <-> container-init messages over a SOCK_SEQPACKET socketpair: one JSON object per packet,
so no framing is needed and a dead peer reads as EOF. `_socket` is used directly because the
`socket` module imports enum (~4 ms)."""
import _socket

from runtime import jsonlite
from runtime.errors import HawserError

MAX_MESSAGE = 1 << 16


class Channel:
    def __init__(self, sock):
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple["Channel", "Channel"]:
        a, b = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_SEQPACKET | _socket.SOCK_CLOEXEC)
        return cls(a), cls(b)

    def send(self, kind: str, **fields) -> None:
        fields["kind"] = kind
        self.sock.send(jsonlite.compact(fields).encode())

    def recv(self) -> dict:
        data = self.sock.recv(MAX_MESSAGE)
        if not data:
            raise EOFError("peer closed the sync channel")
        return jsonlite.loads(data)

    def expect(self, kind: str) -> dict:
        """The next message, which must be `kind`; an `error` message from the peer is raised."""
        msg = self.recv()
        if msg["kind"] == "error":
            raise HawserError(msg["message"])
        if msg["kind"] != kind:
            raise HawserError(f"internal: expected {kind!r} from the container init, got {msg['kind']!r}")
        return msg

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
