"""docker's shapes for hawserctl: `inspect` of containers and images as docker 20.10 prints
them (ContainerJSON, ImageInspect) from hawser.v1 messages, and `--format` on them.

    container_inspect(c, image=None) -> dict     image_inspect(img) -> dict
    inspect_format(objs, fmt) -> text            (FormatError: docker's message and status)

What hawser has no counterpart for is there with docker's empty value (ResolvConfPath "",
SandboxKey ""), so that scripts find the keys they look for; networks and mounts come from
the container's endpoints, published ports and Mount records (networks.py, ports.py and
volumes.py have their shapes). A time not yet reached (StartedAt before the first start, FinishedAt
while running) is left out, not written as Go's zero time; {{.State.FinishedAt}} then prints
<no value>. The ps and images rows and tables are in docker_lists.py and docker_tables.py
(re-exported here)."""
from supervisor.client import docker_units as units
from supervisor.client import gofmt, gojson
from supervisor.client.docker_lists import (familiar, image_created, image_json, image_row,
                                            image_rows, ps_row, short_id, split_reference,
                                            state_name)
from supervisor.client.docker_tables import (IMAGES_DIGESTS_FORMAT, IMAGES_FORMAT, PS_FORMAT,
                                             FormatError, images_output, ps_output,
                                             render_table)
from supervisor.client.gofmt import Map, Slice, Struct, string_map, strings

__all__ = ["emit", "container_inspect", "image_inspect", "inspect_format", "FormatError", "ps_row",
           "image_row", "image_rows", "render_table", "ps_output", "images_output",
           "PS_FORMAT", "IMAGES_FORMAT", "IMAGES_DIGESTS_FORMAT"]

RUNNING, PAUSED, STOPPED = 2, 4, 3
# what hawser's runtime masks and makes read-only (runtime/specgen.py's default spec)
MASKED_PATHS = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                "/proc/sched_debug", "/sys/firmware", "/proc/scsi"]
READONLY_PATHS = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]
SHM_SIZE = 65536 * 1024
NIL = gofmt.NIL
# HostConfig's keys whose Go fields are named otherwise (NanoCPUs, DNS...): measured with
# docker 20.10, a template that names them runs on the JSON instead
HOST_CONFIG_JSON_ONLY = ("CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
                         "CpuRealtimeRuntime", "CpuCount", "CpuPercent", "Dns", "DnsOptions",
                         "DnsSearch")
# docker's container.Config fields that its JSON leaves out when empty
CONFIG_OMITEMPTY = ("ExposedPorts", "Healthcheck", "ArgsEscaped", "NetworkDisabled",
                    "MacAddress", "StopSignal", "StopTimeout", "Shell")


def _time(ts) -> str | None:
    if units.timestamp_seconds(ts) is None:
        return None
    return units.rfc3339_nano(ts.seconds, ts.nanos)


def _port_set(ports) -> Map:
    """nat.PortSet: "80/tcp" -> struct{}; a nil map when there are none."""
    return Map(sorted((p if "/" in p else p + "/tcp", Struct()) for p in ports or ()),
               nil=True, type="nat.PortSet")


def _volume_set(paths) -> Map:
    return Map(sorted((p, Struct()) for p in paths or ()), nil=True,
               type="map[string]struct {}")


def _slice(items=None) -> Slice:
    """A Go slice of structs or pointers: nil when there are none."""
    return Slice(items or (), nil=not items)


# --- containers ------------------------------------------------------------------------------

def _state(c) -> Struct:
    running = c.status in (RUNNING, PAUSED)
    state = Struct(optional=("StartedAt", "FinishedAt"))
    state.update(Status=state_name(c), Running=running, Paused=c.status == PAUSED,
                 Restarting=False, OOMKilled=False, Dead=False, Pid=c.pid,
                 ExitCode=c.exit_status if c.status == STOPPED else 0, Error="")
    started = _time(c.started_at)
    if started:
        state["StartedAt"] = started
    finished = _time(c.exited_at)
    if finished and c.status == STOPPED and started:
        state["FinishedAt"] = finished
    return state


def _restart_policy(text: str) -> Struct:
    name, _, count = (text or "no").partition(":")
    return Struct(Name=name, MaximumRetryCount=int(count) if count.isdigit() else 0)


def _links(c, config) -> Slice:
    """HostConfig.Links as docker keeps them: /NAME:/CONTAINER/ALIAS."""
    out = []
    for link in config.links:
        name, _, alias = link.partition(":")
        out.append(f"/{name}:/{c.name}/{alias or name}")
    return strings(out or None)


def _host_config(c, config, volumes) -> Struct:
    from supervisor.client import ports as port_shapes
    from supervisor.client.volumes import host_mounts
    binds, mounts, tmpfs = host_mounts(config, volumes)
    return Struct(
        type="*container.HostConfig", json_only=HOST_CONFIG_JSON_ONLY,
        omitempty=("Mounts", "Tmpfs"),
        Binds=strings(binds or None), ContainerIDFile="",
        LogConfig=Struct(Type="json-file", Config=string_map({})),
        NetworkMode=config.network_mode or "default",
        PortBindings=port_shapes.port_map((), config.ports, actual=False),
        RestartPolicy=_restart_policy(config.restart_policy),
        AutoRemove=(c.labels or {}).get("hawser.autoremove") == "true", VolumeDriver="",
        VolumesFrom=strings(), CapAdd=strings(), CapDrop=strings(), CgroupnsMode="private",
        Dns=strings(list(config.dns)), DnsOptions=strings([]),
        DnsSearch=strings(list(config.dns_search)),
        ExtraHosts=strings(list(config.extra_hosts) or None),
        GroupAdd=strings(), IpcMode="private", Cgroup="", Links=_links(c, config),
        OomScoreAdj=0, PidMode="", Privileged=False, PublishAllPorts=config.publish_all,
        ReadonlyRootfs=config.read_only, SecurityOpt=strings(),
        Tmpfs=Map(tmpfs, type="map[string]string"), UTSMode="", UsernsMode="", ShmSize=SHM_SIZE,
        Runtime=c.runtime, ConsoleSize=Slice([0, 0], type="[2]uint"), Isolation="",
        CpuShares=0, Memory=config.memory_limit, NanoCpus=round(config.cpus * 1e9),
        CgroupParent="", BlkioWeight=0, BlkioWeightDevice=Slice([]),
        BlkioDeviceReadBps=_slice(), BlkioDeviceWriteBps=_slice(),
        BlkioDeviceReadIOps=_slice(), BlkioDeviceWriteIOps=_slice(), CpuPeriod=0, CpuQuota=0,
        CpuRealtimePeriod=0, CpuRealtimeRuntime=0, CpusetCpus="", CpusetMems="",
        Devices=Slice([]), DeviceCgroupRules=strings(), DeviceRequests=_slice(),
        KernelMemory=0, KernelMemoryTCP=0, MemoryReservation=0, MemorySwap=0,
        MemorySwappiness=NIL, OomKillDisable=False, PidsLimit=config.pids_limit or NIL,
        Ulimits=_slice(), CpuCount=0, CpuPercent=0, IOMaximumIOps=0, IOMaximumBandwidth=0,
        Mounts=Slice(mounts, type="[]mount.Mount"),
        MaskedPaths=strings(MASKED_PATHS), ReadonlyPaths=strings(READONLY_PATHS))


def _container_config(c, config) -> Struct:
    return Struct(
        Hostname=config.hostname or c.id[:12], Domainname="", User=config.user,
        AttachStdin=False, AttachStdout=False, AttachStderr=False,
        ExposedPorts=_port_set(config.exposed_ports), Tty=config.terminal,
        OpenStdin=config.open_stdin, StdinOnce=False, Env=strings(list(config.env) or None),
        Cmd=strings(list(config.args) or None), Image=familiar(c.image) if c.image else "",
        Volumes=_volume_set(config.volumes), WorkingDir=config.cwd,
        Entrypoint=strings(list(config.entrypoint) or None), OnBuild=strings(),
        Labels=string_map(dict(c.labels or {})), StopSignal=config.stop_signal,
        omitempty=CONFIG_OMITEMPTY)


def _endpoint(c, ep=None) -> Struct:
    """docker's EndpointSettings of a hawser.v1.Endpoint (an empty one without)."""
    from supervisor.client.networks import endpoint_id
    active = ep is not None and ep.ip_address
    return Struct(IPAMConfig=NIL, Links=strings(), Aliases=strings(list(ep.aliases) or None)
                  if ep is not None else strings(),
                  NetworkID=ep.network_id if ep is not None else "",
                  EndpointID=endpoint_id(ep.network_id, c.id) if active else "",
                  Gateway=ep.gateway if active else "", IPAddress=ep.ip_address if active else "",
                  IPPrefixLen=ep.prefix_len if active else 0, IPv6Gateway="",
                  GlobalIPv6Address="", GlobalIPv6PrefixLen=0,
                  MacAddress=ep.mac_address if active else "", DriverOpts=string_map(None))


def _network_settings(c, config) -> Struct:
    """docker's NetworkSettings: a network each endpoint (the mode's network when hawserd
    gives none: none, host, bridge); the default bridge's address at the top, as docker
    has it; Ports (exposed ones, and the published ones as bound) while it runs."""
    from supervisor.client import ports as port_shapes
    running = c.status in (RUNNING, PAUSED)
    ports = port_shapes.port_map(config.exposed_ports if running else (),
                                 c.published if running else (), actual=True)
    networks = Map({ep.network: _endpoint(c, ep) for ep in c.endpoints})
    mode = config.network_mode or "none"    # a namespace with lo only (a --rootfs container)
    if not networks and not mode.startswith("container:"):
        networks[mode] = _endpoint(c)
    bridge = next((ep for ep in c.endpoints if ep.network == "bridge" and ep.ip_address), None)
    top = _endpoint(c, bridge)
    return Struct(Bridge="", SandboxID="", HairpinMode=False, LinkLocalIPv6Address="",
                  LinkLocalIPv6PrefixLen=0, Ports=ports, SandboxKey="",
                  SecondaryIPAddresses=_slice(), SecondaryIPv6Addresses=_slice(),
                  EndpointID=top["EndpointID"], Gateway=top["Gateway"], GlobalIPv6Address="",
                  GlobalIPv6PrefixLen=0, IPAddress=top["IPAddress"],
                  IPPrefixLen=top["IPPrefixLen"], IPv6Gateway="", MacAddress=top["MacAddress"],
                  Networks=networks)


def container_inspect(c, image=None, volumes=None) -> Struct:
    """docker 20.10's ContainerJSON for a hawser.v1.Container; image: its hawser.v1.Image
    when the caller has it (Platform is then the image's os); volumes: name ->
    hawser.v1.Volume of its volumes (their Mountpoint, whether anonymous)."""
    import os

    from supervisor.client.volumes import mount_points
    config = c.config if c.config is not None else _empty_config()
    argv = list(config.entrypoint) + list(config.args)
    platform = "linux"
    if image is not None:
        platform = image_json(image).get("os") or platform
    merged = os.path.join(c.bundle, "rootfs") if c.snapshot and c.bundle else ""
    out = Struct(type="types.ContainerJSON", optional=("Created",), json_only=("Id",), Id=c.id)
    created = _time(c.created_at)
    if created:
        out["Created"] = created
    out.update(
        Path=argv[0] if argv else "", Args=strings(argv[1:]), State=_state(c),
        Image=c.image_id, ResolvConfPath="", HostnamePath="", HostsPath="",
        LogPath=c.log_path, Name="/" + c.name, RestartCount=c.restart_count,
        Driver="overlayfs" if c.snapshot else "", Platform=platform, MountLabel="",
        ProcessLabel="", AppArmorProfile="", ExecIDs=strings(),
        HostConfig=_host_config(c, config, volumes or {}),
        GraphDriver=Struct(Data=string_map({"MergedDir": merged} if merged else None),
                           Name="overlayfs" if c.snapshot else ""),
        Mounts=mount_points(config, volumes or {}),
        Config=_container_config(c, config), NetworkSettings=_network_settings(c, config))
    return out


def _empty_config():
    from supervisor.client.messages import package
    return package("hawser.v1").ContainerConfig()


# --- images ----------------------------------------------------------------------------------

def image_config(cfg) -> Struct:
    """docker's container.Config (an image config's "config"), in its field order, with Go's
    types (nil slices and maps where the JSON has none)."""
    cfg = cfg if isinstance(cfg, dict) else {}
    return Struct(
        Hostname=cfg.get("Hostname", ""), Domainname=cfg.get("Domainname", ""),
        User=cfg.get("User", ""), AttachStdin=bool(cfg.get("AttachStdin")),
        AttachStdout=bool(cfg.get("AttachStdout")), AttachStderr=bool(cfg.get("AttachStderr")),
        ExposedPorts=_port_set(cfg.get("ExposedPorts")), Tty=bool(cfg.get("Tty")),
        OpenStdin=bool(cfg.get("OpenStdin")), StdinOnce=bool(cfg.get("StdinOnce")),
        Env=strings(cfg.get("Env")), Cmd=strings(cfg.get("Cmd")),
        Healthcheck=cfg.get("Healthcheck") or NIL, ArgsEscaped=bool(cfg.get("ArgsEscaped")),
        Image=cfg.get("Image", ""), Volumes=_volume_set(cfg.get("Volumes")),
        WorkingDir=cfg.get("WorkingDir", ""), Entrypoint=strings(cfg.get("Entrypoint")),
        NetworkDisabled=bool(cfg.get("NetworkDisabled")), MacAddress=cfg.get("MacAddress", ""),
        OnBuild=strings(cfg.get("OnBuild")), Labels=string_map(cfg.get("Labels")),
        StopSignal=cfg.get("StopSignal", ""), StopTimeout=cfg.get("StopTimeout", NIL),
        Shell=strings(cfg.get("Shell")), omitempty=CONFIG_OMITEMPTY)


def image_inspect(img) -> Struct:
    """docker 20.10's ImageInspect for a hawser.v1.Image."""
    doc = image_json(img)
    tags = [familiar(n) for n in img.repo_tags or ([img.name] if img.name else [])
            if split_reference(n)[1] and not split_reference(n)[2]]
    out = Struct(type="types.ImageInspect", optional=("Created",),
                 omitempty=("Variant", "OsVersion"), json_only=("Id",))
    out.update(Id=img.id, RepoTags=strings(tags),
               RepoDigests=strings([familiar(n) for n in img.repo_digests or ()]), Parent="",
               Comment=doc.get("comment", ""))
    created = image_created(img)
    if created is not None:
        out["Created"] = units.rfc3339_nano(*created)
    rootfs = doc.get("rootfs") if isinstance(doc.get("rootfs"), dict) else {}
    metadata = Struct(optional=("LastTagTime",))
    if units.timestamp_seconds(img.updated) is not None:
        metadata["LastTagTime"] = gofmt.Time(_time(img.updated), units.go_time_utc(
            img.updated.seconds, img.updated.nanos))
    out.update(Container=doc.get("container", ""),
               ContainerConfig=image_config(doc.get("container_config")),
               DockerVersion=doc.get("docker_version", ""), Author=doc.get("author", ""),
               Config=image_config(doc.get("config")), Architecture=doc.get("architecture", ""),
               Variant=doc.get("variant", ""), Os=doc.get("os", ""),
               OsVersion=doc.get("os.version", ""), Size=img.size, VirtualSize=img.size,
               GraphDriver=Struct(Data=string_map(None), Name="overlayfs"),
               RootFS=Struct(Type=rootfs.get("type", "layers"),
                             Layers=strings(list(rootfs.get("diff_ids") or []))),
               Metadata=metadata)
    return out


# --- --format ---------------------------------------------------------------------------------

def inspect_format(objs: list, fmt: str = "") -> str:
    """What `docker inspect [--format F]` prints for these shapes: "" or "json": an indented
    JSON array (4 spaces, as docker indents the daemon's JSON); a template: its output for
    each object, a line each. As docker, a template that fails on the Go types runs again on
    the object's JSON as maps with missingkey=error ({{.Id}} is only there: ContainerJSON's
    field is ID): its output, or its error. FormatError (docker 20.10's messages): a template
    that does not parse (status 64, nothing printed) or fails on an object (status 1,
    `output` has the others' lines)."""
    if fmt in ("", "json"):
        if not objs:
            return "[]\n"
        # dockerd writes its JSON without escaping < > &; the CLI indents it
        return gojson.json_dumps(list(objs), escape_html=False, indent="    ") + "\n"
    from supervisor.client import gotemplate
    try:
        tmpl = gotemplate.Template(fmt)
    except gotemplate.TemplateError as e:
        raise FormatError(f"template parsing error: {e}", status=64) from None
    out, errors = [], []
    for obj in objs:
        try:
            out.append(tmpl.execute(obj) + "\n")
            continue
        except gotemplate.TemplateError:
            pass
        # docker's second try: the object's JSON as maps, a missing key an error
        try:
            out.append(tmpl.execute(gojson.as_json_value(obj), missingkey="error") + "\n")
        except gotemplate.TemplateError as e:
            errors.append(f"template parsing error: {e}")
    text = "".join(out) or "\n"
    if errors:
        raise FormatError("\n".join(errors), status=1, output=text)
    return text


__all__ += ["image_config", "short_id"]


def emit(render) -> int:
    """Print what render() makes; on a FormatError, what it made before it, docker's message on
    stderr: the exit status either way."""
    import sys
    try:
        sys.stdout.write(render())
        return 0
    except FormatError as e:
        sys.stdout.write(e.output)
        print(str(e), file=sys.stderr)
        return e.status
