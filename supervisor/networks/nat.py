"""hawserd's nftables table (`ip hawser`): outgoing NAT of its networks, published ports, and
forwarding to and from its bridges. Everything of hawserd's is in this one table, so removing
the table removes exactly what hawserd added (docker's iptables chains, podman's tables and the
host's own rules are other tables). Every function takes the table's name (tests use their own).

Published ports are elements of four maps (tcp/udp, a given host address or any local one),
each element's comment the key it was published for (a container id): published() reads them
back after a restart, unpublish() removes exactly that key's. A change is one `nft -f -`
transaction: all of it or nothing. DNAT happens in prerouting (other hosts, containers) and
output (the host itself, 127.0.0.1 too: the bridge has route_localnet and 127.0.0.0/8 leaving a
bridge is masqueraded), for destinations that are local addresses (`fib daddr type local`).
A container reaching a published port of its own network (hairpin) is masqueraded to the
gateway, so the answer comes back the way the request went.
"""
import ipaddress
import re
import subprocess
import threading

from supervisor.networks import bindings as ports
from supervisor.networks import nftjson, sysctl
from supervisor.networks.errors import InvalidConfig, KernelError, PortAllocated

TABLE = "hawser"
KEY_RE = re.compile(r"[A-Za-z0-9_.:-]{1,128}")   # an nft comment: at most 128 bytes, no quote
TABLE_RE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,30}")

SKELETON = """
table ip {t} {{
    set bridges {{ type ifname; }}
    map tcp_ip {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
    map tcp_any {{ type inet_service : ipv4_addr . inet_service; }}
    map udp_ip {{ type ipv4_addr . inet_service : ipv4_addr . inet_service; }}
    map udp_any {{ type inet_service : ipv4_addr . inet_service; }}
    chain published {{
        meta l4proto tcp dnat ip to ip daddr . tcp dport map @tcp_ip
        meta l4proto tcp dnat ip to tcp dport map @tcp_any
        meta l4proto udp dnat ip to ip daddr . udp dport map @udp_ip
        meta l4proto udp dnat ip to udp dport map @udp_any
    }}
    chain prerouting {{
        type nat hook prerouting priority dstnat; policy accept;
        fib daddr type local jump published
    }}
    chain output {{
        type nat hook output priority -100; policy accept;
        fib daddr type local jump published
    }}
    chain postrouting {{
        type nat hook postrouting priority srcnat; policy accept;
        oifname @bridges ip saddr 127.0.0.0/8 masquerade
    }}
    chain networks {{
    }}
    chain forward {{
        type filter hook forward priority filter; policy accept;
        ct state established,related accept
        jump networks
        iifname @bridges accept
        oifname @bridges accept
    }}
}}
"""

_lock = threading.Lock()   # one read-modify-write of a table at a time in this process
# What this process knows is in each table (filled from the kernel, then kept by each change),
# so the calls of a container's start (ensure_table, add_network, publish) cost at most one
# nft run: {table: {key: [binding, ...]}} and {table: {bridge: (subnet, internal)}}.
_published: dict[str, dict[str, list[tuple]]] = {}
_networks: dict[str, dict[str, tuple[str, bool]]] = {}


def _check_table(table: str) -> None:
    if not isinstance(table, str) or not TABLE_RE.fullmatch(table):
        raise InvalidConfig(f"invalid nftables table name {table!r}: a letter, then up to 30 "
                            "letters, digits or _")


def _nft(script: str, what: str) -> None:
    done = subprocess.run(["nft", "-f", "-"], input=script, capture_output=True, text=True)
    if done.returncode:
        raise KernelError(f"{what}: nft: {done.stderr.strip()}")


def _listing(table: str) -> list[dict] | None:
    """The table's objects as nft's JSON, None if there is no such table."""
    done = subprocess.run(["nft", "-j", "-a", "list", "table", "ip", table],
                          capture_output=True, text=True)
    if done.returncode:
        if "No such file or directory" in done.stderr:
            return None
        raise KernelError(f"listing nftables table ip {table}: {done.stderr.strip()}")
    return nftjson.objects(done.stdout)


def _forget(table: str) -> None:
    _published.pop(table, None)
    _networks.pop(table, None)


def _load(table: str) -> bool:
    """The table's published ports read from the kernel into _published; False if there is
    no such table."""
    objects = _listing(table)
    if objects is None:
        _forget(table)
        return False
    _published[table] = nftjson.published(objects)
    return True


def _missing(table: str) -> KernelError:
    return KernelError(f"nftables table ip {table} does not exist (ensure_table first)")


def ensure_table(table: str = TABLE) -> None:
    """The table with its maps and chains (made once; kept as it is when it exists, with what
    a previous hawserd published). Also sets net.ipv4.ip_forward=1, as docker does: without it
    nothing is routed between the bridges and the host's other interfaces, published ports from
    other hosts included. remove_table does not put it back (docker leaves it on too)."""
    _check_table(table)
    with _lock:
        if table not in _published:
            if _listing(table) is None:
                _nft(SKELETON.format(t=table), f"creating nftables table ip {table}")
            _load(table)
    sysctl.write("net/ipv4/ip_forward", "1")


def remove_table(table: str = TABLE) -> bool:
    """Removes the table and all in it; False if there was none."""
    _check_table(table)
    with _lock:
        _forget(table)
        if _listing(table) is None:
            return False
        _nft(f"delete table ip {table}\n", f"deleting nftables table ip {table}")
    return True


# networks

def _network_rules(bridge: str, subnet: str, internal: bool) -> list[tuple[str, str]]:
    out = [("postrouting", f'ip saddr {subnet} oifname "{bridge}" ct status dnat masquerade')]
    if internal:
        out += [("networks", f'iifname "{bridge}" oifname != "{bridge}" drop'),
                ("networks", f'oifname "{bridge}" iifname != "{bridge}" drop')]
    else:
        out += [("postrouting", f'ip saddr {subnet} oifname != "{bridge}" masquerade'),
                # no traffic from one network to another, but to a published port of another
                ("networks", f'iifname "{bridge}" oifname != "{bridge}" oifname @bridges '
                             f'ct status ! dnat drop')]
    return out


def _removal(table: str, objects: list[dict], bridge: str) -> list[str]:
    """The commands removing what add_network made for the bridge."""
    cmds = [f"delete rule ip {table} {chain} handle {handle}"
            for chain, handle in nftjson.rules_with_comment(objects, f"network {bridge}")]
    if bridge in nftjson.set_elements(objects, "bridges"):
        cmds.append(f'delete element ip {table} bridges {{ "{bridge}" }}')
    return cmds


def _check_network(bridge: str, subnet: str) -> str:
    # nft quotes the name; a '*' in it would be a wildcard there, matching other interfaces
    if not isinstance(bridge, str) or not re.fullmatch(r"[^/\s:\"\\*]{1,15}", bridge):
        raise InvalidConfig(f"invalid bridge name {bridge!r}")
    try:
        return str(ipaddress.IPv4Network(subnet))
    except ValueError:
        raise InvalidConfig(f"invalid subnet {subnet!r}: an IPv4 network address/prefix") \
            from None


def add_network(bridge: str, subnet: str, internal: bool, table: str = TABLE) -> None:
    """The network's rules: its subnet masqueraded when it leaves through another interface
    (unless internal), hairpin NAT, no forwarding to other bridges (an internal network: to
    and from anywhere outside its bridge). Replaces what was there for the bridge; nothing to
    do (no nft run) when this process already added it so."""
    _check_table(table)
    subnet = _check_network(bridge, subnet)
    with _lock:
        if _networks.get(table, {}).get(bridge) == (subnet, bool(internal)):
            return
        objects = _listing(table)
        if objects is None:
            raise _missing(table)
        cmds = _removal(table, objects, bridge)
        cmds.append(f'add element ip {table} bridges {{ "{bridge}" }}')
        cmds += [f'add rule ip {table} {chain} {rule} comment "network {bridge}"'
                 for chain, rule in _network_rules(bridge, subnet, internal)]
        _nft("\n".join(cmds) + "\n", f"adding the rules of network {bridge} ({subnet})")
        _networks.setdefault(table, {})[bridge] = (subnet, bool(internal))


def remove_network(bridge: str, subnet: str, table: str = TABLE) -> None:
    """Removes what add_network made for the bridge (nothing there is no error)."""
    _check_table(table)
    _check_network(bridge, subnet)
    with _lock:
        _networks.get(table, {}).pop(bridge, None)
        objects = _listing(table)
        cmds = _removal(table, objects, bridge) if objects is not None else []
        if cmds:
            _nft("\n".join(cmds) + "\n", f"removing the rules of network {bridge}")


# published ports

def _element(b: tuple, key: str | None) -> tuple[str, str]:
    """(map, element) of a binding: with its key's comment and value to add, bare to delete."""
    proto, host_ip, host_port, container_ip, container_port = b
    where = f"{host_ip} . {host_port}" if host_ip else f"{host_port}"
    element = where if key is None else \
        f'{where} comment "{key}" : {container_ip} . {container_port}'
    return f"{proto}_{'ip' if host_ip else 'any'}", element


def _clash(table: str, proto: str, host_ip: str, port: int, key: str = "") -> bool:
    """Whether a key other than key publishes that host port already."""
    return any(ports.overlap(b, proto, host_ip, port)
               for other, bs in _published.get(table, {}).items() if other != key for b in bs)


def port_free(proto: str, host_ip: str, port: int, table: str = TABLE) -> bool:
    """Whether host_ip:port (host_ip "": every address) can be published: nothing on the host
    is bound to it and nothing in the table publishes it."""
    _check_table(table)
    proto, host_ip, port, _, _ = ports.check((proto, host_ip, port, "0.0.0.0", 1))
    with _lock:
        if table not in _published:
            _load(table)   # what a previous hawserd published counts too (no table: nothing)
        if _clash(table, proto, host_ip, port):
            return False
    return ports.bind_free(proto, host_ip, port)


def _change(table: str, key: str, new: list[tuple], what: str) -> None:
    """The key's published ports replaced by new, in one transaction. The commands come from
    what this process knows; if the kernel disagrees (the transaction fails: nothing changed),
    the table is read again, new checked against what it holds, and the change tried once
    more."""
    for attempt in (1, 2):
        if attempt == 2:
            _check_taken(table, key, new)
        old = _published[table].get(key, [])
        cmds = [f"delete element ip {table} {m} {{ {e} }}"
                for m, e in (_element(b, None) for b in old)]
        cmds += [f"create element ip {table} {m} {{ {e} }}"
                 for m, e in (_element(b, key) for b in new)]
        try:
            if cmds:
                _nft("\n".join(cmds) + "\n", what)
            break
        except KernelError:
            if not _load(table):
                raise _missing(table) from None
            if attempt == 2:
                raise
    if new:
        _published[table][key] = sorted(new)
    else:
        _published[table].pop(key, None)


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not KEY_RE.fullmatch(key):
        raise InvalidConfig(f"invalid key {key!r} for published ports: 1 to 128 of "
                            "[A-Za-z0-9_.:-]")


def _check_taken(table: str, key: str, new: list[tuple]) -> None:
    """PortAllocated for the first host port of new that another key publishes or a socket
    of the host is bound to."""
    for proto, host_ip, port, _, _ in new:
        if _clash(table, proto, host_ip, port, key) or not ports.bind_free(proto, host_ip, port):
            raise PortAllocated(f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is "
                                "already allocated")


def publish(key: str, bindings, table: str = TABLE) -> None:
    """The key's published ports (replacing any it had), all or none. A host port that is
    taken, bound by a process of the host or published by another key, is PortAllocated
    before anything is changed."""
    _check_table(table)
    _check_key(key)
    new = [ports.check(b) for b in bindings]
    for i, b in enumerate(new):
        if any(ports.overlap(o, b[0], b[1], b[2]) for o in new[:i]):
            raise InvalidConfig(f"port {ports.shown(*b[:3])} is published twice")
    with _lock:
        if table not in _published and not _load(table):
            raise _missing(table)
        _check_taken(table, key, new)
        _change(table, key, new, f"publishing the ports of {key}")


def unpublish(key: str, table: str = TABLE) -> list[tuple]:
    """Removes the key's published ports in one transaction; returns them."""
    _check_table(table)
    _check_key(key)
    with _lock:
        if table not in _published and not _load(table):
            return []   # no table: nothing is published
        old = _published[table].get(key, [])
        _change(table, key, [], f"removing the published ports of {key}")
        return old


def published(table: str = TABLE) -> dict[str, list[tuple]]:
    """What the table publishes, read from the kernel: {key: [binding, ...]}."""
    _check_table(table)
    with _lock:
        if not _load(table):
            return {}
        return {k: list(v) for k, v in _published[table].items()}
