"""The networks store and its IPAM on a real meta.db, and subnet choice against real routes
(read by netlink in a namespace of the test's own)."""
import ipaddress
import sqlite3
import threading

import pytest

from supervisor.networks import ipam, netns
from supervisor.networks.store import (AlreadyExists, Ambiguous, Exhausted, InUse, InvalidConfig,
                                       NetworkStore, NotFound)
from netns_harness import link_prefix, make_netns  # noqa: F401 (fixtures)


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "meta.db")


@pytest.fixture
def store(db):
    s = NetworkStore(db)
    yield s
    s.close()


def test_addresses_are_handed_out_lowest_first_and_reused_after_release(store):
    net = store.create("front", "10.200.0.0/24", "", "", labels={"a": "b"})
    assert net["gateway"] == "10.200.0.1" and net["bridge"] == "hw-" + net["id"][:12]
    assert len(net["id"]) == 64 and net["labels"] == {"a": "b"} and net["internal"] is False
    ips = [store.allocate(net["id"], f"c{i}")["ip"] for i in range(3)]
    assert ips == ["10.200.0.2", "10.200.0.3", "10.200.0.4"]
    assert store.release(net["id"], "c1") is True
    assert store.release(net["id"], "c1") is False
    again = store.allocate(net["id"], "c9", aliases=["web"], interface="eth1")
    assert again == {"network_id": net["id"], "container_id": "c9", "ip": "10.200.0.3",
                     "mac": "02:42:0a:c8:00:03", "aliases": ["web"], "interface": "eth1",
                     "created": again["created"]}
    assert [e["container_id"] for e in store.endpoints(network_id=net["id"])] == ["c0", "c2", "c9"]
    assert store.endpoints(container_id="c9") == [again]


def test_an_address_asked_for(store):
    net = store.create("n", "10.200.1.0/24", "10.200.1.254", "")
    assert store.allocate(net["id"], "a", ip="10.200.1.1")["ip"] == "10.200.1.1"
    with pytest.raises(AlreadyExists, match="address 10.200.1.1 is already in use on network n"):
        store.allocate(net["id"], "b", ip="10.200.1.1")
    with pytest.raises(InvalidConfig, match="outside the network's subnet 10.200.1.0/24"):
        store.allocate(net["id"], "b", ip="10.9.9.9")
    with pytest.raises(InvalidConfig, match="is the network's gateway"):
        store.allocate(net["id"], "b", ip="10.200.1.254")
    with pytest.raises(InvalidConfig, match="broadcast address"):
        store.allocate(net["id"], "b", ip="10.200.1.255")
    with pytest.raises(InvalidConfig, match="not an IPv4 address"):
        store.allocate(net["id"], "b", ip="10.200.1")
    # the lowest free one skips the gateway wherever it is, and the taken .1
    assert store.allocate(net["id"], "b")["ip"] == "10.200.1.2"
    assert [e["container_id"] for e in store.endpoints()] == ["a", "b"]  # no row from a refusal


def test_a_full_subnet_is_exhausted(store):
    net = store.create("tiny", "10.200.2.0/30", "", "")  # .1 gateway, .2 the only host left
    assert store.allocate(net["id"], "a")["ip"] == "10.200.2.2"
    with pytest.raises(Exhausted, match=r"no address left on network tiny \(10.200.2.0/30\)"):
        store.allocate(net["id"], "b")
    with pytest.raises(AlreadyExists, match="already connected to network tiny"):
        store.allocate(net["id"], "a")
    assert store.endpoints(container_id="b") == []


def test_no_address_twice_under_threads_and_two_connections(db, store):
    net = store.create("busy", "10.200.3.0/24", "", "")
    other = NetworkStore(db)  # a second connection to the same meta.db
    got, errors = [], []

    def grab(s, worker):
        for i in range(30):
            try:
                got.append(s.allocate(net["id"], f"w{worker}-{i}")["ip"])
            except Exception as e:  # noqa: BLE001 (reported below)
                errors.append(e)
    threads = [threading.Thread(target=grab, args=(store if w % 2 else other, w))
               for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.close()
    assert errors == []
    assert len(got) == 240 and len(set(got)) == 240
    assert set(got) == {f"10.200.3.{i}" for i in range(2, 242)}


def test_allocations_survive_a_restart(db):
    first = NetworkStore(db)
    net = first.create("kept", "10.200.4.0/24", "", "")
    first.allocate(net["id"], "a")
    first.allocate(net["id"], "b")
    first.release(net["id"], "a")
    first.close()
    second = NetworkStore(db)
    assert second.get("kept") == net
    assert [e["ip"] for e in second.endpoints()] == ["10.200.4.3"]
    assert second.allocate(net["id"], "c")["ip"] == "10.200.4.2"
    assert second.allocate(net["id"], "d")["ip"] == "10.200.4.4"
    # the UNIQUE constraint holds even against a writer that bypasses the store
    raw = sqlite3.connect(db)
    with pytest.raises(sqlite3.IntegrityError):
        raw.execute("INSERT INTO endpoints VALUES (?, 'x', '10.200.4.4', '', '[]', 'eth0', 0)",
                    (net["id"],))
    raw.close()
    second.close()


def test_lookup_by_name_id_and_prefix(store):
    a = store.create("alpha", "10.200.5.0/24", "", "", network_id="ab" + "0" * 62)
    b = store.create("beta", "10.200.6.0/24", "", "", network_id="ac" + "1" * 62)
    assert store.get("alpha") == a and store.get(b["id"]) == b and store.get("ab") == a
    with pytest.raises(Ambiguous, match="network a is ambiguous"):
        store.get("a")
    with pytest.raises(NotFound, match="network zz not found"):
        store.get("zz")
    # a name is found before an id prefix that it also is
    c = store.create("ac", "10.200.7.0/24", "", "")
    assert store.get("ac") == c
    assert [n["name"] for n in store.list()] == ["alpha", "beta", "ac"]


def test_bad_networks_are_refused_and_leave_nothing(store):
    store.create("one", "10.200.8.0/24", "", "hwtbr1")
    cases = [
        (dict(name="one", subnet="10.200.9.0/24"), AlreadyExists, "network with name one already"),
        (dict(name="two", subnet="10.200.8.128/25"), InvalidConfig,
         "overlaps 10.200.8.0/24, the subnet of another network"),
        (dict(name="two", subnet="10.200.9.1/24"), InvalidConfig,
         r"not a network address \(did you mean 10.200.9.0/24\?\)"),
        (dict(name="two", subnet="10.200.9.0/24", gateway="10.200.10.1"), InvalidConfig,
         "gateway 10.200.10.1 is outside the subnet 10.200.9.0/24"),
        (dict(name="two", subnet="10.200.9.0/24", gateway="10.200.9.0"), InvalidConfig,
         "network address"),
        (dict(name="two", subnet="10.200.9.0/31"), InvalidConfig, "prefix length must be 8 to 30"),
        (dict(name="two", subnet="fd00::/64"), InvalidConfig, "only IPv4"),
        (dict(name="two", subnet="banana"), InvalidConfig, "not an address/prefix"),
        (dict(name="two", subnet="", gateway="10.1.1.1"), InvalidConfig, "needs a subnet"),
        (dict(name="-x", subnet="10.200.9.0/24"), InvalidConfig, "invalid network name"),
        (dict(name="two", subnet="10.200.9.0/24", bridge="hwtbr1"), AlreadyExists,
         "bridge hwtbr1 is already used"),
        (dict(name="two", subnet="10.200.9.0/24", bridge="x" * 16), InvalidConfig,
         "invalid bridge name"),
        (dict(name="two", subnet="10.200.9.0/24", host_routes=["10.200.9.64/26"]),
         InvalidConfig, "overlaps the host's route or address 10.200.9.64/26"),
    ]
    for args, error, message in cases:
        args = dict(dict(gateway="", bridge=""), **args)
        with pytest.raises(error, match=message):
            store.create(args.pop("name"), args.pop("subnet"), args.pop("gateway"),
                         args.pop("bridge"), **args)
    assert [n["name"] for n in store.list()] == ["one"]


def test_a_network_in_use_is_not_deleted(store):
    net = store.create("used", "10.200.11.0/24", "", "")
    store.allocate(net["id"], "a")
    store.allocate(net["id"], "b", interface="eth0")
    with pytest.raises(InUse, match=f"network used id {net['id']} has active endpoints"):
        store.delete(net["id"])
    assert [e["ip"] for e in store.release_all("a")] == ["10.200.11.2"]
    assert store.release_all("a") == []
    store.release(net["id"], "b")
    store.delete(net["id"])
    assert store.list() == []
    with pytest.raises(NotFound):
        store.delete(net["id"])


def test_free_subnets_skip_taken_ones():
    assert ipam.free_subnet([], [], 16) == "172.17.0.0/16"
    assert ipam.free_subnet(["172.17.0.0/16", "172.18.3.0/24"], [], 16) == "172.19.0.0/16"
    assert ipam.free_subnet([], [], 24) == "10.89.0.0/24"
    assert ipam.free_subnet(["10.89.0.0/24"], ["10.89.1.7/32", "0.0.0.0/0"], 24) == "10.89.2.0/24"
    with pytest.raises(InvalidConfig, match="prefix length must be 8 to 30"):
        ipam.free_subnet([], [], 31)
    # every /16 of the wide pool gone: the narrow pool's /16s follow
    wide = [f"172.{n}.0.0/16" for n in range(17, 32)]
    assert ipam.free_subnet(wide, [], 16) == "10.89.0.0/16"
    with pytest.raises(ipam.Exhausted, match="no free /16 subnet"):
        ipam.free_subnet(wide + ["10.0.0.0/8"], [], 16)


def test_free_subnets_avoid_the_routes_and_addresses_of_a_real_namespace(make_netns):
    ns = make_netns()
    ns.run("ip", "link", "add", "lan0", "type", "bridge")  # no dummy driver here
    ns.run("ip", "link", "set", "lan0", "up")
    ns.run("ip", "addr", "add", "172.17.3.1/24", "dev", "lan0")   # an address in 172.17/16
    ns.run("ip", "route", "add", "10.89.0.0/23", "dev", "lan0")   # a route over two /24s
    ns.run("ip", "route", "add", "172.19.0.0/16", "via", "172.17.3.9")
    routes = netns.run_in(ns.path, ipam.host_networks)
    assert {"172.17.3.0/24", "10.89.0.0/23", "172.19.0.0/16"} <= set(routes)
    assert ipam.free_subnet([], routes, 16) == "172.18.0.0/16"
    assert ipam.free_subnet(["172.18.0.0/16"], routes, 16) == "172.20.0.0/16"
    assert ipam.free_subnet([], routes, 24) == "10.89.2.0/24"
    subnet, gateway = ipam.check_subnet("10.90.0.0/24", None, [], routes)
    assert (subnet, gateway) == ("10.90.0.0/24", "10.90.0.1")
    with pytest.raises(InvalidConfig, match="overlaps the host's route or address 10.89.0.0/23"):
        ipam.check_subnet("10.89.1.0/24", None, [], routes)


def test_gateway_and_mac():
    assert ipam.gateway_of("172.17.0.0/16") == "172.17.0.1"
    assert ipam.mac_of("172.17.0.2") == "02:42:ac:11:00:02"
    assert ipaddress.ip_address(ipam.gateway_of("10.89.4.0/24")) in ipaddress.ip_network(
        "10.89.4.0/24")
