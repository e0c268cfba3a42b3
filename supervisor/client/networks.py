"""hawserctl's networking: run/create's network flags into ContainerConfig (-p, -P, --expose,
--network, --network-alias, --link, --dns, --dns-search, --add-host, with docker's checks and
messages), the `network` verbs (create, ls, inspect, rm, connect, disconnect, prune) over
hawser.v1.Networks, and docker's shapes for them (NetworkResource, network ls rows)."""
import sys

from supervisor.client import ports

BUILTIN = ("bridge", "host", "none")     # docker's predefined networks: never removed
GO_ZERO_TIME = "0001-01-01T00:00:00Z"


# --- run/create ------------------------------------------------------------------------------

def add_run_options(p) -> None:
    p.add_argument("-p", "--publish", action="append", default=[])
    p.add_argument("-P", "--publish-all", action="store_true")
    p.add_argument("--expose", action="append", default=[])
    p.add_argument("--network", "--net", action="append", default=[])
    p.add_argument("--network-alias", "--net-alias", action="append", default=[])
    p.add_argument("--link", action="append", default=[])
    p.add_argument("--dns", action="append", default=[])
    p.add_argument("--dns-search", action="append", default=[])
    p.add_argument("--add-host", action="append", default=[])


class FlagError(ValueError):
    """A value a docker flag's validator refuses: cobra's wording, which docker prints as it
    is (no "docker: " before it, no "." after)."""


def _flag_error(flag: str, value: str, message: str) -> FlagError:
    return FlagError(f'invalid argument "{value}" for "{flag}" flag: {message}')


def is_ip(text: str) -> bool:
    """Go's net.ParseIP accepts it (IPv4 dotted, or IPv6). _socket: no ipaddress import."""
    import _socket
    for family in (_socket.AF_INET, _socket.AF_INET6):
        try:
            _socket.inet_pton(family, text)
            return True
        except OSError:
            pass
    return False


def _link(text: str) -> str:
    """opts.ValidateLink (container.ParseLink): NAME[:ALIAS] as NAME:ALIAS."""
    if not text:
        raise _flag_error("--link", text, "empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2:
        raise _flag_error("--link", text, f"bad format for links: {text}")
    if len(parts) == 1:
        return f"{text}:{text}"
    name, alias = parts
    if name.startswith("/"):            # a HostConfig's own form: /name:/container/alias
        name, alias = name[1:], alias.rsplit("/", 1)[-1]
    return f"{name}:{alias}"


def _domain(text: str) -> str:
    """opts.ValidateDNSSearch: "." or a domain name (its trailing dot dropped)."""
    value = text.strip(" ")
    if value == ".":
        return value
    labels = value.rstrip().removesuffix(".").split(".")
    ok = any(ch.isascii() and ch.isalpha() for ch in value) and all(
        label and label.isascii() and label.replace("-", "").isalnum() and
        label[0] != "-" and label[-1] != "-" for label in labels) and len(".".join(labels)) < 255
    if not ok:
        raise _flag_error("--dns-search", text, f"{text} is not a valid domain")
    return ".".join(labels)


def _extra_host(text: str) -> str:
    """opts.ValidateExtraHost: NAME:IP (split at the first ':', an IPv6 may follow), or
    NAME:host-gateway."""
    name, sep, ip = text.partition(":")
    if not sep or not name:
        raise _flag_error("--add-host", text, f'bad format for add-host: "{text}"')
    if ip != "host-gateway" and not is_ip(ip.strip()):
        raise _flag_error("--add-host", text, f'invalid IP address in add-host: "{ip}"')
    return text


def config_fields(a, PortBinding) -> dict:
    """The ContainerConfig fields of run/create's network flags; ValueError with docker's
    message for a bad one. Exposed ports: --expose's and -p's container ports, as docker's."""
    published = [b for spec in a.publish for b in ports.parse_publish(spec)]
    exposed = [p for spec in a.expose for p in ports.parse_expose(spec)]
    exposed += [f"{c}/{proto}" for _, _, c, proto in published]
    if len(a.network) > 1:
        raise ValueError("Error response from daemon: Container cannot be connected to "
                         "network endpoints: " + ", ".join(a.network))
    mode = a.network[0] if a.network else ""
    if mode == "container:":
        raise ValueError("Error response from daemon: Invalid network mode: invalid "
                         "container format container:<name|id>")
    if mode == "host" and published:
        print("WARNING: Published ports are discarded when using host network mode",
              file=sys.stderr)
        published = []
    for dns in a.dns:
        if not is_ip(dns.strip()):
            raise _flag_error("--dns", dns, f"{dns} is not an ip address")
    return dict(
        network_mode="" if mode == "default" else mode, network_aliases=a.network_alias,
        ports=[PortBinding(host_ip=ip, host_port=hp, container_port=cport, protocol=proto)
               for ip, hp, cport, proto in published],
        publish_all=a.publish_all, links=[_link(x) for x in a.link],
        dns=[d.strip() for d in a.dns], dns_search=[_domain(d) for d in a.dns_search],
        extra_hosts=[_extra_host(h) for h in a.add_host],
        exposed_ports=list(dict.fromkeys(exposed)))


# --- the network verbs -----------------------------------------------------------------------

def add_parsers(sub) -> None:
    net = sub.add_parser("network")
    verbs = net.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create")
    create.add_argument("-d", "--driver", default="bridge")
    create.add_argument("--subnet", action="append", default=[])
    create.add_argument("--gateway", action="append", default=[])
    create.add_argument("--internal", action="store_true")
    create.add_argument("--label", action="append", default=[])
    create.add_argument("name")
    for name in ("ls", "list"):
        ls = verbs.add_parser(name)
        ls.add_argument("-q", "--quiet", action="store_true")
        ls.add_argument("-f", "--filter", action="append", default=[])
        ls.add_argument("--format", default="")
        ls.add_argument("--no-trunc", action="store_true")
    inspect = verbs.add_parser("inspect")
    inspect.add_argument("-f", "--format", default="")
    inspect.add_argument("names", nargs="+")
    for name in ("rm", "remove"):
        verbs.add_parser(name).add_argument("names", nargs="+")
    connect = verbs.add_parser("connect")
    connect.add_argument("--alias", action="append", default=[])
    connect.add_argument("--ip", default="")
    disconnect = verbs.add_parser("disconnect")
    disconnect.add_argument("-f", "--force", action="store_true")
    for p in (connect, disconnect):
        p.add_argument("network")
        p.add_argument("container")
    verbs.add_parser("prune").add_argument("-f", "--force", action="store_true")


def labels_of(items: list) -> dict:
    """docker's --label k=v (a bare k: an empty value)."""
    return dict(kv.partition("=")[::2] for kv in items)


def daemon_error(e, what: str = "", ref: str = "") -> str:
    """docker's CLI wording of a daemon's error (a missing object: "Error: No such ...")."""
    if what and e.code().name == "NOT_FOUND":
        return f"Error: No such {what}: {ref}"
    return f"Error response from daemon: {e.details()}"


def run_verb(verbs: dict, api, a) -> int:
    """`network VERB`, `volume VERB`: the verb, a daemon's error as docker's CLI prints it."""
    try:
        return verbs[a.verb](api, a)
    except api.grpc.RpcError as e:
        print(daemon_error(e), file=sys.stderr)
        return 1


def cmd_network(api, a) -> int:
    return run_verb(VERBS, api, a)


def _create(api, a) -> int:
    if a.driver in ("host", "null"):
        raise SystemExit(f'Error response from daemon: only one instance of "{a.driver}" '
                         "network is allowed")
    if a.driver != "bridge":
        raise SystemExit(f'Error response from daemon: plugin "{a.driver}" not found')
    if len(a.gateway) > len(a.subnet):
        raise SystemExit("every ip-range or gateway must have a corresponding subnet")
    if len(a.subnet) > 1:
        raise SystemExit("hawserctl: a hawserd network has one subnet: give one --subnet")
    net = api.net.Create(api.npb.CreateNetworkRequest(
        name=a.name, subnet=a.subnet[0] if a.subnet else "",
        gateway=a.gateway[0] if a.gateway else "", internal=a.internal,
        labels=labels_of(a.label))).network
    print(net.id)
    return 0


# docker's filters that hawserd answers (field==value), and those the client applies itself
SERVER_FILTERS = ("name", "id", "driver", "label")
CLIENT_FILTERS = {
    "type": lambda n, v: (n.name in BUILTIN) == (v == "builtin") and v in ("builtin", "custom"),
    "scope": lambda n, v: v == "local",
    "dangling": lambda n, v: (not n.endpoints and n.name not in BUILTIN) == (v in ("true", "1")),
}


def list_networks(api, filters: list) -> list:
    asked, local = [], []
    for f in filters:
        key, _, value = f.partition("=")
        if key in SERVER_FILTERS:
            asked.append(f"{key}=={value}")
        elif key in CLIENT_FILTERS:
            local.append((CLIENT_FILTERS[key], value))
        else:
            raise SystemExit(f"Error response from daemon: invalid filter '{key}'")
    nets = api.net.List(api.npb.ListNetworksRequest(filters=asked)).networks
    from supervisor.client.docker_lists import natural_key
    return sorted((n for n in nets if all(fn(n, v) for fn, v in local)),
                  key=lambda n: natural_key(n.name))


def _ls(api, a) -> int:
    from supervisor.client import docker
    from supervisor.client.docker_lists import network_row
    from supervisor.client.docker_tables import list_output
    rows = [network_row(n, not a.no_trunc) for n in list_networks(api, a.filter)]
    return docker.emit(lambda: list_output(rows, "networks", a.format, a.quiet))


def inspect_each(api, a, what: str, shape) -> int:
    """`network inspect`, `volume inspect`: shape(name) of each name, docker's JSON (or
    --format) of those found, an error line and status 1 for each one not found."""
    from supervisor.client import docker
    found, rc = [], 0
    for ref in a.names:
        try:
            found.append(shape(ref))
        except api.grpc.RpcError as e:
            print(daemon_error(e, what, ref), file=sys.stderr)
            rc = 1
    return docker.emit(lambda: docker.inspect_format(found, a.format)) or rc


def _inspect(api, a) -> int:
    return inspect_each(api, a, "network", lambda ref: network_inspect(
        api.net.Get(api.npb.GetNetworkRequest(ref=ref)).network))


def _rm(api, a) -> int:
    rc = 0
    for ref in a.names:
        try:
            api.net.Delete(api.npb.DeleteNetworkRequest(ref=ref))
            print(ref)
        except api.grpc.RpcError as e:
            print(daemon_error(e, "network", ref), file=sys.stderr)
            rc = 1
    return rc


def _connect(api, a) -> int:
    api.net.Connect(api.npb.ConnectRequest(network=a.network, container=a.container,
                                           aliases=a.alias, ip_address=a.ip))
    return 0


def _disconnect(api, a) -> int:
    api.net.Disconnect(api.npb.DisconnectRequest(network=a.network, container=a.container,
                                                 force=a.force))
    return 0


def confirm(warning: str) -> bool:
    """docker's PromptForConfirmation: the warning, [y/N], a line from stdin."""
    sys.stdout.write(f"{warning} [y/N] ")
    sys.stdout.flush()
    return sys.stdin.readline().strip().lower() == "y"


def _prune(api, a) -> int:
    """docker network prune: every custom network no container is on (Networks has no Prune:
    each is removed in turn; one that hawserd refuses, in use, stays)."""
    if not a.force and not confirm("WARNING! This will remove all custom networks not used "
                                   "by at least one container.\nAre you sure you want to "
                                   "continue?"):
        return 0
    deleted = []
    for n in list_networks(api, []):
        if n.name in BUILTIN or n.endpoints:
            continue
        try:
            api.net.Delete(api.npb.DeleteNetworkRequest(ref=n.id))
            deleted.append(n.name)
        except api.grpc.RpcError:
            pass
    if deleted:
        print("Deleted Networks:\n" + "".join(name + "\n" for name in deleted))
    return 0


VERBS = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
         "remove": _rm, "connect": _connect, "disconnect": _disconnect, "prune": _prune}


# --- docker's shapes -------------------------------------------------------------------------

def endpoint_id(network_id: str, container_id: str) -> str:
    """docker's EndpointID for an endpoint hawserd does not name: a digest of its network and
    container, the same in `network inspect` and `inspect`."""
    import hashlib
    return hashlib.sha256(f"{network_id}/{container_id}".encode()).hexdigest()


def _created(ts) -> str:
    from supervisor.client import docker_units as units
    if units.timestamp_seconds(ts) is None:
        return GO_ZERO_TIME
    return units.rfc3339_nano(ts.seconds, ts.nanos)


def network_inspect(n):
    """docker 20.10's NetworkResource for a hawser.v1.Network."""
    from supervisor.client.gofmt import Map, Slice, Struct, string_map
    builtin = n.name in BUILTIN
    config = [Struct(Subnet=n.subnet, Gateway=n.gateway, omitempty=("Subnet", "Gateway"))] \
        if n.subnet else []
    options = {}
    if n.name == "bridge":      # the default bridge's, as docker lists them (no MTU: unknown)
        options = {"com.docker.network.bridge.default_bridge": "true",
                   "com.docker.network.bridge.enable_icc": "true",
                   "com.docker.network.bridge.enable_ip_masquerade":
                       "false" if n.internal else "true",
                   "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                   "com.docker.network.bridge.name": n.bridge}
    containers = Map(type="map[string]types.EndpointResource")
    for ne in n.endpoints:
        ep = ne.endpoint
        containers[ne.container_id] = Struct(
            type="types.EndpointResource", Name=ne.container_name,
            EndpointID=endpoint_id(ep.network_id or n.id, ne.container_id),
            MacAddress=ep.mac_address,
            IPv4Address=f"{ep.ip_address}/{ep.prefix_len}" if ep.ip_address else "",
            IPv6Address="")
    return Struct(
        type="types.NetworkResource", json_only=("Id",), Name=n.name, Id=n.id,
        Created=_created(n.created), Scope="local", Driver=n.driver or "bridge",
        EnableIPv6=False,
        IPAM=Struct(Driver="default", Options=string_map(None if builtin else {}),
                    Config=Slice(config, type="[]network.IPAMConfig")),
        Internal=n.internal, Attachable=False, Ingress=False,
        ConfigFrom=Struct(Network=""), ConfigOnly=False, Containers=containers,
        Options=string_map(options), Labels=string_map(dict(n.labels or {})))
