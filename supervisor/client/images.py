"""hawserctl's image verbs, docker's: images, rmi, tag, load, save, import, pull, push, commit,
diff, login, logout (and `image ls|inspect|rm|tag|...`, which ctl.py maps onto them)."""
import os
import sys

CHUNK = 1 << 20


def add_parsers(sub) -> None:
    im = sub.add_parser("images")
    im.add_argument("-a", "--all", action="store_true")
    im.add_argument("-q", "--quiet", action="store_true")
    im.add_argument("--digests", action="store_true")
    im.add_argument("--no-trunc", action="store_true")
    im.add_argument("-f", "--filter", action="append", default=[])
    im.add_argument("--format", default="")
    im.add_argument("repository", nargs="*")
    rmi = sub.add_parser("rmi")
    rmi.add_argument("-f", "--force", action="store_true")
    rmi.add_argument("images", nargs="+")
    tag = sub.add_parser("tag")
    tag.add_argument("source")
    tag.add_argument("target")
    load = sub.add_parser("load")
    load.add_argument("-i", "--input", default="")
    load.add_argument("-q", "--quiet", action="store_true")
    save = sub.add_parser("save")
    save.add_argument("-o", "--output", default="")
    save.add_argument("images", nargs="+")
    imp = sub.add_parser("import")
    imp.add_argument("-c", "--change", action="append", default=[])
    imp.add_argument("-m", "--message", default="")
    imp.add_argument("file")
    imp.add_argument("reference", nargs="*")
    pull = sub.add_parser("pull")
    pull.add_argument("--platform", default="")
    pull.add_argument("-q", "--quiet", action="store_true")
    pull.add_argument("name")
    push = sub.add_parser("push")
    push.add_argument("-q", "--quiet", action="store_true")
    push.add_argument("name")
    commit = sub.add_parser("commit")
    commit.add_argument("-c", "--change", action="append", default=[])
    commit.add_argument("-m", "--message", default="")
    commit.add_argument("-a", "--author", default="")
    commit.add_argument("-p", "--pause", default="true")
    commit.add_argument("container")
    commit.add_argument("reference", nargs="*")
    diff = sub.add_parser("diff")
    diff.add_argument("container")
    login = sub.add_parser("login")
    login.add_argument("-u", "--username", default="")
    login.add_argument("-p", "--password", default="")
    login.add_argument("--password-stdin", action="store_true")
    login.add_argument("server", nargs="*")
    logout = sub.add_parser("logout")
    logout.add_argument("server", nargs="*")


def optional(values: list, what: str, default: str = "") -> str:
    """An optional positional (hawserctl's parser has no nargs="?": "*", then at most one)."""
    if len(values) > 1:
        raise SystemExit(f"hawserctl: too many arguments: one {what} at most")
    return values[0] if values else default


# `hawserctl image VERB ...` -> the top-level verb docker has for it
IMAGE_VERBS = {"ls": "images", "list": "images", "rm": "rmi", "remove": "rmi", "tag": "tag",
               "inspect": "inspect", "load": "load", "save": "save", "import": "import",
               "pull": "pull", "push": "push"}


def cmd_images(api, a):
    from supervisor.client import docker
    filters = list(a.filter)
    repository = optional(a.repository, "REPOSITORY[:TAG]")
    if repository:
        filters.append(f"reference=={repository}")
    # -a: docker's intermediate images (a build's); hawserd has none, dangling ones are listed
    imgs = api.i.List(api.ipb.ListImagesRequest(filters=filters)).images
    return docker.emit(lambda: docker.images_output(imgs, fmt=a.format, no_trunc=a.no_trunc,
                                                    quiet=a.quiet, digests=a.digests))


def cmd_rmi(api, a):
    rc = 0
    for ref in a.images:
        try:
            r = api.i.Delete(api.ipb.DeleteImageRequest(ref=ref, force=a.force))
        except api.grpc.RpcError as e:
            print(f"Error response from daemon: {e.details()}", file=sys.stderr)
            rc = 1
            continue
        for n in r.untagged:
            print(f"Untagged: {_familiar(n)}")
        for d in r.deleted:
            print(f"Deleted: {d}")
    return rc


def cmd_tag(api, a):
    api.i.Tag(api.ipb.TagImageRequest(source=a.source, target=a.target))
    return 0


def _requests(first, stream):
    """first, then the stream's bytes in chunks (a client stream's requests)."""
    yield first
    while True:
        data = stream.read(CHUNK)
        if not data:
            return
        yield type(first)(data=data)


def _local_file(path: str) -> str:
    """The absolute path when the daemon can read the file itself (a regular file here)."""
    import stat
    try:
        return os.path.abspath(path) if stat.S_ISREG(os.stat(path).st_mode) else ""
    except OSError as e:
        raise SystemExit(f"hawserctl: {path}: {e.strerror}") from None


def _show_progress(api, call, quiet: bool):
    """Render a call's Progress messages; the images it carries."""
    from supervisor.client.progress import Display
    display = None if quiet else Display(sys.stdout)
    images = []
    for p in call:
        if p.image is not None and p.image.name:
            images.append(p.image)
        if display is not None and (p.id or p.status) and p.image is None:
            display.update(p.id, p.status, p.current, p.total)
        elif p.status and p.image is not None and not quiet:
            if display is not None:
                display.finish()
            print(p.status)
    if display is not None:
        display.finish()
    return images


def cmd_load(api, a):
    path = _local_file(a.input) if a.input else ""
    if path:
        requests = iter([api.ipb.LoadRequest(path=path)])
    else:
        if not a.input and os.isatty(0):
            raise SystemExit("hawserctl: requested load from stdin, but stdin is empty")
        src = open(a.input, "rb") if a.input else sys.stdin.buffer
        requests = _requests(api.ipb.LoadRequest(), src)
    _show_progress(api, api.i.Load(requests), a.quiet)
    return 0


def cmd_save(api, a):
    if not a.output and os.isatty(1):
        raise SystemExit("hawserctl: cowardly refusing to save to a terminal: use -o or "
                         "redirect the output")
    call = api.i.Save(api.ipb.SaveRequest(refs=a.images))
    if a.output:
        from supervisor.client.atomic import ReplacingFile
        with ReplacingFile(a.output) as f:     # a failed save leaves no half archive
            for chunk in call:
                f.write(chunk.data)
    else:
        out = sys.stdout.buffer
        for chunk in call:
            out.write(chunk.data)
        out.flush()
    return 0


def cmd_import(api, a):
    first = api.ipb.ImportRequest(name=optional(a.reference, "REPOSITORY[:TAG]"),
                                  changes=a.change, message=a.message)
    if a.file == "-":
        requests = _requests(first, sys.stdin.buffer)
    else:
        path = _local_file(a.file)
        if path:
            first.path = path
            requests = iter([first])
        else:
            requests = _requests(first, open(a.file, "rb"))
    for p in api.i.Import(requests):
        if p.image is not None:
            print(p.image.id)
    return 0


def registry_auth(api, name: str):
    """The credentials hawserctl has for the registry of name (docker's config.json)."""
    from supervisor.client import credentials
    first, sep, _ = name.partition("/")
    domain = first if sep and ("." in first or ":" in first or first == "localhost") \
        else "docker.io"
    try:
        found = credentials.lookup(domain)
    except credentials.CredentialsError as e:
        raise SystemExit(f"hawserctl: {e}") from None
    if not found:
        return None
    user, password, token = found
    return api.ipb.RegistryAuth(username=user or "", password=password or "",
                                identity_token=token or "")


def cmd_pull(api, a):
    call = api.i.Pull(api.ipb.PullRequest(ref=a.name, platform=a.platform,
                                          auth=registry_auth(api, a.name)))
    images = _show_progress(api, call, a.quiet)
    for img in images:
        print(img.name)
    return 0


def pull_quietly(api, name: str) -> None:
    """A pull for run/create: its progress on stderr (stdout is the container's)."""
    from supervisor.client.progress import Display
    display = Display(sys.stderr)
    for p in api.i.Pull(api.ipb.PullRequest(ref=name, auth=registry_auth(api, name))):
        if p.image is None and (p.id or p.status):
            display.update(p.id, p.status, p.current, p.total)
    display.finish()


def cmd_push(api, a):
    _show_progress(api, api.i.Push(api.ipb.PushRequest(ref=a.name,
                                                       auth=registry_auth(api, a.name))),
                   a.quiet)
    return 0


def cmd_commit(api, a):
    r = api.i.Commit(api.ipb.CommitRequest(container=a.container,
                                           name=optional(a.reference, "REPOSITORY[:TAG]"),
                                           changes=a.change, message=a.message,
                                           author=a.author,
                                           pause=a.pause.lower() not in ("false", "0")))
    print(r.image.id)
    return 0


def cmd_diff(api, a):
    for ch in api.c.Diff(api.cpb.DiffRequest(id=a.container)).changes:
        print(f"{ch.kind} {ch.path}")
    return 0


def server_domain(server: str) -> str:
    """A registry as `login` names it (a host, a URL, Docker Hub's index) -> its domain."""
    host = server.split("://", 1)[-1].split("/", 1)[0]
    return "docker.io" if host in ("", "docker.io", "index.docker.io",
                                   "registry-1.docker.io") else host


def cmd_login(api, a):
    """Check the credentials with the registry (as docker login does), then keep them in
    docker's config.json."""
    from supervisor.client import credentials
    from supervisor.registry import RegistryError
    from supervisor.registry.client import RegistryClient
    domain = server_domain(optional(a.server, "SERVER", "docker.io"))
    password = sys.stdin.readline().rstrip("\n") if a.password_stdin else a.password
    if not a.username or not password:
        raise SystemExit("hawserctl: login needs -u USER and -p PASSWORD (or --password-stdin)")
    try:
        with RegistryClient(domain, auth=(a.username, password, "")) as registry:
            registry.login()
        credentials.store(domain, a.username, password)
    except RegistryError as e:
        raise SystemExit(f"Error response from registry {domain}: {e}") from None
    except credentials.CredentialsError as e:
        raise SystemExit(f"hawserctl: {e}") from None
    print("Login Succeeded")
    return 0


def cmd_logout(api, a):
    from supervisor.client import credentials
    domain = server_domain(optional(a.server, "SERVER", "docker.io"))
    try:
        removed = credentials.erase(domain)
    except credentials.CredentialsError as e:
        raise SystemExit(f"hawserctl: {e}") from None
    print(f"Removing login credentials for {domain}" if removed else
          f"Not logged in to {domain}")
    return 0


COMMANDS = {"images": cmd_images, "rmi": cmd_rmi, "tag": cmd_tag, "load": cmd_load,
            "save": cmd_save, "import": cmd_import, "pull": cmd_pull, "push": cmd_push,
            "commit": cmd_commit, "diff": cmd_diff, "login": cmd_login, "logout": cmd_logout}


def _familiar(name: str) -> str:
    for prefix in ("docker.io/library/", "docker.io/"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return name


