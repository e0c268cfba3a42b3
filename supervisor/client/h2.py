"""An HTTP/2 client connection (RFC 9113), as much of it as gRPC needs, for supervisor/client/grpclite.py.

One thread reads the socket and hands each stream its events (response headers, data, trailers,
reset); callers write frames whole under one lock, from any thread. Flow control: we open large
windows and give back the connection's as soon as its data arrives (a stream whose reader is slow
must not stall the others), a stream's only when its reader has taken the data (consumed()), so
a slow reader holds back its own stream only. What we send waits for the peer's windows.
Server push is refused in our SETTINGS; priorities are ignored. Threads, locks and events are the
shim's small ones on _thread (shim/threads.py): `threading` would add to hawserctl's start-up.
"""
import _socket
import time

from shim import threads
from supervisor.client import hpack

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# frame types
DATA, HEADERS, PRIORITY, RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, \
    CONTINUATION = range(10)
# flags
END_STREAM = ACK = 0x1
END_HEADERS, PADDED, PRIORITY_FLAG = 0x4, 0x8, 0x20
# settings
HEADER_TABLE_SIZE, ENABLE_PUSH, MAX_CONCURRENT_STREAMS, INITIAL_WINDOW_SIZE, MAX_FRAME_SIZE, \
    MAX_HEADER_LIST_SIZE = range(1, 7)
# error codes
NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR, SETTINGS_TIMEOUT, STREAM_CLOSED, \
    FRAME_SIZE_ERROR, REFUSED_STREAM, CANCEL, COMPRESSION_ERROR = range(10)

DEFAULT_WINDOW = 65535
STREAM_WINDOW = 1 << 20      # what one stream may have in flight to us
CONN_WINDOW = 1 << 24        # ... all streams together
FRAME_MAX = 1 << 20          # the largest frame we accept (fewer frames for big messages)


class Closed(Exception):
    """The connection is gone (or going away): no new stream can be opened on it."""


class ProtocolError(Exception):
    def __init__(self, code: int, text: str):
        super().__init__(text)
        self.code = code


def frame(ftype: int, flags: int, sid: int, payload=b"") -> bytes:
    return len(payload).to_bytes(3, "big") + bytes((ftype, flags)) + sid.to_bytes(4, "big") + \
        bytes(payload)


def _settings(pairs) -> bytes:
    return b"".join(k.to_bytes(2, "big") + v.to_bytes(4, "big") for k, v in pairs)


class Stream:
    """One request/response exchange. Its events, in order: ("headers", [(name, value)], end),
    ("data", bytes, flow-controlled length, end), ("reset", error code), ("closed", reason)
    when the connection went away, ("cancelled",) when cancel() was asked locally."""
    __slots__ = ("id", "events", "lock", "wake", "send_window", "unacked", "ended")

    def __init__(self, sid: int, send_window: int):
        self.id = sid
        self.events: list = []
        self.lock = threads.Lock()
        self.wake = threads.Event()
        self.send_window = send_window
        self.unacked = 0      # data taken by the reader, not yet given back to the peer's window
        self.ended = False    # the peer ended (END_STREAM or RST_STREAM): nothing more to send

    def push(self, event) -> None:
        with self.lock:
            self.events.append(event)
        self.wake.set()

    def next_event(self, timeout: float | None = None):
        """The next event, or None if `timeout` seconds pass first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            with self.lock:
                if self.events:
                    return self.events.pop(0)
                self.wake.clear()
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            self.wake.wait(left)


class Connection:
    def __init__(self, sock):
        self.sock = sock
        self.send_lock = threads.Lock()     # whole frames, one writer at a time
        self.lock = threads.Lock()          # streams, windows, settings
        self.window_changed = threads.Event()
        self.streams: dict[int, Stream] = {}
        self.next_id = 1
        self.decoder = hpack.Decoder()
        self.peer_window = DEFAULT_WINDOW   # the peer's SETTINGS_INITIAL_WINDOW_SIZE
        self.peer_frame_max = 16384
        self.send_window = DEFAULT_WINDOW   # the connection's, for what we send
        self.unacked = 0                    # connection-level data received, not yet given back
        self.error: str | None = None       # why no new stream can be opened
        self.pending = None                 # (stream id, end_stream, fragments) until END_HEADERS
        self._write(PREFACE + frame(SETTINGS, 0, 0, _settings(
            ((ENABLE_PUSH, 0), (INITIAL_WINDOW_SIZE, STREAM_WINDOW), (MAX_FRAME_SIZE, FRAME_MAX))))
            + frame(WINDOW_UPDATE, 0, 0, (CONN_WINDOW - DEFAULT_WINDOW).to_bytes(4, "big")))
        threads.spawn(self._read_loop)

    # -- sending

    def _write(self, data) -> None:
        with self.send_lock:
            self.sock.sendall(data)

    def open_stream(self, headers, data=b"", end_stream=False) -> Stream:
        """Sends HEADERS (and `data` with them in one write when the windows allow it)."""
        block = hpack.encode(headers)
        with self.send_lock:            # stream ids must reach the peer in increasing order
            with self.lock:
                if self.error:
                    raise Closed(self.error)
                st = Stream(self.next_id, self.peer_window)
                self.next_id += 2
                self.streams[st.id] = st
                # a small first message goes out with the headers, flow control permitting
                inline = len(data) <= min(self.send_window, st.send_window, self.peer_frame_max)
                if inline:
                    self.send_window -= len(data)
                    st.send_window -= len(data)
            out = bytearray(self._header_frames(st.id, block, end_stream and not data))
            if data and inline:
                out += frame(DATA, END_STREAM if end_stream else 0, st.id, data)
            self.sock.sendall(out)
        if data and not inline:
            self.send_data(st, data, end_stream)
        return st

    def _header_frames(self, sid: int, block: bytes, end_stream: bool) -> bytes:
        n = self.peer_frame_max
        chunks = [block[i:i + n] for i in range(0, len(block), n)] or [b""]
        out = bytearray()
        for i, chunk in enumerate(chunks):
            flags = END_HEADERS if i == len(chunks) - 1 else 0
            if i == 0:
                out += frame(HEADERS, flags | (END_STREAM if end_stream else 0), sid, chunk)
            else:
                out += frame(CONTINUATION, flags, sid, chunk)
        return bytes(out)

    def send_data(self, st: Stream, data, end_stream: bool = False) -> None:
        """DATA frames for `data`, each when the peer's windows have room for it. Raises
        Closed when the connection or the stream is gone."""
        view, pos = memoryview(data), 0
        while True:
            with self.lock:
                if self.error:
                    raise Closed(self.error)
                if st.ended:
                    raise Closed("the stream was closed by the server")
                n = min(len(view) - pos, self.send_window, st.send_window, self.peer_frame_max)
                if n > 0 or pos == len(view):
                    self.send_window -= n
                    st.send_window -= n
                else:
                    n = -1
                    self.window_changed.clear()
            if n < 0:
                self.window_changed.wait()
                continue
            last = pos + n == len(view)
            self._write(frame(DATA, END_STREAM if last and end_stream else 0, st.id,
                              view[pos:pos + n]))
            pos += n
            if last:
                return

    def consumed(self, st: Stream, n: int) -> None:
        """The reader of `st` took n bytes of flow-controlled data: give them back to the peer in
        batches of half a window."""
        with self.lock:
            st.unacked += n
            n, st.unacked = (st.unacked, 0) if st.unacked >= STREAM_WINDOW // 2 else (0, st.unacked)
            if st.ended or self.error:
                return
        if n:
            self._write_quietly(frame(WINDOW_UPDATE, 0, st.id, n.to_bytes(4, "big")))

    def reset(self, st: Stream, code: int = CANCEL) -> None:
        with self.lock:
            gone = st.ended or self.error or self.streams.pop(st.id, None) is None
            st.ended = True
        if not gone:
            self._write_quietly(frame(RST_STREAM, 0, st.id, code.to_bytes(4, "big")))

    def _write_quietly(self, data) -> None:
        try:
            self._write(data)
        except OSError:
            pass    # the reader thread sees the connection fail and tells every stream

    def close(self) -> None:
        with self.lock:
            already = self.error is not None
            self.error = self.error or "the channel was closed"
        if not already:
            self._write_quietly(frame(GOAWAY, 0, 0, bytes(8)))
        try:
            self.sock.shutdown(_socket.SHUT_RDWR)
        except OSError:
            pass

    # -- receiving (the reader thread)

    def _read_loop(self) -> None:
        buf = bytearray()
        try:
            try:
                while True:
                    while len(buf) < 9:
                        buf += self._recv()
                    length = int.from_bytes(buf[:3], "big")
                    if length > FRAME_MAX:
                        raise ProtocolError(FRAME_SIZE_ERROR, f"frame of {length} bytes")
                    while len(buf) < 9 + length:
                        buf += self._recv()
                    ftype, flags = buf[3], buf[4]
                    sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
                    payload = bytes(buf[9:9 + length])
                    del buf[:9 + length]
                    self._frame(ftype, flags, sid, payload)
            except (ProtocolError, hpack.HpackError) as e:
                # last stream id 0: we accept no stream the server would open
                code = getattr(e, "code", COMPRESSION_ERROR)
                self._write_quietly(frame(GOAWAY, 0, 0, bytes(4) + code.to_bytes(4, "big") +
                                          str(e).encode()))
                raise
        except Exception as e:    # EOF, a socket error, a protocol error: every stream ends
            self._fail(str(e) or type(e).__name__)
        finally:
            try:
                self.sock.close()
            except OSError:
                pass

    def _recv(self) -> bytes:
        data = self.sock.recv(262144)
        if not data:
            raise EOFError("Socket closed")
        return data

    def _fail(self, reason: str) -> None:
        with self.lock:
            self.error = self.error or reason
            streams = list(self.streams.values())
            self.streams.clear()
            for st in streams:
                st.ended = True
        for st in streams:
            st.push(("closed", reason))
        self.window_changed.set()

    def _frame(self, ftype: int, flags: int, sid: int, payload: bytes) -> None:
        if self.pending is not None and ftype != CONTINUATION:
            raise ProtocolError(PROTOCOL_ERROR, "header block interrupted")
        if ftype == DATA:
            self._data(flags, sid, payload)
        elif ftype == HEADERS:
            start, end = 0, len(payload)
            if flags & PADDED:
                start, end = 1, end - payload[0]
            if flags & PRIORITY_FLAG:
                start += 5
            if start > end:
                raise ProtocolError(PROTOCOL_ERROR, "bad HEADERS padding")
            self.pending = (sid, bool(flags & END_STREAM), [payload[start:end]])
            if flags & END_HEADERS:
                self._headers_done()
        elif ftype == CONTINUATION:
            if self.pending is None or self.pending[0] != sid:
                raise ProtocolError(PROTOCOL_ERROR, "unexpected CONTINUATION")
            self.pending[2].append(payload)
            if flags & END_HEADERS:
                self._headers_done()
        elif ftype == RST_STREAM:
            st = self._end(sid)
            if st is not None:
                st.push(("reset", int.from_bytes(payload[:4], "big")))
        elif ftype == SETTINGS:
            if not flags & ACK:
                self._settings(payload)
        elif ftype == PING:
            if not flags & ACK:
                self._write(frame(PING, ACK, 0, payload))
        elif ftype == GOAWAY:
            self._goaway(payload)
        elif ftype == WINDOW_UPDATE:
            inc = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
            with self.lock:
                if sid == 0:
                    self.send_window += inc
                elif sid in self.streams:
                    self.streams[sid].send_window += inc
            self.window_changed.set()
        elif ftype == PUSH_PROMISE:
            raise ProtocolError(PROTOCOL_ERROR, "PUSH_PROMISE with push disabled")
        # PRIORITY and unknown frame types are ignored

    def _end(self, sid: int) -> Stream | None:
        with self.lock:
            st = self.streams.pop(sid, None)
            if st is not None:
                st.ended = True
        return st

    def _data(self, flags: int, sid: int, payload: bytes) -> None:
        flow = len(payload)      # padding counts against the windows too
        if flags & PADDED:
            if not payload or payload[0] >= len(payload):
                raise ProtocolError(PROTOCOL_ERROR, "bad DATA padding")
            payload = payload[1:len(payload) - payload[0]]
        with self.lock:
            self.unacked += flow
            give_back = self.unacked if self.unacked >= CONN_WINDOW // 2 else 0
            self.unacked -= give_back
            st = self.streams.get(sid)
        if give_back:
            self._write(frame(WINDOW_UPDATE, 0, 0, give_back.to_bytes(4, "big")))
        end = bool(flags & END_STREAM)
        if end:
            st = self._end(sid)
        if st is not None:
            st.push(("data", payload, flow, end))

    def _headers_done(self) -> None:
        sid, end, fragments = self.pending
        self.pending = None
        headers = self.decoder.decode(b"".join(fragments))  # even for a stream we dropped
        st = self._end(sid) if end else self.streams.get(sid)
        if st is not None:
            st.push(("headers", headers, end))

    def _settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            raise ProtocolError(FRAME_SIZE_ERROR, "SETTINGS length")
        # The ACK goes out before any frame sized by the new values: grpc holds us to its
        # old SETTINGS_MAX_FRAME_SIZE until it has our ACK (a 64 KiB DATA frame sent just
        # before it was refused). Holding the send lock across both keeps writers behind it.
        with self.send_lock:
            with self.lock:
                for i in range(0, len(payload), 6):
                    key = int.from_bytes(payload[i:i + 2], "big")
                    value = int.from_bytes(payload[i + 2:i + 6], "big")
                    if key == INITIAL_WINDOW_SIZE:
                        for st in self.streams.values():
                            st.send_window += value - self.peer_window
                        self.peer_window = value
                    elif key == MAX_FRAME_SIZE:
                        self.peer_frame_max = value
                    # HEADER_TABLE_SIZE: our encoder never indexes; the others need nothing
            self.sock.sendall(frame(SETTINGS, ACK, 0))
        self.window_changed.set()

    def _goaway(self, payload: bytes) -> None:
        last = int.from_bytes(payload[:4], "big") & 0x7FFFFFFF
        code = int.from_bytes(payload[4:8], "big")
        reason = f"GOAWAY received (error code {code}" + \
            (f": {payload[8:].decode('latin-1')})" if payload[8:] else ")")
        with self.lock:
            self.error = self.error or reason
            refused = [st for sid, st in self.streams.items() if sid > last]
            for st in refused:
                del self.streams[st.id]
                st.ended = True
        for st in refused:      # never processed: they may be retried on a new connection
            st.push(("closed", reason))
        self.window_changed.set()
