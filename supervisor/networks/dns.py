"""The DNS server hawserd runs for each user-defined network, on the network's gateway address
(UDP and TCP): the network's container names and aliases answered from lookup() at each query
(TTL 600 as docker's embedded DNS), every other name forwarded to the host's resolvers and their
answer relayed as it came.

One thread per server, a selector loop: hawserd runs a server per network, so a query waiting on a
slow upstream must not hold a thread; every socket is non-blocking and a forwarded query is a small
state machine (UDP, then TCP when the answer came truncated, then the next upstream). The sockets
are bounded (MAX_FORWARDS, MAX_TCP_CLIENTS): past them a query gets SERVFAIL, a connection is
closed."""
from __future__ import annotations

import errno
import logging
import os
import selectors
import socket
import threading
import time

from supervisor.networks import dnswire as wire
from supervisor.networks.dnsconn import Forward, TcpClient, parse_upstream

logger = logging.getLogger("hawserd")

TTL = 600


class DnsServer:
    MAX_FORWARDS = 64         # forwarded queries in flight (one upstream socket each)
    MAX_TCP_CLIENTS = 32
    TCP_IDLE = 10.0           # seconds a client connection may stay silent
    UDP_BURST = 64            # datagrams read per wake-up before looking at the other sockets

    def __init__(self, address: str, lookup, upstreams, port: int = 53, reverse=None,
                 timeout: float = 2.0):
        """address: where to listen (the network's gateway); lookup(name) -> [ip...] for a name in
        lower case without its trailing dot; upstreams: "ip[:port]" strings, tried in order, each
        for timeout seconds; reverse(ip) -> [name...], optional, answers PTR queries."""
        try:
            self.family = socket.AF_INET6 if ":" in address else socket.AF_INET
            socket.inet_pton(self.family, address)
        except (OSError, TypeError):
            raise ValueError(f"dns server address {address!r} is not an IP address") from None
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"dns server port {port!r} is not a port number (0 to 65535)")
        if not callable(lookup):
            raise ValueError("dns server lookup must be callable: lookup(name) -> [ip...]")
        if not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"dns upstream timeout {timeout!r} is not a positive number (seconds)")
        if isinstance(upstreams, str):
            raise ValueError(f"dns upstreams must be a list of 'ip[:port]', not {upstreams!r}")
        self.address, self.port = address, port
        self.lookup, self.reverse, self.timeout = lookup, reverse, timeout
        self.upstreams = [parse_upstream(u) for u in upstreams]
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._udp = self._tcp = self._selector = None
        self._wake = -1
        self.forwards: set[Forward] = set()
        self.clients: set[TcpClient] = set()

    # -- life cycle ----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError(f"dns server on {self.address}:{self.port} is already started")
        self._stopping = False
        asked = self.port
        # Port 0 takes UDP's free port, which TCP may have in use: then another one.
        for attempt in range(5 if asked == 0 else 1):
            try:
                self._open()
                break
            except OSError as err:
                where = f"{self.address}:{self.port}"
                self._close()
                self.port = asked
                if asked or attempt == 4 or err.errno != errno.EADDRINUSE:
                    raise OSError(err.errno, f"dns server on {where}: {err.strerror or err}") \
                        from None
        # A resolver of the host listed at our own address would send us our own queries back.
        me = (self.address, self.port)
        self.upstreams = [u for u in self.upstreams if u[1][:2] != me]
        self._thread = threading.Thread(target=self._loop, daemon=True,
                                        name=f"dns {self.address}:{self.port}")
        self._thread.start()

    def _open(self) -> None:
        self._udp = socket.socket(self.family, socket.SOCK_DGRAM)
        self._udp.setblocking(False)
        self._udp.bind((self.address, self.port))
        self.port = self._udp.getsockname()[1]   # port 0: the free one the kernel gave
        self._tcp = socket.socket(self.family, socket.SOCK_STREAM)
        self._tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._tcp.setblocking(False)
        self._tcp.bind((self.address, self.port))
        self._tcp.listen(16)
        self._wake = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._udp, selectors.EVENT_READ, self._on_udp)
        self._selector.register(self._tcp, selectors.EVENT_READ, self._on_accept)
        self._selector.register(self._wake, selectors.EVENT_READ, None)

    def stop(self) -> None:
        """Stops answering: the thread is joined and every socket of the server closed."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stopping = True
            os.eventfd_write(self._wake, 1)
            thread.join()
        self._close()

    def _close(self) -> None:
        for item in list(self.forwards) + list(self.clients):
            item.close()
        for sock in (self._udp, self._tcp):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
        if self._wake >= 0:
            os.close(self._wake)
        self._udp = self._tcp = self._selector = None
        self._wake = -1

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- the loop ------------------------------------------------------------------------------
    def _loop(self) -> None:
        while not self._stopping:
            try:
                self._turn()
            except Exception:   # a bug must not end the network's DNS
                logger.exception("dns server on %s:%d", self.address, self.port)
                time.sleep(0.05)

    def _turn(self) -> None:
        now = time.monotonic()
        deadlines = [item.deadline for item in (*self.forwards, *self.clients)]
        wait = max(0.0, min(deadlines) - now) if deadlines else None
        for key, mask in self._selector.select(wait):
            if key.data is not None:
                key.data(mask)
        now = time.monotonic()
        for item in [*self.forwards, *self.clients]:
            if item.deadline <= now:
                item.expired()

    def watch(self, sock, mask, callback) -> None:
        """(Re-)registers sock for mask with the loop's selector."""
        try:
            self._selector.modify(sock, mask, callback)
        except KeyError:
            self._selector.register(sock, mask, callback)

    def unwatch(self, sock) -> None:
        try:
            self._selector.unregister(sock)
        except (KeyError, ValueError):
            pass

    def _on_udp(self, _mask) -> None:
        for _ in range(self.UDP_BURST):
            try:
                data, peer = self._udp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:   # an ICMP error of an earlier reply: not ours to keep
                if err.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH):
                    continue
                raise
            self.handle(data, self._udp_replier(peer), udp_limit=wire.MAX_UDP)

    def _udp_replier(self, peer):
        def send(answer: bytes) -> None:
            try:
                self._udp.sendto(answer, peer)
            except OSError:   # a full buffer or a vanished peer: the client asks again
                pass
        return send

    def _on_accept(self, _mask) -> None:
        try:
            conn, _ = self._tcp.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return
        if len(self.clients) >= self.MAX_TCP_CLIENTS:
            conn.close()
            return
        TcpClient(self, conn)

    # -- answering -----------------------------------------------------------------------------
    def handle(self, data: bytes, send, udp_limit: int | None) -> None:
        """Answers one query through send(bytes); udp_limit is the client's UDP size limit, None
        for a TCP client."""
        try:
            flags = wire.header(data)[1]
        except wire.WireError:
            return   # no header: nothing to answer to
        if flags & wire.QR:
            return   # a response sent to us: answering it could start a loop
        try:
            msg = wire.parse(data)
        except wire.WireError:
            send(wire.error(data, wire.FORMERR))
            return
        if msg.opcode != 0:
            send(wire.error(data, wire.NOTIMP))
            return
        if len(msg.questions) != 1:
            send(wire.error(data, wire.FORMERR))
            return
        limit = 65535 if udp_limit is None else \
            max(udp_limit, min(msg.edns_size() or 0, wire.OUR_EDNS_SIZE))
        try:
            answers = self._local(msg.questions[0])
        except Exception:
            logger.exception("dns lookup of %r", msg.questions[0].name)
            send(wire.reply(data, msg, wire.SERVFAIL, authoritative=False))
            return
        if answers is not None:
            send(wire.reply(data, msg, wire.NOERROR, answers, limit))
        elif len(self.forwards) >= self.MAX_FORWARDS or not self.upstreams:
            send(wire.reply(data, msg, wire.SERVFAIL, authoritative=False))
        else:
            Forward(self, data, msg, send, client_tcp=udp_limit is None)

    def _local(self, question: wire.Question) -> list[bytes] | None:
        """The answer records for a name of the network, None for a name that is not ours."""
        if question.qclass not in (wire.IN, wire.ANY) or not question.name:
            return None
        name = question.name.lower()
        if question.qtype == wire.PTR:
            ip = wire.reverse_address(name) if self.reverse else None
            names = self.reverse(ip) if ip else ()
            return [wire.record(wire.PTR, TTL, wire.encode_name(n)) for n in names] or None
        addresses = self.lookup(name)
        if not addresses:
            return None
        # A name of ours without a record of the type asked (AAAA, MX...): NODATA, not NXDOMAIN.
        return wire.address_records(addresses, question.qtype, TTL)

