"""hawserctl's networking, volumes and cp without a daemon: run/create's flags into
ContainerConfig (docker's parsers and their messages), the docker-shaped output of inspect,
ps, port, network and volume verbs from hawser.v1 messages built here, and cp's path rules
against a fake Containers service that runs supervisor/containers/cp.py (the server's tar_stream
and tar_in) on a directory of the test's own."""
import io
import json
import os
import sys

import pytest

from supervisor.client import ctl, docker, grpclite, networks, ports, volumes
from supervisor.client import cp as cpcmd
from supervisor.client.docker_lists import natural_key, network_row, volume_row
from supervisor.client.docker_tables import list_output
from supervisor.client.messages import message, package

pb = package("hawser.v1")
Timestamp = message("google.protobuf.Timestamp")
RUNNING, STOPPED = 2, 3
NOW = 1_800_000_000


def args(*argv):
    return ctl.parser().parse_args(["run", *argv, "busybox", "true"])


def config_of(*argv) -> dict:
    return networks.config_fields(args(*argv), pb.PortBinding)


def refused(*argv) -> str:
    with pytest.raises(ValueError) as e:
        a = args(*argv)
        networks.config_fields(a, pb.PortBinding)
        volumes.mounts_of(a)
    return str(e.value)


# --- -p, --expose ------------------------------------------------------------------------------

def test_publish_forms():
    assert ports.parse_publish("8080:80") == [("", 8080, 80, "tcp")]
    assert ports.parse_publish("80") == [("", 0, 80, "tcp")]
    assert ports.parse_publish("127.0.0.1::53/udp") == [("127.0.0.1", 0, 53, "udp")]
    assert ports.parse_publish("0.0.0.0:8080:80/TCP") == [("", 8080, 80, "tcp")]
    assert ports.parse_publish("8000-8001:80-81") == [("", 8000, 80, "tcp"),
                                                     ("", 8001, 81, "tcp")]
    assert ports.parse_publish("published=8080,target=80,protocol=udp") == \
        [("", 8080, 80, "udp")]


@pytest.mark.parametrize("spec, message", [
    ("abc", "Invalid containerPort: abc"),
    ("8080:70000", "Invalid containerPort: 70000"),
    ("x:80", "Invalid hostPort: x"),
    ("1.2.3:80:80", "Invalid ip address: 1.2.3"),
    ("80/sctpx", "Invalid proto: sctpx"),
    ("8000-8002:80-81", "Invalid ranges specified for container and host Ports: 80-81 and "
                        "8000-8002"),
    ("8080:", "No port specified: 8080:<empty>"),
    ("published=80,target", "invalid publish opts format (should be name=value but got "
                             "'target')"),
])
def test_publish_errors_are_dockers(spec, message):
    with pytest.raises(ports.PortError) as e:
        ports.parse_publish(spec)
    assert str(e.value) == message


def test_expose():
    assert ports.parse_expose("80") == ["80/tcp"]
    assert ports.parse_expose("7000-7001/udp") == ["7000/udp", "7001/udp"]
    for spec, message in (("80:80", "invalid port format for --expose: 80:80"),
                          ("x", 'invalid range format for --expose: x, error: '
                                'strconv.ParseUint: parsing "x": invalid syntax'),
                          ("90-80", "invalid range format for --expose: 90-80, error: Invalid "
                                    "range specified for the Port: 90-80")):
        with pytest.raises(ports.PortError) as e:
            ports.parse_expose(spec)
        assert str(e.value) == message


# --- network flags -----------------------------------------------------------------------------

def test_network_flags_into_config():
    got = config_of("-p", "8080:80", "-p", "127.0.0.1::53/udp", "-P", "--expose", "90",
                    "--net", "appnet", "--network-alias", "www", "--link", "db",
                    "--link", "cache:c", "--dns", "1.1.1.1", "--dns-search", "example.com.",
                    "--add-host", "h:10.0.0.1", "--add-host", "v6:::1")
    assert got["network_mode"] == "appnet" and got["network_aliases"] == ["www"]
    assert [(b.host_ip, b.host_port, b.container_port, b.protocol) for b in got["ports"]] == \
        [("", 8080, 80, "tcp"), ("127.0.0.1", 0, 53, "udp")]
    assert got["publish_all"] is True
    assert got["exposed_ports"] == ["90/tcp", "80/tcp", "53/udp"]   # -p's too, as docker's
    assert got["links"] == ["db:db", "cache:c"]
    assert (got["dns"], got["dns_search"]) == (["1.1.1.1"], ["example.com"])
    assert got["extra_hosts"] == ["h:10.0.0.1", "v6:::1"]
    assert config_of()["network_mode"] == "" and config_of("--network", "default")[
        "network_mode"] == ""


def test_host_mode_drops_published_ports(capsys):
    assert config_of("--network", "host", "-p", "80:80")["ports"] == []
    assert capsys.readouterr().err == \
        "WARNING: Published ports are discarded when using host network mode\n"


@pytest.mark.parametrize("argv, message", [
    (["--add-host", "nocolon"],
     'invalid argument "nocolon" for "--add-host" flag: bad format for add-host: "nocolon"'),
    (["--add-host", "h:1.2.3.x"], 'invalid argument "h:1.2.3.x" for "--add-host" flag: '
                                  'invalid IP address in add-host: "1.2.3.x"'),
    (["--dns", "dns.example"],
     'invalid argument "dns.example" for "--dns" flag: dns.example is not an ip address'),
    (["--dns-search=-bad-"],
     'invalid argument "-bad-" for "--dns-search" flag: -bad- is not a valid domain'),
    (["--link", "a:b:c"], 'invalid argument "a:b:c" for "--link" flag: bad format for links: '
                          'a:b:c'),
    (["--network", "a", "--network", "b"], "Error response from daemon: Container cannot be "
                                           "connected to network endpoints: a, b"),
    (["--network", "container:"], "Error response from daemon: Invalid network mode: invalid "
                                  "container format container:<name|id>"),
    (["-p", "x"], "Invalid containerPort: x"),
    (["-v", "/a:/b:bogus"], "Error response from daemon: invalid mode: bogus"),
    (["--mount", "type=bind,target=/x"], 'invalid argument "type=bind,target=/x" for '
     '"--mount" flag: invalid mount config for type "bind": field Source must not be empty'),
    (["--tmpfs", "relative"], "Error response from daemon: invalid mount path: 'relative' "
                              "mount path must be absolute"),
])
def test_bad_values_get_dockers_messages(argv, message):
    assert refused(*argv) == message


def test_add_host_takes_host_gateway():
    assert config_of("--add-host", "host.docker.internal:host-gateway")["extra_hosts"] == \
        ["host.docker.internal:host-gateway"]


# --- -v, --mount, --tmpfs -----------------------------------------------------------------------

def test_volumes_binds_and_tmpfs_into_mounts(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    got = volumes.mounts_of(args("-v", "data:/data:ro", "-v", "/srv:/srv", "-v", "/anon",
                                 "-v", "./here:/here", "--mount",
                                 "type=bind,src=/opt,dst=/opt,bind-propagation=rshared",
                                 "--mount", "type=volume,source=v2,target=/v2,volume-nocopy",
                                 "--mount", "type=tmpfs,target=/run,tmpfs-size=64m",
                                 "--tmpfs", "/scratch:size=1m,noexec"))
    assert got == [
        {"type": "volume", "source": "data", "destination": "/data", "read_only": True,
         "options": []},
        {"type": "bind", "source": "/srv", "destination": "/srv", "read_only": False,
         "options": ["create-mountpoint"]},
        {"type": "volume", "source": "", "destination": "/anon", "read_only": False,
         "options": []},
        {"type": "bind", "source": str(tmp_path / "here"), "destination": "/here",
         "read_only": False, "options": ["create-mountpoint"]},
        {"type": "bind", "source": "/opt", "destination": "/opt", "read_only": False,
         "options": ["rshared"]},
        {"type": "volume", "source": "v2", "destination": "/v2", "read_only": False,
         "options": ["nocopy"]},
        {"type": "tmpfs", "source": "", "destination": "/run", "read_only": False,
         "options": ["size=64m"]},
        {"type": "tmpfs", "source": "", "destination": "/scratch", "read_only": False,
         "options": ["size=1m", "noexec"]}]


class Recorder:
    """The part of ctl.Api that create() uses: it keeps the request."""

    def __init__(self):
        self.cpb = self.ipb = pb
        self.grpc = grpclite
        self.requests = []
        self.c = self

    def Create(self, req):
        self.requests.append(req)
        return pb.CreateContainerResponse(container=pb.Container(id="c" * 64))


def test_create_sends_the_fields(tmp_path):
    api = Recorder()
    a = ctl.parser().parse_args(["create", "-p", "80", "--network", "none", "-v", "vol:/v",
                                 "--tmpfs", "/t", "busybox", "sh"])
    assert ctl.create(api, a) == "c" * 64
    config = api.requests[0].config
    assert config.network_mode == "none" and config.args == ["sh"]
    assert [(m.type, m.source, m.destination) for m in config.mounts] == \
        [("volume", "vol", "/v"), ("tmpfs", "", "/t")]
    assert [(p.container_port, p.protocol) for p in config.ports] == [(80, "tcp")]


def test_a_bad_flag_is_status_125_with_dockers_hint(capsys):
    # as docker 20.10 prints them (measured): a parse error, a daemon's, a flag's
    for argv, text in ((["run", "-p", "nope"], "hawserctl: Invalid containerPort: nope."),
                       (["create", "-v", "/a:/b:bogus"],
                        "hawserctl: Error response from daemon: invalid mode: bogus."),
                       (["run", "--add-host", "bad"], 'invalid argument "bad" for "--add-host" '
                                                      'flag: bad format for add-host: "bad"')):
        api = Recorder()
        with pytest.raises(SystemExit) as e:
            ctl.create(api, ctl.parser().parse_args(argv + ["busybox"]))
        assert e.value.code == 125 and api.requests == []
        assert capsys.readouterr().err == f"{text}\nSee 'hawserctl {argv[0]} --help'.\n"


# --- inspect, ps, port -------------------------------------------------------------------------

def ts(seconds, nanos=0):
    return Timestamp(seconds=seconds, nanos=nanos)


def web(status=RUNNING, **config):
    config = pb.ContainerConfig(args=["httpd"], exposed_ports=["80/tcp", "53/udp"],
                                ports=[pb.PortBinding(host_port=8080, container_port=80,
                                                      protocol="tcp")], **config)
    ep = pb.Endpoint(network="bridge", network_id="b" * 64, ip_address="172.17.0.2",
                     prefix_len=16, gateway="172.17.0.1", mac_address="02:42:ac:11:00:02",
                     interface="eth0")
    return pb.Container(id="c" * 64, name="web", config=config, status=status,
                        endpoints=[ep], created_at=ts(NOW), started_at=ts(NOW + 1),
                        published=[pb.PortBinding(host_port=8080, container_port=80,
                                                  protocol="tcp")])


def shown(c, **kw) -> dict:
    return json.loads(docker.inspect_format([docker.container_inspect(c, **kw)]))[0]


def test_inspect_network_settings_as_docker():
    d = shown(web())
    ns = d["NetworkSettings"]
    assert ns["Ports"] == {"53/udp": None, "80/tcp": [{"HostIp": "0.0.0.0",
                                                       "HostPort": "8080"}]}
    endpoint = ns["Networks"]["bridge"]
    assert list(endpoint) == ["IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID",
                              "Gateway", "IPAddress", "IPPrefixLen", "IPv6Gateway",
                              "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress",
                              "DriverOpts"]
    assert (endpoint["IPAddress"], endpoint["IPPrefixLen"], endpoint["Gateway"],
            endpoint["MacAddress"], endpoint["NetworkID"]) == \
        ("172.17.0.2", 16, "172.17.0.1", "02:42:ac:11:00:02", "b" * 64)
    # the default bridge's endpoint is also at the top, as docker has it
    assert (ns["IPAddress"], ns["IPPrefixLen"], ns["Gateway"], ns["MacAddress"],
            ns["EndpointID"]) == ("172.17.0.2", 16, "172.17.0.1", "02:42:ac:11:00:02",
                                  endpoint["EndpointID"])
    assert len(endpoint["EndpointID"]) == 64
    host = d["HostConfig"]
    assert host["NetworkMode"] == "default" and host["PublishAllPorts"] is False
    assert host["PortBindings"] == {"80/tcp": [{"HostIp": "", "HostPort": "8080"}]}
    assert docker.inspect_format([docker.container_inspect(web())],
                                 '{{(index (index .NetworkSettings.Ports "80/tcp") 0).HostPort}}'
                                 ) == "8080\n"


def test_inspect_of_a_user_network_and_of_a_stopped_container():
    c = web(status=STOPPED, network_mode="appnet", dns=["1.1.1.1"], links=["db:d"],
            extra_hosts=["h:1.2.3.4"])
    c.endpoints[0].network, c.endpoints[0].aliases = "appnet", ["www", "c" * 12]
    d = shown(c)
    ns = d["NetworkSettings"]
    assert ns["Ports"] == {} and ns["IPAddress"] == "" and ns["EndpointID"] == ""
    assert ns["Networks"]["appnet"]["Aliases"] == ["www", "c" * 12]
    host = d["HostConfig"]
    assert (host["NetworkMode"], host["Dns"], host["DnsSearch"], host["Links"],
            host["ExtraHosts"]) == ("appnet", ["1.1.1.1"], [], ["/db:/web/d"], ["h:1.2.3.4"])
    bare = pb.Container(id="d" * 64, name="n", config=pb.ContainerConfig(network_mode="none"))
    assert list(shown(bare)["NetworkSettings"]["Networks"]) == ["none"]
    assert shown(bare)["HostConfig"]["ExtraHosts"] is None


def test_inspect_mounts_as_docker():
    config = dict(mounts=[
        pb.Mount(type="volume", source="data", destination="/data"),
        pb.Mount(type="bind", source="/srv", destination="/srv", read_only=True,
                 options=["create-mountpoint"]),
        pb.Mount(type="bind", source="/opt", destination="/opt", options=["rshared"]),
        pb.Mount(type="volume", source="f" * 64, destination="/anon"),
        pb.Mount(type="tmpfs", destination="/run", options=["size=64m"])])
    vols = {"data": pb.Volume(name="data", mountpoint="/var/lib/hawserd/volumes/data/_data"),
            "f" * 64: pb.Volume(name="f" * 64, mountpoint="/v/anon", anonymous=True)}
    d = shown(web(**config), volumes=vols)
    assert d["Mounts"][3]["Mode"] == "" and d["Mounts"][3]["Source"] == "/v/anon"
    assert d["Mounts"][4] == {"Type": "tmpfs", "Source": "", "Destination": "/run", "Mode": "",
                              "RW": True, "Propagation": ""}
    assert d["Mounts"][:3] == [
        {"Type": "volume", "Name": "data", "Source": "/var/lib/hawserd/volumes/data/_data",
         "Destination": "/data", "Driver": "local", "Mode": "z", "RW": True, "Propagation": ""},
        {"Type": "bind", "Source": "/srv", "Destination": "/srv", "Mode": "ro", "RW": False,
         "Propagation": "rprivate"},
        {"Type": "bind", "Source": "/opt", "Destination": "/opt", "Mode": "", "RW": True,
         "Propagation": "rshared"}]
    host = d["HostConfig"]
    assert host["Binds"] == ["data:/data", "/srv:/srv:ro"]     # -v's; not the anonymous one
    assert host["Mounts"] == [{"Type": "bind", "Source": "/opt", "Target": "/opt",
                               "BindOptions": {"Propagation": "rshared"}}]
    assert host["Tmpfs"] == {"/run": "size=64m"}
    plain = shown(web())["HostConfig"]
    assert "Mounts" not in plain and "Tmpfs" not in plain       # omitempty, as docker's


def test_ps_ports_networks_and_volumes_columns():
    row = docker.ps_row(web(mounts=[pb.Mount(type="volume", source="data",
                                             destination="/d")]), NOW + 10)
    assert row["Ports"] == "53/udp, 0.0.0.0:8080->80/tcp"
    assert (row["Networks"], row["LocalVolumes"], row["Mounts"]) == ("bridge", "1", "data")
    assert docker.ps_row(web(status=STOPPED), NOW + 10)["Ports"] == ""
    c = web()
    c.config.exposed_ports = ["80/tcp", "81/tcp", "443/tcp"]
    c.published = [pb.PortBinding(host_ip="127.0.0.1", host_port=p, container_port=p,
                                  protocol="tcp") for p in (80, 81)]
    # docker's order: the groups in the order they began (by port), host mappings last
    assert docker.ps_row(c, NOW)["Ports"] == "127.0.0.1:80-81->80-81/tcp, 443/tcp"
    text = docker.ps_output([web()], now=NOW + 10, fmt="table {{.Names}}\t{{.Ports}}")
    assert text == "NAMES     PORTS\nweb       53/udp, 0.0.0.0:8080->80/tcp\n"


class Containers:
    def __init__(self, c):
        self.container = c

    def Get(self, req):
        return pb.GetContainerResponse(container=self.container)


class PortApi:
    def __init__(self, c):
        self.c, self.cpb = Containers(c), pb

    def get(self, ref):
        return self.c.container


def test_port_command(capsys):
    c = web()
    c.published.append(pb.PortBinding(host_ip="127.0.0.1", host_port=5353, container_port=53,
                                      protocol="udp"))
    assert ctl.cmd_port(PortApi(c), ctl.parser().parse_args(["port", "web"])) == 0
    assert capsys.readouterr().out == "53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n"
    ctl.cmd_port(PortApi(c), ctl.parser().parse_args(["port", "web", "80"]))
    assert capsys.readouterr().out == "0.0.0.0:8080\n"
    with pytest.raises(SystemExit) as e:
        ctl.cmd_port(PortApi(c), ctl.parser().parse_args(["port", "web", "81/tcp"]))
    assert str(e.value) == "Error: No public port '81/tcp' published for web"


# --- network and volume verbs ------------------------------------------------------------------

def appnet():
    ep = pb.Endpoint(network="appnet", network_id="a" * 64, ip_address="10.231.7.2",
                     prefix_len=24, mac_address="02:42:0a:e7:07:02")
    return pb.Network(id="a" * 64, name="appnet", driver="bridge", subnet="10.231.7.0/24",
                      gateway="10.231.7.1", bridge="br-aaaaaaaaaaaa", labels={"x": "1"},
                      created=ts(NOW, 5), endpoints=[pb.NetworkEndpoint(
                          container_id="c" * 64, container_name="web", endpoint=ep)])


def test_network_inspect_as_docker():
    text = docker.inspect_format([networks.network_inspect(appnet())])
    d = json.loads(text)[0]
    assert list(d) == ["Name", "Id", "Created", "Scope", "Driver", "EnableIPv6", "IPAM",
                       "Internal", "Attachable", "Ingress", "ConfigFrom", "ConfigOnly",
                       "Containers", "Options", "Labels"]
    assert (d["Name"], d["Id"], d["Created"], d["Scope"], d["Driver"]) == \
        ("appnet", "a" * 64, "2027-01-15T08:00:00.000000005Z", "local", "bridge")
    assert d["IPAM"] == {"Driver": "default", "Options": {},
                         "Config": [{"Subnet": "10.231.7.0/24", "Gateway": "10.231.7.1"}]}
    assert d["Containers"] == {"c" * 64: {
        "Name": "web", "EndpointID": networks.endpoint_id("a" * 64, "c" * 64),
        "MacAddress": "02:42:0a:e7:07:02", "IPv4Address": "10.231.7.2/24", "IPv6Address": ""}}
    assert (d["Options"], d["Labels"], d["EnableIPv6"]) == ({}, {"x": "1"}, False)
    none = json.loads(docker.inspect_format([networks.network_inspect(
        pb.Network(id="none", name="none", driver="null"))]))[0]
    assert none["IPAM"] == {"Driver": "default", "Options": None, "Config": []}
    assert docker.inspect_format([networks.network_inspect(appnet())],
                                 "{{range .IPAM.Config}}{{.Subnet}}{{end}}") == "10.231.7.0/24\n"
    # the container's endpoint has the same id in both
    c = web()
    c.endpoints[0].network_id = "a" * 64
    assert shown(c)["NetworkSettings"]["Networks"]["bridge"]["EndpointID"] == \
        d["Containers"]["c" * 64]["EndpointID"]


def test_network_ls_tables():
    rows = [network_row(n) for n in (appnet(), pb.Network(id="host", name="host",
                                                          driver="host"))]
    assert list_output(rows, "networks") == \
        "NETWORK ID     NAME      DRIVER    SCOPE\n" \
        "aaaaaaaaaaaa   appnet    bridge    local\n" \
        "host           host      host      local\n"
    assert list_output(rows, "networks", quiet=True) == "aaaaaaaaaaaa\nhost\n"
    assert list_output(rows, "networks", "{{.Name}} {{.Internal}} {{.Label \"x\"}}") == \
        "appnet false 1\nhost false \n"
    assert list_output(rows[:1], "networks", "raw") == \
        "network_id: aaaaaaaaaaaa\nname: appnet\ndriver: bridge\nscope: local\n\n"
    assert sorted(["net10", "net9", "a"], key=natural_key) == ["a", "net9", "net10"]


def test_volume_inspect_and_ls():
    v = pb.Volume(name="data", driver="local", mountpoint="/var/lib/hawserd/volumes/data/_data",
                  created=ts(NOW), labels={"k": "v"})
    d = json.loads(docker.inspect_format([volumes.volume_inspect(v)]))[0]
    assert list(d) == ["CreatedAt", "Driver", "Labels", "Mountpoint", "Name", "Options", "Scope"]
    assert (d["Driver"], d["Labels"], d["Mountpoint"], d["Name"], d["Options"], d["Scope"]) == \
        ("local", {"k": "v"}, "/var/lib/hawserd/volumes/data/_data", "data", {}, "local")
    assert d["CreatedAt"] == volumes.rfc3339_local(ts(NOW))
    anon = json.loads(docker.inspect_format([volumes.volume_inspect(
        pb.Volume(name="f" * 64, anonymous=True))]))[0]
    assert anon["Labels"] is None and anon["Options"] is None
    assert list_output([volume_row(v)], "volumes") == "DRIVER    VOLUME NAME\nlocal     data\n"
    assert list_output([volume_row(v)], "volumes", quiet=True) == "data\n"
    assert volumes.server_filters(["dangling=1", "name=da", "label=k"]) == \
        ["dangling==true", "name==da", "label==k"]


class VolumeApi:
    def __init__(self):
        self.vpb, self.grpc, self.vols = pb, grpclite, self
        self.deleted = []

    def Prune(self, req):
        self.pruned = req
        return pb.PruneVolumesResponse(deleted=["a", "b"], space_reclaimed=2_500_000)

    def Delete(self, req):
        if req.name == "gone":
            raise grpclite.RpcError(grpclite.StatusCode.NOT_FOUND, "no such volume")
        self.deleted.append(req.name)
        return grpclite.Empty()


def test_volume_prune_and_rm_print_what_docker_prints(capsys):
    api = VolumeApi()
    p = ctl.parser()
    assert volumes.cmd_volume(api, p.parse_args(["volume", "prune", "-f", "-a"])) == 0
    assert api.pruned.all is True
    assert capsys.readouterr().out == \
        "Deleted Volumes:\na\nb\n\nTotal reclaimed space: 2.5MB\n"
    assert volumes.cmd_volume(api, p.parse_args(["volume", "rm", "x", "gone"])) == 1
    out = capsys.readouterr()
    assert (out.out, out.err) == ("x\n", "Error: No such volume: gone\n")
    assert volumes.cmd_volume(api, p.parse_args(["volume", "rm", "-f", "gone"])) == 0


# --- cp ----------------------------------------------------------------------------------------

def test_cp_args_split_as_docker():
    assert cpcmd.split_arg("web:/etc/passwd") == ("web", "/etc/passwd")
    assert cpcmd.split_arg("/abs:path") == ("", "/abs:path")
    assert cpcmd.split_arg("./file:name") == ("", "./file:name")
    assert cpcmd.split_arg("plain") == ("", "plain")
    assert cpcmd.split_path("/a/b/.") == ("/a/b", ".")
    assert cpcmd.split_path("/a/b/") == ("/a", "b")


class Call:
    def __init__(self, items):
        self.items = iter(items)

    def __iter__(self):
        return self

    def __next__(self):
        return next(self.items)

    def cancel(self):
        return True


def rpc_error(e):
    return grpclite.RpcError(getattr(grpclite.StatusCode, e.code), e.message)


class Writes:
    """A CopyTo call: requests kept, unpacked with the server's tar_in at result()."""

    def __init__(self, root):
        self.root, self.requests = root, []

    def write(self, req):
        self.requests.append(req)

    def done_writing(self):
        pass

    def result(self):
        from supervisor.containers.cp import tar_in
        from supervisor.errors import ApiError
        first, data = self.requests[0], b"".join(r.data for r in self.requests[1:])
        try:
            tar_in(self.root, first.path, io.BytesIO(data))
        except ApiError as e:
            raise rpc_error(e) from None


class FakeContainers:
    """Containers.CopyFrom/CopyTo as hawserd has them, on the directory `root`."""

    def __init__(self, root):
        self.root = str(root)
        self.CopyTo = self
        self.paths_to = []

    def CopyFrom(self, req):
        from supervisor.containers.cp import tar_stream
        from supervisor.errors import ApiError
        try:
            pieces = list(tar_stream(self.root, req.path))
        except ApiError as e:
            raise rpc_error(e) from None
        return Call(pb.CopyChunk(data=p) for p in pieces)

    def future(self, _):
        w = Writes(self.root)
        self.paths_to.append(w)
        return w


class CpApi:
    def __init__(self, root):
        self.c, self.cpb, self.grpc = FakeContainers(root), pb, grpclite


@pytest.fixture
def box(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "hostname").write_text("box\n")
    (root / "data" / "sub").mkdir(parents=True)
    (root / "data" / "a").write_text("A")
    (root / "data" / "sub" / "b").write_text("B")
    os.symlink("data", root / "link")
    host = tmp_path / "host"
    host.mkdir()
    return root, host


def cp(root, *argv):
    return cpcmd.cmd_cp(CpApi(root), ctl.parser().parse_args(["cp", *argv]))


def test_cp_out_follows_dockers_rules(box, capsys):
    root, host = box
    assert cp(root, "c:/etc/hostname", str(host)) == 0           # into an existing dir
    assert (host / "hostname").read_text() == "box\n"
    assert cp(root, "c:/etc/hostname", str(host / "renamed")) == 0   # a new name
    assert (host / "renamed").read_text() == "box\n"
    assert cp(root, "c:/data", str(host / "copy")) == 0          # a dir made with DEST's name
    assert (host / "copy" / "sub" / "b").read_text() == "B"
    assert cp(root, "c:/data", str(host / "copy")) == 0          # then: into it
    assert (host / "copy" / "data" / "a").read_text() == "A"
    assert cp(root, "c:/data/.", str(host / "content")) == 0     # DIR/.: what it holds
    assert sorted(os.listdir(host / "content")) == ["a", "sub"]
    assert cp(root, "c:/link", str(host)) == 0                   # a symlink stays one
    assert os.readlink(host / "link") == "data"
    assert cp(root, "-L", "c:/link", str(host / "followed")) == 0
    assert (host / "followed" / "a").read_text() == "A"
    assert cp(root, "c:/data", str(host / "hostname")) == 1
    assert capsys.readouterr().err == "cannot copy directory\n"
    assert cp(root, "c:/etc/hostname", str(host / "nodir") + "/") == 1
    assert capsys.readouterr().err == "no such directory\n"
    assert cp(root, "c:/nope", str(host)) == 1
    assert capsys.readouterr().err == "Error: No such container:path: c:/nope\n"
    assert cp(root, "c:/etc/hostname", str(host / "missing" / "x")) == 1
    assert capsys.readouterr().err == \
        f'invalid output path: directory "{host / "missing"}" does not exist\n'


def test_cp_out_to_stdout_is_the_tar(box, monkeypatch):
    import tarfile
    root, _ = box
    out = io.BytesIO()
    monkeypatch.setattr(sys, "stdout", io.TextIOWrapper(out))
    assert cp(root, "c:/data", "-") == 0
    sys.stdout.flush()
    names = tarfile.open(fileobj=io.BytesIO(out.getvalue())).getnames()
    assert names == ["data", "data/a", "data/sub", "data/sub/b"]


def test_cp_in_follows_dockers_rules(box, capsys):
    root, host = box
    (host / "f.txt").write_text("in\n")
    (host / "tree" / "d").mkdir(parents=True)
    (host / "tree" / "d" / "x").write_text("X")
    assert cp(root, str(host / "f.txt"), "c:/etc/") == 0         # into an existing dir
    assert (root / "etc" / "f.txt").read_text() == "in\n"
    assert cp(root, str(host / "f.txt"), "c:/etc/hostname") == 0    # replaces a file
    assert (root / "etc" / "hostname").read_text() == "in\n"
    assert cp(root, str(host / "tree"), "c:/newdir") == 0        # made with DEST's name
    assert (root / "newdir" / "d" / "x").read_text() == "X"
    assert cp(root, str(host / "tree") + "/.", "c:/data") == 0   # the content, into data
    assert (root / "data" / "d" / "x").read_text() == "X"
    assert cp(root, str(host / "tree"), "c:/link") == 0          # a link to a dir: into it
    assert (root / "data" / "tree" / "d" / "x").read_text() == "X"
    assert cp(root, str(host / "tree"), "c:/etc/hostname") == 1
    assert capsys.readouterr().err == "cannot copy directory\n"
    assert cp(root, str(host / "absent"), "c:/etc") == 1
    assert capsys.readouterr().err == f"lstat {host / 'absent'}: no such file or directory\n"
    assert cp(root, str(host / "f.txt"), str(host / "g")) == 1
    assert capsys.readouterr().err == "must specify at least one container source\n"
    assert cp(root, "a:/x", "b:/y") == 1
    assert capsys.readouterr().err == "copying between containers is not supported\n"


def test_cp_in_sends_the_landing_directory_and_root_owners(box):
    import tarfile
    root, host = box
    (host / "f.txt").write_text("in\n")
    api = CpApi(root)
    a = ctl.parser().parse_args(["cp", str(host / "f.txt"), "c:/etc/new.txt"])
    assert cpcmd.cmd_cp(api, a) == 0
    call = api.c.paths_to[0]
    assert (call.requests[0].id, call.requests[0].path) == ("c", "/etc")
    t = tarfile.open(fileobj=io.BytesIO(b"".join(r.data for r in call.requests[1:])))
    assert [(m.name, m.uid, m.gid) for m in t.getmembers()] == [("new.txt", 0, 0)]
