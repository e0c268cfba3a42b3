"""Published-port bindings for nat.py: (proto, host_ip, host_port, container_ip, container_port),
host_ip "" meaning every local address; their checks, and the host-side bind test."""
import errno
import ipaddress
import socket

from supervisor.networks.errors import InvalidConfig

PROTOS = ("tcp", "udp")


def check(b) -> tuple:
    """The binding in canonical form, or InvalidConfig naming what is wrong."""
    try:
        proto, host_ip, host_port, container_ip, container_port = b
    except (TypeError, ValueError):
        raise InvalidConfig(f"invalid port binding {b!r}: (proto, host_ip, host_port, "
                            "container_ip, container_port)") from None
    if proto not in PROTOS:
        raise InvalidConfig(f"invalid protocol {proto!r} in port binding: tcp or udp")
    for port in (host_port, container_port):
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise InvalidConfig(f"invalid port {port!r} in port binding: 1 to 65535")
    try:
        host_ip = str(ipaddress.IPv4Address(host_ip)) if host_ip else ""
        container_ip = str(ipaddress.IPv4Address(container_ip))
    except ValueError as e:
        raise InvalidConfig(f"invalid address in port binding {tuple(b)!r}: {e}") from None
    return proto, host_ip, host_port, container_ip, container_port


def overlap(b: tuple, proto: str, host_ip: str, port: int) -> bool:
    """Whether binding b takes that host port: the same protocol and port on the same address,
    or on every address ("") while the other is on one."""
    p, ip, hp = b[:3]
    return p == proto and hp == port and (not ip or not host_ip or ip == host_ip)


def shown(proto: str, host_ip: str, port: int) -> str:
    return f"{host_ip or '0.0.0.0'}:{port}/{proto}"


def bind_free(proto: str, host_ip: str, port: int) -> bool:
    """Whether a socket of the host could bind host_ip:port now (nothing listens there)."""
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as s:
        if proto == "tcp":  # a TIME_WAIT socket does not keep a port; a listener does
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host_ip or "0.0.0.0", port))
        except OSError as e:
            if e.errno == errno.EADDRNOTAVAIL:
                raise InvalidConfig(f"cannot publish on {host_ip}: not an address of this "
                                    "host") from None
            return False
    return True
