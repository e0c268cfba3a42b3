"""`hawserctl ps` and `images` in docker's shapes: the rows docker's formatter gives a template
(ContainerContext, imageContext: ID, Image, Command, RunningFor, Status... as strings), its
default tables, `table`, `raw` and `json` formats, the `\\t` and `\\n` it lets a format spell,
headers made by running the format on the column names, and tabwriter's alignment.

    ps_output(containers, now) / images_output(images, now) -> text, FormatError if bad"""
from supervisor.client import docker_units as units
from supervisor.client import gofmt

PS_TABLE = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}" \
           "\t{{.Names}}"
PS_RAW = "container_id: {{.ID}}\nimage: {{.Image}}\ncommand: {{.Command}}\n" \
         "created_at: {{.CreatedAt}}\nstate: {{- pad .State 1 0}}\n" \
         "status: {{- pad .Status 1 0}}\nnames: {{.Names}}\nlabels: {{- pad .Labels 1 0}}\n" \
         "ports: {{- pad .Ports 1 0}}\n"
IMAGES_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGES_TABLE_DIGEST = "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t" \
                      "{{.CreatedSince}}\t{{.Size}}"
IMAGES_RAW = "repository: {{ .Repository }}\ntag: {{.Tag}}\nimage_id: {{.ID}}\n" \
             "created_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
IMAGES_RAW_DIGEST = "repository: {{ .Repository }}\ntag: {{.Tag}}\ndigest: {{.Digest}}\n" \
                    "image_id: {{.ID}}\ncreated_at: {{.CreatedAt}}\nvirtual_size: {{.Size}}\n"
QUIET = "{{.ID}}"

PS_HEADERS = {"ID": "CONTAINER ID", "Names": "NAMES", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Labels": "LABELS",
              "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES", "Networks": "NETWORKS"}
IMAGES_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                  "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                  "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "SIZE",
                  "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}

CREATED, RUNNING, STOPPED, PAUSED = 1, 2, 3, 4    # hawser.v1.Status


class FormatError(Exception):
    """A format docker would refuse, or one that fails on the data: str() is docker's message;
    `status` the exit status docker gives; `output` what it printed before the error."""

    def __init__(self, message: str, status: int = 1, output: str = ""):
        super().__init__(message)
        self.status, self.output = status, output


# --- names -----------------------------------------------------------------------------------

def familiar(name: str) -> str:
    """docker's familiar form of a normalized reference: docker.io/library/busybox:latest is
    busybox:latest, docker.io/user/app is user/app."""
    if name.startswith("docker.io/"):
        rest = name[len("docker.io/"):]
        repo = rest.split("@")[0].split(":")[0]
        if repo.startswith("library/") and "/" not in repo[len("library/"):]:
            rest = rest[len("library/"):]
        return rest
    return name


def split_reference(name: str) -> tuple[str, str, str]:
    """(repository, tag, digest) of a normalized reference, "" for a part it has not."""
    name, _, digest = name.partition("@")
    slash = name.rfind("/")
    colon = name.rfind(":")
    tag = ""
    if colon > slash:
        name, tag = name[:colon], name[colon + 1:]
    return name, tag, digest


def short_id(digest: str) -> str:
    """docker's TruncateID: the hex without its algorithm, 12 long."""
    return digest.partition(":")[2][:12] if ":" in digest else digest[:12]


# --- docker's words for a container's state --------------------------------------------------

def state_name(c) -> str:
    """State.Status: created, running, paused, exited (unknown when hawserd cannot tell)."""
    if c.status == RUNNING:
        return "running"
    if c.status == PAUSED:
        return "paused"
    if c.status == CREATED:
        return "created"
    if c.status == STOPPED:
        return "exited" if units.timestamp_seconds(c.started_at) else "created"
    return "unknown"


def status_text(c, now: float) -> str:
    """docker ps's STATUS: "Up 5 minutes", "Up 2 seconds (Paused)", "Exited (0) 3 seconds ago",
    "Created"."""
    started = units.timestamp_seconds(c.started_at)
    if c.status in (RUNNING, PAUSED):
        up = "Up " + units.human_duration(now - (started or now))
        return up + " (Paused)" if c.status == PAUSED else up
    if c.status == CREATED or not started:
        return "Created"
    exited = units.timestamp_seconds(c.exited_at)
    if exited is None:
        return ""
    return f"Exited ({c.exit_status}) {units.human_duration(now - exited)} ago"


def command_line(argv: list) -> str:
    """dockerd's Summary.Command: the path, then its arguments, those with a space in quotes."""
    if not argv:
        return ""
    return " ".join([argv[0]] + [f"'{a}'" if " " in a else a for a in argv[1:]])


def displayable_ports(ports: list) -> str:
    """docker's DisplayablePorts for exposed (unpublished) ports: sorted, runs of consecutive
    ports of one protocol as ranges: "80-81/tcp, 443/tcp"."""
    parsed = []
    for p in ports:
        number, _, proto = p.partition("/")
        if number.isdigit():
            parsed.append((int(number), proto or "tcp"))
    parsed.sort()
    groups: dict = {}
    order, result = [], []
    for port, proto in parsed:
        group = groups.get(proto)
        if group is None:
            groups[proto] = [port, port]
            order.append(proto)
        elif port == group[1] + 1:
            group[1] = port
        else:
            result.append(_port_group(proto, *group))
            groups[proto] = [port, port]
    result += [_port_group(proto, *groups[proto]) for proto in order]
    return ", ".join(result)


def _port_group(proto: str, first: int, last: int) -> str:
    return (f"{first}-{last}" if first != last else str(first)) + "/" + proto


# --- rows ------------------------------------------------------------------------------------

def ps_row(c, now: float, trunc: bool = True, size: tuple | None = None) -> gofmt.Struct:
    """The fields docker ps's templates see for a hawser.v1.Container (sorted, as
    `{{json .}}` prints them), `.Label "key"` among them. size: (writable layer, image)
    bytes when known: "0B (virtual 1.99MB)"."""
    from supervisor.client.gotemplate import Func
    config = c.config
    argv = list(config.entrypoint if config is not None else ()) + \
        list(config.args if config is not None else ())
    command = command_line(argv)
    created = units.timestamp_seconds(c.created_at) or 0
    labels = dict(c.labels or {})
    mounts = [m.source for m in (config.mounts if config is not None else ())]
    running = c.status in (RUNNING, PAUSED)
    size_text = "0B"
    if size is not None:
        size_text = units.human_size(size[0])
        if size[1] > 0:
            size_text += f" (virtual {units.human_size(size[1])})"
    row = gofmt.Struct(
        type="*formatter.ContainerContext", escape_html=True,
        Command=gofmt.quote(units.ellipsis(command, 20) if trunc else command),
        CreatedAt=units.go_time_string(int(created)),
        ID=c.id[:12] if trunc else c.id,
        Image=_ps_image(c, trunc),
        Labels=",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        LocalVolumes="0",
        Mounts=",".join(units.ellipsis(m, 15) if trunc else m for m in mounts),
        Names=c.name,
        Networks="none",
        Ports=displayable_ports(list(config.exposed_ports)) if running and config else "",
        RunningFor=units.human_duration(now - int(created)) + " ago",
        Size=size_text,
        State=state_name(c),
        Status=status_text(c, now),
    )
    row["Label"] = Func(lambda key: labels.get(key, ""), ("string",))
    return row


def _ps_image(c, trunc: bool) -> str:
    if not c.image:
        return "<no image>"
    if trunc and c.image_id and short_id(c.image_id) == short_id(c.image):
        return short_id(c.image_id)
    repo, tag, digest = split_reference(c.image)
    if trunc and digest and tag:    # docker drops the digest and keeps the tag
        return familiar(f"{repo}:{tag}")
    return familiar(c.image)


def image_rows(img, now: float, trunc: bool = True, digests: bool = False,
               need_digest: bool | None = None) -> list:
    """docker images' rows for one hawser.v1.Image: one per repository and tag (and digest
    with --digests), `<none>` where it has no name. need_digest: the format shows
    {{.Digest}} (digests by default)."""
    need = digests if need_digest is None else need_digest
    tags: dict = {}
    digested: dict = {}
    for name in img.repo_tags or ([img.name] if img.name else []):
        repo, tag, digest = split_reference(name)
        if digest:
            digested.setdefault(familiar(repo), []).append(digest)
        elif tag:
            tags.setdefault(familiar(repo), []).append(tag)
    for name in img.repo_digests or ():
        repo, _, digest = split_reference(name)
        if digest and digest not in digested.get(familiar(repo), ()):
            digested.setdefault(familiar(repo), []).append(digest)
    rows = []
    if not tags and not digested:
        return [_image_row(img, now, trunc, "<none>", "<none>", "<none>")]
    for repo, repo_tags in tags.items():
        repo_digests = digested.pop(repo, [])    # a tag's digests are not rows of their own
        if not need:
            repo_digests = []
        for tag in repo_tags:
            for digest in repo_digests or ["<none>"]:
                rows.append(_image_row(img, now, trunc, repo, tag, digest))
    for repo, repo_digests in digested.items():
        for digest in repo_digests if digests else [""]:
            rows.append(_image_row(img, now, trunc, repo, "<none>", digest))
    return rows


def image_json(img) -> dict:
    """The image's config JSON (hawser.v1.Image.config), {} when it has none or it is bad."""
    from runtime import jsonlite
    try:
        value = jsonlite.loads(img.config) if img.config else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def image_created(img) -> tuple[int, int] | None:
    """(seconds, nanos) when the image was made; None when its config does not say (an unset
    Timestamp, which is also how the epoch itself comes: then the config tells)."""
    if units.timestamp_seconds(img.created) is not None:
        return img.created.seconds, img.created.nanos
    created = image_json(img).get("created")
    return units.parse_rfc3339(created) if isinstance(created, str) else None


def image_created_seconds(img) -> int | None:
    created = image_created(img)
    return None if created is None else created[0]


def _image_row(img, now, trunc, repo, tag, digest) -> gofmt.Struct:
    created = image_created_seconds(img)
    return gofmt.Struct(
        type="*formatter.imageContext", escape_html=True,
        Containers="N/A",
        CreatedAt=units.go_time_string(int(created)) if created is not None
        else "0001-01-01 00:00:00 +0000 UTC",
        CreatedSince=units.human_duration(now - int(created)) + " ago"
        if created is not None else "",
        Digest=digest,
        ID=short_id(img.id) if trunc else img.id,
        Repository=repo,
        SharedSize="N/A",
        Size=units.human_size(img.size),
        Tag=tag,
        UniqueSize="N/A",
        VirtualSize=units.human_size(img.size, 4),
    )


# --- tables ----------------------------------------------------------------------------------

def ps_format(fmt: str, quiet: bool = False, size: bool = False) -> str:
    """docker's NewContainerFormat: the format docker ps runs (-q does not replace a format
    of one's own)."""
    if fmt in ("", "table"):
        return QUIET if quiet else PS_TABLE + ("\t{{.Size}}" if size else "")
    if fmt == "raw":
        return "container_id: {{.ID}}" if quiet else PS_RAW + \
            ("size: {{.Size}}\\n" if size else "")
    return fmt


def images_format(fmt: str, quiet: bool = False, digests: bool = False) -> str:
    """docker's NewImageFormat."""
    if fmt in ("", "table"):
        return QUIET if quiet else IMAGES_TABLE_DIGEST if digests else IMAGES_TABLE
    if fmt == "raw":
        return "image_id: {{.ID}}" if quiet else IMAGES_RAW_DIGEST if digests else IMAGES_RAW
    if fmt.startswith("table") and digests and "{{.Digest}}" not in fmt:
        fmt += "\t{{.Digest}}"
    return fmt


def check_ps_format(fmt: str) -> None:
    """docker ps's first look at a format of one's own: parsed as given and run on a row of
    empty fields (to see whether it shows .Size); FormatError with its messages."""
    from supervisor.client import gotemplate
    if not fmt:
        return
    try:
        tmpl = gotemplate.Template(fmt)
    except gotemplate.TemplateError as e:
        raise FormatError(f"failed to parse template: {e}") from None
    empty = gofmt.Struct({k: "" for k in PS_HEADERS}, type="*formatter.ContainerContext")
    empty.update(Command='""', LocalVolumes="0", Size="0B", Image="<no image>",
                 Label=gotemplate.Func(lambda key: "", ("string",)))
    try:
        tmpl.execute(empty)
    except gotemplate.TemplateError as e:
        raise FormatError(f"failed to execute template: {e}") from None


def render_table(rows: list, fmt: str, headers: dict) -> str:
    """docker's formatter.Context: each row through the template, a line each; a `table`
    format gets the header (the template run on the column names) and aligned columns.
    `json` is {{json .}} (newer docker's; 20.10 printed the word). FormatError if bad, with
    docker 20.10's message."""
    from supervisor.client import gotemplate
    table = fmt.startswith("table")
    text = "{{json .}}" if fmt == "json" else fmt[len("table"):] if table else fmt
    text = text.strip(" ").replace("\\t", "\t").replace("\\n", "\n")
    try:
        tmpl = gotemplate.Template(text)
        body = [tmpl.execute(row) + "\n" for row in rows]
    except gotemplate.TemplateError as e:
        raise FormatError(f"template parsing error: {e}") from None
    if not table:
        return "".join(body)
    header: list = []
    try:
        names = gofmt.Map(headers, zero="", type="formatter.SubHeaderContext")
        names["Label"] = gotemplate.Func(_header_label, ("string",))
        tmpl.execute(names, out=header, funcs=gotemplate.HEADER_FUNCS)
    except gotemplate.TemplateError:
        pass    # docker ignores the header's error and prints what it made before it
    return units.tabwrite("".join(header) + "\n" + "".join(body))


def _header_label(name: str) -> str:
    """docker's header for {{.Label "com.example.app-name"}}: "app name"."""
    return name.split(".")[-1].replace("-", " ").replace("_", " ")


def ps_output(containers, now: float | None = None, fmt: str = "", no_trunc: bool = False,
              quiet: bool = False, size: bool = False) -> str:
    """What `docker ps [--format F] [--no-trunc] [-q] [-s]` prints for these containers."""
    import time
    now = time.time() if now is None else now
    check_ps_format(fmt)
    rows = [ps_row(c, now, trunc=not no_trunc) for c in containers]
    return render_table(rows, ps_format(fmt, quiet, size), PS_HEADERS)


def images_output(images, now: float | None = None, fmt: str = "", no_trunc: bool = False,
                  quiet: bool = False, digests: bool = False) -> str:
    """What `docker images [--format F] [--no-trunc] [-q] [--digests]` prints."""
    import time
    now = time.time() if now is None else now
    fmt = images_format(fmt, quiet, digests)
    need = digests or "{{.Digest}}" in fmt
    rows = [r for img in images for r in image_rows(img, now, not no_trunc, digests, need)]
    return render_table(rows, fmt, IMAGES_HEADERS)
