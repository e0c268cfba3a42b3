"""Bridges and the veth pairs of endpoints, by netlink (pyroute2) in hawserd's own process.

No fork, no `ip` subprocess: the host side is a netlink socket of the calling thread's namespace
(the host's); a container's side is a netlink socket opened inside its namespace by a helper
thread (netns.py), usable from the caller's thread. A veth's container end is made directly in
the container's namespace with its final name and MAC (one RTM_NEWLINK carrying the peer's
IFLA_NET_NS_FD, on the bridge and up on the host side): the same result as `ip link add`, move,
rename, but one request instead of four. Every function undoes what it made when it fails.
"""
import errno
import ipaddress
import os
import re
import secrets
from contextlib import contextmanager

from supervisor.networks.netlink import IPRoute, NetlinkError

from supervisor.networks import netns, sysctl
from supervisor.networks.errors import AlreadyExists, InvalidConfig, KernelError, NotFound

IFNAME_RE = re.compile(r"[^/\s:]{1,15}")  # the kernel's dev_valid_name, and ':' (aliases)
MAC_RE = re.compile(r"[0-9a-f]{2}(:[0-9a-f]{2}){5}")
HOST_PREFIX = "hw"  # the host end of every endpoint's veth: hw + 6 hex
NAME_TRIES = 5


@contextmanager
def _netlink(netns_path: str | None = None):
    """An IPRoute whose socket lives in the namespace at netns_path (None: this thread's)."""
    if netns_path is None:
        ipr = IPRoute(groups=0)
    else:
        fd = netns.netlink_socket(netns_path).detach()
        try:
            ipr = IPRoute(fileno=fd, groups=0)
        except BaseException:
            os.close(fd)
            raise
    try:
        yield ipr
    finally:
        ipr.close()


def _index(ipr, ifname: str) -> int | None:
    found = ipr.link_lookup(ifname=ifname)
    return found[0] if found else None


def _failed(what: str, e: NetlinkError) -> KernelError:
    return KernelError(f"{what}: {os.strerror(e.code) if e.code > 0 else e}")


def _namespace_error(e: netns.NamespaceError):
    if e.errno in (errno.ENOENT, errno.ESRCH):
        return NotFound(str(e))
    return InvalidConfig(f"not a network namespace: {e}")  # EINVAL from setns


def _check_ifname(ifname: str, what: str) -> None:
    if not isinstance(ifname, str) or not IFNAME_RE.fullmatch(ifname) or ifname in (".", ".."):
        raise InvalidConfig(f"invalid {what} {ifname!r}: 1 to 15 characters, no '/', ':' "
                            "or spaces")


def _check_address(ip: str, prefix_len: int, what: str) -> ipaddress.IPv4Interface:
    if not isinstance(prefix_len, int) or not 0 <= prefix_len <= 32:
        raise InvalidConfig(f"invalid prefix length {prefix_len!r} for {what}: 0 to 32")
    try:
        return ipaddress.IPv4Interface(f"{ip}/{prefix_len}")
    except ValueError:
        raise InvalidConfig(f"invalid {what} {ip!r}: not an IPv4 address") from None


# bridges

def ensure_bridge(name: str, gateway: str, prefix_len: int) -> None:
    """The bridge `name` exists, has gateway/prefix_len as its only IPv4 address, is up, and
    routes 127.0.0.0/8 (route_localnet: a DNAT of 127.0.0.1 to a container leaves through it).
    Idempotent; a bridge it made is removed again if a later step fails."""
    _check_ifname(name, "bridge name")
    want = _check_address(gateway, prefix_len, "gateway")
    with _netlink() as ipr:
        index, made = _index(ipr, name), False
        if index is None:
            try:
                ipr.link("add", ifname=name, kind="bridge")
                made = True
            except NetlinkError as e:
                if e.code != errno.EEXIST:  # EEXIST: made by a concurrent caller meanwhile
                    raise _failed(f"creating bridge {name}", e) from None
            index = _index(ipr, name)
        try:
            _configure_bridge(ipr, name, index, want)
        except BaseException:
            if made:
                ipr.link("del", index=index)
            raise


def _configure_bridge(ipr, name: str, index: int, want: ipaddress.IPv4Interface) -> None:
    link = ipr.get_links(index)[0]
    info = link.get_attr("IFLA_LINKINFO")
    if info is None or info.get_attr("IFLA_INFO_KIND") != "bridge":
        raise AlreadyExists(f"interface {name} exists and is not a bridge")
    have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in ipr.get_addr(index=index,
                                                                               family=2)}
    try:
        for address, prefix in have - {(str(want.ip), want.network.prefixlen)}:
            ipr.addr("del", index=index, address=address, prefixlen=prefix)
        if (str(want.ip), want.network.prefixlen) not in have:
            ipr.addr("add", index=index, address=str(want.ip), prefixlen=want.network.prefixlen,
                     broadcast=str(want.network.broadcast_address))
        ipr.link("set", index=index, state="up")
    except NetlinkError as e:
        raise _failed(f"configuring bridge {name} ({want})", e) from None
    sysctl.write(sysctl.interface_key(name, "route_localnet"), "1")


def delete_bridge(name: str) -> bool:
    """Removes the bridge (its ports are released, not removed); False if there was none."""
    _check_ifname(name, "bridge name")
    with _netlink() as ipr:
        index = _index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as e:
            if e.code == errno.ENODEV:
                return False
            raise _failed(f"deleting bridge {name}", e) from None
    return True


# endpoints

def attach(netns_path: str, bridge: str, ifname: str, ip: str, prefix_len: int, mac: str,
           gateway: str | None = None, *, host_prefix: str = HOST_PREFIX) -> str:
    """A veth pair: its host end (host_prefix + 6 hex, returned) on `bridge` and up; its other
    end in the namespace at netns_path named ifname with mac and ip/prefix_len, up, and the
    default route via gateway when given. On any failure the pair is removed (both ends go
    together), so nothing is left."""
    _check_ifname(ifname, "interface name")
    _check_ifname(bridge, "bridge name")
    address = _check_address(ip, prefix_len, "address")
    mac = mac.lower() if isinstance(mac, str) else mac
    if not isinstance(mac, str) or not MAC_RE.fullmatch(mac) or int(mac[:2], 16) & 1:
        raise InvalidConfig(f"invalid MAC address {mac!r}: six hex bytes, not multicast")
    if gateway is not None:
        gw = _check_address(gateway, 32, "gateway").ip
        if gw not in address.network or gw == address.ip:
            raise InvalidConfig(f"gateway {gateway} is not another address of {address.network}")
    _check_ifname(host_prefix + "000000", "host interface prefix")
    try:
        ns_fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as e:
        raise NotFound(f"network namespace {netns_path}: {e.strerror}") from None
    try:
        with _netlink() as host, _netlink(netns_path) as inside:
            bridge_index = _index(host, bridge)
            if bridge_index is None:
                raise NotFound(f"bridge {bridge} not found")
            if _index(inside, ifname) is not None:
                raise AlreadyExists(f"interface {ifname} already exists in {netns_path}")
            host_ifname = _create_pair(host, bridge_index, ifname, mac, ns_fd, host_prefix)
            try:
                _configure_inside(inside, ifname, address, gateway)
            except BaseException:
                host.link("del", ifname=host_ifname)
                raise
    except netns.NamespaceError as e:
        raise _namespace_error(e) from None
    finally:
        os.close(ns_fd)
    return host_ifname


def _create_pair(host, bridge_index: int, ifname: str, mac: str, ns_fd: int,
                 host_prefix: str) -> str:
    for _ in range(NAME_TRIES):
        host_ifname = host_prefix + secrets.token_hex(3)
        try:
            host.link("add", ifname=host_ifname, kind="veth", master=bridge_index, state="up",
                      peer={"ifname": ifname, "address": mac, "net_ns_fd": ns_fd})
            try:
                _hairpin(host_ifname)
            except KernelError:
                host.link("del", ifname=host_ifname)
                raise
            return host_ifname
        except NetlinkError as e:
            if e.code != errno.EEXIST:  # EEXIST: the random host name is taken, draw again
                raise _failed(f"creating the veth pair for {ifname}", e) from None
    raise KernelError(f"creating the veth pair for {ifname}: no free {host_prefix}* name")


def _hairpin(host_ifname: str) -> None:
    """The bridge port sends a frame back out of the port it came in by: a container reaching
    its own published port through the gateway (DNAT back to itself) gets its answer when
    br_netfilter makes bridged traffic pass the host's rules, as docker sets it."""
    try:
        with open(f"/sys/class/net/{host_ifname}/brport/hairpin_mode", "w") as f:
            f.write("1")
    except OSError as e:
        raise KernelError(f"hairpin mode on {host_ifname}: {e.strerror}") from None


def _configure_inside(inside, ifname: str, address: ipaddress.IPv4Interface,
                      gateway: str | None) -> None:
    index = _index(inside, ifname)
    step = f"adding address {address} to {ifname}"
    try:
        inside.addr("add", index=index, address=str(address.ip),
                    prefixlen=address.network.prefixlen,
                    broadcast=str(address.network.broadcast_address))
        step = f"setting {ifname} up"
        inside.link("set", index=index, state="up")
        if gateway is not None:
            step = f"adding the default route via {gateway}"
            inside.route("add", dst="0.0.0.0/0", gateway=gateway, oif=index)
    except NetlinkError as e:
        if e.code == errno.EEXIST and gateway is not None and step.startswith("adding the def"):
            raise AlreadyExists(f"{step}: the namespace already has a default route") from None
        raise _failed(step, e) from None


def detach(netns_path: str, ifname: str) -> bool:
    """Removes the endpoint's veth pair by its end in the namespace; False if there is none
    (also when the namespace is gone: its veths went with it)."""
    _check_ifname(ifname, "interface name")
    try:
        with _netlink(netns_path) as inside:
            index = _index(inside, ifname)
            if index is None:
                return False
            inside.link("del", index=index)
    except netns.NamespaceError as e:
        if e.errno in (errno.ENOENT, errno.ESRCH):
            return False
        raise _namespace_error(e) from None
    except NetlinkError as e:
        if e.code == errno.ENODEV:
            return False
        raise _failed(f"deleting {ifname} in {netns_path}", e) from None
    return True


def loopback_up(netns_path: str) -> None:
    """lo up in the namespace (a new namespace has it down: 127.0.0.1 would not answer)."""
    try:
        with _netlink(netns_path) as inside:
            inside.link("set", index=_index(inside, "lo"), state="up")
    except netns.NamespaceError as e:
        raise _namespace_error(e) from None
    except NetlinkError as e:
        raise _failed(f"setting lo up in {netns_path}", e) from None


def links_in(netns_path: str) -> list[tuple[str, list[str]]]:
    """The namespace's interfaces, by index: (name, [address/prefix, ...]) (IPv4 only)."""
    try:
        with _netlink(netns_path) as inside:
            addresses: dict[int, list[str]] = {}
            for a in inside.get_addr(family=2):
                addresses.setdefault(a["index"], []).append(
                    f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}")
            return [(link.get_attr("IFLA_IFNAME"), addresses.get(link["index"], []))
                    for link in sorted(inside.get_links(), key=lambda link: link["index"])]
    except netns.NamespaceError as e:
        raise _namespace_error(e) from None
