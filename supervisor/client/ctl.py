"""hawserctl: a docker-like client of hawserd's gRPC API.

    hawserctl [--address unix:///run/hawserd/hawserd.sock] COMMAND ...
    run [-d] [-i] [-t] [--rm] [--name N] [-e K=V] [-w DIR] [-u USER] [-h HOST] [--memory M] [--cpus N]
        [--pids-limit N] [--read-only] [--runtime R] [--restart P] [--stop-signal SIG]
        [-v SRC:DIR[:MODE]] [--mount SPEC] [--tmpfs DIR[:OPTS]] [-p [IP:][HOST:]PORT[/PROTO]] [-P]
        [--expose PORT] [--network MODE] [--network-alias A] [--link NAME[:ALIAS]] [--dns IP]
        [--dns-search DOMAIN] [--add-host NAME:IP] (IMAGE | --rootfs DIR) CMD...
    top ID, stats [--no-stream] [ID...], events [-f FILTER] [--format json]
    exec [-d] [-i] [-t] [-e K=V] [-u USER] [-w DIR] ID CMD...   (exit code: the command's)
    start [-a] [-i] ID..., attach ID   (attached: the exit code is the container's)
    create (same options as run), ps [-a] [-q], inspect, logs [-f] [--tail N],
    stop [-t S], kill [-s SIG], rm [-f] [-v], pause, unpause, wait, version,
    update [--memory M] [--cpus N] [--pids-limit N] ID...   (limits of running containers)
    port ID [PORT], cp [-a] [-L] (ID:SRC DEST | SRC ID:DEST)   (- : a tar on stdin/stdout)
    network create|ls|inspect|rm|connect|disconnect|prune, volume create|ls|inspect|rm|prune
"""
import _signal as signal    # signal's constants without its enums (enum: ~3 ms)
import os
import sys

from runtime import jsonlite as json    # json's output, without json's import (re-based, ~1 ms)
from supervisor.client import cliargs as argparse    # argparse's parse without its import (~12 ms)
from supervisor.client import images as image_verbs
from supervisor.client import networks as network_verbs
from supervisor.client import volumes as volume_verbs

DEFAULT_ADDRESS = "unix:///run/hawserd/hawserd.sock"
UNITS = {"b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


class Api:
    """hawserd's services through supervisor/client/grpclite.py (grpcio's interface without importing
    grpc or protobuf, ~70 ms of every command): stubs, the hawser.v1 messages, grpc = RpcError's
    module."""

    def __init__(self, address: str):
        from supervisor.client import grpclite
        self.grpc = grpclite
        self.channel = grpclite.insecure_channel(address)
        self.cpb = self.tpb = self.epb = self.ipb = self.npb = self.vpb = \
            grpclite.package("hawser.v1")
        self.c = grpclite.Stub(self.channel, "hawser.v1.Containers")
        self.i = grpclite.Stub(self.channel, "hawser.v1.Images")
        self.t = grpclite.Stub(self.channel, "hawser.v1.Tasks")
        self.e = grpclite.Stub(self.channel, "hawser.v1.Events")
        self.v = grpclite.Stub(self.channel, "hawser.v1.Version")
        self.net = grpclite.Stub(self.channel, "hawser.v1.Networks")
        self.vols = grpclite.Stub(self.channel, "hawser.v1.Volumes")

    def get(self, ref: str):
        return self.c.Get(self.cpb.GetContainerRequest(id=ref)).container


def parse_size(text: str) -> int:
    t = text.strip().lower().rstrip("b") or "0"
    unit = UNITS.get(t[-1], None)
    try:
        return int(float(t[:-1]) * unit) if unit else int(t)
    except ValueError:
        raise SystemExit(f"hawserctl: invalid size {text!r}") from None


def add_create_options(p) -> None:
    p.add_argument("--name", default="")
    p.add_argument("-e", "--env", action="append", default=[])
    p.add_argument("-w", "--workdir", default="")
    p.add_argument("-u", "--user", default="")
    p.add_argument("-h", "--hostname", default="")
    p.add_argument("-t", "--tty", action="store_true")
    p.add_argument("-i", "--interactive", action="store_true")
    p.add_argument("--memory", default="")
    p.add_argument("--cpus", type=float, default=0)
    p.add_argument("--pids-limit", type=int, default=0)
    p.add_argument("--read-only", action="store_true")
    volume_verbs.add_run_options(p)
    network_verbs.add_run_options(p)
    p.add_argument("--runtime", default="")
    p.add_argument("--rm", action="store_true")
    p.add_argument("--restart", default="", help="no | on-failure[:N] | always | unless-stopped")
    p.add_argument("--stop-signal", default="")
    p.add_argument("--label", "-l", action="append", default=[])
    p.add_argument("--entrypoint", default=None)
    p.add_argument("--pull", default="missing", help="missing | always | never")
    p.add_argument("--rootfs", default="", help="a root filesystem directory instead of IMAGE")
    p.add_argument("command", nargs=argparse.REMAINDER, help="IMAGE [COMMAND [ARG...]]")


def run_error(a, e: ValueError):
    """docker's report of a bad run/create: its message (a flag's as cobra words it), the
    help hint, status 125."""
    text = str(e) if isinstance(e, network_verbs.FlagError) else \
        f"hawserctl: {str(e).removesuffix('.')}."
    print(f"{text}\nSee 'hawserctl {a.cmd} --help'.", file=sys.stderr)
    raise SystemExit(125)


def create(api: Api, a) -> str:
    try:    # every flag checked before anything is asked of hawserd
        mounts = [api.cpb.Mount(**m) for m in volume_verbs.mounts_of(a)]
        network = network_verbs.config_fields(a, api.cpb.PortBinding)
    except ValueError as e:
        run_error(a, e)
    image, command = "", list(a.command)
    if not a.rootfs:
        if not command:
            raise SystemExit("hawserctl: give an IMAGE (or --rootfs DIR) and the command")
        image, command = command[0], command[1:]
        if command[:1] == ["--"]:
            command = command[1:]
    entrypoint = [] if a.entrypoint is None else ([a.entrypoint] if a.entrypoint else [])
    config = api.cpb.ContainerConfig(
        args=command, env=a.env, cwd=a.workdir, user=a.user, hostname=a.hostname,
        entrypoint=entrypoint, entrypoint_set=a.entrypoint is not None,
        terminal=a.tty, memory_limit=parse_size(a.memory) if a.memory else 0,
        pids_limit=a.pids_limit, cpus=a.cpus, read_only=a.read_only, mounts=mounts,
        restart_policy=a.restart, stop_signal=a.stop_signal, open_stdin=a.interactive,
        **network)
    labels = dict(kv.partition("=")[::2] for kv in a.label)
    if a.rm and getattr(a, "detach", False):
        labels["hawser.autoremove"] = "true"
    req = api.cpb.CreateContainerRequest(
        name=a.name, config=config, rootfs=os.path.abspath(a.rootfs) if a.rootfs else "",
        image=image, runtime=a.runtime, labels=labels)
    if image and a.pull not in ("missing", "always", "never"):
        raise SystemExit(f"hawserctl: --pull {a.pull!r}: use missing, always or never")
    if image and a.pull == "always":
        image_verbs.pull_quietly(api, image)
    try:
        return api.c.Create(req).container.id
    except api.grpc.RpcError as e:
        # docker's run/create: an image that is not here is pulled first (--pull missing)
        if not image or a.pull != "missing" or e.code() is not api.grpc.StatusCode.NOT_FOUND \
                or not e.details().startswith("no such image"):
            raise
    print(f"Unable to find image '{image}' locally", file=sys.stderr)
    image_verbs.pull_quietly(api, image)
    return api.c.Create(req).container.id


def start(api: Api, cid: str) -> None:
    api.t.Create(api.tpb.CreateTaskRequest(container_id=cid))
    api.t.Start(api.tpb.StartRequest(container_id=cid))


def cmd_run(api: Api, a) -> int:
    cid = create(api, a)
    if a.detach:
        start(api, cid)
        print(cid)
        return 0
    try:
        return start_attached(api, cid, a.interactive, a.tty)
    finally:
        if a.rm:
            api.c.Delete(api.cpb.DeleteContainerRequest(id=cid, force=True))


def start_attached(api: Api, cid: str, stdin: bool, terminal: bool) -> int:
    """Task created, our session attached, then started: its whole output is ours; the exit
    status once its output has ended."""
    from supervisor.client import session
    api.t.Create(api.tpb.CreateTaskRequest(container_id=cid))
    with session.RawTerminal(terminal and stdin):
        session.attach(api, cid, stdin, terminal, when_attached=lambda: api.t.Start(
            api.tpb.StartRequest(container_id=cid)))
    return api.t.Wait(api.tpb.WaitRequest(container_id=cid)).exit_status


def cmd_start(api, a):
    if not a.attach:
        return for_each(lambda api, a, ref: start(api, api.get(ref).id))(api, a)
    if len(a.containers) != 1:
        raise SystemExit("hawserctl: start -a takes one container")
    c = api.get(a.containers[0])
    return start_attached(api, c.id, a.interactive and c.config.open_stdin, c.config.terminal)


def cmd_attach(api, a):
    from supervisor.client import session
    c = api.get(a.container)
    stdin = c.config.open_stdin and not a.no_stdin
    with session.RawTerminal(c.config.terminal and stdin):
        session.attach(api, c.id, stdin, c.config.terminal)
    return api.t.Wait(api.tpb.WaitRequest(container_id=c.id)).exit_status


def cmd_create(api, a):
    print(create(api, a))
    return 0


def for_each(fn):
    def run(api, a):
        rc = 0
        for ref in a.containers:
            try:
                fn(api, a, ref)
                print(ref)
            except api.grpc.RpcError as e:
                print(f"hawserctl: {ref}: {e.details()}", file=sys.stderr)
                rc = 1
        return rc
    return run


def cmd_ps(api, a):
    from supervisor.client import docker
    filters = [_ps_filter(f) for f in a.filter]
    cs = api.c.List(api.cpb.ListContainersRequest(all=a.all, filters=filters)).containers
    if a.last:
        cs = sorted(cs, key=lambda c: _seconds(c.created_at), reverse=True)[:a.last]
    return docker.emit(lambda: docker.ps_output(cs, fmt=a.format, no_trunc=a.no_trunc,
                                                quiet=a.quiet, size=a.size))


def _ps_filter(text: str) -> str:
    """docker's KEY=VALUE filters (status, name, id, label) as hawserd's field==value ones."""
    if "==" in text or "!=" in text:
        return text
    key, _, value = text.partition("=")
    if key == "status":
        value = {"exited": "stopped"}.get(value, value)
    if key == "label":
        k, has, v = value.partition("=")
        return f"labels.{k}=={v}" if has else f"labels.{k}!="
    return f"{key}=={value}"


def _seconds(ts) -> float:
    return ts.seconds + ts.nanos / 1e9 if ts is not None else 0.0


INSPECT_TYPES = ("container", "image", "network", "volume")


def _inspect_one(api, kind: str, ref: str):
    from supervisor.client import docker
    if kind == "container":
        c = api.get(ref)
        return docker.container_inspect(c, _image_of(api, c), _volumes_of(api, c))
    if kind == "image":
        return docker.image_inspect(api.i.Get(api.ipb.GetImageRequest(ref=ref)).image)
    if kind == "network":
        return network_verbs.network_inspect(api.net.Get(api.npb.GetNetworkRequest(ref=ref))
                                             .network)
    return volume_verbs.volume_inspect(api.vols.Get(api.vpb.GetVolumeRequest(name=ref)).volume)


def cmd_inspect(api, a):
    """docker inspect: containers, images, networks, then volumes, by each name given
    (docker's JSON shapes)."""
    from supervisor.client import docker
    if a.type and a.type not in INSPECT_TYPES:
        raise SystemExit(f'"{a.type}" is not a valid value for --type')
    objs, rc = [], 0
    for ref in a.names:
        found = None
        for kind in (a.type,) if a.type else INSPECT_TYPES:
            try:
                found = _inspect_one(api, kind, ref)
                break
            except api.grpc.RpcError as e:
                if e.code() is not api.grpc.StatusCode.NOT_FOUND:
                    raise
        if found is None:
            print(f"Error: No such {a.type or 'object'}: {ref}", file=sys.stderr)
            rc = 1
            continue
        objs.append(found)
    return docker.emit(lambda: docker.inspect_format(objs, a.format)) or rc


def _volumes_of(api, c) -> dict:
    """name -> hawser.v1.Volume of the container's volumes (those hawserd still has)."""
    found = {}
    for m in c.config.mounts if c.config is not None else ():
        if m.type == "volume" and m.source and m.source not in found:
            try:
                found[m.source] = api.vols.Get(api.vpb.GetVolumeRequest(name=m.source)).volume
            except api.grpc.RpcError:
                pass
    return found


def cmd_port(api, a):
    """docker port: the container's published ports as bound."""
    from supervisor.client import ports
    c = api.get(a.container)
    running = c.status in (2, 4)    # RUNNING, PAUSED: docker lists ports while it runs
    bound = ports.port_map((), c.published if running else (), actual=True)
    try:
        lines = ports.port_lines(bound, image_verbs.optional(a.port, "PORT"), a.container)
    except ports.PortError as e:
        raise SystemExit(str(e)) from None
    print("".join(line + "\n" for line in lines), end="")
    return 0


def cmd_cp(api, a):
    from supervisor.client import cp
    return cp.cmd_cp(api, a)


def _image_of(api, c):
    if not c.image_id:
        return None
    try:
        return api.i.Get(api.ipb.GetImageRequest(ref=c.image_id)).image
    except api.grpc.RpcError:
        return None     # removed with force while the container uses it


def cmd_image(api, a):
    """`image VERB ARGS`: docker's management command, as the top-level verb it stands for."""
    from supervisor.client import images
    verb = images.IMAGE_VERBS.get(a.verb)
    if verb is None:
        raise SystemExit(f"hawserctl: image {a.verb}: unknown command (one of "
                         f"{', '.join(sorted(images.IMAGE_VERBS))})")
    b = parser().parse_args(["--address", a.address, verb] +
                            (["--type", "image"] if verb == "inspect" else []) + a.args)
    return COMMANDS[b.cmd](api, b)


def stream_logs(api, ref: str, follow: bool, tail: int = -1) -> None:
    for e in api.c.Logs(api.cpb.LogsRequest(id=ref, follow=follow, tail=tail)):
        out = sys.stderr if e.stream == "stderr" else sys.stdout
        out.write(e.log)
        out.flush()


def cmd_logs(api, a):
    stream_logs(api, a.container, a.follow, a.tail)
    return 0


class FifoReader:
    """A FIFO made by the client for a process's output, copied to `out` by a thread. A writer of
    our own keeps the reader from seeing EOF before the process has opened the FIFO; release()
    drops it once the process has exited, so the thread ends at the real EOF."""

    def __init__(self, path: str, out):
        import threading
        os.mkfifo(path, 0o600)
        self.path, self.out = path, out
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        self.keep = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.set_blocking(self.fd, True)
        self.thread = threading.Thread(target=self._copy, daemon=True)
        self.thread.start()

    def _copy(self) -> None:
        out = self.out.buffer if hasattr(self.out, "buffer") else self.out
        while True:
            data = os.read(self.fd, 65536)
            if not data:
                break
            out.write(data)
            out.flush()
        os.close(self.fd)

    def release(self, timeout: float = 5.0) -> None:
        if self.keep is not None:
            os.close(self.keep)
            self.keep = None
        self.thread.join(timeout)


def cmd_exec(api, a):
    import secrets
    import shutil
    import tempfile
    import threading

    from supervisor.client import session
    c = api.get(a.container)
    exec_id = "exec-" + secrets.token_hex(8)
    req = dict(container_id=c.id, exec_id=exec_id, args=a.command, env=a.env, cwd=a.workdir,
               user=a.user, terminal=a.tty)
    if a.detach:
        api.t.Exec(api.tpb.ExecRequest(**req))
        api.t.Start(api.tpb.StartRequest(container_id=c.id, exec_id=exec_id))
        return 0
    tmp = tempfile.mkdtemp(prefix="hawserctl-exec-")
    readers = []
    try:
        out = FifoReader(os.path.join(tmp, "stdout"), sys.stdout)
        readers.append(out)
        if not a.tty:
            readers.append(FifoReader(os.path.join(tmp, "stderr"), sys.stderr))
            req["stderr"] = readers[-1].path
        req["stdout"] = out.path
        if a.interactive:
            req["stdin"] = os.path.join(tmp, "stdin")
            os.mkfifo(req["stdin"], 0o600)
        api.t.Exec(api.tpb.ExecRequest(**req))
        try:
            with session.RawTerminal(a.tty and a.interactive):
                api.t.Start(api.tpb.StartRequest(container_id=c.id, exec_id=exec_id))
                if a.tty:
                    session.on_resize(lambda rows, cols: api.t.ResizePty(api.tpb.ResizePtyRequest(
                        container_id=c.id, exec_id=exec_id, width=cols, height=rows)))
                if a.interactive:
                    threading.Thread(target=copy_stdin, args=(api, c.id, exec_id, req["stdin"]),
                                     daemon=True).start()
                status = session.in_thread(lambda: api.t.Wait(api.tpb.WaitRequest(
                    container_id=c.id, exec_id=exec_id)))
                for r in readers:
                    r.release()
        finally:
            for r in readers:
                r.release()
            try:
                api.t.Delete(api.tpb.DeleteTaskRequest(container_id=c.id, exec_id=exec_id))
            except api.grpc.RpcError:
                pass
        return status.exit_status
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def copy_stdin(api, cid: str, exec_id: str, path: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        while True:
            data = os.read(sys.stdin.fileno(), 65536)
            if not data:
                break
            os.write(fd, data)
    except OSError:
        pass
    finally:
        os.close(fd)
        try:
            api.t.CloseIO(api.tpb.CloseIORequest(container_id=cid, exec_id=exec_id, stdin=True))
        except api.grpc.RpcError:
            pass


def cmd_top(api, a):
    c = api.get(a.container)
    procs = api.t.Pids(api.tpb.PidsRequest(container_id=c.id)).processes
    print(f"{'PID':<8}{'PPID':<8}{'STAT':<6}CMD")
    for p in procs:
        try:
            with open(f"/proc/{p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{p.pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, IndexError):
            continue
        print(f"{p.pid:<8}{fields[1]:<8}{fields[0]:<6}{cmd}")
    return 0


def cmd_stats(api, a):
    refs = a.containers or [c.id for c in api.c.List(api.cpb.ListContainersRequest()).containers]
    while True:
        rows = []
        for ref in refs:
            c = api.get(ref)
            s = api.t.Stats(api.tpb.StatsRequest(container_id=c.id))
            rows.append({"id": c.id, "name": c.name, "memory_usage": s.memory_usage,
                         "memory_limit": s.memory_limit, "cpu_usage_ns": s.cpu_usage_ns,
                         "pids": s.pids_current, "pids_limit": s.pids_limit})
        if a.format == "json":
            print(json.dumps(rows))
        else:
            print(f"{'CONTAINER ID':<14}{'NAME':<20}{'MEM USAGE / LIMIT':<26}{'CPU TIME':<12}PIDS")
            for r in rows:
                mem = f"{r['memory_usage'] / 1048576:.1f}MiB / " + \
                    (f"{r['memory_limit'] / 1048576:.1f}MiB" if r["memory_limit"] < 1 << 60
                     else "-")
                print(f"{r['id'][:12]:<14}{r['name'][:18]:<20}{mem:<26}"
                      f"{r['cpu_usage_ns'] / 1e9:<12.2f}{r['pids']}")
        sys.stdout.flush()
        if a.no_stream:
            return 0
        import time
        time.sleep(1)


def cmd_events(api, a):
    for ev in api.e.Subscribe(api.epb.SubscribeRequest(filters=a.filter)):
        t = ev.timestamp.ToDatetime().isoformat() + "Z"
        if a.format == "json":
            print(json.dumps({"time": t, "topic": ev.topic, "container_id": ev.container_id,
                              "exec_id": ev.exec_id, "pid": ev.pid,
                              "exit_status": ev.exit_status}), flush=True)
        else:
            extra = "".join(f" {k}={v}" for k, v in (("exec_id", ev.exec_id), ("pid", ev.pid),
                            ("exit_status", ev.exit_status)) if v)
            print(f"{t} {ev.topic} {ev.container_id[:12]}{extra}", flush=True)
    return 0


def signum(name: str) -> int:
    if name.isdigit():
        return int(name)
    name = name.upper()
    return int(getattr(signal, name if name.startswith("SIG") else "SIG" + name))


def cmd_wait(api, a):
    for ref in a.containers:
        print(api.t.Wait(api.tpb.WaitRequest(container_id=api.get(ref).id)).exit_status)
    return 0


def cmd_version(api, a):
    from supervisor import VERSION
    v = api.v.Version(api.grpc.Empty())
    if a.format == "json":
        print(json.dumps({"client": VERSION, "server": v.version, "api": v.api_version,
                          "runtime": v.default_runtime}))
    else:
        print(f"Client: {VERSION}\nServer: {v.version} (api {v.api_version}, runtime "
              f"{v.default_runtime}, pid {v.pid})")
    return 0


def stop_one(api, a, ref):
    api.t.Stop(api.tpb.StopRequest(container_id=api.get(ref).id, timeout=a.time))


def update_one(api, a, ref):
    api.t.Update(api.tpb.UpdateTaskRequest(
        container_id=api.get(ref).id, memory_limit=parse_size(a.memory) if a.memory else 0,
        pids_limit=a.pids_limit, cpus=a.cpus))


COMMANDS = {
    "start": cmd_start, "attach": cmd_attach,
    "stop": for_each(stop_one),
    "update": for_each(update_one),
    "kill": for_each(lambda api, a, ref: api.t.Kill(api.tpb.KillRequest(
        container_id=api.get(ref).id, signal=signum(a.signal)))),
    "rm": for_each(lambda api, a, ref: api.c.Delete(api.cpb.DeleteContainerRequest(
        id=ref, force=a.force, volumes=a.volumes))),
    "pause": for_each(lambda api, a, ref: api.t.Pause(api.tpb.PauseRequest(container_id=ref))),
    "unpause": for_each(lambda api, a, ref: api.t.Resume(api.tpb.ResumeRequest(
        container_id=ref))),
    "run": cmd_run, "create": cmd_create, "ps": cmd_ps, "inspect": cmd_inspect,
    "logs": cmd_logs, "exec": cmd_exec, "top": cmd_top, "stats": cmd_stats,
    "events": cmd_events, "wait": cmd_wait, "version": cmd_version, "image": cmd_image,
    "port": cmd_port, "cp": cmd_cp, "network": network_verbs.cmd_network, "volume": volume_verbs.cmd_volume,
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hawserctl", description="a docker-like client of hawserd")
    p.add_argument("--address", default=os.environ.get("HAWSER_ADDRESS", DEFAULT_ADDRESS))
    sub = p.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", add_help=False)
    run.add_argument("-d", "--detach", action="store_true")
    add_create_options(run)
    add_create_options(sub.add_parser("create", add_help=False))
    ps = sub.add_parser("ps")
    ps.add_argument("-a", "--all", action="store_true")
    ps.add_argument("-q", "--quiet", action="store_true")
    ps.add_argument("-f", "--filter", action="append", default=[])
    ps.add_argument("--no-trunc", action="store_true")
    ps.add_argument("-s", "--size", action="store_true")
    ps.add_argument("-n", "--last", type=int, default=0)
    for name in ("ps", "version"):
        (ps if name == "ps" else sub.add_parser(name)).add_argument("--format", default="")
    logs = sub.add_parser("logs")
    logs.add_argument("-f", "--follow", action="store_true")
    logs.add_argument("--tail", type=int, default=-1)
    logs.add_argument("container")
    top = sub.add_parser("top")
    top.add_argument("container")
    st = sub.add_parser("stats")
    st.add_argument("--no-stream", action="store_true")
    st.add_argument("--format", default="")
    st.add_argument("containers", nargs="*")
    ev = sub.add_parser("events")
    ev.add_argument("-f", "--filter", action="append", default=[])
    ev.add_argument("--format", default="")
    ex = sub.add_parser("exec", add_help=False)
    ex.add_argument("-d", "--detach", action="store_true")
    ex.add_argument("-i", "--interactive", action="store_true")
    ex.add_argument("-t", "--tty", action="store_true")
    ex.add_argument("-e", "--env", action="append", default=[])
    ex.add_argument("-u", "--user", default="")
    ex.add_argument("-w", "--workdir", default="")
    ex.add_argument("container")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    at = sub.add_parser("attach")
    at.add_argument("--no-stdin", action="store_true")
    at.add_argument("container")
    ins = sub.add_parser("inspect")
    ins.add_argument("-f", "--format", default="")
    ins.add_argument("--type", default="", help="container | image | network | volume")
    ins.add_argument("-s", "--size", action="store_true")
    ins.add_argument("names", nargs="+")
    image = sub.add_parser("image", add_help=False)
    image.add_argument("verb")
    image.add_argument("args", nargs=argparse.REMAINDER)
    image_verbs.add_parsers(sub)
    network_verbs.add_parsers(sub)
    volume_verbs.add_parsers(sub)
    cp = sub.add_parser("cp")
    cp.add_argument("-a", "--archive", action="store_true")
    cp.add_argument("-L", "--follow-link", action="store_true")
    cp.add_argument("source")
    cp.add_argument("dest")
    port = sub.add_parser("port")
    port.add_argument("container")
    port.add_argument("port", nargs="*")
    for name in ("start", "stop", "kill", "rm", "pause", "unpause", "wait",
                 "update"):
        sp = sub.add_parser(name)
        if name == "start":
            sp.add_argument("-a", "--attach", action="store_true")
            sp.add_argument("-i", "--interactive", action="store_true")
        if name == "stop":
            sp.add_argument("-t", "--time", type=float, default=10)
        if name == "update":
            sp.add_argument("--memory", default="", help="e.g. 64m")
            sp.add_argument("--cpus", type=float, default=0)
            sp.add_argument("--pids-limit", type=int, default=0)
        if name == "kill":
            sp.add_argument("-s", "--signal", default="KILL")
        if name == "rm":
            sp.add_argument("-f", "--force", action="store_true")
            sp.add_argument("-v", "--volumes", action="store_true",
                            help="its anonymous volumes too")
        sp.add_argument("containers", nargs="+")
    return p


def main(argv=None) -> int:
    COMMANDS.update(image_verbs.COMMANDS)
    a = parser().parse_args(sys.argv[1:] if argv is None else argv)
    if getattr(a, "command", None) and a.command[:1] == ["--"]:
        a.command = a.command[1:]
    api = Api(a.address)
    try:
        return COMMANDS[a.cmd](api, a)
    except api.grpc.RpcError as e:
        print(f"hawserctl: {e.details()} ({e.code().name})", file=sys.stderr)
        return 125
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
