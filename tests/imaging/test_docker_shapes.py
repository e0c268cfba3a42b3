"""docker's shapes in hawserctl (supervisor/client/docker.py, docker_lists.py): inspect of
containers and images, ps and images rows and tables, --format.

Against a real docker: a PRIVATE dockerd (tests/test_clients_docker.py's fixture: its own
data-root, containerd, bridge; one daemon for this module) runs containers in each state. Then
  - our template engine runs on the JSON of `docker inspect` and must print what
    `docker inspect --format T` prints (docker's data are Go structs, ours dicts: the corpus
    leaves out what only a Go type decides, e.g. a null slice's "[]");
  - each docker container, mirrored into a hawser.v1.Container, must give through
    container_inspect the keys docker has and the same output for the fields hawser has;
  - `docker ps`/`docker images` rows ({{json .}}) through our tables must print what docker's
    tables print, and our rows of the mirrored records must be docker's rows;
  - bad templates fail with docker's messages and exit statuses.
Divergences kept (asserted below): a time not yet reached is absent, not 0001-01-01; Networks
is "none" (hawser's containers have a network namespace with only lo); Size is 0B when hawserd
gives no sizes."""
import calendar
import json
import os
import re
import tarfile
import time

import pytest

from supervisor.client import docker, docker_units, gofmt
from supervisor.client.docker_tables import FormatError, images_format, ps_format, render_table
from supervisor.client.gotemplate import Func, Template, TemplateError
from supervisor.client.messages import message, package

pb = package("hawser.v1")
Timestamp = message("google.protobuf.Timestamp")
CREATED, RUNNING, STOPPED, PAUSED = 1, 2, 3, 4
NOW = 1_800_000_000.0


def ts(seconds: float):
    whole = int(seconds)
    return Timestamp(seconds=whole, nanos=round((seconds - whole) * 1e9))


def container(status=RUNNING, started=NOW - 300, exited=None, args=("sleep", "1000"), **kw):
    config = kw.pop("config", None) or pb.ContainerConfig(args=list(args))
    return pb.Container(id=kw.pop("id", "c0ffee" + "0" * 58), name=kw.pop("name", "web"),
                        config=config, created_at=ts(kw.pop("created", NOW - 600)),
                        status=status, started_at=ts(started) if started else None,
                        exited_at=ts(exited) if exited else None, runtime="hawser", **kw)


def image(**kw):
    cfg = kw.pop("config", {"architecture": "amd64", "os": "linux", "created":
                            "2026-01-01T00:00:00Z", "config": {"Cmd": ["sh"]},
                            "rootfs": {"type": "layers", "diff_ids": ["sha256:" + "d" * 64]}})
    return pb.Image(id=kw.pop("id", "sha256:" + "e" * 64), config=json.dumps(cfg).encode(),
                    size=kw.pop("size", 4_260_000), **kw)


def fmt(obj, template: str) -> str:
    return Template(template).execute(obj)


# --- containers' states and times ------------------------------------------------------------

def test_created_never_started_has_no_times():
    for c in (container(status=STOPPED, started=None), container(status=CREATED, started=None)):
        d = docker.container_inspect(c)
        assert d["State"]["Status"] == "created" and not d["State"]["Running"]
        assert "StartedAt" not in d["State"] and "FinishedAt" not in d["State"]
        assert fmt(d, "{{.State.StartedAt}}|{{.State.FinishedAt}}|{{.Created}}") == \
            f"<no value>|<no value>|{docker_units.rfc3339_nano(int(NOW - 600))}"
        assert docker.ps_row(c, NOW)["Status"] == "Created"
        assert docker.ps_row(c, NOW)["State"] == "created"


def test_running_has_started_at_and_no_finished_at():
    c = container(status=RUNNING, started=NOW - 300, exited=NOW - 400, pid=42)
    c.started_at = Timestamp(seconds=int(NOW) - 301, nanos=880000000)
    d = docker.container_inspect(c)
    assert d["State"]["StartedAt"] == docker_units.rfc3339_nano(int(NOW) - 301, 880000000)
    assert d["State"]["StartedAt"].endswith(":59.88Z")   # nanoseconds, trailing zeros cut
    assert "FinishedAt" not in d["State"]                # an earlier run's exit is not shown
    assert (d["State"]["Running"], d["State"]["Pid"], d["State"]["ExitCode"]) == (True, 42, 0)
    assert docker.ps_row(c, NOW)["Status"] == "Up 5 minutes"


def test_paused_and_exited_statuses():
    paused = container(status=PAUSED, started=NOW - 2)
    d = docker.container_inspect(paused)
    assert (d["State"]["Status"], d["State"]["Running"], d["State"]["Paused"]) == \
        ("paused", True, True)
    assert docker.ps_row(paused, NOW)["Status"] == "Up 2 seconds (Paused)"
    exited = container(status=STOPPED, started=NOW - 10, exited=NOW - 3, exit_status=3)
    d = docker.container_inspect(exited)
    assert (d["State"]["Status"], d["State"]["ExitCode"], d["State"]["Running"]) == \
        ("exited", 3, False)
    assert d["State"]["FinishedAt"] == docker_units.rfc3339_nano(int(NOW - 3))
    assert docker.ps_row(exited, NOW)["Status"] == "Exited (3) 3 seconds ago"
    assert docker.ps_row(exited, NOW)["State"] == "exited"
    fresh = container(status=RUNNING, started=NOW - 0.4)
    assert docker.ps_row(fresh, NOW)["Status"] == "Up Less than a second"


def test_config_and_host_config_from_the_record():
    config = pb.ContainerConfig(
        args=["-c", "echo hi"], entrypoint=["sh"], env=["A=1", "X=<&>"], cwd="/srv",
        user="1000:1000", memory_limit=64 << 20, cpus=0.5, pids_limit=100, read_only=True,
        restart_policy="on-failure:3", exposed_ports=["81/tcp", "80/tcp"], volumes=["/data"],
        stop_signal="SIGINT", mounts=[pb.Mount(source="/tmp", destination="/mnt",
                                               read_only=True)])
    c = container(config=config, labels={"b": "2", "a": "1", "hawser.autoremove": "true"},
                  image="docker.io/library/busybox:latest", image_id="sha256:" + "b" * 64)
    d = docker.container_inspect(c)
    assert (d["Path"], d["Args"], d["Image"], d["Name"]) == \
        ("sh", ["-c", "echo hi"], "sha256:" + "b" * 64, "/web")
    cfg, host = d["Config"], d["HostConfig"]
    assert (cfg["Entrypoint"], cfg["Cmd"], cfg["Env"], cfg["WorkingDir"], cfg["User"]) == \
        (["sh"], ["-c", "echo hi"], ["A=1", "X=<&>"], "/srv", "1000:1000")
    assert (cfg["Image"], cfg["StopSignal"], cfg["Hostname"]) == ("busybox:latest", "SIGINT",
                                                                    c.id[:12])
    assert list(cfg["Labels"]) == ["a", "b", "hawser.autoremove"]
    assert fmt(d, "{{.Config.ExposedPorts}} {{json .Config.Volumes}}") == \
        'map[80/tcp:{} 81/tcp:{}] {"/data":{}}'
    assert (host["Memory"], host["NanoCpus"], host["PidsLimit"], host["ReadonlyRootfs"]) == \
        (64 << 20, 500_000_000, 100, True)
    assert host["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
    assert host["Binds"] == ["/tmp:/mnt:ro"] and host["AutoRemove"] is True
    assert d["Mounts"] == [{"Type": "bind", "Source": "/tmp", "Destination": "/mnt",
                            "Mode": "ro", "RW": False, "Propagation": "rprivate"}]
    bare = docker.container_inspect(container())
    assert fmt(bare, "{{.Config.Entrypoint}} {{json .Config.Entrypoint}} {{.HostConfig.Binds}}"
                     " {{.HostConfig.PidsLimit}} {{.Config.Volumes}} {{.Config.Image}}|"
                     "{{index .Config.Labels \"nope\"}}|") == "[] null [] <nil> map[] ||"
    shown = json.loads(docker.inspect_format([bare]))[0]["Config"]
    assert "ExposedPorts" not in shown and "StopSignal" not in shown      # omitempty
    assert fmt(bare, "{{.Config.ExposedPorts}}|{{.Config.StopSignal}}|") == "map[]||"
    assert bare["HostConfig"]["RestartPolicy"]["Name"] == "no"


def test_masked_and_readonly_paths_are_the_runtimes():
    from runtime.specgen import default_spec
    linux = default_spec()["linux"]
    host = docker.container_inspect(container())["HostConfig"]
    assert host["MaskedPaths"] == linux["maskedPaths"]
    assert host["ReadonlyPaths"] == linux["readonlyPaths"]


# --- ps rows ---------------------------------------------------------------------------------

def test_ps_row_fields():
    long = ["echo", "a very long command line that is long"]
    c = container(args=long, labels={"b": "2", "a": "1"}, image="docker.io/library/busybox:1",
                  config=pb.ContainerConfig(args=long, exposed_ports=["443/tcp", "80/tcp",
                                                                      "81/tcp", "53/udp"],
                                            mounts=[pb.Mount(source="/a/very/long/host/path",
                                                             destination="/x")]))
    row = docker.ps_row(c, NOW)
    assert row["Command"] == '"echo \'a very long c…"'     # what docker 20.10 prints
    assert row["ID"] == c.id[:12] and row["Names"] == "web" and row["Image"] == "busybox:1"
    # docker's grouping: by port, a run per protocol, runs in the order they began
    assert row["Labels"] == "a=1,b=2" and row["Ports"] == "80-81/tcp, 53/udp, 443/tcp"
    assert row["Mounts"] == "/a/very/long/h…" and row["RunningFor"] == "10 minutes ago"
    assert row["CreatedAt"] == docker_units.go_time_string(int(NOW - 600))
    assert fmt(row, '{{.Label "a"}}|{{.Label "zz"}}') == "1|"
    full = docker.ps_row(c, NOW, trunc=False)
    assert full["Command"] == '"echo \'a very long command line that is long\'"'
    assert full["ID"] == c.id and full["Mounts"] == "/a/very/long/host/path"
    stopped = container(status=STOPPED, exited=NOW - 1, config=c.config)
    assert docker.ps_row(stopped, NOW)["Ports"] == ""      # docker lists ports while running


def test_ps_image_column():
    def image_of(**kw):
        return docker.ps_row(container(**kw), NOW)["Image"]
    assert image_of(image="docker.io/library/busybox:latest") == "busybox:latest"
    assert image_of(image="docker.io/user/app:v1") == "user/app:v1"
    assert image_of(image="localhost:5000/a/b:c") == "localhost:5000/a/b:c"
    assert image_of(image="docker.io/library/x:1@sha256:" + "1" * 64) == "x:1"
    assert image_of(image="sha256:" + "a" * 64, image_id="sha256:" + "a" * 64) == "a" * 12
    assert image_of() == "<no image>"


def test_ps_table_aligned_as_docker():
    cs = [container(id="a" * 64, name="web", started=NOW - 5),
          container(id="b" * 64, name="created-one", status=STOPPED, started=None,
                    args=["true"])]
    text = docker.ps_output(cs, NOW)
    assert text == (
        "CONTAINER ID   IMAGE        COMMAND        CREATED          STATUS         PORTS     "
        "NAMES\n"
        "aaaaaaaaaaaa   <no image>   \"sleep 1000\"   10 minutes ago   Up 5 seconds             "
        "web\n"
        "bbbbbbbbbbbb   <no image>   \"true\"         10 minutes ago   Created                  "
        "created-one\n")
    assert docker.ps_output(cs, NOW, quiet=True) == "a" * 12 + "\n" + "b" * 12 + "\n"
    assert docker.ps_output(cs, NOW, fmt="{{.Names}}", quiet=True) == "web\ncreated-one\n"
    assert docker.ps_output([], NOW) == \
        "CONTAINER ID   IMAGE     COMMAND   CREATED   STATUS    PORTS     NAMES\n"
    lines = docker.ps_output(cs, NOW, fmt="json").splitlines()
    assert json.loads(lines[0])["Names"] == "web" and len(lines) == 2


def test_ps_format_errors():
    with pytest.raises(FormatError) as e:
        docker.ps_output([container()], NOW, fmt="{{.Foo")
    assert (str(e.value), e.value.status) == \
        ("failed to parse template: template: :1: unclosed action", 1)
    with pytest.raises(FormatError) as e:
        docker.ps_output([container()], NOW, fmt="table {{.ID}}\t{{.Foo}}")
    assert str(e.value) == 'failed to execute template: template: :1:16: executing "" at ' \
                           "<.Foo>: can't evaluate field Foo in type *formatter.ContainerContext"


# --- images ----------------------------------------------------------------------------------

def test_image_rows_names_and_none():
    dangling = image()
    rows = docker.image_rows(dangling, NOW)
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == \
        [("<none>", "<none>", "<none>")]
    assert rows[0]["ID"] == "e" * 12 and rows[0]["Size"] == "4.26MB"
    assert rows[0]["CreatedSince"] == docker_units.human_duration(
        NOW - calendar.timegm((2026, 1, 1, 0, 0, 0))) + " ago"
    digest = "sha256:" + "f" * 64
    named = image(name="docker.io/library/busybox:latest",
                  repo_tags=["docker.io/library/busybox:latest", "docker.io/library/busybox:1",
                             "localhost:5000/app:v2"],
                  repo_digests=["docker.io/library/busybox@" + digest,
                                "docker.io/other/only@" + digest])
    rows = docker.image_rows(named, NOW)
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == [
        ("busybox", "latest", "<none>"), ("busybox", "1", "<none>"),
        ("localhost:5000/app", "v2", "<none>"), ("other/only", "<none>", "")]
    rows = docker.image_rows(named, NOW, digests=True)
    assert [(r["Repository"], r["Tag"], r["Digest"]) for r in rows] == [
        ("busybox", "latest", digest), ("busybox", "1", digest),
        ("localhost:5000/app", "v2", "<none>"), ("other/only", "<none>", digest)]
    assert docker.image_rows(named, NOW, trunc=False)[0]["ID"] == "sha256:" + "e" * 64
    text = docker.images_output([dangling], NOW, fmt="{{json .}}")
    assert '"Repository":"\\u003cnone\\u003e"' in text    # docker's rows marshal escaped


def test_image_inspect_shape():
    img = image(name="docker.io/library/busybox:latest",
                repo_tags=["docker.io/library/busybox:latest", "docker.io/user/app:1"],
                repo_digests=["docker.io/library/busybox@sha256:" + "f" * 64])
    d = docker.image_inspect(img)
    assert (d["Id"], d["RepoTags"], d["RepoDigests"]) == \
        ("sha256:" + "e" * 64, ["busybox:latest", "user/app:1"],
         ["busybox@sha256:" + "f" * 64])
    assert (d["Created"], d["Architecture"], d["Os"], d["Size"], d["VirtualSize"]) == \
        ("2026-01-01T00:00:00Z", "amd64", "linux", 4_260_000, 4_260_000)
    assert d["RootFS"] == {"Type": "layers", "Layers": ["sha256:" + "d" * 64]}
    assert fmt(d, "{{.Config.Cmd}} {{.Config.Entrypoint}} {{json .Config.Labels}} "
                  "{{index .Config.Labels \"x\"}}|{{.Metadata.LastTagTime}}") == \
        "[sh] [] null |<no value>"
    bare = docker.image_inspect(pb.Image(id="sha256:" + "1" * 64))
    assert "Created" not in bare and bare["RepoTags"] == [] and bare["RootFS"]["Layers"] == []


def test_render_table_remakes_rows_for_its_options():
    """hawserctl's ps/images: rows made once, the table's options applied to them."""
    c = container(id="a" * 64, args=["echo", "a very long command line that is long"])
    full = render_table([docker.ps_row(c, NOW)], "{{.ID}} {{.Command}}", no_trunc=True)
    assert full == "a" * 64 + " \"echo 'a very long command line that is long'\"\n"
    assert render_table([c], "", quiet=True) == "a" * 12 + "\n"      # records do too
    assert render_table([docker.ps_row(c, NOW)], docker.PS_FORMAT, quiet=True) == "a" * 12 + "\n"
    digest = "sha256:" + "f" * 64
    img = image(repo_tags=["docker.io/library/busybox:1"],
                repo_digests=["docker.io/library/busybox@" + digest])
    rows = [docker.image_row(img, NOW)]
    text = render_table(rows, docker.IMAGES_DIGESTS_FORMAT, kind="images")
    assert text.splitlines()[0].split() == ["REPOSITORY", "TAG", "DIGEST", "IMAGE", "ID",
                                            "CREATED", "SIZE"]
    assert text.splitlines()[1].split()[:3] == ["busybox", "1", digest]
    assert render_table(rows, "{{.Repository}}:{{.Tag}} {{.Digest}}") == \
        f"busybox:1 {digest}\n"       # the format shows digests: docker looks them up
    assert render_table(rows, docker.IMAGES_FORMAT, quiet=True) == "e" * 12 + "\n"
    assert render_table(rows, docker.IMAGES_FORMAT, no_trunc=True).splitlines()[1].split()[2] \
        == "sha256:" + "e" * 64


# --- units, tables, inspect's output ---------------------------------------------------------

def test_human_units():
    cases = [(0.5, "Less than a second"), (1, "1 second"), (59.9, "59 seconds"),
             (60, "About a minute"), (119, "About a minute"), (300, "5 minutes"),
             (3599, "59 minutes"), (3600, "About an hour"), (5400, "2 hours"),
             (47 * 3600, "47 hours"), (48 * 3600, "2 days"), (14 * 86400, "2 weeks"),
             (60 * 86400, "2 months"), (730 * 86400, "2 years"), (-5, "Less than a second")]
    assert [(s, docker_units.human_duration(s)) for s, _ in cases] == cases
    sizes = [(0, "0B"), (999, "999B"), (1000, "1kB"), (1234, "1.23kB"), (4_260_000, "4.26MB"),
             (1_985_659, "1.99MB"), (999_500, "1e+03kB"), (12_345_678_901, "12.3GB")]
    assert [(n, docker_units.human_size(n)) for n, _ in sizes] == sizes
    assert docker_units.human_size(1_985_659, 4) == "1.986MB"


def test_tabwriter_columns():
    # columns: widest cell + 3, at least 10; a line's last cell is not a column's
    text = "A\tBB\tC\nlong-cell-here\tx\ty\nz\n\tq\n"
    assert docker_units.tabwrite(text) == (
        "A                BB        C\n"
        "long-cell-here   x         y\n"
        "z\n"
        "          q\n")


def test_inspect_format_json_and_templates():
    assert docker.inspect_format([]) == "[]\n"
    c = docker.container_inspect(container(config=pb.ContainerConfig(args=["x"],
                                                                       env=["X=<&>"])))
    text = docker.inspect_format([c], "json")
    assert text.startswith('[\n    {\n        "Id": "c0ffee') and text.endswith("}\n]\n")
    assert '"X=<&>"' in text and '"Env": [\n                "X=<&>"\n            ],' in text
    assert json.loads(text)[0]["State"]["Status"] == "running"
    assert docker.inspect_format([c, c], "{{.Name}} {{.State.Pid}}") == "/web 0\n/web 0\n"
    with pytest.raises(FormatError) as e:
        docker.inspect_format([c], "{{.Name")
    assert (str(e.value), e.value.status, e.value.output) == \
        ("template parsing error: template: :1: unclosed action", 64, "")
    broken = gofmt.Struct(Name="/x", State=gofmt.Struct())
    with pytest.raises(FormatError) as e:
        docker.inspect_format([c, broken], "{{.Name}} {{.State.Status}}")
    assert e.value.status == 1 and e.value.output == "/web running\n"
    assert str(e.value) == 'template parsing error: template: :1:18: executing "" at ' \
                           '<.State.Status>: map has no entry for key "Status"'


# --- against a real dockerd ------------------------------------------------------------------

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
if os.geteuid() == 0:
    from test_clients_docker import IMAGE, dockerd    # noqa: F401 (the module's daemon)

NAMES = ("dk-running", "dk-paused", "dk-exited", "dk-created")
OTHER_TAG = "other/repo:v1"
DURATION = re.compile(r"Less than a second|About an? \w+|\d+ \w+")


@pytest.fixture(scope="module")
def scene(dockerd):
    """A container in each of docker's states, and a second name for the image."""
    d = dockerd
    try:
        # one label: docker 20.10 joins .Labels in a Go map's (random) order
        d("run", "-d", "--name", NAMES[0], "-l", "com.example.app-name=web", "--expose", "80",
          "--expose", "81", "-e", "X=<&>", IMAGE, "sleep", "1000")
        d("run", "-d", "--name", NAMES[1], "-w", "/tmp", "-u", "1000", IMAGE, "sleep", "1000")
        d("pause", NAMES[1])
        d("run", "--name", NAMES[2], "--entrypoint", "sh", IMAGE, "-c", "exit 3", check=False)
        d("create", "--name", NAMES[3], "-v", "/tmp:/mnt:ro", "--memory", "64m", "--cpus",
          "0.5", "--pids-limit", "50", "--restart", "on-failure:3", "--read-only", IMAGE,
          "echo", "a very long command line that is long")
        d("tag", IMAGE, OTHER_TAG)
        yield d
    finally:
        d("unpause", NAMES[1], check=False)
        d("rm", "-f", *NAMES, check=False)
        d("rmi", OTHER_TAG, check=False)


def docker_inspect(d) -> list:
    return json.loads(d("inspect", *NAMES).stdout)


def parse_time(text: str):
    if text.startswith("0001-"):
        return None
    main, _, frac = text.rstrip("Z").partition(".")
    seconds = calendar.timegm(time.strptime(main, "%Y-%m-%dT%H:%M:%S"))
    return Timestamp(seconds=seconds, nanos=int((frac + "0" * 9)[:9]) if frac else 0)


def mirror(d: dict):
    """The hawser.v1.Container that stands for a docker container."""
    cfg, host, state = d["Config"], d["HostConfig"], d["State"]
    policy = host["RestartPolicy"]
    config = pb.ContainerConfig(
        args=cfg["Cmd"] or [], entrypoint=cfg["Entrypoint"] or [], env=cfg["Env"] or [],
        cwd=cfg["WorkingDir"], user=cfg["User"], hostname=cfg["Hostname"], terminal=cfg["Tty"],
        open_stdin=cfg["OpenStdin"], memory_limit=host["Memory"],
        pids_limit=host["PidsLimit"] or 0, cpus=host["NanoCpus"] / 1e9,
        read_only=host["ReadonlyRootfs"],
        restart_policy=policy["Name"] + (f":{policy['MaximumRetryCount']}"
                                         if policy["MaximumRetryCount"] else ""),
        mounts=[pb.Mount(source=m["Source"], destination=m["Destination"],
                         read_only=not m["RW"],     # rslave: dockerd's root is under /tmp
                         propagation=m["Propagation"])
                for m in d["Mounts"]],
        exposed_ports=sorted(cfg.get("ExposedPorts") or {}), volumes=sorted(cfg["Volumes"] or {}),
        stop_signal=cfg.get("StopSignal", ""))
    status = {"created": STOPPED, "running": RUNNING, "paused": PAUSED, "exited": STOPPED}
    return pb.Container(
        id=d["Id"], name=d["Name"][1:], config=config, labels=cfg["Labels"] or {},
        created_at=parse_time(d["Created"]), status=status[state["Status"]], pid=state["Pid"],
        exit_status=state["ExitCode"], exited_at=parse_time(state["FinishedAt"]),
        started_at=parse_time(state["StartedAt"]), image="docker.io/library/" + cfg["Image"],
        image_id=d["Image"], runtime=host["Runtime"], log_path=d["LogPath"],
        restart_count=d["RestartCount"], snapshot=d["Id"], bundle="/run/hawserd/" + d["Id"])


def docker_format(d, *args) -> str:
    return d(*args).stdout


# templates whose answer a Go struct and its JSON as a map agree on
ON_DOCKER_JSON = [
    "{{.Id}}", "{{.Name}}", "{{.State.Status}} {{.State.Pid}} {{.State.ExitCode}}",
    "{{.State.StartedAt}}", "{{json .State}}", "{{json .Config}}", "{{json .HostConfig}}",
    "{{json .}}", "{{.Config.Env}}", "{{range .Config.Env}}{{println .}}{{end}}",
    "{{.Config.Labels}}", "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
    "{{len .Config.Env}}", "{{.HostConfig.Memory}} {{.HostConfig.NanoCpus}}",
    "{{.HostConfig.RestartPolicy.Name}}:{{.HostConfig.RestartPolicy.MaximumRetryCount}}",
    "{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}", "{{json .Mounts}}",
    "{{.NetworkSettings.IPAddress}}",
    "{{range $n, $e := .NetworkSettings.Networks}}{{$n}} {{$e.IPAddress}}{{end}}",
    "{{if .State.Running}}up{{else}}down{{end}}", '{{printf "%s:%d" .Name .State.Pid}}',
    "{{.Config.Cmd}}", "{{json .Config.Labels}}",
    '{{with .Config.Labels}}{{index . "com.example.app-name"}}{{end}}',
    "{{.Config.Image | upper}}", '{{split .Config.Image ":"}}', "{{.Path}} {{.Args}}",
    "{{.State.Pid | printf \"%08d\"}}", "{{.Foo}}", "{{.State.Pid.X}}", "{{.Config.Nope.X}}",
]


@needs_root
def test_engine_on_docker_inspect_json(scene):
    """Our engine on `docker inspect`'s JSON prints what `docker inspect --format` prints;
    on a failure docker runs the template on the JSON as maps, missingkey=error: so do we."""
    objs = docker_inspect(scene)
    diffs = []
    for t in ON_DOCKER_JSON:
        proc = scene("inspect", "--format", t, *NAMES, check=False)
        tmpl = Template(t, missingkey="error")
        out, errors = [], []
        for obj in objs:
            try:
                out.append(tmpl.execute(obj) + "\n")
            except TemplateError as e:
                errors.append(f"template parsing error: {e}")
        mine = ("".join(out) or "\n", "\n".join(errors) + ("\n" if errors else ""),
                1 if errors else 0)
        theirs = (proc.stdout, proc.stderr, proc.returncode)
        if mine != theirs:
            diffs.append(f"{t!r}\n  docker: {theirs!r}\n  ours:   {mine!r}")
    assert not diffs, "\n".join(diffs)


# fields a hawser container has as docker has them
SAME_FIELDS = [
    "{{.Id}}|{{.Name}}|{{.Path}}|{{.Args}}|{{json .Args}}|{{.Image}}|{{.LogPath}}",
    "{{.Created}}|{{.RestartCount}}|{{.Platform}}|{{.Driver | len | not}}",
    "{{.State.Status}}|{{.State.Running}}|{{.State.Paused}}|{{.State.Restarting}}|"
    "{{.State.OOMKilled}}|{{.State.Dead}}|{{.State.Pid}}|{{.State.ExitCode}}|{{.State.Error}}",
    "{{.Config.Hostname}}|{{.Config.User}}|{{.Config.Env}}|{{json .Config.Env}}|"
    "{{.Config.Cmd}}|{{json .Config.Cmd}}|{{.Config.Entrypoint}}|{{json .Config.Entrypoint}}",
    "{{.Config.Image}}|{{.Config.WorkingDir}}|{{.Config.Labels}}|{{json .Config.Labels}}|"
    '{{index .Config.Labels "com.example.app-name"}}|{{index .Config.Labels "nope"}}|'
    "{{.Config.Labels.nope}}",
    "{{.Config.ExposedPorts}}|{{json .Config.ExposedPorts}}|{{.Config.Volumes}}|"
    "{{json .Config.Volumes}}|{{.Config.Tty}}|{{.Config.OpenStdin}}|{{.Config.OnBuild}}|"
    "{{.Config.AttachStdin}}|{{.Config.Domainname}}",
    "{{range .Config.Env}}{{println .}}{{end}}",
    "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}{{len .Config.Env}}",
    '{{join .Config.Cmd " "}}|{{with .Config.Entrypoint}}ep{{else}}none{{end}}',
    "{{.HostConfig.Memory}}|{{.HostConfig.NanoCpus}}|{{.HostConfig.PidsLimit}}|"
    "{{.HostConfig.ReadonlyRootfs}}|{{json .HostConfig.RestartPolicy}}|"
    "{{.HostConfig.Binds}}|{{.HostConfig.AutoRemove}}|{{.HostConfig.Runtime}}",
    "{{.HostConfig.LogConfig.Type}}|{{json .HostConfig.LogConfig}}|{{.HostConfig.ShmSize}}|"
    "{{.HostConfig.Privileged}}|{{.HostConfig.ConsoleSize}}|{{.HostConfig.Dns}}|"
    "{{.HostConfig.CapAdd}}|{{.HostConfig.OomScoreAdj}}",
    "{{range .Mounts}}{{.Type}} {{.Source}} {{.Destination}} {{.Mode}} {{.RW}} "
    "{{.Propagation}};{{end}}|{{json .Mounts}}|{{len .Mounts}}",
    '{{if .State.Running}}up{{else}}down{{end}}|{{printf "%s %d" .Name .State.Pid}}',
    "{{.NetworkSettings.Ports}}|{{json .NetworkSettings.Ports}}|{{.MountLabel}}|{{.ExecIDs}}",
    "{{range $p, $conf := .NetworkSettings.Ports}}{{$p}} {{end}}",
    "{{.Id}} {{.HostConfig.PidsLimit}} {{json .HostConfig.RestartPolicy}} {{.Config.Entrypoint}}"
    " {{.HostConfig.Binds}} {{json .Config.Labels}}",    # {{.Id}}: docker's JSON second try
    "{{.HostConfig.CpuShares}} {{.HostConfig.Dns}} {{.Config.Volumes}} {{json .Config.Env}}",
]


@needs_root
def test_container_shape_as_docker(scene):
    objs = docker_inspect(scene)
    ours = [docker.container_inspect(mirror(d)) for d in objs]
    shown = json.loads(docker.inspect_format(ours))
    for d, mine in zip(objs, shown):
        for path in ((), ("State",), ("Config",), ("HostConfig",)):
            theirs_keys, my_keys = set(_at(d, path)), set(_at(mine, path))
            if path == ("State",):    # times not yet reached: absent here, zero there
                theirs_keys -= {k for k in ("StartedAt", "FinishedAt")
                                if d["State"][k].startswith("0001-")}
                theirs_keys.discard("Health")
            assert my_keys == theirs_keys, (d["Name"], path, my_keys ^ theirs_keys)
        assert set(mine["NetworkSettings"]) == set(d["NetworkSettings"])
        endpoint = next(iter(d["NetworkSettings"]["Networks"].values()))
        assert set(mine["NetworkSettings"]["Networks"]["none"]) == set(endpoint)
    diffs = []
    for t in SAME_FIELDS:
        theirs = scene("inspect", "--format", t, *NAMES).stdout
        mine = docker.inspect_format(ours, t)
        if mine != theirs:
            diffs.append(f"{t!r}\n  docker: {theirs!r}\n  ours:   {mine!r}")
    assert not diffs, "\n".join(diffs)
    # kept: where docker writes Go's zero time, the field is not there
    t = "{{.State.StartedAt}}|{{.State.FinishedAt}}"
    theirs = scene("inspect", "--format", t, *NAMES).stdout.splitlines()
    mine = docker.inspect_format(ours, t).splitlines()
    for a, b in zip(theirs, mine):
        assert a.replace("0001-01-01T00:00:00Z", "<no value>") == b, (a, b)
    assert any("0001-01-01" in line for line in theirs)


def _at(d, path):
    for key in path:
        d = d[key]
    return d


SEP = "\x1f"    # between a format's output and {{json .}} of the same row, in one docker call


def with_rows(d, command: list, f: str):
    """(rows, output): `docker command --format F` and each row's {{json .}} from the same
    call, so that "1 second ago" is the same second in both. {{json .}} fails on the table's
    header (docker ignores that) and comes after the row's last cell, which tabwriter leaves
    alone."""
    out = d(*command, "--format", f + SEP + "{{json .}}").stdout
    rows, lines = [], []
    for line in out.split("\n"):
        text, sep, row = line.partition(SEP)
        if sep and row:
            rows.append(json.loads(row))
        lines.append(text)
    return rows, "\n".join(lines)


def ps_rows(raw: list) -> list:
    """docker ps's JSON rows as what our templates see: a ContainerContext, .Label included."""
    rows = []
    for r in raw:
        labels = dict(kv.partition("=")[::2] for kv in r["Labels"].split(",") if kv)
        row = gofmt.Struct(r, type="*formatter.ContainerContext", escape_html=True)
        row["Label"] = Func(lambda k, labels=labels: labels.get(k, ""), ("string",))
        rows.append(row)
    return rows


PS_FORMATS = ["", "table", "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.Names}}\t", "table {{.ID}}\t{{.Names}}", "table {{.Names}}\\t{{.Status}}",
              "{{.Names}}: {{.Command}}",
              'table {{.Label "com.example.app-name"}}\t{{.Names}}\t{{.Label "b"}}',
              "{{json .}}", "table {{json .}}", "raw", "{{.ID}}\\n{{.Names}}",
              "table {{.Names | upper}}\t{{pad .State 1 1}}|",
              "{{.Labels}} {{.Mounts}} {{.Ports}} {{.State}} {{.LocalVolumes}}",
              "table {{.CreatedAt}}\t{{.RunningFor}}\t{{.Image}}", "   table {{.ID}}",
              "table {{.Names}}\t{{.Networks}}\t{{truncate .Command 6}}"]


@needs_root
def test_ps_tables_as_docker(scene):
    diffs = []
    for f in PS_FORMATS:
        rows, theirs = with_rows(scene, ["ps", "-a"], ps_format(f))
        try:
            mine = render_table(ps_rows(rows), f, kind="ps")
        except FormatError as e:
            mine = f"error {e}"
        if mine != theirs:
            diffs.append(f"{f!r}\n  docker:\n{theirs}\n  ours:\n{mine}")
    assert not diffs, "\n".join(diffs)
    # docker's defaults are those formats (a second may pass between the two calls)
    for args, f in ((["ps", "-a"], ps_format("")), (["ps", "-a", "-q"], ps_format("", True)),
                    (["ps", "-a", "-s"], ps_format("", size=True)),
                    (["ps", "-a", "--format", "raw"], ps_format("raw")),
                    (["ps", "-a", "--format", "table"], ps_format("table"))):
        for _ in range(10):
            if scene(*args).stdout == scene(*args[:2], "--format", f).stdout:
                break
        else:
            raise AssertionError(f"docker {args} is not --format {f!r}")


@needs_root
def test_ps_rows_of_hawser_records_as_docker(scene):
    objs = {d["Name"][1:]: mirror(d) for d in docker_inspect(scene)}
    rows = json.loads("[" + ",".join(scene("ps", "-a", "--format", "{{json .}}").stdout
                                     .splitlines()) + "]")
    now = time.time()
    for theirs in rows:
        mine = json.loads(render_table([docker.ps_row(objs[theirs["Names"]], now)],
                                       "{{json .}}"))
        assert set(mine) == set(theirs)
        for key in ("RunningFor", "Status"):
            mine[key], theirs[key] = DURATION.sub("<d>", mine[key]), \
                DURATION.sub("<d>", theirs[key])
        # kept: no networks in hawser (--network none's), no sizes from hawserd
        assert (mine.pop("Networks"), theirs.pop("Networks")) == ("none", "bridge")
        assert mine.pop("Size") == "0B" and theirs.pop("Size").startswith("0B (virtual ")
        assert mine == theirs


def archive_config(dk) -> bytes:
    """The image's config JSON, from the archive the fixture loaded."""
    with tarfile.open(dk.base / "busybox-docker.tar") as tar:
        manifest = json.load(tar.extractfile("manifest.json"))
        return tar.extractfile(manifest[0]["Config"]).read()


def mirror_image(dk, d: dict):
    return pb.Image(id=d["Id"], name="docker.io/library/" + d["RepoTags"][0],
                    repo_tags=[("docker.io/" if "/" in t else "docker.io/library/") + t
                               for t in d["RepoTags"]],
                    repo_digests=list(d["RepoDigests"]), size=d["Size"],
                    config=archive_config(dk), updated=parse_time(d["Metadata"]["LastTagTime"]))


IMAGE_FORMATS = ["", "table", "table {{.Repository}}:{{.Tag}}\t{{.ID}}",
                 "{{.Repository}}:{{.Tag}} {{.Size}}",
                 "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedAt}}\t{{.VirtualSize}}",
                 "{{json .}}", "raw", "table {{.Digest}}\t{{.Repository}}",
                 "table {{.Containers}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Tag | upper}}"]


@needs_root
def test_images_as_docker(scene):
    diffs = []
    for f in IMAGE_FORMATS:
        for digests in (False, True):
            # two names of one image come in the order of a Go map's iteration: rows and
            # output from one call
            listing = ["images"] + (["--digests"] if digests else [])
            rows, theirs = with_rows(scene, listing, images_format(f, digests=digests))
            ours = [gofmt.Struct(r, type="*formatter.imageContext", escape_html=True)
                    for r in rows]
            mine = render_table(ours, f, kind="images", digests=digests)
            if mine != theirs:
                diffs.append(f"{listing} {f!r}\n  docker:\n{theirs}\n  ours:\n{mine}")
    assert not diffs, "\n".join(diffs)
    for args, f in ((["images"], images_format("")), (["images", "-q"], images_format("", True)),
                    (["images", "--digests"], images_format("", digests=True)),
                    (["images", "--format", "raw"], images_format("raw")),
                    (["images", "--format", "table"], images_format("table"))):
        theirs = scene(*args).stdout
        assert sorted(theirs.splitlines()) == \
            sorted(scene(*args[:1], *args[1:2] * (args[1:2] == ["--digests"]),
                         "--format", f).stdout.splitlines()), args
    rows = [json.loads(line) for line in
            scene("images", "--format", "{{json .}}").stdout.splitlines()]
    d = json.loads(scene("image", "inspect", IMAGE).stdout)[0]
    img = mirror_image(scene, d)
    mine = [json.loads(line) for line in
            docker.images_output([img], fmt="{{json .}}").splitlines()]
    assert sorted(mine, key=lambda r: r["Repository"]) == \
        sorted(rows, key=lambda r: r["Repository"])


IMAGE_FIELDS = ["{{.Id}}|{{.RepoTags}}|{{json .RepoTags}}|{{.RepoDigests}}|{{.Parent}}|"
                "{{.Comment}}|{{.Created}}|{{.Author}}|{{.Container}}|{{.DockerVersion}}",
                "{{json .Config}}", "{{json .ContainerConfig}}",
                "{{.Config.Cmd}}|{{.Config.Env}}|{{.Config.Entrypoint}}|{{.Config.WorkingDir}}|"
                '{{.Config.Labels}}|{{index .Config.Labels "x"}}|{{.Config.Volumes}}',
                "{{.Architecture}}|{{.Os}}|{{.Size}}|{{.VirtualSize}}|{{json .RootFS}}|"
                "{{.RootFS.Layers}}|{{len .RootFS.Layers}}|{{.RootFS.Type}}|"
                "{{.Metadata.LastTagTime}}|{{.GraphDriver.Name | len | not}}"]


@needs_root
def test_image_shape_as_docker(scene):
    d = json.loads(scene("image", "inspect", IMAGE).stdout)[0]
    mine = docker.image_inspect(mirror_image(scene, d))
    shown = json.loads(docker.inspect_format([mine]))[0]
    assert set(shown) == set(d) and set(shown["Config"]) == set(d["Config"])
    diffs = []
    for t in IMAGE_FIELDS:
        theirs = scene("image", "inspect", "--format", t, IMAGE).stdout
        out = docker.inspect_format([mine], t)
        if out != theirs:
            diffs.append(f"{t!r}\n  docker: {theirs!r}\n  ours:   {out!r}")
    assert not diffs, "\n".join(diffs)


@needs_root
def test_format_errors_as_docker(scene):
    ours = [docker.container_inspect(mirror(d)) for d in docker_inspect(scene)]
    for t in ("{{.Foo}}", "{{.Foo", "{{.State.Pid.X}}", "{{index .Args 5}}", "{{.Name | x}}",
              "{{.Config.Labels.x.y}}", "{{range .Name}}{{end}}", "{{.Id}} {{.Foo}}",
              "{{.Config.Foo}}", "{{.State.FinishedAt}}"):
        proc = scene("inspect", "--format", t, *NAMES, check=False)
        try:
            mine = (docker.inspect_format(ours, t), "", 0)
        except FormatError as e:
            mine = (e.output, str(e) + "\n", e.status)
        theirs = (proc.stdout, proc.stderr, proc.returncode)
        if t == "{{.State.FinishedAt}}":    # kept: <no value> where docker has the zero time
            theirs = (theirs[0].replace("0001-01-01T00:00:00Z", "<no value>"),) + theirs[1:]
        assert mine == theirs, t
    mirrors = [mirror(d) for d in docker_inspect(scene)]
    for f in ("{{.Foo", "{{.Foo}}", "{{.Label}}", "table {{.ID}}\t{{.Foo}}", "{{.ID.X}}",
              "{{index .ID 100}}", "{{.ID}}\\n{{.Foo"):
        proc = scene("ps", "-a", "--format", f, check=False)
        with pytest.raises(FormatError) as e:
            docker.ps_output(mirrors, fmt=f)
        assert ("", str(e.value) + "\n", e.value.status) == \
            (proc.stdout, proc.stderr, proc.returncode), f
    images = [mirror_image(scene, json.loads(scene("image", "inspect", IMAGE).stdout)[0])]
    for f in ("{{.Foo", "{{.Foo}}", "table {{.ID}}\t{{.Foo}}", "{{index .ID 100}}"):
        proc = scene("images", "--format", f, check=False)
        with pytest.raises(FormatError) as e:
            docker.images_output(images, fmt=f)
        assert ("", str(e.value) + "\n", e.value.status) == \
            (proc.stdout, proc.stderr, proc.returncode), f
