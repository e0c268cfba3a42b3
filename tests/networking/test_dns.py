"""hawserd's per-network DNS server (supervisor/networks/dns.py) on loopback: a real UDP/TCP
server queried by a client of the test's own (queries packed here by hand, not by the codec under
test), another DnsServer as its upstream, busybox's nslookup as a real resolver client."""
from __future__ import annotations

import os
import random
import shutil
import socket
import struct
import subprocess
import threading
import time

import pytest

from supervisor.networks import dnswire as wire
from supervisor.networks.dns import DnsServer

A, AAAA, MX, PTR, CNAME = 1, 28, 15, 12, 5
NOERROR, FORMERR, SERVFAIL, NOTIMP = 0, 1, 2, 4
BIG = [f"10.9.{i // 200}.{i % 200 + 1}" for i in range(100)]


def pack_query(name: str, qtype: int = A, qid: int | None = None, edns: int | None = None,
               flags: int = 0x0100) -> bytes:
    """A query as a stub resolver sends it (RD set), with an OPT record when edns is given."""
    qid = random.randrange(65536) if qid is None else qid
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.split(".") if label)
    out = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    out += qname + b"\0" + struct.pack("!HH", qtype, 1)
    if edns:
        out += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return out


def udp_ask(port: int, query: bytes, host: str = "127.0.0.1", timeout: float = 3.0):
    """The raw answer, None when none came within timeout."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(query)
        try:
            return sock.recv(65535)
        except socket.timeout:
            return None


def tcp_ask(port: int, *queries: bytes, expect: int | None = None,
            timeout: float = 3.0) -> list[bytes]:
    """Every query sent on one connection at once; expect answers (one a query) read back."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(b"".join(struct.pack("!H", len(q)) + q for q in queries))
        buf, answers = b"", []
        while len(answers) < (len(queries) if expect is None else expect):
            chunk = sock.recv(65536)
            if not chunk:
                break
            buf += chunk
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                size = struct.unpack("!H", buf[:2])[0]
                answers.append(buf[2:2 + size])
                buf = buf[2 + size:]
        return answers


def addresses(msg) -> list[str]:
    return [r.data for r in msg.answers if r.rtype in (A, AAAA)]


def fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def dns_servers():
    """Starts DnsServers on loopback; each is stopped at the end of the test, even on failure."""
    started = []

    def start(lookup, upstreams=(), address="127.0.0.1", port=0, **kw) -> DnsServer:
        server = DnsServer(address, lookup, list(upstreams), port=port, **kw)
        server.start()
        started.append(server)
        return server
    yield start
    for server in started:
        server.stop()


@pytest.fixture
def upstream(dns_servers):
    """The upstream: a DnsServer of the test's that knows example.test and a big name."""
    known = {"example.test": ["192.0.2.10"], "big.example.test": BIG}
    return dns_servers(lambda name: known.get(name, []))


@pytest.fixture
def names():
    """The network's containers as the server's lookup sees them: the test edits it."""
    return {"web": ["10.1.0.2"], "db-alias": ["10.1.0.3"], "many": BIG}


@pytest.fixture
def server(dns_servers, upstream, names):
    asked = []

    def lookup(name):
        asked.append(name)
        return names.get(name, [])
    srv = dns_servers(lookup, [f"127.0.0.1:{upstream.port}"])
    srv.asked = asked
    return srv


@pytest.fixture
def silent_udp():
    """A UDP port that takes queries and never answers."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    yield sock.getsockname()[1]
    sock.close()


def closed_port() -> int:
    """A loopback port nothing listens on (UDP and TCP): it was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_names_and_aliases_in_any_case_with_ttl_600(server):
    for name, want in (("web", "10.1.0.2"), ("WeB", "10.1.0.2"), ("web.", "10.1.0.2"),
                       ("DB-Alias.", "10.1.0.3")):
        query = pack_query(name)
        raw = udp_ask(server.port, query)
        msg = wire.parse(raw)
        assert msg.id == struct.unpack("!H", query[:2])[0]
        assert msg.flags & wire.QR and msg.flags & wire.AA and msg.rcode == NOERROR
        assert addresses(msg) == [want]
        assert msg.answers[0].ttl == 600
        # The question comes back as sent, case included (clients that randomise case check it).
        assert raw[12:len(query)] == query[12:]
        # And the TTL is on the wire where RFC 1035 puts it (after a 2-byte pointer, type, class).
        assert struct.unpack("!I", raw[len(query) + 6:len(query) + 10])[0] == 600
    assert set(server.asked) == {"web", "db-alias"}   # lower case, no trailing dot


def test_lookup_is_asked_at_each_query(server, names):
    assert addresses(wire.parse(udp_ask(server.port, pack_query("newbie")))) == []
    names["newbie"] = ["10.1.0.9"]
    assert addresses(wire.parse(udp_ask(server.port, pack_query("newbie")))) == ["10.1.0.9"]
    del names["web"]
    gone = wire.parse(udp_ask(server.port, pack_query("web")))
    assert addresses(gone) == [] and gone.rcode != NOERROR


def test_aaaa_and_other_types_of_a_known_name_are_nodata(server):
    for qtype in (AAAA, MX):
        msg = wire.parse(udp_ask(server.port, pack_query("web", qtype)))
        assert msg.rcode == NOERROR and msg.answers == [] and msg.flags & wire.AA


def test_ptr_from_reverse(dns_servers):
    srv = dns_servers(lambda n: [], reverse=lambda ip: ["web"] if ip == "10.1.0.2" else [])
    msg = wire.parse(udp_ask(srv.port, pack_query("2.0.1.10.in-addr.arpa", PTR)))
    assert [(r.rtype, r.data, r.ttl) for r in msg.answers] == [(PTR, "web", 600)]


def test_other_names_are_forwarded_and_relayed_as_they_are(server, upstream):
    query = pack_query("Example.Test")
    direct = udp_ask(upstream.port, query)
    relayed = udp_ask(server.port, query)
    assert relayed == direct   # the upstream's bytes, its id, its case
    assert addresses(wire.parse(relayed)) == ["192.0.2.10"]
    assert "example.test" in server.asked   # ours were asked first


def test_upstreams_are_tried_in_order(dns_servers, upstream, silent_udp):
    good = f"127.0.0.1:{upstream.port}"
    refused = dns_servers(lambda n: [], [f"127.0.0.1:{closed_port()}", good])
    started = time.monotonic()
    msg = wire.parse(udp_ask(refused.port, pack_query("example.test")))
    assert addresses(msg) == ["192.0.2.10"]
    assert time.monotonic() - started < 1.0   # a refused port is left at once, no timeout
    silent = dns_servers(lambda n: [], [f"127.0.0.1:{silent_udp}", good], timeout=0.3)
    started = time.monotonic()
    msg = wire.parse(udp_ask(silent.port, pack_query("example.test")))
    assert addresses(msg) == ["192.0.2.10"]
    assert 0.3 <= time.monotonic() - started < 2.0


def test_servfail_when_no_upstream_answers(dns_servers, silent_udp):
    down = dns_servers(lambda n: [], [f"127.0.0.1:{closed_port()}"])
    query = pack_query("example.test")
    msg = wire.parse(udp_ask(down.port, query))
    assert msg.rcode == SERVFAIL and msg.id == struct.unpack("!H", query[:2])[0]
    silent = dns_servers(lambda n: [], [f"127.0.0.1:{silent_udp}"], timeout=0.3)
    started = time.monotonic()
    assert wire.parse(udp_ask(silent.port, pack_query("example.test"))).rcode == SERVFAIL
    assert time.monotonic() - started >= 0.3
    none = dns_servers(lambda n: [], [])
    assert wire.parse(udp_ask(none.port, pack_query("example.test"))).rcode == SERVFAIL


def test_tcp_queries_pipelined_on_one_connection(server):
    local, forwarded = pack_query("web"), pack_query("example.test")
    answers = [wire.parse(a) for a in tcp_ask(server.port, local, forwarded)]
    by_id = {m.id: addresses(m) for m in answers}
    assert by_id == {struct.unpack("!H", local[:2])[0]: ["10.1.0.2"],
                     struct.unpack("!H", forwarded[:2])[0]: ["192.0.2.10"]}


def test_a_large_local_answer_is_truncated_on_udp_whole_on_tcp(server):
    raw = udp_ask(server.port, pack_query("many"))
    msg = wire.parse(raw)
    assert msg.flags & wire.TC and len(raw) <= 512 and 0 < len(msg.answers) < 100
    assert set(addresses(msg)) <= set(BIG)
    raw = udp_ask(server.port, pack_query("many", edns=1232))
    msg = wire.parse(raw)
    assert msg.flags & wire.TC and 512 < len(raw) <= 1232 and msg.edns_size() is not None
    (raw,) = tcp_ask(server.port, pack_query("many"))
    msg = wire.parse(raw)
    assert not msg.flags & wire.TC and addresses(msg) == BIG


def test_a_truncated_upstream_answer(server):
    # UDP client: the upstream's truncated answer as it is (the client asks again on TCP).
    msg = wire.parse(udp_ask(server.port, pack_query("big.example.test")))
    assert msg.flags & wire.TC and len(msg.answers) < 100
    # TCP client: UDP to the upstream came back truncated, so the server asked it on TCP.
    (raw,) = tcp_ask(server.port, pack_query("big.example.test"))
    msg = wire.parse(raw)
    assert not msg.flags & wire.TC and addresses(msg) == BIG


def test_malformed_queries_get_formerr_or_nothing_and_the_server_goes_on(server):
    qid = b"\x12\x34"
    no_question = qid + struct.pack("!HHHHH", 0x0100, 1, 0, 0, 0)
    looping = qid + struct.pack("!HHHHH", 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\1\0\1"
    query = pack_query("web", qid=0x1234)
    two = query[:4] + b"\0\2" + query[6:] + query[12:]
    for packet in (no_question, looping, two, query + b"junk"):
        msg = wire.parse(udp_ask(server.port, packet))
        assert msg.rcode == FORMERR and msg.id == 0x1234
    status = pack_query("web", flags=(2 << 11) | 0x0100)
    assert wire.parse(udp_ask(server.port, status)).rcode == NOTIMP
    for ignored in (b"", b"\x01\x02\x03", pack_query("web", flags=0x8100)):   # short; a response
        assert udp_ask(server.port, ignored, timeout=0.3) is None
    rng = random.Random(10)
    for _ in range(300):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(junk, ("127.0.0.1", server.port))
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"\x00\x05abc")   # half a frame, then gone
    assert addresses(wire.parse(udp_ask(server.port, pack_query("web")))) == ["10.1.0.2"]
    # On TCP: a frame too short for a header (dropped), a FORMERR one, then a good query.
    refused, answered = tcp_ask(server.port, b"\x00\x01", no_question, query, expect=2)
    assert wire.parse(refused).rcode == FORMERR
    assert addresses(wire.parse(answered)) == ["10.1.0.2"]


def test_many_concurrent_queries(server):
    threads_before = threading.active_count()
    failures = []

    def client(n):
        for i in range(25):
            name, want = (("web", ["10.1.0.2"]) if i % 2 else ("example.test", ["192.0.2.10"]))
            raw = udp_ask(server.port, pack_query(name)) if i % 5 else \
                tcp_ask(server.port, pack_query(name))[0]
            if raw is None or addresses(wire.parse(raw)) != want:
                failures.append((n, i, raw))
    clients = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in clients:
        t.start()
    for t in clients:
        t.join()
    assert failures == []
    assert threading.active_count() == threads_before   # the server made no thread per query


def test_stop_leaves_no_thread_no_fd_and_frees_the_port(upstream, silent_udp):
    threads, fds = set(threading.enumerate()), fd_count()
    srv = DnsServer("127.0.0.1", lambda n: ["10.1.0.2"] if n == "web" else [],
                    [f"127.0.0.1:{silent_udp}"], port=0, timeout=5.0)
    srv.start()
    try:
        assert len(set(threading.enumerate()) - threads) == 1
        idle = socket.create_connection(("127.0.0.1", srv.port))   # a TCP client left open
        waiting = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)   # a forward in flight
        waiting.sendto(pack_query("example.test"), ("127.0.0.1", srv.port))
        assert tcp_ask(srv.port, pack_query("web"))
        time.sleep(0.1)
    finally:
        srv.stop()
    idle.close()
    waiting.close()
    assert set(threading.enumerate()) == threads
    assert fd_count() == fds
    srv.stop()   # a second stop does nothing
    srv.start()  # and a stopped server starts again, on its port
    try:
        assert addresses(wire.parse(udp_ask(srv.port, pack_query("web")))) == ["10.1.0.2"]
    finally:
        srv.stop()
    assert set(threading.enumerate()) == threads and fd_count() == fds
    # Its port is free again: a server for the same network starts there (hawserd restarting).
    again = DnsServer("127.0.0.1", lambda n: ["10.1.0.2"], [], port=srv.port)
    again.start()
    try:
        assert tcp_ask(again.port, pack_query("web")) and udp_ask(again.port, pack_query("web"))
    finally:
        again.stop()


def test_bad_arguments_and_a_taken_port_leave_nothing(upstream):
    with pytest.raises(ValueError, match="'nowhere' is not an IP address"):
        DnsServer("nowhere", lambda n: [], [])
    with pytest.raises(ValueError, match="upstream '1.2.3.4:99999'"):
        DnsServer("127.0.0.1", lambda n: [], ["1.2.3.4:99999"])
    with pytest.raises(ValueError, match="upstream 'dns.example'"):
        DnsServer("127.0.0.1", lambda n: [], ["dns.example"])
    with pytest.raises(ValueError, match="port 70000 is not a port number"):
        DnsServer("127.0.0.1", lambda n: [], [], port=70000)
    with pytest.raises(ValueError, match="timeout 0 is not a positive number"):
        DnsServer("127.0.0.1", lambda n: [], [], timeout=0)
    threads, fds = set(threading.enumerate()), fd_count()
    taken = DnsServer("127.0.0.1", lambda n: [], [], port=upstream.port)
    with pytest.raises(OSError, match=f"dns server on 127.0.0.1:{upstream.port}"):
        taken.start()
    assert set(threading.enumerate()) == threads and fd_count() == fds
    # And the server that had the port still answers.
    assert addresses(wire.parse(udp_ask(upstream.port, pack_query("example.test")))) == \
        ["192.0.2.10"]


def test_busybox_nslookup_as_a_real_client(dns_servers, upstream, names):
    busybox = shutil.which("busybox")
    if not busybox:
        pytest.skip("busybox is not installed (make install puts busybox-static)")
    # nslookup only talks to port 53: a loopback address of our own, 127.77.x.y.
    for _ in range(20):
        address = f"127.77.{random.randrange(256)}.{random.randrange(1, 255)}"
        try:
            dns_servers(lambda n: names.get(n, []), [f"127.0.0.1:{upstream.port}"],
                        address=address, port=53)
            break
        except OSError:
            continue
    else:
        pytest.fail("no 127.77.x.y address with port 53 free")
    for name, want in (("web", "10.1.0.2"), ("DB-ALIAS", "10.1.0.3"),
                       ("example.test", "192.0.2.10")):
        out = subprocess.run([busybox, "nslookup", name, address], capture_output=True,
                             text=True, timeout=20)
        assert out.returncode == 0, out.stdout + out.stderr
        assert f"Address: {want}" in out.stdout


def test_wire_reads_compressed_names_and_refuses_bad_ones():
    head = struct.pack("!HHHHHH", 7, 0x8180, 1, 2, 0, 0)
    question = b"\3www\7example\4test\0" + struct.pack("!HH", A, 1)
    cname = b"\xc0\x0c" + struct.pack("!HHIH", CNAME, 1, 60, 6) + b"\3web\xc0\x10"
    target = 12 + len(question) + 12          # where the CNAME's rdata starts
    a = struct.pack("!HHHIH", 0xC000 | target, A, 1, 60, 4) + bytes([192, 0, 2, 1])
    msg = wire.parse(head + question + cname + a)
    assert msg.questions[0].name == "www.example.test"
    assert [(r.name, r.data) for r in msg.answers] == [("www.example.test", "web.example.test"),
                                                      ("web.example.test", "192.0.2.1")]
    bad = {
        "points to itself": head[:4] + b"\0\1\0\0\0\0\0\0" + b"\xc0\x0c\0\1\0\1",
        "points forward": head[:4] + b"\0\1\0\0\0\0\0\0" + b"\xc0\x20\0\1\0\1",
        "label past the end": head[:4] + b"\0\1\0\0\0\0\0\0" + b"\x09abc",
        "bytes left over": head[:4] + b"\0\1\0\0\0\0\0\0" + question + b"x",
        "short header": b"\0\1\2",
    }
    for why, data in bad.items():
        with pytest.raises(wire.WireError):
            wire.parse(data)
    # A label with odd bytes never reads as a plain name.
    odd = head[:4] + b"\0\1\0\0\0\0\0\0" + b"\3w.b\0" + struct.pack("!HH", A, 1)
    assert wire.parse(odd).questions[0].name == "w\\046b"
