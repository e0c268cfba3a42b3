"""Kernel parameters under /proc/sys, in the namespace of the thread that opens them (hawserd's:
the host's). Keys are paths (net/ipv4/ip_forward), so an interface name with dots stays whole."""
from pathlib import Path

ROOT = Path("/proc/sys")


def read(key: str) -> str:
    return (ROOT / key).read_text().strip()


def write(key: str, value: str) -> None:
    """Sets key unless it already has value (a write costs more than the read, and a read-only
    /proc/sys is then no error for a value already right)."""
    path = ROOT / key
    if path.read_text().strip() != value:
        path.write_text(value + "\n")


def interface_key(ifname: str, name: str) -> str:
    return f"net/ipv4/conf/{ifname}/{name}"
