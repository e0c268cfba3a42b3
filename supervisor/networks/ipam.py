"""Subnets for new networks and the checks of user-given ones; a network's gateway and an
endpoint's MAC. IPv4 only (as hawserd's networks).

Where subnets come from (both from private ranges the peers also use, so an operator who keeps
them free for containers keeps them free for hawser too):
- WIDE_POOL, for /16s (the default `bridge` network): docker's default pool, 172.17.0.0/16 to
  172.31.0.0/16 (docker0 is 172.17.0.0/16).
- NARROW_POOL, for /24s (user networks): podman's pool for new networks, 10.89.0.0/24 to
  10.255.255.0/24.
A request tries the pool of its size first, then the other. A candidate is skipped when it
overlaps another network's subnet or any of the host's routes or interface addresses (a VPN,
a LAN, docker's or podman's bridges), read by netlink when the network is made.
"""
import ipaddress
from ipaddress import IPv4Address, IPv4Network

from supervisor.networks.errors import Exhausted, InvalidConfig

WIDE_POOL = (IPv4Address("172.17.0.0"), IPv4Address("172.31.255.255"))
NARROW_POOL = (IPv4Address("10.89.0.0"), IPv4Address("10.255.255.255"))
# /31 and /32 have no address for a container besides the gateway; below /8 a network would
# swallow whole private ranges.
MIN_PREFIX, MAX_PREFIX = 8, 30


def _candidates(pool, prefix: int):
    first, last = pool
    size = 1 << (32 - prefix)
    start = (int(first) + size - 1) // size * size   # the first aligned block in the pool
    for base in range(start, int(last) + 1 - size + 1, size):
        yield IPv4Network((base, prefix))


def _networks(cidrs) -> list[IPv4Network]:
    return [ipaddress.ip_network(c, strict=False) for c in cidrs
            if ipaddress.ip_network(c, strict=False).version == 4]


def free_subnet(taken: list[str], host_routes: list[str], prefix: int = 24) -> str:
    """The first subnet of that prefix length in hawserd's pools that overlaps neither a
    subnet in taken nor a host route or address (default routes, /0, are ignored)."""
    if not MIN_PREFIX <= prefix <= MAX_PREFIX:
        raise InvalidConfig(f"a subnet's prefix length must be {MIN_PREFIX} to {MAX_PREFIX}, "
                            f"not {prefix}")
    busy = _networks(taken) + [n for n in _networks(host_routes) if n.prefixlen > 0]
    pools = (WIDE_POOL, NARROW_POOL) if prefix <= 16 else (NARROW_POOL, WIDE_POOL)
    for pool in pools:
        for candidate in _candidates(pool, prefix):
            if not any(candidate.overlaps(b) for b in busy):
                return str(candidate)
    raise Exhausted(f"no free /{prefix} subnet left in hawserd's address pools "
                    f"(172.17.0.0-172.31.255.255, 10.89.0.0-10.255.255.255)")


def gateway_of(subnet: str) -> str:
    """A network's gateway (the bridge's address): the subnet's first host address."""
    return str(IPv4Network(subnet).network_address + 1)


def mac_of(ip: str) -> str:
    """docker's MAC for an address: 02:42 (locally administered) then the address's bytes."""
    return "02:42:" + ":".join(f"{b:02x}" for b in IPv4Address(ip).packed)


def host_networks() -> list[str]:
    """The host's IPv4 routes (every table) and interface addresses, as CIDRs: what a new
    network must not overlap. Read by netlink in this thread's namespace (the host's)."""
    from supervisor.networks.netlink import IPRoute  # here: the pure functions need none
    out = []
    with IPRoute(groups=0) as ipr:
        for route in ipr.route("dump", family=2):
            dst = route.get_attr("RTA_DST")
            if dst and route["dst_len"] > 0:
                out.append(f"{dst}/{route['dst_len']}")
        for addr in ipr.get_addr(family=2):
            out.append(f"{addr.get_attr('IFA_ADDRESS')}/{addr['prefixlen']}")
    return out


def check_subnet(subnet: str, gateway: str | None, taken: list[str],
                 host_routes: list[str]) -> tuple[str, str]:
    """A user-given --subnet (and --gateway) checked: (subnet, gateway) in canonical form,
    the gateway defaulting to the first host address. InvalidConfig says what is wrong."""
    try:
        net = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise InvalidConfig(f"invalid subnet {subnet!r}: not an address/prefix (CIDR)") from None
    if net.version != 4:
        raise InvalidConfig(f"invalid subnet {subnet}: only IPv4 subnets are supported")
    if str(net) != subnet.strip():
        raise InvalidConfig(f"invalid subnet {subnet}: not a network address "
                            f"(did you mean {net}?)")
    if not MIN_PREFIX <= net.prefixlen <= MAX_PREFIX:
        raise InvalidConfig(f"invalid subnet {subnet}: the prefix length must be "
                            f"{MIN_PREFIX} to {MAX_PREFIX}")
    gw = _check_gateway(net, gateway) if gateway else net.network_address + 1
    for other in _networks(taken):
        if net.overlaps(other):
            raise InvalidConfig(f"subnet {net} overlaps {other}, the subnet of another network")
    for route in _networks(host_routes):
        if route.prefixlen > 0 and net.overlaps(route):
            raise InvalidConfig(f"subnet {net} overlaps the host's route or address {route}")
    return str(net), str(gw)


def _check_gateway(net: IPv4Network, gateway: str) -> IPv4Address:
    try:
        gw = IPv4Address(gateway)
    except ValueError:
        raise InvalidConfig(f"invalid gateway {gateway!r}: not an IPv4 address") from None
    if gw not in net:
        raise InvalidConfig(f"gateway {gw} is outside the subnet {net}")
    if gw in (net.network_address, net.broadcast_address):
        which = "network" if gw == net.network_address else "broadcast"
        raise InvalidConfig(f"gateway {gw} is the subnet {net}'s {which} address")
    return gw


def check_address(subnet: str, gateway: str, ip: str) -> str:
    """An address asked for an endpoint: a host address of the subnet that is not the gateway."""
    net = IPv4Network(subnet)
    try:
        addr = IPv4Address(ip)
    except ValueError:
        raise InvalidConfig(f"invalid address {ip!r}: not an IPv4 address") from None
    if addr not in net:
        raise InvalidConfig(f"address {addr} is outside the network's subnet {net}")
    if addr in (net.network_address, net.broadcast_address):
        raise InvalidConfig(f"address {addr} is the subnet {net}'s "
                            f"{'network' if addr == net.network_address else 'broadcast'} address")
    if str(addr) == gateway:
        raise InvalidConfig(f"address {addr} is the network's gateway")
    return str(addr)
