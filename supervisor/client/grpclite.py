"""A gRPC client for hawserctl that imports neither grpc nor google.protobuf.

Why: those imports were ~70 ms of every hawserctl command (grpc ~50 ms, the generated *_pb2
modules ~20 ms): a third of `hawserctl run --rm true`. hawserd still serves with grpcio;
this speaks the same protocol over its unix socket: HTTP/2 (supervisor/client/h2.py, HPACK in
supervisor/client/hpack.py), gRPC's length-prefixed messages and grpc-status trailers, and the messages of
hawser.v1 encoded by the shim's codec (supervisor/client/messages.py on shim/wire.py).

The interface is the part of grpcio's that hawserctl uses, so that code reads the same:

    channel = grpclite.insecure_channel("unix:///run/hawserd/hawserd.sock")
    containers = grpclite.Stub(channel, "hawser.v1.Containers")
    api = grpclite.package("hawser.v1")
    c = containers.Get(api.GetContainerRequest(id="web")).container     # unary: RpcError
    for entry in containers.Logs(api.LogsRequest(id="web", follow=True)):  # server streaming
    waiter = tasks.Wait.future(api.WaitRequest(container_id=c.id)); waiter.result()
    call = tasks.Attach(request_iterator)   # or tasks.Attach() then call.write(req), done_writing()

Calls may run at once from several threads on one connection (one stream each).
"""
import _socket
import os
import time

from shim import threads, wire
from supervisor import VERSION
from supervisor.client import h2
# hawser.v1's messages, here too for hawserctl: grpclite.package("hawser.v1"), Empty()...
from supervisor.client.messages import Empty, message, message_to_dict, package  # noqa: F401

USER_AGENT = f"hawserctl/{VERSION} grpclite"


class StatusCode:
    """grpc.StatusCode's shape: .name and .value == (number, text)."""
    __slots__ = ("name", "value")

    def __init__(self, number: int, name: str):
        self.name, self.value = name, (number, name.lower().replace("_", " "))

    def __repr__(self):
        return f"StatusCode.{self.name}"


_NAMES = ("OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
          "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
          "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
          "UNAUTHENTICATED")
_CODES = tuple(StatusCode(i, name) for i, name in enumerate(_NAMES))
for _code in _CODES:
    setattr(StatusCode, _code.name, _code)
# gRPC's mapping of the HTTP status of a response without grpc-status, and of RST_STREAM codes
_HTTP_CODES = {400: 13, 401: 16, 403: 7, 404: 12, 429: 14, 502: 14, 503: 14, 504: 14}
_RST_CODES = {h2.REFUSED_STREAM: 14, h2.CANCEL: 1, 11: 8, 12: 7}   # else INTERNAL
# headers of the protocol, not metadata of the application
_RESERVED = {"content-type", "grpc-status", "grpc-message", "grpc-encoding",
             "grpc-accept-encoding", "te", "user-agent"}


class RpcError(Exception):
    """A call that ended with a status other than OK (grpc.RpcError's methods)."""

    def __init__(self, code: StatusCode, details: str, initial=(), trailing=()):
        super().__init__(code, details)
        self._code, self._details = code, details
        self._initial, self._trailing = tuple(initial), tuple(trailing)

    def code(self) -> StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def initial_metadata(self) -> tuple:
        return self._initial

    def trailing_metadata(self) -> tuple:
        return self._trailing

    def debug_error_string(self) -> str:
        return f"grpc_status:{self._code.value[0]}, grpc_message:{self._details!r}"

    def __str__(self):
        return f"<RpcError {self._code.name}: {self._details}>"


def _percent_decode(text: str) -> str:
    """grpc-message is UTF-8 with the bytes outside 0x20-0x7e (and '%') as %XX."""
    raw, out, i = text.encode("latin-1"), bytearray(), 0
    while i < len(raw):
        if raw[i] == 0x25 and _is_hex(raw[i + 1:i + 3]):
            out.append(int(raw[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    return out.decode("utf-8", "replace")


def _is_hex(pair: bytes) -> bool:
    return len(pair) == 2 and all(c in b"0123456789abcdefABCDEF" for c in pair)


# -- the connection

def _connect(target: str):
    """A connected socket for a grpc target: unix:PATH, unix:///PATH, unix-abstract:NAME, or
    [dns:///]HOST:PORT. Errors are UNAVAILABLE, worded as grpc's."""
    if target.startswith(("unix:", "unix-abstract:")):
        if target.startswith("unix-abstract:"):
            path = "\0" + target[len("unix-abstract:"):]
        else:
            path = target[len("unix://"):] if target.startswith("unix://") else target[5:]
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        addr, shown = path, f"unix:{path}"
    else:
        hostport = target.split(":///", 1)[-1] if ":///" in target else target
        host, _, port = hostport.rpartition(":")
        try:
            family, kind, proto, _, addr = _socket.getaddrinfo(
                host.strip("[]") or "localhost", int(port), 0, _socket.SOCK_STREAM)[0]
        except (OSError, ValueError) as e:
            raise RpcError(StatusCode.UNAVAILABLE, f"errors resolving {target}: {e}") from None
        sock = _socket.socket(family, kind, proto)
        shown = f"{addr[0]}:{addr[1]}"
    try:
        sock.connect(addr)
    except OSError as e:
        sock.close()
        why = os.strerror(e.errno) if e.errno else str(e)
        raise RpcError(StatusCode.UNAVAILABLE, "failed to connect to all addresses; last error: "
                       f"FAILED_PRECONDITION: {shown}: connect failed: addr: {shown} error: "
                       f"{why}") from None
    return sock


class Channel:
    """grpc.insecure_channel's counterpart: connects on the first call, again after a failure."""

    def __init__(self, target: str, options=None):
        self.target = target
        self._conn: h2.Connection | None = None
        self._lock = threads.Lock()

    def connection(self) -> h2.Connection:
        with self._lock:
            if self._conn is None or self._conn.error is not None:
                self._conn = h2.Connection(_connect(self.target))
            return self._conn

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def unary_unary(self, method, request_serializer=None, response_deserializer=None):
        return UnaryUnary(self, method, response_deserializer, request_serializer)

    def unary_stream(self, method, request_serializer=None, response_deserializer=None):
        return UnaryStream(self, method, response_deserializer, request_serializer)

    def stream_unary(self, method, request_serializer=None, response_deserializer=None):
        return StreamUnary(self, method, response_deserializer, request_serializer)

    def stream_stream(self, method, request_serializer=None, response_deserializer=None):
        return StreamStream(self, method, response_deserializer, request_serializer)


insecure_channel = Channel


def _timeout_header(seconds: float) -> str:
    """grpc-timeout: at most 8 digits, in the finest unit that fits."""
    for unit, scale in (("m", 1000), ("S", 1), ("M", 1 / 60), ("H", 1 / 3600)):
        value = max(int(seconds * scale), 0)
        if value < 10 ** 8:
            return f"{value}{unit}"
    return "99999999H"


def _frame(msg, encode=None) -> bytes:
    data = encode(msg) if encode else msg if isinstance(msg, (bytes, bytearray)) else msg.encode()
    return b"\x00" + len(data).to_bytes(4, "big") + data


# -- calls

_STREAMED = object()    # a call whose requests come with write(), not with the headers

class Call:
    """One RPC on its own HTTP/2 stream: iterate it for the responses of a streaming call,
    result() for a unary one. For the thread that reads the responses; write() / done_writing()
    / cancel() may come from another."""

    def __init__(self, channel: Channel, method: str, decode, request=_STREAMED, end=True,
                 timeout=None, metadata=None, encode=None):
        self._decode = decode or (lambda data: data)
        self._encode = encode
        self._writing = request is _STREAMED    # until done_writing()
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._buf = bytearray()
        self._status: tuple[StatusCode, str] | None = None
        self._initial: list = []
        self._trailing: list = []
        self._http_status = None
        headers = [(":method", "POST"), (":scheme", "http"), (":path", method),
                   (":authority", "localhost"), ("te", "trailers"),
                   ("content-type", "application/grpc"), ("user-agent", USER_AGENT)]
        if timeout is not None:    # the server ends the call then too
            headers.append(("grpc-timeout", _timeout_header(timeout)))
        headers += [(k.lower(), v) for k, v in metadata or ()]
        self._conn = channel.connection()
        try:
            self._stream = self._conn.open_stream(
                headers, b"" if request is _STREAMED else _frame(request, encode), end)
        except (h2.Closed, OSError) as e:
            raise RpcError(StatusCode.UNAVAILABLE, str(e)) from None

    # -- requests (client streaming)

    def write(self, request) -> None:
        """Sends one request (waiting for the server's flow-control window if need be)."""
        if not self._writing:
            raise ValueError("no more requests on this call: done_writing() was called")
        try:
            self._conn.send_data(self._stream, _frame(request, self._encode))
        except (h2.Closed, OSError):
            pass    # the call is over: reading the responses tells why

    def done_writing(self) -> None:
        """Half-closes the call: the server's request iterator ends."""
        if not self._writing:
            return
        self._writing = False
        try:
            self._conn.send_data(self._stream, b"", end_stream=True)
        except (h2.Closed, OSError):
            pass

    def _send_all(self, requests) -> None:
        try:
            for req in requests:
                if self._status is not None:
                    return
                self.write(req)
            self.done_writing()
        except Exception:     # the iterator failed: the call cannot go on (grpc cancels it)
            self.cancel()

    # -- responses

    def _finish(self, code: int, details: str) -> None:
        if self._status is None:
            self._status = (_CODES[code] if 0 <= code < len(_CODES) else StatusCode.UNKNOWN,
                            details)

    def _headers(self, headers, end: bool) -> None:
        fields = [(k, v) for k, v in headers if not k.startswith(":")]
        metadata = [(k, v) for k, v in fields if k not in _RESERVED]
        if self._http_status is None:   # the response headers, or a trailers-only response
            self._http_status = next((v for k, v in headers if k == ":status"), "")
            if not end:
                self._initial = metadata
        if end:
            self._trailing = metadata
        if not end:
            if self._http_status != "200":
                self._finish(self._http_code(),
                             f"Received http2 header with status: {self._http_status}")
            return
        fields = dict(fields)
        if "grpc-status" in fields:
            try:
                code = int(fields["grpc-status"])
            except ValueError:
                code = 2
            self._finish(code, _percent_decode(fields.get("grpc-message", "")))
        elif self._http_status != "200":
            self._finish(self._http_code(),
                         f"Received http2 header with status: {self._http_status}")
        else:
            self._finish(13, "the server ended the call without a grpc-status")

    def _http_code(self) -> int:
        """gRPC's code for a response that has an HTTP status other than 200 and no grpc-status."""
        return _HTTP_CODES.get(int(self._http_status), 2) if self._http_status.isdigit() else 2

    def _pump(self) -> None:
        """Waits for the stream's next event and takes it in."""
        left = None if self._deadline is None else self._deadline - time.monotonic()
        ev = self._stream.next_event(left) if left is None or left > 0 else None
        if ev is None:
            self._conn.reset(self._stream, h2.CANCEL)
            self._finish(4, "Deadline Exceeded")
        elif ev[0] == "headers":
            self._headers(ev[1], ev[2])
        elif ev[0] == "data":
            self._buf += ev[1]
            self._conn.consumed(self._stream, ev[2])
            if ev[3]:
                self._finish(13, "the server ended the call without trailers")
        elif ev[0] == "reset":
            self._finish(_RST_CODES.get(ev[1], 13),
                         f"Received RST_STREAM with error code {ev[1]}")
        elif ev[0] == "closed":
            self._finish(14, ev[1])

    def _next(self):
        """The next response, or None once the call is over (its status is then known)."""
        while True:
            buf = self._buf
            if len(buf) >= 5:
                n = int.from_bytes(buf[1:5], "big")
                if len(buf) >= 5 + n:
                    if buf[0]:
                        self._finish(13, "compressed message, but no compression was asked for")
                        self._conn.reset(self._stream, h2.CANCEL)
                        return None
                    data = bytes(buf[5:5 + n])
                    del buf[:5 + n]
                    try:
                        return self._decode(data)
                    except wire.DecodeError as e:
                        self._finish(13, f"Failed to parse server response: {e}")
                        self._conn.reset(self._stream, h2.CANCEL)
                        return None
            if self._status is not None:
                return None
            self._pump()

    def _error(self) -> RpcError:
        code, details = self._status
        return RpcError(code, details, self._initial, self._trailing)

    def __iter__(self):
        return self

    def __next__(self):
        msg = self._next()
        if msg is not None:
            return msg
        if self._status[0] is StatusCode.OK:
            raise StopIteration
        raise self._error()

    def result(self, timeout=None):
        """The response of a unary call (blocks until the call ends); raises its RpcError."""
        if timeout is not None:
            deadline = time.monotonic() + timeout
            self._deadline = min(self._deadline or deadline, deadline)
        msg = self._next()
        while self._status is None:
            self._pump()
        if self._status[0] is not StatusCode.OK:
            raise self._error()
        if msg is None:
            raise RpcError(StatusCode.INTERNAL, "the server sent no response message")
        return msg

    def exception(self, timeout=None):
        try:
            self.result(timeout)
        except RpcError as e:
            return e
        return None

    def cancel(self) -> bool:
        if self._status is not None:
            return False
        self._conn.reset(self._stream, h2.CANCEL)
        self._finish(1, "Locally cancelled by application!")
        self._stream.push(("cancelled",))     # wakes a reader waiting for the stream
        return True

    def done(self) -> bool:
        return self._status is not None

    def is_active(self) -> bool:
        return self._status is None

    def code(self) -> StatusCode | None:
        return self._status[0] if self._status else None

    def details(self) -> str | None:
        return self._status[1] if self._status else None

    def initial_metadata(self) -> tuple:
        return tuple(self._initial)

    def trailing_metadata(self) -> tuple:
        return tuple(self._trailing)


class _Method:
    def __init__(self, channel: Channel, method: str, decode, encode=None):
        self._channel, self._method, self._decode, self._encode = channel, method, decode, encode

    def _call(self, request, end: bool, timeout, metadata) -> "Call":
        return Call(self._channel, self._method, self._decode, request, end, timeout, metadata,
                    self._encode)


class UnaryUnary(_Method):
    def __call__(self, request, timeout=None, metadata=None):
        return self.future(request, timeout, metadata).result()

    def future(self, request, timeout=None, metadata=None) -> Call:
        """The call under way (its request sent): result() waits for the response."""
        return self._call(request, True, timeout, metadata)


class UnaryStream(_Method):
    def __call__(self, request, timeout=None, metadata=None) -> Call:
        return self._call(request, True, timeout, metadata)


class StreamStream(_Method):
    def __call__(self, request_iterator=None, timeout=None, metadata=None) -> Call:
        """With an iterator, a thread sends its requests (as grpc does); without, the caller
        does with write() and done_writing()."""
        call = self._call(_STREAMED, False, timeout, metadata)
        if request_iterator is not None:
            threads.spawn(call._send_all, request_iterator)
        return call


class StreamUnary(StreamStream):
    def __call__(self, request_iterator, timeout=None, metadata=None):
        return super().__call__(request_iterator, timeout, metadata).result()

    def future(self, request_iterator, timeout=None, metadata=None) -> Call:
        return super().__call__(request_iterator, timeout, metadata)


# -- stubs for the services of supervisor/api/schema.py

class Stub:
    """A service's methods as attributes, like a generated *_pb2_grpc stub."""

    def __init__(self, channel: Channel, service: str):
        self._channel, self._service = channel, service

    def __getattr__(self, name: str):
        from supervisor.api.schema import SERVICES, STREAMS
        if name.startswith("_") or name not in SERVICES[self._service]:
            raise AttributeError(name)
        decode = message(SERVICES[self._service][name][1]).decode
        client, server = STREAMS.get(f"{self._service}/{name}", (False, False))
        kind = (StreamStream if server else StreamUnary) if client else \
            (UnaryStream if server else UnaryUnary)
        method = kind(self._channel, f"/{self._service}/{name}", decode)
        setattr(self, name, method)
        return method
