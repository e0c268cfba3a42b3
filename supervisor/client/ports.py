"""docker's -p/--publish and --expose syntax (go-connections' nat.ParsePortSpec and the CLI's
--expose loop), with their error messages: `[IP:][HOST:]CONTAINER[/PROTO]` with ports or
equal-length ranges (`8000-8009:80-89`), an empty or absent host port being one the daemon
picks; the long form `published=8080,target=80,protocol=udp` too. IPv4 only (hawserd's
networks have no IPv6); tcp and udp.

The output side is here too, as docker shows ports: NetworkSettings.Ports and
HostConfig.PortBindings (nat.PortMap), `docker port`'s lines and `ps`'s PORTS column."""

PROTOCOLS = ("tcp", "udp")


class PortError(ValueError):
    pass


def _uint16(text: str) -> int:
    """Go's strconv.ParseUint(text, 10, 16), with its error's wording."""
    if not text.isdigit() or not text.isascii():
        raise PortError(f'strconv.ParseUint: parsing "{text}": invalid syntax')
    if int(text) > 65535:
        raise PortError(f'strconv.ParseUint: parsing "{text}": value out of range')
    return int(text)


def _range(text: str) -> tuple[int, int]:
    """nat.ParsePortRange: "80" or "80-89"."""
    if not text:
        raise PortError("Empty string specified for ports.")
    first, sep, last = text.partition("-")
    lo = _uint16(first)
    hi = _uint16(last) if sep else lo
    if hi < lo:
        raise PortError(f"Invalid range specified for the Port: {text}")
    return lo, hi


def _split_proto(text: str) -> tuple[str, str]:
    """nat.SplitProtoPort: (proto, port), tcp when none is given."""
    port, sep, proto = text.partition("/")
    if not port:
        return "", ""
    return (proto.split("/")[0] or "tcp") if sep else "tcp", port


def _ipv4(text: str) -> str:
    parts = text.split(".")
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and int(p) < 256 and
                                  (p == "0" or not p.startswith("0")) for p in parts):
        if ":" in text:
            raise PortError(f"hawserd publishes ports on IPv4 addresses only, not {text}")
        raise PortError(f"Invalid ip address: {text}")
    return "" if text == "0.0.0.0" else text


def _standard(text: str) -> str:
    """The CLI's convertToStandardNotation of the long form."""
    if "=" not in text:
        return text
    params = {"protocol": "tcp"}
    for param in text.split(","):
        key, sep, value = param.partition("=")
        if not sep:
            raise PortError("invalid publish opts format (should be name=value but got "
                            f"'{param}')")
        params[key] = value.split("=")[0]
    return f"{params.get('published', '')}:{params.get('target', '')}/{params['protocol']}"


def parse_publish(text: str) -> list[tuple[str, int, int, str]]:
    """-p SPEC -> [(host_ip ("" = every address), host_port (0: any), container_port, proto)]."""
    raw = _standard(text)
    parts = raw.split(":")
    container = parts[-1]
    host = parts[-2] if len(parts) >= 2 else ""
    ip = ":".join(parts[:-2])
    proto, container = _split_proto(container)
    if ip.startswith("[") and ip.endswith("]"):
        ip = ip[1:-1]
    host_ip = _ipv4(ip) if ip else ""
    if not container:
        raise PortError(f"No port specified: {raw}<empty>")
    try:
        lo, hi = _range(container)
        if lo == 0:
            raise PortError("0")
    except PortError:
        raise PortError(f"Invalid containerPort: {container}") from None
    hlo = hhi = 0
    if host:
        try:
            hlo, hhi = _range(host)
        except PortError:
            raise PortError(f"Invalid hostPort: {host}") from None
    if host and hi - lo != hhi - hlo:
        if hi != lo:
            raise PortError("Invalid ranges specified for container and host Ports: "
                            f"{container} and {host}")
        # docker picks a free one of the range; a PortBinding has one host port
        raise PortError(f"a host port range for one container port is not supported: {raw}")
    proto = proto.lower()
    if proto not in PROTOCOLS:
        raise PortError(f"Invalid proto: {proto}")
    return [(host_ip, hlo + i if host else 0, lo + i, proto) for i in range(hi - lo + 1)]


def parse_expose(text: str) -> list[str]:
    """--expose PORT[-PORT][/PROTO] -> ["80/tcp", ...] (an image's ExposedPorts keys)."""
    if ":" in text:
        raise PortError(f"invalid port format for --expose: {text}")
    proto, port = _split_proto(text)
    try:
        lo, hi = _range(port)
    except PortError as e:
        raise PortError(f"invalid range format for --expose: {text}, error: {e}") from None
    if proto.lower() not in PROTOCOLS:
        raise PortError(f"Invalid proto: {proto}")
    return [f"{p}/{proto.lower()}" for p in range(lo, hi + 1)]


# --- what docker shows ---------------------------------------------------------------------

def _key(port: str) -> tuple:
    number, _, proto = port.partition("/")
    return (int(number) if number.isdigit() else 0, proto)


def port_map(exposed, bindings, actual: bool):
    """nat.PortMap: "80/tcp" -> [PortBinding{HostIp, HostPort}], a nil slice for an exposed
    port that is not published; keys sorted as Go sorts a map's. actual: NetworkSettings'
    (0.0.0.0 where no address was given, the host port bound); else HostConfig's (as the
    user wrote it: "" for either)."""
    from supervisor.client.gofmt import Map, Slice, Struct
    out: dict = {p if "/" in p else p + "/tcp": Slice(nil=True) for p in exposed}
    for b in bindings:
        key = f"{b.container_port}/{b.protocol or 'tcp'}"
        found = out.get(key) or Slice(type="[]nat.PortBinding")
        found.append(Struct(HostIp=b.host_ip or ("0.0.0.0" if actual else ""),
                            HostPort=str(b.host_port) if b.host_port or actual else ""))
        out[key] = found
    return Map(sorted(out.items()), type="nat.PortMap")


def port_lines(ports, wanted: str = "", container: str = "") -> list[str]:
    """`docker port`: "80/tcp -> 0.0.0.0:8080" for each binding (in docker's natural order);
    with a port asked for, its addresses only ("0.0.0.0:8080"), PortError (docker's message)
    when it is not published."""
    from supervisor.client.docker_lists import natural_key
    if wanted:
        number, _, proto = wanted.partition("/")
        key = f"{number}/{proto or 'tcp'}"
        if not ports.get(key):
            raise PortError(f"Error: No public port '{key}' published for {container}")
        return [f"{b['HostIp']}:{b['HostPort']}" for b in ports[key]]
    return sorted((f"{key} -> {b['HostIp']}:{b['HostPort']}" for key, found in ports.items()
                   for b in found), key=natural_key)


def displayable(ports) -> str:
    """docker's DisplayablePorts for a running container's ports (port_map's, actual):
    sorted by container port, address, host port, protocol; runs of consecutive ports with
    one key as ranges ("80-81/tcp", "0.0.0.0:80-81->80-81/tcp"), other mappings at the end
    ("0.0.0.0:8080->80/tcp")."""
    items = []
    for key, found in ports.items():
        number, proto = _key(key)
        for b in found or [None]:     # an unpublished port: PrivatePort and Type only
            ip, public = (b["HostIp"], int(b["HostPort"] or 0)) if b else ("", 0)
            items.append((number, ip, public, proto))
    items.sort()
    groups: dict = {}
    order, result, mappings = [], [], []
    for private, ip, public, proto in items:
        key = proto
        if ip:
            if public != private:
                mappings.append(f"{ip}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
        elif private == group[1] + 1:
            group[1] = private
        else:
            result.append(_group(key, *group))
            groups[key] = [private, private]
    return ", ".join(result + [_group(k, *groups[k]) for k in order] + mappings)


def _group(key: str, first: int, last: int) -> str:
    ip, _, proto = key.rpartition("/")
    text = f"{first}-{last}" if first != last else str(first)
    return (f"{ip}:{text}->{text}" if ip else text) + "/" + proto
