"""The rows of `hawserctl ps` and `images` as docker's formatter gives them to a template
(ContainerContext, imageContext: ID, Image, Command, RunningFor, Status... as strings) from
hawser.v1 records; docker_tables.py makes tables of them.

    ps_row(c, now) -> Row        image_rows(img, now) -> [Row]   (one per name, as docker)"""
from supervisor.client import docker_units as units
from supervisor.client import gofmt

CREATED, RUNNING, STOPPED, PAUSED = 1, 2, 3, 4    # hawser.v1.Status


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


# --- rows ------------------------------------------------------------------------------------

class Row(gofmt.Struct):
    """A row for a template; `source`: the record it was made from and how, so that a table
    can remake it with other options (--no-trunc, --digests)."""
    __slots__ = ("source",)


def ps_row(c, now: float, trunc: bool = True, size: tuple | None = None) -> Row:
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
    mounts = list(config.mounts if config is not None else ())
    running = c.status in (RUNNING, PAUSED)
    size_text = "0B"
    if size is not None:
        size_text = units.human_size(size[0])
        if size[1] > 0:
            size_text += f" (virtual {units.human_size(size[1])})"
    row = Row(
        type="*formatter.ContainerContext", escape_html=True,
        Command=gofmt.quote(units.ellipsis(command, 20) if trunc else command),
        CreatedAt=units.go_time_string(int(created)),
        ID=c.id[:12] if trunc else c.id,
        Image=_ps_image(c, trunc),
        Labels=",".join(sorted(f"{k}={v}" for k, v in labels.items())),
        LocalVolumes=str(sum(m.type == "volume" for m in mounts)),
        Mounts=",".join(units.ellipsis(m.source, 15) if trunc else m.source for m in mounts),
        Names=c.name,
        Networks=_networks(c),
        Ports=_ports(c) if running and config is not None else "",
        RunningFor=units.human_duration(now - int(created)) + " ago",
        Size=size_text,
        State=state_name(c),
        Status=status_text(c, now),
    )
    row["Label"] = Func(lambda key: labels.get(key, ""), ("string",))
    row.source = ("ps", c, now, size)
    return row


def _networks(c) -> str:
    """docker ps's NETWORKS: the container's networks, sorted (its mode's when hawserd lists
    no endpoint; none for container:ID, which has a namespace, not a network)."""
    names = sorted({ep.network for ep in c.endpoints})
    mode = (c.config.network_mode if c.config is not None else "") or "none"
    return ",".join(names) if names else "" if mode.startswith("container:") else mode


def _ports(c) -> str:
    from supervisor.client import ports
    return ports.displayable(ports.port_map(c.config.exposed_ports, c.published, actual=True))


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


def _image_row(img, now, trunc, repo, tag, digest) -> Row:
    created = image_created_seconds(img)
    row = Row(
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
    row.source = ("images", img, now, None)
    return row


image_row = image_rows    # the name it has in docs/images.md's plan: one image, its rows


# --- network ls, volume ls --------------------------------------------------------------
DIGITS = "0123456789"


def natural_key(name: str) -> list:
    """docker's sortorder.NaturalLess: runs of digits compare as numbers."""
    key, i = [], 0
    while i < len(name):
        digit, j = name[i] in DIGITS, i
        while j < len(name) and (name[j] in DIGITS) == digit:
            j += 1
        key.append((0, int(name[i:j]), "") if digit else (1, 0, name[i:j]))
        i = j
    return key


def network_row(n, trunc: bool = True):
    """The fields `network ls` templates see (docker's networkContext), sorted as {{json .}}
    prints them."""
    from supervisor.client.gotemplate import Func
    labels = dict(n.labels or {})
    created = units.timestamp_seconds(n.created)
    row = Row(type="*formatter.networkContext", escape_html=True,
              CreatedAt=units.go_time_string(int(created)) if created is not None
              else "0001-01-01 00:00:00 +0000 UTC",
              Driver=n.driver or "bridge", ID=n.id[:12] if trunc else n.id, IPv6="false",
              Internal="true" if n.internal else "false",
              Labels=",".join(f"{k}={v}" for k, v in sorted(labels.items())), Name=n.name,
              Scope="local")
    row["Label"] = Func(lambda key: labels.get(key, ""), ("string",))
    return row


def volume_row(v):
    """The fields `volume ls` templates see (docker's volumeContext), sorted."""
    from supervisor.client.gotemplate import Func
    labels = dict(v.labels or {})
    row = Row(type="*formatter.volumeContext", escape_html=True, Driver=v.driver or "local",
              Labels=",".join(f"{k}={val}" for k, val in sorted(labels.items())), Links="N/A",
              Mountpoint=v.mountpoint, Name=v.name, Scope="local", Size="N/A")
    row["Label"] = Func(lambda key: labels.get(key, ""), ("string",))
    return row
