"""A container's networking, over the networks' parts (store/IPAM, bridges and veths, nftables,
DNS, /etc files), as docker's libnetwork for its sandboxes:

- plan() at container create: the mode checked, an endpoint (an address) per network
  allocated, host ports chosen, the /etc files written into the bundle (bind-mounted);
- setup() between the task's Create and Start: its network namespace (the one the runtime
  made, /proc/<init pid>/ns/net) gets lo up, a veth per network, the published ports;
- teardown() at the task's end: the ports' rules go (the veths went with the namespace);
- release() at container removal: its addresses.
The predefined networks are docker's: `bridge` (made on first use: bridge hawser0, a /16 of
hawserd's pool), `host` and `none` (modes, not networks of the store)."""
import logging
import os
import random
import threading

from supervisor.errors import ApiError
from supervisor.networks import bridge as bridges
from supervisor.networks import etcfiles, ipam, nat
from supervisor.networks.dns import DnsServer
from supervisor.networks.errors import NetworkError, NotFound
from supervisor.networks.store import NetworkStore

logger = logging.getLogger("hawserd")
DEFAULT = "bridge"
DEFAULT_BRIDGE = "hawser0"
PREDEFINED = ("bridge", "host", "none")
EPHEMERAL = (49153, 65535)        # docker's range for a host port it picks
ETC_FILES = ("hosts", "hostname", "resolv.conf")


def mode_of(config: dict) -> str:
    return config.get("network_mode") or DEFAULT


def api_error(e: NetworkError) -> ApiError:
    code = {"NotFound": "NOT_FOUND", "AlreadyExists": "ALREADY_EXISTS", "InUse":
            "FAILED_PRECONDITION", "Exhausted": "RESOURCE_EXHAUSTED"}.get(type(e).__name__,
                                                                         "INVALID_ARGUMENT")
    return ApiError(code, str(e))


class NetworkManager:
    def __init__(self, db_path: str, running, bridge: str = DEFAULT_BRIDGE,
                 table: str = nat.TABLE):
        """running(cid) -> whether the container's task runs (DNS answers for those only);
        bridge: the default network's bridge; table: hawserd's nftables table (a second hawserd
        on the host, as tests run them, needs names of its own)."""
        self.store = NetworkStore(db_path)
        self.running = running
        self.default_bridge, self.table = bridge, table
        self.lock = threading.RLock()
        self.dns: dict[str, DnsServer] = {}

    # -- networks -----------------------------------------------------------------------------
    def default(self) -> dict:
        """docker's default bridge network, made on first use."""
        with self.lock:
            try:
                return self.store.get(DEFAULT)
            except NotFound:
                return self.store.create(DEFAULT, "", "", self.default_bridge, prefix=16,
                                         host_routes=ipam.host_networks())

    def create(self, name: str, subnet: str, gateway: str, internal: bool,
               labels: dict) -> dict:
        if name in PREDEFINED:
            raise ApiError("FAILED_PRECONDITION", f"{name} is a pre-defined network and cannot "
                                                  "be created")
        try:
            with self.lock:
                return self.store.create(name, subnet, gateway, "", internal, labels,
                                         host_routes=ipam.host_networks())
        except NetworkError as e:
            raise api_error(e) from None

    def get(self, ref: str) -> dict:
        try:
            return self.store.get(ref)
        except NetworkError as e:
            raise api_error(e) from None

    def delete(self, ref: str) -> None:
        if ref in PREDEFINED:
            raise ApiError("FAILED_PRECONDITION", f"{ref} is a pre-defined network and cannot "
                                                  "be removed")
        net = self.get(ref)
        with self.lock:
            users = self.store.endpoints(network_id=net["id"])
            if users:
                raise ApiError("FAILED_PRECONDITION", f"network {net['name']} has active "
                                                      f"endpoints ({len(users)} containers)")
            self._stop_dns(net["id"])
            nat.remove_network(net["bridge"], net["subnet"], table=self.table)
            bridges.delete_bridge(net["bridge"])
            try:
                self.store.delete(net["id"])
            except NetworkError as e:
                raise api_error(e) from None

    # -- a container's plan (at create) ---------------------------------------------------------
    def plan(self, cid: str, name: str, config: dict, bundle: str, others) -> dict:
        """What the container gets: {"mode", "endpoints": [...], "published": [...]} and its
        /etc files in the bundle. others(ref) -> the record of another container (links,
        container: mode)."""
        mode = mode_of(config)
        out = {"mode": mode, "endpoints": [], "published": []}
        if mode in ("host", "none") or mode.startswith("container:"):
            if config.get("ports") or config.get("publish_all"):
                raise ApiError("INVALID_ARGUMENT", f"network mode {mode}: ports cannot be "
                                                   "published")
            return out
        net = self.default() if mode == DEFAULT else self.get(mode)
        aliases = [] if net["name"] == DEFAULT else \
            [name, cid[:12]] + list(config.get("network_aliases") or ())
        with self.lock:
            try:
                ep = self.store.allocate(net["id"], cid, aliases)
            except NetworkError as e:
                raise api_error(e) from None
            try:
                out["published"] = self._choose_ports(config, ep["ip"])
            except BaseException:
                self.store.release_all(cid)
                raise
        out["endpoints"].append(self.endpoint_of(net, ep))
        return out

    def endpoint_of(self, net: dict, ep: dict) -> dict:
        return {"network": net["name"], "network_id": net["id"], "ip_address": ep["ip"],
                "prefix_len": int(net["subnet"].split("/")[1]), "gateway": net["gateway"],
                "mac_address": ep["mac"], "aliases": list(ep["aliases"]),
                "interface": ep["interface"]}

    def endpoints(self, cid: str) -> list[dict]:
        nets = {n["id"]: n for n in self.store.list()}
        return [self.endpoint_of(nets[ep["network_id"]], ep)
                for ep in self.store.endpoints(container_id=cid) if ep["network_id"] in nets]

    def _choose_ports(self, config: dict, ip: str) -> list[dict]:
        wanted = [dict(p) for p in config.get("ports") or ()]
        if config.get("publish_all"):
            have = {(p["container_port"], p.get("protocol") or "tcp") for p in wanted}
            for spec in config.get("exposed_ports") or ():
                port, _, proto = spec.partition("/")
                if (int(port), proto or "tcp") not in have:
                    wanted.append({"host_ip": "", "host_port": 0, "container_port": int(port),
                                   "protocol": proto or "tcp"})
        if not wanted:
            return []        # no `nft list` (a process, ~4 ms) for a container that publishes none
        taken = {(b[0], b[2]) for bindings in nat.published(table=self.table).values()
                 for b in bindings}
        out = []
        for p in wanted:
            proto = p.get("protocol") or "tcp"
            host_ip = p.get("host_ip") or ""
            port = p.get("host_port") or 0
            if port:
                if (proto, port) in taken or \
                        not nat.port_free(proto, host_ip, port, table=self.table):
                    raise ApiError("FAILED_PRECONDITION",
                                   f"Bind for {host_ip or '0.0.0.0'}:{port} failed: port is "
                                   "already allocated")
            else:
                port = self._free_port(proto, host_ip, taken)
            taken.add((proto, port))
            out.append({"host_ip": host_ip, "host_port": port,
                        "container_port": p["container_port"], "protocol": proto})
        return out

    def _free_port(self, proto: str, host_ip: str, taken: set) -> int:
        for _ in range(200):
            port = random.randint(*EPHEMERAL)
            if (proto, port) not in taken and \
                    nat.port_free(proto, host_ip, port, table=self.table):
                return port
        raise ApiError("RESOURCE_EXHAUSTED", "no free host port to publish on")

    def write_etc(self, bundle: str, hostname: str, config: dict, plan: dict, others) -> list:
        """/etc/hosts, /etc/hostname and /etc/resolv.conf in the bundle; their OCI mounts."""
        mode = plan["mode"]
        if mode.startswith("container:"):   # the other container's, as docker shares them
            other = others(mode.partition(":")[2])
            return [_etc_mount(os.path.join(other["bundle"], name), name) for name in ETC_FILES
                    if os.path.exists(os.path.join(other["bundle"], name))]
        if mode == "host":                  # copies of the host's (a bind would let it write them)
            texts = {"hosts": _read("/etc/hosts"), "hostname": _read("/etc/hostname"),
                     "resolv.conf": _read("/etc/resolv.conf")}
            return _write_etc(bundle, texts)
        addresses = [ep["ip_address"] for ep in plan["endpoints"]]
        links = []
        for spec in config.get("links") or ():
            other, _, alias = spec.partition(":")
            rec = others(other)
            if rec["status"] not in ("running", "paused"):
                raise ApiError("FAILED_PRECONDITION", f"Cannot link to a non running container: "
                                                      f"/{rec['name']} AS /{alias or rec['name']}")
            eps = self.endpoints(rec["id"])
            if not eps:
                raise ApiError("INVALID_ARGUMENT", f"--link {spec}: {other} has no address")
            links.append(etcfiles.Link(eps[0]["ip_address"], alias or rec["name"],
                                       rec["config"].get("hostname") or rec["id"][:12],
                                       rec["name"]))
        servers, search, options = etcfiles.host_resolvers()
        if plan["endpoints"] and plan["endpoints"][0]["network"] != DEFAULT:
            # its network's DNS server (dns.py), as docker's embedded one: ndots:0 too
            servers, options = [plan["endpoints"][0]["gateway"]], list(options) + ["ndots:0"]
        if config.get("dns"):
            servers = list(config["dns"])
        if config.get("dns_search"):
            search = list(config["dns_search"])
        try:
            texts = {"hosts": etcfiles.hosts(hostname, addresses, links,
                                             list(config.get("extra_hosts") or ())),
                     "hostname": etcfiles.hostname(hostname),
                     "resolv.conf": etcfiles.resolv_conf(servers, search, options)}
        except ValueError as e:
            raise ApiError("INVALID_ARGUMENT", str(e)) from None
        return _write_etc(bundle, texts)

    # -- a container's task ---------------------------------------------------------------------
    def setup(self, cid: str, pid: int, config: dict, published: list) -> None:
        """Its namespace's networking, between the task's Create and Start. Undone on failure."""
        mode = mode_of(config)
        if mode == "host" or mode.startswith("container:"):
            return
        netns = f"/proc/{pid}/ns/net"
        done = []
        try:
            bridges.loopback_up(netns)
            if mode == "none":
                return
            for i, ep in enumerate(self.endpoints(cid)):
                self._attach(netns, self.store.get(ep["network_id"]), ep, gateway=i == 0)
                done.append(ep["interface"])
            if published:
                ip = self.endpoints(cid)[0]["ip_address"]
                nat.publish(cid, [(p["protocol"], p["host_ip"], p["host_port"], ip,
                                   p["container_port"]) for p in published], table=self.table)
        except ApiError:
            raise
        except (NetworkError, OSError, ValueError) as e:
            for ifname in done:
                try:
                    bridges.detach(netns, ifname)
                except Exception:
                    pass
            raise ApiError("FAILED_PRECONDITION", f"network setup of {cid[:12]}: {e}") from None

    def teardown(self, cid: str) -> None:
        try:
            nat.unpublish(cid, table=self.table)
        except Exception as e:
            logger.warning("unpublish %s: %s", cid[:12], e)

    def release(self, cid: str) -> None:
        self.teardown(cid)
        with self.lock:
            self.store.release_all(cid)

    # -- networks joined and left later (docker network connect/disconnect) -------------------
    def connect(self, cid: str, name: str, mode: str, pid: int, ref: str, aliases=(),
                ip: str = "") -> dict:
        """The container on one more network: an address now, its veth too when its task runs
        (pid), as the next ethN."""
        if mode in ("host", "none", "") or mode.startswith("container:"):
            raise ApiError("FAILED_PRECONDITION", f"container {name} in network mode "
                                                  f"{mode or 'private'} cannot be connected to "
                                                  "a network")
        net = self.default() if ref == DEFAULT else self.get(ref)
        if net["name"] in ("host", "none"):
            raise ApiError("FAILED_PRECONDITION", f"cannot connect to network {net['name']}")
        with self.lock:
            used = {ep["interface"] for ep in self.store.endpoints(container_id=cid)}
            ifname = next(f"eth{i}" for i in range(len(used) + 1) if f"eth{i}" not in used)
            names = [] if net["name"] == DEFAULT else [name, cid[:12]] + list(aliases)
            try:
                ep = self.store.allocate(net["id"], cid, names, ip or None, ifname)
            except NetworkError as e:
                raise api_error(e) from None
        endpoint = self.endpoint_of(net, ep)
        if pid:
            try:
                self._attach(f"/proc/{pid}/ns/net", net, endpoint, gateway=False)
            except (NetworkError, OSError, ValueError) as e:
                self.store.release(net["id"], cid)
                raise ApiError("FAILED_PRECONDITION", f"connecting {name} to {net['name']}: "
                                                      f"{e}") from None
        return endpoint

    def disconnect(self, cid: str, name: str, pid: int, ref: str) -> None:
        net = self.default() if ref == DEFAULT else self.get(ref)
        ep = next((e for e in self.store.endpoints(network_id=net["id"], container_id=cid)),
                  None)
        if ep is None:
            raise ApiError("FAILED_PRECONDITION", f"container {name} is not connected to "
                                                  f"network {net['name']}")
        if pid:
            try:
                bridges.detach(f"/proc/{pid}/ns/net", ep["interface"])
            except (NetworkError, OSError) as e:
                logger.warning("detach %s from %s: %s", cid[:12], net["name"], e)
        with self.lock:
            self.store.release(net["id"], cid)

    def _attach(self, netns: str, net: dict, ep: dict, gateway: bool) -> None:
        with self.lock:
            bridges.ensure_bridge(net["bridge"], net["gateway"], ep["prefix_len"])
            nat.ensure_table(self.table)
            nat.add_network(net["bridge"], net["subnet"], bool(net["internal"]),
                            table=self.table)
        if net["name"] != DEFAULT:
            self._start_dns(net)
        bridges.attach(netns, net["bridge"], ep["interface"], ep["ip_address"],
                       ep["prefix_len"], ep["mac_address"],
                       gateway=net["gateway"] if gateway else None)

    def reconcile(self, running: dict[str, int]) -> None:
        """At start-up: published ports of containers whose task is gone removed, the DNS
        servers of networks with running containers started. running: {cid: pid}."""
        try:
            keys = nat.published(table=self.table)
        except NetworkError as e:
            logger.warning("published ports: %s", e)
            keys = {}
        for key in keys:
            if key not in running:
                self.teardown(key)
        nets = {n["id"]: n for n in self.store.list()}
        for ep in self.store.endpoints():
            net = nets.get(ep["network_id"])
            if net and net["name"] != DEFAULT and ep["container_id"] in running:
                self._start_dns(net)

    # -- DNS of user networks -------------------------------------------------------------------
    def _start_dns(self, net: dict) -> None:
        with self.lock:
            if net["id"] in self.dns:
                return
            # it runs in the host's namespace: the host's loopback resolvers serve it too
            upstreams, _, _ = etcfiles.host_resolvers(keep_loopback=True, ipv6=True)
            server = DnsServer(net["gateway"], lambda name: self._lookup(net["id"], name),
                               upstreams)
            try:
                server.start()
            except OSError as e:
                logger.warning("DNS of network %s on %s: %s", net["name"], net["gateway"], e)
                return
            self.dns[net["id"]] = server

    def _lookup(self, network_id: str, name: str) -> list[str]:
        return [ep["ip"] for ep in self.store.endpoints(network_id=network_id)
                if name in (a.lower() for a in ep["aliases"]) and self.running(ep["container_id"])]

    def _stop_dns(self, network_id: str) -> None:
        server = self.dns.pop(network_id, None)
        if server is not None:
            server.stop()

    def close(self) -> None:
        for nid in list(self.dns):
            self._stop_dns(nid)
        self.store.close()


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def _etc_mount(source: str, name: str) -> dict:
    return {"destination": f"/etc/{name}", "type": "bind", "source": source,
            "options": ["rbind", "rprivate", "rw"]}


def _write_etc(bundle: str, texts: dict) -> list[dict]:
    """The files in the bundle (each replaced whole) and their mounts."""
    os.makedirs(bundle, mode=0o711, exist_ok=True)
    mounts = []
    for name in ETC_FILES:
        path = os.path.join(bundle, name)
        with open(path + ".tmp", "w") as f:
            f.write(texts[name])
        os.replace(path + ".tmp", path)
        mounts.append(_etc_mount(path, name))
    return mounts
