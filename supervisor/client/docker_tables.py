"""docker's tables for `hawserctl ps` and `images`: its formats (the default tables, `table`,
`raw`, `json`, a template of one's own with the `\\t` and `\\n` docker lets it spell), headers
made by running the format on the column names, tabwriter's alignment, and docker 20.10's
messages for a bad format.

    render_table(rows, fmt="", no_trunc=False, quiet=False) -> text    (FormatError)
    ps_output(containers, now, ...) / images_output(images, now, ...) -> text"""
from supervisor.client import docker_units as units
from supervisor.client import gofmt
from supervisor.client.docker_lists import image_rows, ps_row

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
PS_FORMAT, IMAGES_FORMAT, IMAGES_DIGESTS_FORMAT = PS_TABLE, IMAGES_TABLE, IMAGES_TABLE_DIGEST


class FormatError(ValueError):
    """A format docker would refuse, or one that fails on the data: str() is docker's message;
    `status` the exit status docker gives; `output` what it printed before the error."""

    def __init__(self, message: str, status: int = 1, output: str = ""):
        super().__init__(message)
        self.status, self.output = status, output


def ps_format(fmt: str, quiet: bool = False, size: bool = False) -> str:
    """docker's NewContainerFormat: the format docker ps runs (-q does not replace a format
    of one's own)."""
    if fmt in ("", "table", PS_TABLE):
        return QUIET if quiet else PS_TABLE + ("\t{{.Size}}" if size else "")
    if fmt == "raw":
        return "container_id: {{.ID}}" if quiet else PS_RAW + \
            ("size: {{.Size}}\\n" if size else "")
    return fmt


def images_format(fmt: str, quiet: bool = False, digests: bool = False) -> str:
    """docker's NewImageFormat (the default tables given as formats count as the default)."""
    if fmt in (IMAGES_TABLE, IMAGES_TABLE_DIGEST):
        digests, fmt = digests or fmt == IMAGES_TABLE_DIGEST, ""
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


def render_table(rows: list, fmt: str = "", no_trunc: bool = False, quiet: bool = False,
                 kind: str | None = None, digests: bool = False, size: bool = False) -> str:
    """What docker ps (kind "ps") or docker images ("images") prints for these rows: rows
    from ps_row/image_rows (remade for no_trunc and digests), hawser.v1 records, or dicts of
    docker's fields (docker's own {{json .}}), lists of them flattened. fmt is the --format
    given ("" for the default table). docker's formatter.Context: each row through the
    template, a line each; a `table` format gets the header (the template run on the column
    names) and aligned columns. `json` is {{json .}} (newer docker's; 20.10 printed the word).
    FormatError, with docker 20.10's messages."""
    items = list(_flatten(rows))
    kind = kind or _kind(items)
    if kind == "ps":
        if fmt not in ("", PS_TABLE):
            check_ps_format(fmt)
        final = ps_format(fmt, quiet, size)
        headers = PS_HEADERS
    else:
        final = images_format(fmt, quiet, digests)
        digests = digests or fmt == IMAGES_TABLE_DIGEST
        headers = IMAGES_HEADERS
    need_digest = digests or "{{.Digest}}" in final
    made, done = [], set()
    for item in items:
        source = getattr(item, "source", None)
        if source and id(source[1]) in done:
            continue    # an image's rows are remade together, from its first
        if source:
            done.add(id(source[1]))
        made += _remake(item, kind, not no_trunc, digests, need_digest)
    return _render(made, final, headers)


def _flatten(rows):
    for r in rows:
        if isinstance(r, (list, tuple)) and not isinstance(r, gofmt.Slice):
            yield from _flatten(r)
        else:
            yield r


def _kind(items) -> str:
    for item in items:
        source = getattr(item, "source", None)
        if source:
            return source[0]
        if not isinstance(item, dict):
            return "images" if hasattr(item, "repo_tags") else "ps"
        return "images" if "Repository" in item else "ps"
    return "ps"


def _remake(item, kind, trunc, digests, need_digest) -> list:
    import time
    if getattr(item, "source", None):
        kind, record, now, size = item.source
    elif isinstance(item, dict):
        return [item]
    else:
        record, now, size = item, time.time(), None
    if kind == "ps":
        return [ps_row(record, now, trunc, size)]
    return image_rows(record, now, trunc, digests, need_digest)


def _render(rows: list, fmt: str, headers: dict) -> str:
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
    rows = [ps_row(c, now) for c in containers]
    return render_table(rows, fmt, no_trunc, quiet, kind="ps", size=size)


def images_output(images, now: float | None = None, fmt: str = "", no_trunc: bool = False,
                  quiet: bool = False, digests: bool = False) -> str:
    """What `docker images [--format F] [--no-trunc] [-q] [--digests]` prints."""
    import time
    now = time.time() if now is None else now
    rows = [image_rows(img, now) for img in images]
    return render_table(rows, fmt, no_trunc, quiet, kind="images", digests=digests)


# --- network ls, volume ls --------------------------------------------------------------------
# docker's formatter.NewNetworkFormat / NewVolumeFormat: (table, raw, quiet, quiet raw)
LIST_FORMATS = {
    "networks": ("table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}",
                 "network_id: {{.ID}}\\nname: {{.Name}}\\ndriver: {{.Driver}}\\n"
                 "scope: {{.Scope}}\\n", QUIET, "network_id: {{.ID}}"),
    "volumes": ("table {{.Driver}}\t{{.Name}}", "name: {{.Name}}\\ndriver: {{.Driver}}\\n",
                "{{.Name}}", "name: {{.Name}}"),
}
LIST_HEADERS = {
    "networks": {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                 "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
                 "CreatedAt": "CREATED AT"},
    "volumes": {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
                "Size": "SIZE"},
}


def list_output(rows: list, kind: str, fmt: str = "", quiet: bool = False) -> str:
    """What `docker network ls` (kind "networks") or `docker volume ls` ("volumes") prints
    for these rows (gofmt.Structs of the formatter's fields): "" and "table" are the default
    table (its quiet form with -q), "raw" docker's raw lines; a format of one's own wins over
    -q, as in docker."""
    table, raw, quiet_table, quiet_raw = LIST_FORMATS[kind]
    if fmt in ("", "table"):
        fmt = quiet_table if quiet else table
    elif fmt == "raw":
        fmt = quiet_raw if quiet else raw
    return _render(rows, fmt, LIST_HEADERS[kind])
