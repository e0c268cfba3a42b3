"""A container's /etc/hosts, /etc/hostname and /etc/resolv.conf as docker (20.10, Debian 12's)
writes them, and the host's resolvers as docker reads them (libnetwork's etchosts and resolvconf
packages: tab-separated hosts records; loopback nameservers left out of a container's file)."""
from __future__ import annotations

import ipaddress
import re
from typing import NamedTuple

# docker's etchosts.defaultContent, in its order.
DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
# What docker falls back to when the host has no nameserver a container can reach (Google's).
DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
DEFAULT_NAMESERVERS6 = ("2001:4860:4860::8888", "2001:4860:4860::8844")
SYSTEMD_RESOLVED = "/run/systemd/resolve/resolv.conf"

# A host name: labels of letters, digits, '-' (not first nor last) and '_', dot-separated; the
# kernel keeps at most 64 bytes of it (sethostname).
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_HOSTNAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# docker's validateDomain for --dns-search: RFC 1123 labels, an optional trailing dot.
_DOMAIN = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
                     r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*\.?")


class Link(NamedTuple):
    """A --link NAME:ALIAS resolved: the linked container's address, the alias, its hostname and
    its name."""
    ip: str
    alias: str
    hostname: str
    name: str


def hosts(hostname: str, addresses, links=(), extra=()) -> str:
    """/etc/hosts: docker's default records, the --add-host entries ("NAME:IP" or (name, ip)),
    the --link entries (Link or (ip, alias, hostname, name)), then "IP hostname" for each of the
    container's own addresses: that is the order docker 20.10 writes them in (the file is built
    with the extra hosts and links, the container's addresses are appended as it joins)."""
    names = _fqdn_and_short(hostname)
    records = list(DEFAULT_HOSTS)
    for entry in extra:
        records.append(_extra_host(entry))
    for link in links:
        records.append(_link_record(Link(*link)))
    for address in addresses:
        message = f"container address {address!r} is not an IP address"
        records.append((_ip(address, message), names))
    return "".join(f"{ip}\t{names}\n" for ip, names in records)


def hostname(name: str) -> str:
    """/etc/hostname."""
    _check_hostname(name)
    return name + "\n"


def resolv_conf(nameservers, search=(), options=()) -> str:
    """/etc/resolv.conf as docker's resolvconf.Build writes it: a search line (none when the only
    domain is '.', docker's way to say "no search"), a nameserver line each, an options line."""
    out = []
    search, options = list(search), list(options)
    for domain in search:
        if domain != "." and (len(domain) > 255 or not _DOMAIN.fullmatch(domain)):
            raise ValueError(f"dns search domain {domain!r} is not a valid domain")
    if search and " ".join(search).strip(" ") != ".":
        out.append("search " + " ".join(search))
    for server in nameservers:
        out.append("nameserver " + _ip(server, f"nameserver {server!r} is not an IP address"))
    for option in options:
        if not option or any(c.isspace() for c in option) or "#" in option:
            raise ValueError(f"dns option {option!r} must be one word (like ndots:0)")
    if options:
        out.append("options " + " ".join(options))
    return "".join(line + "\n" for line in out)


def host_resolvers(path: str = "/etc/resolv.conf", keep_loopback: bool = False,
                   ipv6: bool = False, resolved_path: str = SYSTEMD_RESOLVED):
    """(nameservers, search, options) of the host's resolv.conf, as docker reads it for a
    container: loopback nameservers (127.x, ::1) left out, since they are the host's, not the
    container's (keep_loopback keeps them, for a resolver that runs in the host's namespace as
    hawserd's DNS servers do); IPv6 ones too unless ipv6; none left: docker's defaults. Like
    docker, when 127.0.0.53 is the only nameserver (systemd-resolved's stub), the servers are read
    from resolved_path instead. The last search and options lines count. A missing file is an
    empty one."""
    servers, search, options = _read_resolv(path)
    if servers == ["127.0.0.53"] and resolved_path:
        try:
            servers, search, options = _read_resolv(resolved_path, missing_ok=False)
        except FileNotFoundError:
            pass
    kept = [s for s in servers if (keep_loopback or not _loopback(s)) and (ipv6 or ":" not in s)]
    if not kept:
        kept = list(DEFAULT_NAMESERVERS) + (list(DEFAULT_NAMESERVERS6) if ipv6 else [])
    return kept, search, options


def _read_resolv(path: str, missing_ok: bool = True):
    servers, search, options = [], [], []
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except FileNotFoundError:
        if not missing_ok:
            raise
        text = ""
    for line in text.splitlines():
        words = line.split("#", 1)[0].split(";", 1)[0].split()
        if not words:
            continue
        if words[0] == "nameserver" and len(words) == 2 and _is_ip(words[1]):
            servers.append(words[1])
        elif words[0] == "search":
            search = words[1:]
        elif words[0] == "options":
            options = words[1:]
    return servers, search, options


def _fqdn_and_short(name: str) -> str:
    """A hosts record's names for the container: docker writes the FQDN and then, when it has a
    domain, the bare host name."""
    _check_hostname(name)
    short, dot, _ = name.partition(".")
    return f"{name} {short}" if dot else name


def _check_hostname(name: str) -> None:
    if not isinstance(name, str) or len(name.encode()) > 64 or not _HOSTNAME.fullmatch(name):
        raise ValueError(f"hostname {name!r} is not valid: letters, digits, '-', '_' and dots, "
                         "at most 64 characters")


def _extra_host(entry) -> tuple[str, str]:
    if isinstance(entry, str):
        name, colon, ip = entry.partition(":")   # only the first ':': the IP may be IPv6
        if not colon or not name:
            raise ValueError(f"bad format for add-host: {entry!r} (want NAME:IP)")
    else:
        name, ip = entry
    if not _is_name(name):
        raise ValueError(f"invalid host name in add-host: {name!r}")
    return _ip(ip, f"invalid IP address in add-host {name!r}: {ip!r}"), name


def _link_record(link: Link) -> tuple[str, str]:
    for what, value in (("alias", link.alias), ("name", link.name)):
        if not _is_name(value):
            raise ValueError(f"invalid link {what} {value!r}")
    _check_hostname(link.hostname)
    # docker: the alias, the linked container's hostname, and its name unless the alias is it.
    names = f"{link.alias} {link.hostname}"
    if link.alias != link.name:
        names += f" {link.name}"
    message = f"address {link.ip!r} of linked container {link.name!r} is not an IP address"
    return _ip(link.ip, message), names


def _is_name(name) -> bool:
    """Anything a hosts file can hold as one name: no blank, no comment sign, printable."""
    return isinstance(name, str) and name.isprintable() and bool(name) and \
        not any(c.isspace() for c in name) and "#" not in name


def _is_ip(text) -> bool:
    try:
        ipaddress.ip_address(text)   # an IPv6 zone (fe80::1%eth0) is allowed
    except ValueError:
        return False
    return True


def _ip(text, message: str) -> str:
    if not isinstance(text, str) or not _is_ip(text):
        raise ValueError(message)
    return text


def _loopback(server: str) -> bool:
    return ipaddress.ip_address(server).is_loopback
