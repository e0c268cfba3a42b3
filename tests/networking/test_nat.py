"""nat.py on the real kernel: an nftables table of the test's own (never `ip hawser`), bridges
and namespaces of the test's own (names from link_prefix), traffic only to loopback, to the
test's bridges' addresses and to the test's namespaces. ip_forward is put back at the end."""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from supervisor.networks import bridge, nat, sysctl
from supervisor.networks.errors import InvalidConfig, KernelError, PortAllocated
from netns_harness import (connect_from_host, free_port, ip_forward, link_prefix,  # noqa: F401
                           make_netns, unique)

# A client that gives up after a short time: what a dropped packet looks like ('error ...').
QUICK = r"""
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
try:
    s = socket.create_connection((host, port), timeout=float(sys.argv[3]))
    print(s.makefile().readline().strip())
except OSError as e:
    print(f"error {e}")
"""
DROPPED = "error timed out"
REFUSED = "error [Errno 111] Connection refused"


def quick(ns, host: str, port: int, timeout: float = 0.7) -> str:
    return ns.run(sys.executable, "-I", "-c", QUICK, host, str(port), str(timeout)).stdout.strip()


def tables() -> str:
    return subprocess.run(["nft", "list", "tables"], capture_output=True, text=True,
                          check=True).stdout


def listing(table: str) -> list[dict]:
    done = subprocess.run(["nft", "-j", "list", "table", "ip", table], capture_output=True,
                          text=True, check=True)
    return [o for o in json.loads(done.stdout)["nftables"] if "metainfo" not in o]


def rules_of(table: str, bridge_name: str) -> list[dict]:
    return [o["rule"] for o in listing(table)
            if "rule" in o and o["rule"].get("comment") == f"network {bridge_name}"]


def bridges_set(table: str) -> list:
    return next(o["set"].get("elem", []) for o in listing(table)
                if "set" in o and o["set"]["name"] == "bridges")


def restart() -> None:
    """What a new hawserd knows of the tables: nothing until it reads them."""
    nat._published.clear()
    nat._networks.clear()


@pytest.fixture
def table(ip_forward):
    """A table of the test's own, made; removed (and ip_forward restored) at the end."""
    name = unique("t")
    nat.ensure_table(name)
    yield name
    nat.remove_table(name)
    assert f"table ip {name}\n" not in tables()


class Net:
    """A bridge of the test's own on BASE.0/24 (gateway .1), its containers' namespaces."""

    def __init__(self, name: str, base: str, make_netns, link_prefix: str):
        self.bridge, self.base, self.gw = name, base, f"{base}.1"
        self.subnet = f"{base}.0/24"
        self._make_netns, self._prefix = make_netns, link_prefix
        bridge.ensure_bridge(name, self.gw, 24)

    def container(self, host: int, gateway: bool = True):
        ns = self._make_netns()
        ns.ip = f"{self.base}.{host}"
        bridge.loopback_up(ns.path)
        bridge.attach(ns.path, self.bridge, "eth0", ns.ip, 24,
                      f"02:42:0a:{host:02x}:{len(self.base):02x}:{host:02x}",
                      self.gw if gateway else None, host_prefix=self._prefix)
        return ns


@pytest.fixture
def networks(link_prefix, make_netns, table):
    """networks(n, internal=False, nat_rules=True) -> a Net on 10.20{4+n}.T.0/24 (T from the
    prefix, so two runs never share a subnet), with nat.add_network in the test's table unless
    nat_rules is False (an "outside" network: a route of the host's that is not hawser's).
    Its bridge is deleted at the end."""
    third = int(link_prefix[-4:], 16) % 250 + 1
    made: list[Net] = []

    def make(n: int, internal: bool = False, nat_rules: bool = True) -> Net:
        net = Net(f"{link_prefix}b{n}", f"10.{204 + n}.{third}", make_netns, link_prefix)
        made.append(net)
        if nat_rules:
            nat.add_network(net.bridge, net.subnet, internal, table=table)
        return net
    yield make
    for net in made:
        bridge.delete_bridge(net.bridge)


def test_tcp_and_udp_ports_answer_on_loopback_and_the_gateway(table, networks, ip_forward):
    assert sysctl.read("net/ipv4/ip_forward") == "1"   # ensure_table set it
    net = networks(0)
    a = net.container(2)
    a.serve("a-tcp", 8080)
    a.serve("a-udp", 8053, "udp")
    tcp, udp = free_port(), free_port()
    nat.publish("c1", [("tcp", "", tcp, a.ip, 8080), ("udp", "", udp, a.ip, 8053)], table=table)
    # 127.0.0.1 leaves through the bridge masqueraded to its address (route_localnet)
    assert connect_from_host("127.0.0.1", tcp) == f"a-tcp {net.gw}"
    assert connect_from_host("127.0.0.1", udp, "udp") == f"a-udp {net.gw}"
    assert connect_from_host(net.gw, tcp) == f"a-tcp {net.gw}"
    assert connect_from_host(net.gw, udp, "udp") == f"a-udp {net.gw}"
    # and on the host's other addresses (its primary one: the source of its default route;
    # `ip route get` only asks, nothing is sent), with that address as the source
    primary = subprocess.run(["ip", "-4", "route", "get", "198.51.100.1"], capture_output=True,
                             text=True).stdout.partition(" src ")[2].split()[:1]
    for address in primary:
        assert connect_from_host(address, tcp) == f"a-tcp {address}"
    assert nat.published(table) == {"c1": [("tcp", "", tcp, a.ip, 8080),
                                           ("udp", "", udp, a.ip, 8053)]}
    assert nat.port_free("tcp", "", tcp, table=table) is False
    assert nat.port_free("udp", "127.0.0.1", udp, table=table) is False
    assert nat.port_free("tcp", "", udp, table=table) is True   # the other protocol


def test_a_port_published_on_one_address_only(table, networks):
    net = networks(0)
    a, b = net.container(2), net.container(3)
    a.serve("a", 8080)
    b.serve("b", 8080)
    port = free_port()
    nat.publish("ca", [("tcp", "127.0.0.1", port, a.ip, 8080)], table=table)
    assert connect_from_host("127.0.0.1", port) == f"a {net.gw}"
    assert connect_from_host(net.gw, port) == REFUSED   # not DNATed: nothing of the host there
    # the same port on another address is another binding; on every address it clashes
    assert nat.port_free("tcp", net.gw, port, table=table) is True
    assert nat.port_free("tcp", "", port, table=table) is False
    nat.publish("cb", [("tcp", net.gw, port, b.ip, 8080)], table=table)
    assert connect_from_host(net.gw, port) == f"b {net.gw}"
    assert connect_from_host("127.0.0.1", port) == f"a {net.gw}"
    with pytest.raises(PortAllocated, match=f"^Bind for 0.0.0.0:{port} failed: port is "
                                            "already allocated$"):
        nat.publish("cc", [("tcp", "", port, b.ip, 8080)], table=table)


def test_another_container_reaches_a_published_port(table, networks):
    net = networks(0)
    a, b = net.container(2), net.container(3)
    a.serve("a", 8080)
    a.serve("a-udp", 8053, "udp")
    tcp, udp = free_port(), free_port()
    nat.publish("ca", [("tcp", "", tcp, a.ip, 8080), ("udp", "", udp, a.ip, 8053)], table=table)
    # by the host's address; the answer comes back the way the request went (hairpin NAT)
    assert b.connect(net.gw, tcp) == f"a {net.gw}"
    assert b.connect(net.gw, udp, "udp") == f"a-udp {net.gw}"
    # and directly, unchanged
    assert b.connect(a.ip, 8080) == f"a {b.ip}"


def test_a_container_reaches_its_own_published_port_with_hairpin_mode(table, networks):
    """Through the host's address back to itself: with br_netfilter loaded (as here) the DNATed
    packet is bridged back out of the port it came in by, which the bridge does only with
    hairpin_mode on that port (docker sets it without the userland proxy). The test sets it on
    its own veth; nat's rules do the rest (the answer masqueraded to the gateway)."""
    net = networks(0)
    a = net.container(2)
    a.serve("a", 8080)
    port = free_port()
    nat.publish("ca", [("tcp", "", port, a.ip, 8080)], table=table)
    for veth in os.listdir(f"/sys/class/net/{net.bridge}/brif"):
        Path(f"/sys/class/net/{net.bridge}/brif/{veth}/hairpin_mode").write_text("1\n")
    assert a.connect(net.gw, port) == f"a {net.gw}"


def test_a_taken_port_is_refused_and_nothing_changes(table, networks):
    net = networks(0)
    a = net.container(2)
    a.serve("a", 8080)
    taken, other = free_port(), free_port()
    nat.publish("c1", [("tcp", "", taken, a.ip, 8080)], table=table)
    before = listing(table)
    message = "^Bind for {}:{} failed: port is already allocated$"
    with pytest.raises(PortAllocated, match=message.format("0.0.0.0", taken)):
        nat.publish("c2", [("tcp", "", other, a.ip, 8080), ("tcp", "", taken, a.ip, 8080)],
                    table=table)
    with pytest.raises(PortAllocated, match=message.format("127.0.0.1", taken)):
        nat.publish("c2", [("tcp", "127.0.0.1", taken, a.ip, 8080)], table=table)
    # a port a socket of the host is bound to (a listener; UDP: bound)
    with socket.socket() as listener, socket.socket(type=socket.SOCK_DGRAM) as dgram:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        dgram.bind(("0.0.0.0", 0))
        bound, bound_udp = listener.getsockname()[1], dgram.getsockname()[1]
        assert nat.port_free("tcp", "", bound, table=table) is False
        assert nat.port_free("udp", "", bound_udp, table=table) is False
        with pytest.raises(PortAllocated, match=message.format("0.0.0.0", bound)):
            nat.publish("c2", [("tcp", "", bound, a.ip, 8080)], table=table)
        with pytest.raises(PortAllocated, match=message.format("127.0.0.1", bound_udp)):
            nat.publish("c2", [("udp", "127.0.0.1", bound_udp, a.ip, 8080)], table=table)
    assert listing(table) == before
    assert nat.published(table) == {"c1": [("tcp", "", taken, a.ip, 8080)]}
    assert connect_from_host("127.0.0.1", other) == REFUSED
    # the key that has the port may publish it again (a replacement, not a clash)
    nat.publish("c1", [("tcp", "", taken, a.ip, 8080)], table=table)
    assert connect_from_host("127.0.0.1", taken) == f"a {net.gw}"


def test_unpublish_removes_exactly_that_keys_ports(table, networks):
    net = networks(0)
    a, b = net.container(2), net.container(3)
    a.serve("a", 8080)
    b.serve("b", 8080)
    pa1, pa2, pb = free_port(), free_port(), free_port()
    mine = [("tcp", "", pa1, a.ip, 8080), ("tcp", "127.0.0.1", pa2, a.ip, 8080)]
    nat.publish("ca", mine, table=table)
    nat.publish("cb", [("tcp", "", pb, b.ip, 8080)], table=table)
    assert nat.unpublish("ca", table=table) == sorted(mine)
    assert connect_from_host("127.0.0.1", pa1) == REFUSED
    assert connect_from_host("127.0.0.1", pa2) == REFUSED
    assert connect_from_host("127.0.0.1", pb) == f"b {net.gw}"
    assert nat.published(table) == {"cb": [("tcp", "", pb, b.ip, 8080)]}
    assert nat.unpublish("ca", table=table) == []
    assert nat.unpublish("never-published", table=table) == []
    assert nat.port_free("tcp", "", pa1, table=table) is True
    # publishing nothing is unpublishing
    nat.publish("cb", [], table=table)
    assert nat.published(table) == {}
    assert nat.unpublish("ca", table=unique("t")) == []   # no such table: nothing published


def test_published_reads_back_after_a_restart(table, networks):
    net = networks(0)
    a = net.container(2)
    a.serve("a", 8080)
    p = [free_port() for _ in range(4)]
    key = "f" * 64   # a container id
    mine = sorted([("tcp", "", p[0], a.ip, 8080), ("tcp", net.gw, p[1], a.ip, 22),
                   ("udp", "", p[2], a.ip, 53), ("udp", "127.0.0.1", p[3], a.ip, 8053)])
    nat.publish(key, mine, table=table)
    long_key = "k" * 128   # nft's longest comment
    nat.publish(long_key, [("tcp", "", p[3], a.ip, 1)], table=table)
    rules = rules_of(table, net.bridge)
    restart()
    assert nat.published(table) == {key: mine, long_key: [("tcp", "", p[3], a.ip, 1)]}
    restart()
    assert nat.port_free("tcp", "", p[0], table=table) is False
    restart()
    with pytest.raises(PortAllocated, match=f"0.0.0.0:{p[1]} failed"):
        nat.publish("other", [("tcp", "", p[1], a.ip, 8080)], table=table)
    restart()
    nat.ensure_table(table)   # kept as it is, with what the previous hawserd published
    assert connect_from_host("127.0.0.1", p[0]) == f"a {net.gw}"
    nat.add_network(net.bridge, net.subnet, False, table=table)   # replaces, no duplicates
    assert [r["expr"] for r in rules_of(table, net.bridge)] == [r["expr"] for r in rules]
    assert bridges_set(table) == [net.bridge]
    restart()
    assert nat.unpublish(key, table=table) == mine
    assert nat.published(table) == {long_key: [("tcp", "", p[3], a.ip, 1)]}


def test_publish_is_all_or_nothing(table, networks):
    net = networks(0)
    a = net.container(2)
    a.serve("a", 8080)
    old, first, behind = free_port(), free_port(), free_port()
    nat.publish("c1", [("tcp", "", old, a.ip, 8080)], table=table)
    # another hawserd published a port behind this process's back: the transaction fails on
    # it, the table is read again, and the clash is reported; nothing of the change is made
    subprocess.run(["nft", "add", "element", "ip", table, "tcp_any",
                    f'{{ {behind} comment "elsewhere" : {a.ip} . 8080 }}'], check=True)
    before = listing(table)
    with pytest.raises(PortAllocated, match=f"Bind for 0.0.0.0:{behind} failed"):
        nat.publish("c1", [("tcp", "", first, a.ip, 8080), ("tcp", "", behind, a.ip, 8080)],
                    table=table)
    assert listing(table) == before
    assert connect_from_host("127.0.0.1", first) == REFUSED
    assert connect_from_host("127.0.0.1", old) == f"a {net.gw}"
    assert nat.published(table) == {"c1": [("tcp", "", old, a.ip, 8080)],
                                    "elsewhere": [("tcp", "", behind, a.ip, 8080)]}
    # a bad binding anywhere in the list: nothing changes either
    with pytest.raises(InvalidConfig):
        nat.publish("c1", [("tcp", "", first, a.ip, 8080), ("tcp", "", 0, a.ip, 8080)],
                    table=table)
    # a replacement: the new ports in, the old out, in one go
    nat.publish("c1", [("tcp", "", first, a.ip, 8080)], table=table)
    assert connect_from_host("127.0.0.1", first) == f"a {net.gw}"
    assert connect_from_host("127.0.0.1", old) == REFUSED


def test_outgoing_traffic_is_masqueraded(table, networks):
    net, outside = networks(0), networks(1, nat_rules=False)
    a = net.container(2)
    o = outside.container(2, gateway=False)   # no route back to the containers' subnet
    o.serve("o", 9000)
    o.serve("o-udp", 9001, "udp")
    assert a.connect(o.ip, 9000) == f"o {outside.gw}"   # the host's address, not a's
    assert a.connect(o.ip, 9001, "udp") == f"o-udp {outside.gw}"
    nat.remove_network(net.bridge, net.subnet, table=table)
    assert quick(a, o.ip, 9000) == DROPPED   # the answer to a.ip goes nowhere


def test_an_internal_network_cannot_reach_outside_its_bridge(table, networks):
    inner, outside, net = networks(0, internal=True), networks(1, nat_rules=False), networks(2)
    i, j = inner.container(2), inner.container(3)
    o = outside.container(2, gateway=False)
    o.run("ip", "route", "add", inner.subnet, "via", outside.gw)
    c = net.container(2)
    for ns in (o, j, c):
        ns.serve("x", 9000)
    assert c.connect(o.ip, 9000) == f"x {outside.gw}"   # a normal network does
    assert quick(i, o.ip, 9000) == DROPPED
    assert quick(i, c.ip, 9000) == DROPPED
    assert quick(o, j.ip, 9000) == DROPPED   # nor is reached from outside
    assert quick(c, j.ip, 9000) == DROPPED
    assert i.connect(j.ip, 9000) == f"x {i.ip}"   # its own bridge: yes


def test_two_bridges_cannot_reach_each_other(table, networks):
    one, two = networks(0), networks(1)
    a, b = one.container(2), two.container(2)
    a.serve("a", 9000)
    b.serve("b", 9000)
    assert quick(a, b.ip, 9000) == DROPPED
    assert quick(b, a.ip, 9000) == DROPPED
    # but a port b's network publishes is reachable by the host's address, as from anywhere
    port = free_port()
    nat.publish("cb", [("tcp", "", port, b.ip, 9000)], table=table)
    assert a.connect(one.gw, port) == f"b {two.gw}"


def test_remove_network_removes_its_rules_only(table, networks):
    one, two, outside = networks(0), networks(1, internal=True), networks(2, nat_rules=False)
    a = one.container(2)
    o = outside.container(2, gateway=False)
    o.serve("o", 9000)
    assert bridges_set(table) == sorted([one.bridge, two.bridge])
    assert len(rules_of(table, one.bridge)) == 3 and len(rules_of(table, two.bridge)) == 3
    two_rules = rules_of(table, two.bridge)
    nat.remove_network(two.bridge, two.subnet, table=table)
    assert rules_of(table, two.bridge) == [] and bridges_set(table) == [one.bridge]
    assert rules_of(table, one.bridge) and a.connect(o.ip, 9000) == f"o {outside.gw}"
    nat.remove_network(two.bridge, two.subnet, table=table)   # nothing there: no error
    nat.add_network(two.bridge, two.subnet, True, table=table)
    assert [r["expr"] for r in rules_of(table, two.bridge)] == [r["expr"] for r in two_rules]
    # made internal -> not internal: the rules are replaced, not added to
    nat.add_network(two.bridge, two.subnet, False, table=table)
    assert [r["chain"] for r in two_rules] == ["postrouting", "networks", "networks"]
    assert [r["chain"] for r in rules_of(table, two.bridge)] == \
        ["postrouting", "postrouting", "networks"]
    nat.remove_network(one.bridge, one.subnet, table=table)
    assert rules_of(table, one.bridge) == [] and bridges_set(table) == [two.bridge]


def test_remove_table_removes_everything(ip_forward, networks, table):
    net = networks(0)
    nat.publish("c1", [("tcp", "", free_port(), f"{net.base}.2", 80)], table=table)
    assert f"table ip {table}\n" in tables()
    assert nat.remove_table(table) is True
    assert f"table ip {table}\n" not in tables()
    assert nat.published(table) == {}
    assert nat.remove_table(table) is False
    with pytest.raises(KernelError, match=f"table ip {table} does not exist"):
        nat.publish("c1", [("tcp", "", free_port(), f"{net.base}.2", 80)], table=table)
    with pytest.raises(KernelError, match=f"table ip {table} does not exist"):
        nat.add_network(net.bridge, net.subnet, False, table=table)
    nat.remove_network(net.bridge, net.subnet, table=table)   # no table: nothing to remove
    nat.ensure_table(table)   # made again, empty
    assert nat.published(table) == {} and bridges_set(table) == []


def test_invalid_input_is_refused_with_a_clear_message(table):
    good = ("tcp", "", free_port(), "10.204.0.2", 80)
    before = listing(table)
    for bad in ("", "1abc", "bad name", "a;b", "a" * 32, None):
        with pytest.raises(InvalidConfig, match="invalid nftables table name"):
            nat.ensure_table(bad)
        with pytest.raises(InvalidConfig, match="invalid nftables table name"):
            nat.publish("c1", [good], table=bad)
    for key in ("", "a b", 'a"b', "a/b", "k" * 129, None, 7):
        with pytest.raises(InvalidConfig, match="invalid key .* for published ports"):
            nat.publish(key, [good], table=table)
        with pytest.raises(InvalidConfig, match="invalid key"):
            nat.unpublish(key, table=table)
    cases = [
        (("sctp", "", 8080, "10.204.0.2", 80), "invalid protocol 'sctp'"),
        (("TCP", "", 8080, "10.204.0.2", 80), "invalid protocol 'TCP'"),
        (("tcp", "", 0, "10.204.0.2", 80), "invalid port 0 .*1 to 65535"),
        (("tcp", "", 65536, "10.204.0.2", 80), "invalid port 65536"),
        (("tcp", "", "80", "10.204.0.2", 80), "invalid port '80'"),
        (("tcp", "", True, "10.204.0.2", 80), "invalid port True"),
        (("tcp", "", 8080, "10.204.0.2", -1), "invalid port -1"),
        (("tcp", "1.2.3", 8080, "10.204.0.2", 80), "invalid address in port binding"),
        (("tcp", "", 8080, "::1", 80), "invalid address in port binding"),
        (("tcp", "", 8080, "10.204.0.2"), r"invalid port binding .*\(proto, host_ip"),
        (None, "invalid port binding None"),
        # an address that is not the host's: nothing could bind it
        (("tcp", "192.0.2.77", free_port(), "10.204.0.2", 80), "not an address of this host"),
    ]
    for binding, message in cases:
        with pytest.raises(InvalidConfig, match=message):
            nat.publish("c1", [good, binding], table=table)
    with pytest.raises(InvalidConfig, match=f"port 0.0.0.0:{good[2]}/tcp is published twice"):
        nat.publish("c1", [good, ("tcp", "", good[2], "10.204.0.3", 81)], table=table)
    with pytest.raises(InvalidConfig, match="invalid protocol"):
        nat.port_free("icmp", "", 80, table=table)
    for name in ("", "a b", 'a"b', "br*", "a" * 16, "a/b", None):
        with pytest.raises(InvalidConfig, match="invalid bridge name"):
            nat.add_network(name, "10.204.0.0/24", False, table=table)
    for subnet in ("10.204.0.1/24", "10.204.0.0/33", "fd00::/64", "x"):
        with pytest.raises(InvalidConfig, match=f"invalid subnet '{subnet}'"):
            nat.add_network("hwtnobr", subnet, False, table=table)
    assert listing(table) == before
