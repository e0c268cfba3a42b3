"""The connections of a DnsServer (dns.py), each a small non-blocking state machine its loop
drives: a query forwarded to the upstreams (Forward) and a client's TCP connection (TcpClient).
Each has a deadline the loop checks and expired() to call past it."""
from __future__ import annotations

import errno
import os
import selectors
import socket
import time

from supervisor.networks import dnswire as wire


def parse_upstream(text: str) -> tuple[int, tuple]:
    """'ip', 'ip:port', '[ipv6]:port' or a bare IPv6 address -> (family, socket address)."""
    host, port = text, "53"
    if isinstance(text, str) and text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            port = rest[1:] if rest.startswith(":") else ""
    elif isinstance(text, str) and text.count(":") == 1:
        host, port = text.split(":")
    try:
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError
        info = socket.getaddrinfo(host, int(port), type=socket.SOCK_DGRAM,
                                  flags=socket.AI_NUMERICHOST)
    except (ValueError, OSError, AttributeError, TypeError):
        raise ValueError(f"dns upstream {text!r} is not 'ip[:port]'") from None
    return info[0][0], info[0][4]


class Forward:
    """One query on its way through the upstreams: UDP to each in turn (TCP to the same one when
    its answer came truncated and our client is on TCP), until one answers. SERVFAIL and REFUSED
    move on to the next; the last of them goes back when none did better."""

    def __init__(self, server, data: bytes, msg, send, client_tcp: bool):
        self.server, self.data, self.msg, self.send = server, data, msg, send
        self.client_tcp = client_tcp
        self.index, self.sock, self.tcp, self.last = -1, None, False, None
        self.out, self.inbuf, self.deadline = bytearray(), bytearray(), 0.0
        server.forwards.add(self)
        self._next()

    def _next(self) -> None:
        self._drop_socket()
        self.index += 1
        if self.index >= len(self.server.upstreams):
            self._finish(self.last or wire.reply(self.data, self.msg, wire.SERVFAIL,
                                                 authoritative=False))
            return
        self._open(tcp=False)

    def _open(self, tcp: bool) -> None:
        family, address = self.server.upstreams[self.index]
        self.tcp = tcp
        self.deadline = time.monotonic() + self.server.timeout
        try:
            self.sock = socket.socket(family, socket.SOCK_STREAM if tcp else socket.SOCK_DGRAM)
            self.sock.setblocking(False)
            if tcp:
                err = self.sock.connect_ex(address)
                if err not in (0, errno.EINPROGRESS):
                    raise OSError(err, os.strerror(err))
                self.out[:] = wire.frame(self.data)
                self.inbuf.clear()
                self.server.watch(self.sock, selectors.EVENT_WRITE, self._on_event)
            else:
                self.sock.connect(address)   # only its datagrams reach this socket
                self.sock.send(self.data)
                self.server.watch(self.sock, selectors.EVENT_READ, self._on_event)
        except OSError:
            self._next()

    def _on_event(self, _mask) -> None:
        if self.sock is None:
            return
        try:
            answer = self._tcp_step() if self.tcp else self.sock.recv(65535)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:   # refused, reset, unreachable: the next upstream
            self._next()
            return
        if answer is not None:
            self._got(answer)

    def _tcp_step(self) -> bytes | None:
        if self.out:
            err = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
            del self.out[:self.sock.send(self.out)]
            if not self.out:
                self.server.watch(self.sock, selectors.EVENT_READ, self._on_event)
            return None
        chunk = self.sock.recv(65537)
        if not chunk:
            raise ConnectionResetError("upstream closed before a whole answer")
        self.inbuf += chunk
        answers = wire.frames(self.inbuf)
        return answers[0] if answers else None

    def _got(self, answer: bytes) -> None:
        try:
            qid, flags = wire.header(answer)[:2]
        except wire.WireError:
            qid, flags = -1, 0
        if qid != self.msg.id or not flags & wire.QR:
            if self.tcp:
                self._next()   # a stream that says something else is no use
            return             # a stray datagram: keep waiting for the answer
        if flags & wire.TC and not self.tcp and self.client_tcp:
            self._drop_socket()
            self._open(tcp=True)
        elif flags & wire.RCODE_MASK in (wire.SERVFAIL, wire.REFUSED):
            self.last = answer
            self._next()
        else:
            # Relayed as it came: a TC answer tells a UDP client to ask again on TCP.
            self._finish(answer)

    def expired(self) -> None:
        self._next()

    def _finish(self, answer: bytes) -> None:
        self.close()
        self.send(answer)

    def _drop_socket(self) -> None:
        if self.sock is not None:
            self.server.unwatch(self.sock)
            self.sock.close()
            self.sock = None

    def close(self) -> None:
        self._drop_socket()
        self.server.forwards.discard(self)


class TcpClient:
    """A client's connection: length-prefixed queries in, answers out in the order they are
    ready (RFC 7766 allows it); closed when silent for TCP_IDLE or once the client has closed its
    side and got every answer."""
    MAX_OUT = 256 * 1024   # answers a client does not read: past this the connection goes

    def __init__(self, server, conn: socket.socket):
        conn.setblocking(False)
        self.server, self.sock = server, conn
        self.inbuf, self.out, self.pending, self.eof = bytearray(), bytearray(), 0, False
        self.deadline = time.monotonic() + server.TCP_IDLE
        server.clients.add(self)
        server.watch(conn, selectors.EVENT_READ, self._on_event)

    def _on_event(self, mask) -> None:
        if self.sock is None:
            return
        try:
            if mask & selectors.EVENT_WRITE and self.out:
                del self.out[:self.sock.send(self.out)]
            if mask & selectors.EVENT_READ:
                chunk = self.sock.recv(65537)
                self.inbuf += chunk
                self.eof = not chunk
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:
            self.close()
            return
        self.deadline = time.monotonic() + self.server.TCP_IDLE
        for query in wire.frames(self.inbuf):
            self.pending += 1
            self.server.handle(query, self._reply, udp_limit=None)
            if self.sock is None:
                return
        self._rewatch()

    def _reply(self, answer: bytes) -> None:
        self.pending -= 1
        if self.sock is None:
            return
        self.out += wire.frame(answer)
        try:
            del self.out[:self.sock.send(self.out)]
        except BlockingIOError:
            pass
        except OSError:
            self.close()
            return
        if len(self.out) > self.MAX_OUT:
            self.close()
        else:
            self._rewatch()

    def _rewatch(self) -> None:
        if self.eof and not self.out and not self.pending:
            self.close()
            return
        mask = (0 if self.eof else selectors.EVENT_READ) | \
            (selectors.EVENT_WRITE if self.out else 0)
        if mask:
            self.server.watch(self.sock, mask, self._on_event)
        else:
            self.server.unwatch(self.sock)   # closed by the client: only answers to wait for

    def expired(self) -> None:
        if self.pending:   # its forwards have deadlines of their own
            self.deadline = time.monotonic() + self.server.TCP_IDLE
        else:
            self.close()

    def close(self) -> None:
        if self.sock is not None:
            self.server.unwatch(self.sock)
            self.sock.close()
            self.sock = None
        self.server.clients.discard(self)
