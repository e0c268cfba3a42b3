"""ttrpc, containerd's lightweight RPC (github.com/containerd/ttrpc), over unix sockets.

A frame is a 10-byte header (uint32 BE length, uint32 BE stream id, uint8 type, uint8 flags)
and at most 4 MiB of data. A call is one request frame (ttrpc.Request: service, method, payload)
on an odd stream id chosen by the client, answered by one response frame on the same stream
(ttrpc.Response: a google.rpc.Status on failure, else the payload).

Server: a thread per connection reads frames; each request runs in a thread of its own, so a
blocking call (Task.Wait) holds up nothing else. A frame that is truncated, larger than 4 MiB or
not a decodable request closes that connection only. Client: calls from any number of threads on
one connection; a reader thread hands each response to its caller.

Built on _socket and _thread (shim.threads) alone, no grpc, no asyncio: one shim per container must
stay small.
"""
import _socket
import struct

from shim import threads, wire

HEADER = struct.Struct(">IIBB")
MAX_DATA = 4 << 20
REQUEST, RESPONSE, DATA = 1, 2, 3

# gRPC status codes (google.golang.org/grpc/codes), as containerd's errdefs reads them
OK, CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND = 0, 1, 2, 3, 4, 5
ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION = 6, 7, 8, 9
ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE = 10, 11, 12, 13, 14

Request = wire.message("ttrpc.Request")
Response = wire.message("ttrpc.Response")
Status = wire.message("ttrpc.Status")
KeyValue = wire.message("ttrpc.KeyValue")


class Error(Exception):
    """A call that failed with a gRPC status: raised by handlers, raised to callers."""

    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code, self.message = code, message

    def __str__(self):
        return self.message


class FrameError(Exception):
    """The peer sent something that is not ttrpc: the connection is dropped."""


def unix_path(address: str) -> str:
    """"unix:///run/x.sock" or "/run/x.sock" -> the path; a bare name is an abstract socket."""
    if address.startswith("unix://"):
        return address[len("unix://"):]
    return address if address.startswith("/") else "\0" + address


def _recv_exact(sock, n: int, start_of_frame: bool = False):
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = sock.recv_into(view[got:])
        if k == 0:
            if got == 0 and start_of_frame:
                return None
            raise FrameError(f"truncated frame ({got} of {n} bytes)")
        got += k
    return bytes(buf)


def read_frame(sock):
    """(stream id, type, flags, data), or None at a clean end of stream."""
    header = _recv_exact(sock, HEADER.size, start_of_frame=True)
    if header is None:
        return None
    length, stream_id, kind, flags = HEADER.unpack(header)
    if length > MAX_DATA:
        raise FrameError(f"frame of {length} bytes exceeds the maximum of {MAX_DATA}")
    return stream_id, kind, flags, _recv_exact(sock, length)


def write_frame(sock, lock, stream_id: int, kind: int, data: bytes) -> None:
    if len(data) > MAX_DATA:
        raise Error(RESOURCE_EXHAUSTED, f"message of {len(data)} bytes exceeds the maximum")
    with lock:
        sock.sendall(HEADER.pack(len(data), stream_id, kind, 0) + data)


class Server:
    """Serves registered services on a listening unix socket.

    handlers: "package.Service" -> object whose methods are named as the service's RPCs and take
    the decoded request (and return the response message); the layouts come from protos/."""

    def __init__(self, log=None):
        self.methods = {}
        self.services = set()
        self.log = log or (lambda level, msg: None)
        self.listener = None
        self.conns = set()
        self.lock = threads.Lock()

    def register(self, service: str, impl) -> None:
        from shim.proto.schema import SERVICES
        for method, (req, resp) in SERVICES[service].items():
            handler = getattr(impl, method, None)    # a missing one answers Unimplemented
            if handler is not None:
                self.methods[(service, method)] = (wire.message(req), handler)
        self.services.add(service)

    def serve(self, listener) -> None:
        """Accept connections until shutdown(); each gets a reader thread."""
        self.listener = listener
        while True:
            try:
                fd, _ = listener._accept()
            except OSError:
                if self.listener is None:
                    return
                raise
            conn = _socket.socket(fileno=fd)
            with self.lock:
                self.conns.add(conn)
            threads.spawn(self._connection, conn)

    def shutdown(self) -> None:
        listener, self.listener = self.listener, None
        if listener is not None:
            try:
                listener.shutdown(_socket.SHUT_RDWR)    # wakes the accept() in serve()
            except OSError:
                pass
            listener.close()
        with self.lock:
            for conn in self.conns:
                try:
                    conn.shutdown(_socket.SHUT_RDWR)
                except OSError:
                    pass

    def _connection(self, conn) -> None:
        wlock = threads.Lock()
        try:
            while True:
                frame = read_frame(conn)
                if frame is None:
                    break
                stream_id, kind, _, data = frame
                if kind != REQUEST:
                    raise FrameError(f"unexpected frame type {kind} on stream {stream_id}")
                try:
                    req = Request.decode(data)
                except wire.DecodeError as e:
                    raise FrameError(f"undecodable request: {e}") from None
                if stream_id % 2 == 0:    # as ttrpc's server: client streams are odd
                    self._reply(conn, wlock, stream_id, Error(
                        INVALID_ARGUMENT, "StreamID must be odd for client initiated streams"))
                    continue
                threads.spawn(self._call, conn, wlock, stream_id, req)
        except FrameError as e:
            self.log("warn", f"ttrpc: closing connection: {e}")
        except OSError:
            pass
        finally:
            with self.lock:
                self.conns.discard(conn)
            conn.close()

    def _call(self, conn, wlock, stream_id: int, req) -> None:
        try:
            entry = self.methods.get((req.service, req.method))
            if entry is None:
                raise Error(UNIMPLEMENTED, f"method {req.method}" if req.service in self.services
                            else f"service {req.service}")
            req_cls, handler = entry
            try:
                arg = req_cls.decode(req.payload)
            except wire.DecodeError as e:
                raise Error(INVALID_ARGUMENT, f"ttrpc: error unmarshalling payload: {e}") from None
            result = handler(arg).encode()
        except Error as e:
            result = e
        except Exception as e:    # a bug in a handler answers this call, not the whole shim
            self.log("error", f"{req.service}/{req.method}: {type(e).__name__}: {e}")
            result = Error(UNKNOWN, str(e) or type(e).__name__)
        self._reply(conn, wlock, stream_id, result)

    def _reply(self, conn, wlock, stream_id: int, result) -> None:
        if isinstance(result, Error):
            resp = Response(status=Status(code=result.code, message=result.message))
        else:
            resp = Response(payload=result)
        try:
            write_frame(conn, wlock, stream_id, RESPONSE, resp.encode())
        except Error as e:
            write_frame(conn, wlock, stream_id, RESPONSE, Response(
                status=Status(code=e.code, message=e.message)).encode())
        except OSError:
            pass    # the client went away; its reader side ends the connection


class Client:
    """A ttrpc client on one connection; call() is thread-safe."""

    def __init__(self, address: str, timeout: float | None = 10.0):
        self.sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        try:
            self.sock.connect(unix_path(address))
        except OSError:
            self.sock.close()
            raise
        self.sock.settimeout(None)
        self.wlock = threads.Lock()
        self.lock = threads.Lock()
        self.next_id = 1
        self.pending: dict[int, list] = {}
        self.closed = None
        threads.spawn(self._reader)

    def call(self, service: str, method: str, request, response_cls, timeout: float | None = None,
             metadata: dict | None = None):
        """Send request, wait for the answer: a response_cls message, or Error raised."""
        with self.lock:
            if self.closed:
                raise Error(UNAVAILABLE, f"ttrpc: closed: {self.closed}")
            stream_id, self.next_id = self.next_id, self.next_id + 2
            slot = [threads.Event(), None]
            self.pending[stream_id] = slot
        req = Request(service=service, method=method, payload=request.encode(),
                      timeout_nano=int(timeout * 1e9) if timeout else 0,
                      metadata=[KeyValue(key=k, value=v) for k, v in (metadata or {}).items()])
        try:
            write_frame(self.sock, self.wlock, stream_id, REQUEST, req.encode())
        except OSError as e:
            self._fail(f"send: {e}")
        if not slot[0].wait(timeout):
            with self.lock:
                self.pending.pop(stream_id, None)
            raise Error(DEADLINE_EXCEEDED, f"{service}/{method}: no answer within {timeout}s")
        resp = slot[1]
        if isinstance(resp, Error):
            raise resp
        if resp.status is not None and resp.status.code != OK:
            raise Error(resp.status.code, resp.status.message)
        return response_cls.decode(resp.payload)

    def _reader(self) -> None:
        why = "connection closed"
        try:
            while True:
                frame = read_frame(self.sock)
                if frame is None:
                    break
                stream_id, kind, _, data = frame
                if kind != RESPONSE:
                    continue
                with self.lock:
                    slot = self.pending.pop(stream_id, None)
                if slot is not None:
                    try:
                        slot[1] = Response.decode(data)
                    except wire.DecodeError as e:
                        slot[1] = Error(INTERNAL, f"ttrpc: bad response: {e}")
                    slot[0].set()
        except (OSError, FrameError) as e:
            why = str(e)
        self._fail(why)

    def _fail(self, why: str) -> None:
        with self.lock:
            self.closed = self.closed or why
            pending, self.pending = self.pending, {}
        for slot in pending.values():
            slot[1] = Error(UNAVAILABLE, f"ttrpc: closed: {why}")
            slot[0].set()

    def close(self) -> None:
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
