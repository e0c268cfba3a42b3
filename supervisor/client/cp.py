"""hawserctl cp: docker cp between a container and the host, over Containers.CopyFrom/CopyTo.

The path contract with hawserd (supervisor/containers/cp.py's tar_stream and tar_in):
  CopyFrom{id, path}: a tar of that path in the container, its top entry named like the
    path's last component ("DIR/." and "/": the directory's content, no top entry; a
    trailing "/" follows a symlink to a directory); NOT_FOUND "no such file or directory..."
    when it is not there.
  CopyTo{id, path}, then {data}...: the tar is unpacked into `path`, an EXISTING directory
    of the container, its entries named as they are to be below it.
So docker's copy rules (archive.PrepareArchiveCopy) are the client's: a copy out renames the
tar's top entry as it unpacks on the host (to DEST's name when DEST is made or replaced); a
copy in makes its tar with the final names and sends it to the directory it lands in (DEST,
or DEST's parent). Whether a container path exists, and what it is, is read from the first
header of a CopyFrom of it (docker asks HEAD /archive; hawser.v1 has no stat), cancelled then.
"""
import os
import stat
import sys

from supervisor.archive import tar as tarformat

CHUNK = 1 << 20


class CopyError(Exception):
    """What docker's CLI prints for a copy that cannot be done (exit status 1)."""


def split_arg(arg: str) -> tuple[str, str]:
    """docker's splitCpArg: CONTAINER:PATH, or a local path (absolute, "./x:y", no colon)."""
    container, sep, path = arg.partition(":")
    if arg.startswith("/") or not sep or container.startswith("."):
        return "", arg
    return container, path


def split_path(path: str) -> tuple[str, str]:
    """archive.SplitPathDirEntry: (dir, base), "DIR/." keeping "." as its base."""
    clean = os.path.normpath(path)
    if path == "." or path.endswith("/."):
        clean += "/."
    return os.path.dirname(clean) or ".", os.path.basename(clean)


def _content(path: str) -> bool:
    return path.endswith("/.") or path == "." or os.path.normpath("/" + path) == "/"


def _go_error(op: str, path: str, e: OSError) -> CopyError:
    text = e.strerror or str(e)
    return CopyError(f"{op} {path}: {text[:1].lower()}{text[1:]}")


def cmd_cp(api, a) -> int:
    src_container, src = split_arg(a.source)
    dst_container, dst = split_arg(a.dest)
    container = src_container or dst_container
    try:
        if src_container and dst_container:
            raise CopyError("copying between containers is not supported")
        if not container:
            raise CopyError("must specify at least one container source")
        if src_container:
            copy_out(api, container, src, dst, a.follow_link)
        else:
            copy_in(api, container, dst, src, a.archive, a.follow_link)
    except CopyError as e:
        print(e, file=sys.stderr)
        return 1
    except api.grpc.RpcError as e:
        where = src if src_container else dst
        print(f"Error: No such container:path: {container}:{where}"
              if e.code().name == "NOT_FOUND" else f"Error response from daemon: {e.details()}",
              file=sys.stderr)
        return 1
    return 0


class _Chunks:
    """A CopyFrom call's chunks as a stream with read() (what TarReader reads)."""

    def __init__(self, call):
        self.call, self.buf = call, b""

    def read(self, n: int = -1) -> bytes:
        while not self.buf:
            chunk = next(self.call, None)
            if chunk is None:
                return b""
            self.buf = chunk.data
        out, self.buf = (self.buf, b"") if n < 0 else (self.buf[:n], self.buf[n:])
        return out


def _copy_from(api, container: str, path: str):
    return api.c.CopyFrom(api.cpb.CopyFromRequest(id=container, path=path))


def stat_in(api, container: str, path: str):
    """(exists, is a directory, symlink target or None) of a container path."""
    call = None
    try:
        call = _copy_from(api, container, path)
        first = next(iter(tarformat.TarReader(_Chunks(call))), None)
    except api.grpc.RpcError as e:
        if e.code().name == "NOT_FOUND" and e.details().startswith("no such file"):
            return False, False, None
        raise
    except tarformat.TarError as e:
        raise CopyError(f"copy from {container}:{path}: {e}") from None
    finally:
        if call is not None:
            call.cancel()
    if _content(path) or first is None:
        return True, True, None
    if first.type not in (tarformat.DIR, tarformat.REGULAR, tarformat.SYMLINK,
                          tarformat.CONTIGUOUS):
        raise CopyError(f'destination "{container}:{path}" must be a directory or a regular '
                        "file")
    link = os.fsdecode(first.linkname) if first.type == tarformat.SYMLINK else None
    return True, first.type == tarformat.DIR, link


def _linked(path: str, link: str) -> str:
    return link if link.startswith("/") else os.path.join(split_path(path)[0], link)


# --- out -------------------------------------------------------------------------------------

def local_path(path: str) -> str:
    """resolveLocalPath: absolute, a trailing "/" or "/." kept (they mean something)."""
    absolute = os.path.abspath(path)
    if (path.endswith("/.") or path == ".") and not absolute.endswith("/."):
        return absolute.rstrip("/") + "/."
    return absolute + "/" if path.endswith("/") and absolute != "/" else absolute


def dest_info(path: str) -> tuple[str, bool, bool]:
    """archive.CopyInfoDestinationPath: (path, exists, is a directory), symlinks followed;
    a missing path needs a parent directory."""
    original = path
    for _ in range(11):
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            break
        except OSError as e:
            raise _go_error("lstat", path, e) from None
        if not stat.S_ISLNK(st.st_mode):
            return path, True, stat.S_ISDIR(st.st_mode)
        path = _linked(path, os.readlink(path))
    else:
        raise CopyError(f"too many symlinks in {original}")
    parent = split_path(path)[0]
    try:
        parent_is_dir = stat.S_ISDIR(os.stat(parent).st_mode)
    except OSError as e:
        raise _go_error("stat", parent, e) from None
    if not parent_is_dir:
        raise CopyError("not a directory")
    return path, False, False


def check_output(path: str) -> None:
    """command.ValidateOutputPath: its directory exists; it is a directory or a file."""
    parent = os.path.dirname(os.path.normpath(path))
    if parent and not os.path.exists(parent):
        raise CopyError(f'invalid output path: directory "{parent}" does not exist')
    if os.path.exists(path) and not (os.path.isdir(path) or os.path.isfile(path)):
        raise CopyError(f'invalid output path: "{path}" must be a directory or a regular '
                        "file")


def copy_out(api, container: str, src: str, dst: str, follow: bool) -> None:
    if dst != "-":
        dst = local_path(dst)
        check_output(dst)
    rebase = ""
    if follow and not _content(src):       # -L: the link's target, named as the link
        _, _, link = stat_in(api, container, src)
        if link is not None:
            src, rebase = _linked(src, link), split_path(src)[1]
    call = _copy_from(api, container, src)
    if dst == "-":
        out = sys.stdout.buffer
        for chunk in call:
            out.write(chunk.data)
        out.flush()
        return
    reader = tarformat.TarReader(_Chunks(call))
    entries = iter(reader)
    first = next(entries, None)
    content = _content(src)
    src_dir = content or (first is not None and first.type == tarformat.DIR)
    top = None if content else split_path(src)[1]
    path, exists, is_dir = dest_info(dst)
    into, name = split_path(path)
    if exists and is_dir:
        into, name = path, rebase or top
    elif exists and src_dir:
        raise CopyError("cannot copy directory")
    elif not exists and content:
        os.mkdir(path, 0o755)              # the content goes into the directory made
        into, name = path, None
    elif not exists and not src_dir and (dst.endswith("/") or dst.endswith("/.")):
        raise CopyError("no such directory")
    untar(reader, first, entries, into, top, name)


def _rebase(name: bytes, old: bytes, new: bytes) -> bytes:
    """archive.RebaseArchiveEntries: OLD and OLD/... as NEW and NEW/..."""
    if name.rstrip(b"/") == old or name.startswith(old + b"/"):
        return new + name[len(old):]
    return name


def untar(reader, first, entries, into: str, top, name) -> None:
    """Unpack a CopyFrom tar into the host directory `into` with supervisor/containers/cp.py's
    unpacker (no entry lands outside it, through `..` or a link). As docker (NoLchown), files
    are the caller's: setuid and setgid bits go when an owner is not kept. Its top entry is
    renamed to `name`; an entry never replaces a directory by a file or the reverse
    (NoOverwriteDirNonDir)."""
    from supervisor.containers import cp as unpacker
    from supervisor.errors import ApiError
    old = os.fsencode(top) if top else b""
    new = os.fsencode(name) if name else old
    fd = os.open(into, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        unpack = unpacker._Unpack(fd, reader, False)
        e = first
        while e is not None:
            if old and new != old:
                e.name = _rebase(e.name, old, new)
                if e.type == tarformat.LINK:
                    e.linkname = _rebase(e.linkname, old, new)
            _no_overwrite(into, e)
            if e.uid != os.geteuid() or e.gid != os.getegid():
                e.mode &= ~0o6000
            unpack.entry(e)
            e = next(entries, None)
        unpack.finish()
    except ApiError as err:
        raise CopyError(err.message) from None
    except tarformat.TarError as err:
        raise CopyError(f"copy into {into}: {err}") from None
    finally:
        os.close(fd)


def _no_overwrite(into: str, e) -> None:
    path = os.path.join(into, os.fsdecode(e.name).strip("/"))
    try:
        old = os.lstat(path)
    except OSError:
        return
    if stat.S_ISDIR(old.st_mode) != (e.type == tarformat.DIR):
        kinds = ("directory", "non-directory")
        first, second = kinds if stat.S_ISDIR(old.st_mode) else kinds[::-1]
        raise CopyError(f'cannot overwrite {first} "{path}" with {second} "{into}"')


# --- in --------------------------------------------------------------------------------------

def copy_in(api, container: str, dst: str, src: str, archive: bool, follow: bool) -> None:
    exists, is_dir, link = stat_in(api, container, dst)
    path = dst
    if link is not None:                   # a symlink at DEST: its target is the destination
        path = _linked(dst, link)
        exists, is_dir, _ = stat_in(api, container, path)
    if src == "-":
        if not is_dir:
            raise CopyError(f'destination "{container}:{dst}" must be a directory')
        send(api, container, path, lambda out: _copy_stream(sys.stdin.buffer, out))
        return
    src = local_path(src)
    source, rebase = src, ""
    try:
        if follow:
            source = os.path.realpath(src, strict=True)
            rebase = split_path(src)[1] if split_path(source)[1] != split_path(src)[1] else ""
        src_dir = stat.S_ISDIR(os.lstat(source).st_mode)
    except OSError as e:
        raise _go_error("lstat", src, e) from None
    content = _content(src)
    into, top = split_path(path)
    if exists and is_dir:
        into, top = path, None if content else rebase or split_path(source)[1]
    elif exists and src_dir:
        raise CopyError("cannot copy directory")
    elif not exists and not src_dir and (path.endswith("/") or path.endswith("/.")):
        raise CopyError("no such directory")
    send(api, container, into, lambda out: pack(source, top, content, archive, out))


def send(api, container: str, into: str, produce) -> None:
    """A CopyTo call: its first request names the directory, then produce(out) writes the
    tar, which goes in requests of up to CHUNK bytes. A call the server ended early takes
    no more data (grpclite drops it); result() raises its error."""
    call = api.c.CopyTo.future(None)
    call.write(api.cpb.CopyToRequest(id=container, path=into))
    out = _Requests(call, api.cpb.CopyToRequest)
    produce(out)
    out.flush()
    call.done_writing()
    call.result()


class _Requests:
    """A file-like writer whose bytes go as CopyToRequest.data, CHUNK at a time."""

    def __init__(self, call, request):
        self.call, self.request, self.buf = call, request, bytearray()

    def write(self, data) -> int:
        self.buf += data
        if len(self.buf) >= CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self.buf:
            self.call.write(self.request(data=bytes(self.buf)))
            self.buf.clear()


def _copy_stream(stream, out) -> None:
    while data := stream.read(CHUNK):
        out.write(data)


def pack(source: str, top, content: bool, archive: bool, out) -> None:
    """The tar of a host path (links stored as links, hard links as links): named `top`, or
    with content (SRC/.) what the directory holds (under `top` when one is given). Without
    -a the owners are root's, as docker's daemon makes them."""
    import tarfile

    def owner(info):
        if not archive:
            info.uid = info.gid = 0
            info.uname = info.gname = ""
        return info
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as t:
        stack = [(source, top)] if not content else \
            [(os.path.join(source, n), f"{top}/{n}" if top else n)
             for n in sorted(os.listdir(source), reverse=True)] + \
            ([(source, top)] if top else [])
        while stack:
            path, name = stack.pop()
            t.add(path, arcname=name, recursive=False, filter=owner)
            if (path != source or not content) and os.path.isdir(path) and \
                    not os.path.islink(path):
                stack += [(os.path.join(path, n), f"{name}/{n}")
                          for n in sorted(os.listdir(path), reverse=True)]
