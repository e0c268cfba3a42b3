"""hawserctl's volumes: run/create's -v, --mount and --tmpfs into Mount records (parsed by
supervisor/volumes/mounts.py: docker's rules and messages; it imports only os), the `volume`
verbs (create, ls, inspect, rm, prune) over hawser.v1.Volumes, and docker's shapes for them
and for a container's mounts (Mounts, HostConfig.Binds/Mounts/Tmpfs)."""
import os
import sys

from supervisor.client.networks import (FlagError, confirm, daemon_error, inspect_each,
                                        labels_of, run_verb)

CREATE_SOURCE = "create-mountpoint"    # mounts.py's mark of a bind made from -v
PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")


# --- run/create ------------------------------------------------------------------------------

def add_run_options(p) -> None:
    p.add_argument("-v", "--volume", action="append", default=[])
    p.add_argument("--mount", action="append", default=[])
    p.add_argument("--tmpfs", action="append", default=[])


def _relative_source(spec: str) -> str:
    """docker's CLI makes a -v source of "." or "./..." absolute (other relative names are
    volume names)."""
    source, sep, rest = spec.partition(":")
    if sep and (source == "." or source.startswith("./")):
        return os.path.abspath(source) + ":" + rest
    return spec


def mounts_of(a) -> list[dict]:
    """hawser.v1.Mount fields of -v, --mount and --tmpfs; ValueError with docker's message
    (the daemon's for -v and --tmpfs, the --mount flag's own)."""
    from supervisor.volumes import mounts
    out = []
    for flag, values, parse in (("-v", a.volume, mounts.parse_volume),
                                ("--mount", a.mount, mounts.parse_mount),
                                ("--tmpfs", a.tmpfs, mounts.parse_tmpfs)):
        for value in values:
            try:
                out.append(parse(_relative_source(value) if flag == "-v" else value))
            except mounts.MountError as e:
                if flag == "--mount":
                    raise FlagError(f'invalid argument "{value}" for "--mount" flag: '
                                    f"{e.message}") from None
                raise ValueError(f"Error response from daemon: {e.message}") from None
    return out


# --- the volume verbs ------------------------------------------------------------------------

def add_parsers(sub) -> None:
    vol = sub.add_parser("volume")
    verbs = vol.add_subparsers(dest="verb", required=True)
    create = verbs.add_parser("create")
    create.add_argument("-d", "--driver", default="local")
    create.add_argument("--label", action="append", default=[])
    create.add_argument("name", nargs="*")
    for name in ("ls", "list"):
        ls = verbs.add_parser(name)
        ls.add_argument("-q", "--quiet", action="store_true")
        ls.add_argument("-f", "--filter", action="append", default=[])
        ls.add_argument("--format", default="")
    inspect = verbs.add_parser("inspect")
    inspect.add_argument("-f", "--format", default="")
    inspect.add_argument("names", nargs="+")
    for name in ("rm", "remove"):
        rm = verbs.add_parser(name)
        rm.add_argument("-f", "--force", action="store_true")
        rm.add_argument("names", nargs="+")
    prune = verbs.add_parser("prune")
    prune.add_argument("-f", "--force", action="store_true")
    prune.add_argument("-a", "--all", action="store_true")
    prune.add_argument("--filter", action="append", default=[])


def cmd_volume(api, a) -> int:
    return run_verb(VERBS, api, a)


def _create(api, a) -> int:
    from supervisor.client.images import optional
    name = optional(a.name, "NAME")
    if a.driver != "local":
        raise SystemExit(f"Error response from daemon: create {name}: error looking up volume "
                         f'plugin {a.driver}: plugin "{a.driver}" not found')
    v = api.vols.Create(api.vpb.CreateVolumeRequest(name=name, labels=labels_of(a.label)))
    print(v.volume.name)
    return 0


def server_filters(filters: list) -> list:
    """docker's KEY=VALUE filters as hawserd's key==value (driver: only local, all match)."""
    out = []
    for f in filters:
        key, _, value = f.partition("=")
        if key == "dangling":
            value = {"1": "true", "0": "false"}.get(value.lower(), value.lower())
            if value not in ("true", "false"):
                raise SystemExit(f"Error response from daemon: invalid filter '{f}'")
        elif key == "driver":
            if value != "local":
                out.append("name==\0")     # a name no volume has: nothing matches
            continue
        elif key not in ("name", "label"):
            raise SystemExit(f"Error response from daemon: invalid filter '{key}'")
        out.append(f"{key}=={value}")
    return out


def _ls(api, a) -> int:
    from supervisor.client import docker
    from supervisor.client.docker_tables import list_output
    from supervisor.client.docker_lists import natural_key, volume_row
    vols = api.vols.List(api.vpb.ListVolumesRequest(filters=server_filters(a.filter))).volumes
    rows = [volume_row(v) for v in sorted(vols, key=lambda v: natural_key(v.name))]
    return docker.emit(lambda: list_output(rows, "volumes", a.format, a.quiet))


def _inspect(api, a) -> int:
    return inspect_each(api, a, "volume", lambda name: volume_inspect(
        api.vols.Get(api.vpb.GetVolumeRequest(name=name)).volume))


def _rm(api, a) -> int:
    errors = []
    for name in a.names:
        try:
            api.vols.Delete(api.vpb.DeleteVolumeRequest(name=name, force=a.force))
        except api.grpc.RpcError as e:
            if not (a.force and e.code().name == "NOT_FOUND"):   # -f: a missing one is fine
                errors.append(daemon_error(e, "volume", name))
                continue
        print(name)
    for text in errors:
        print(text, file=sys.stderr)
    return 1 if errors else 0


def _prune(api, a) -> int:
    from supervisor.client import docker_units as units
    which = "all" if a.all else "anonymous"
    if not a.force and not confirm(f"WARNING! This will remove {which} local volumes not "
                                   "used by at least one container.\nAre you sure you want "
                                   "to continue?"):
        return 0
    r = api.vols.Prune(api.vpb.PruneVolumesRequest(filters=server_filters(a.filter),
                                                   all=a.all))
    if r.deleted:
        print("Deleted Volumes:\n" + "".join(name + "\n" for name in r.deleted))
    print("Total reclaimed space:", units.human_size(r.space_reclaimed, 4))
    return 0


VERBS = {"create": _create, "ls": _ls, "list": _ls, "inspect": _inspect, "rm": _rm,
         "remove": _rm, "prune": _prune}


# --- docker's shapes -------------------------------------------------------------------------

def rfc3339_local(ts) -> str:
    """Go's time.RFC3339 of a local time (a volume's CreatedAt): seconds, the zone's offset."""
    import time
    if ts is None or not (ts.seconds or ts.nanos):
        return "0001-01-01T00:00:00Z"
    t = time.localtime(ts.seconds)
    off = t.tm_gmtoff // 60
    zone = "Z" if off == 0 else f"{'-' if off < 0 else '+'}{abs(off) // 60:02d}:{abs(off) % 60:02d}"
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + zone


def volume_inspect(v):
    """docker's volume.Volume for a hawser.v1.Volume. hawserd takes no driver options:
    Options is {} as docker 20.10 shows it for `volume create`'s (null, as Labels, for an
    anonymous one, which no CLI made)."""
    from supervisor.client.gofmt import Struct, string_map
    made = None if v.anonymous else {}
    return Struct(type="*volume.Volume", CreatedAt=rfc3339_local(v.created),
                  Driver=v.driver or "local",
                  Labels=string_map(dict(v.labels) if v.labels else made),
                  Mountpoint=v.mountpoint, Name=v.name, Options=string_map(made),
                  Scope="local")


def _propagation(m, default: str) -> str:
    return next((o for o in m.options if o in PROPAGATIONS), default)


def mount_points(config, volumes: dict):
    """docker's top-level Mounts (types.MountPoint) of a container's Mount records; volumes:
    name -> hawser.v1.Volume where known (its Mountpoint is the Source)."""
    from supervisor.client.gofmt import Slice, Struct
    from supervisor.volumes.mounts import DEFAULT_PROPAGATION    # what hawser's bind gets
    out = []
    for m in config.mounts:
        kind = m.type or "bind"
        point = Struct(type="types.MountPoint", Type=kind)
        if kind == "volume":       # -v NAME:/path's mode is docker's "z"; an anonymous one's ""
            v = volumes.get(m.source)
            point.update(Name=m.source, Source=v.mountpoint if v is not None else "",
                         Destination=m.destination, Driver="local",
                         Mode="" if v is not None and v.anonymous else "z",
                         RW=not m.read_only, Propagation="")
        else:                      # Name and Driver: omitempty, left out as docker's JSON
            point.update(Source=m.source, Destination=m.destination,
                         Mode="ro" if m.read_only and kind == "bind" else "",
                         RW=not m.read_only, Propagation=_propagation(
                             m, m.propagation or DEFAULT_PROPAGATION) if kind == "bind" else "")
        out.append(point)
    return Slice(out, type="[]types.MountPoint")


def host_mounts(config, volumes: dict) -> tuple[list, list, dict]:
    """HostConfig's Binds (-v: binds and named volumes, as -v writes them), Mounts (--mount
    binds: no -v mark) and Tmpfs of a container's Mount records."""
    binds, mounts, tmpfs = [], [], {}
    for m in config.mounts:
        kind = m.type or "bind"
        if kind == "tmpfs":
            tmpfs[m.destination] = ",".join(m.options)
            continue
        v = volumes.get(m.source) if kind == "volume" else None
        if kind == "volume" and v is not None and v.anonymous:
            continue                   # docker has them in Config.Volumes only
        if kind == "bind" and m.type and CREATE_SOURCE not in m.options:
            point = {"Type": "bind", "Source": m.source, "Target": m.destination}
            if m.read_only:
                point["ReadOnly"] = True
            if _propagation(m, ""):
                point["BindOptions"] = {"Propagation": _propagation(m, "")}
            mounts.append(point)
            continue
        modes = (["ro"] if m.read_only else []) + \
            [o for o in m.options if o in PROPAGATIONS or o == "nocopy"]
        binds.append(f"{m.source}:{m.destination}" + (":" + ",".join(modes) if modes else ""))
    return binds, mounts, tmpfs
