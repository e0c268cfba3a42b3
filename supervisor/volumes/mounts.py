"""docker's -v, --mount and --tmpfs into Mount records (the fields of hawser.v1.Mount: type,
source, destination, read_only, options), with docker's rules and its error messages; and Mount
records into a bundle's OCI mounts.

hawserctl imports this module to parse its command line, so it imports nothing but os and
supervisor.errors (no re, json, enum or dataclasses: each costs hawserctl's start-up time)."""
import os

from supervisor.errors import ApiError

PROPAGATIONS = ("rprivate", "private", "rshared", "shared", "rslave", "slave")
DEFAULT_PROPAGATION = "rprivate"
# a bind from -v: a missing host directory is made, as docker does for -v (never for --mount)
CREATE_SOURCE = "create-mountpoint"
NONRECURSIVE = "bind-nonrecursive"
NOCOPY = "nocopy"
# docker's defaults for every tmpfs (--tmpfs and --mount type=tmpfs), before the user's options
TMPFS_DEFAULTS = ("noexec", "nosuid", "nodev", DEFAULT_PROPAGATION)

_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
_NAME_CHARS = _ALNUM | frozenset("_.-")
NAME_RULE = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
# -v modes, by kind: docker allows one of each kind in a mode
_MODES = {"rw": "rw", "ro": "rw", "z": "label", "Z": "label", NOCOPY: "copy",
          "consistent": "consistency", "cached": "consistency", "delegated": "consistency",
          **{p: "propagation" for p in PROPAGATIONS}}
# tmpfs flags and what a later one overrides (docker's MergeTmpfsOptions: the last one wins)
_TMPFS_FLAGS = {"ro": "ro", "rw": "ro", "suid": "suid", "nosuid": "suid", "dev": "dev",
                "nodev": "dev", "exec": "exec", "noexec": "exec", "sync": "sync",
                "async": "sync", "dirsync": "dirsync", "mand": "mand", "nomand": "mand",
                "atime": "atime", "noatime": "atime", "diratime": "diratime",
                "nodiratime": "diratime", "relatime": "relatime", "norelatime": "relatime",
                "strictatime": "strictatime", "nostrictatime": "strictatime",
                **{p: "propagation" for p in PROPAGATIONS + ("unbindable", "runbindable")}}
_TMPFS_DATA = ("size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")          # Go's strconv.ParseBool
_FALSE = ("0", "f", "F", "FALSE", "false", "False")
_UNITS = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


class MountError(ApiError):
    """A mount the user wrote wrong: the message is docker's where docker has one."""

    def __init__(self, message: str):
        super().__init__("INVALID_ARGUMENT", message)


def volume_name_error(name: str) -> str | None:
    """docker's local driver's message for a name it refuses (at least two characters), or None."""
    if len(name) >= 2 and name[0] in _ALNUM and all(ch in _NAME_CHARS for ch in name):
        return None
    return (f"create {name}: {_quote(name)} includes invalid characters for a local volume "
            f"name, only {_quote(NAME_RULE)} are allowed. If you intended to pass a host "
            "directory, use absolute path")


def parse_volume(text: str) -> dict:
    """-v NAME:/path[:mode], /host:/path[:mode] or /path (an anonymous volume)."""
    parts = text.split(":", 3)
    if not parts[0]:
        raise MountError(f"invalid volume specification: '{text}'")
    mode = ""
    if len(parts) == 1:
        source, target = "", parts[0]
    elif len(parts) == 2:
        if _valid_mode(parts[1]):          # "/foo:rw": a mode, but nothing to mount
            raise MountError(f"invalid volume specification: '{text}'")
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    else:
        raise MountError(f"invalid volume specification: '{text}'")
    if not _valid_mode(mode):
        raise MountError(f"invalid mode: {mode}")
    modes = mode.split(",") if mode else []
    kind = "bind" if source.startswith("/") else "volume"
    propagation = next((m for m in modes if m in PROPAGATIONS), "")
    try:
        _check(kind, source, target, read_only="ro" in modes, bind_options=bool(propagation),
               volume_options=NOCOPY in modes)
    except MountError as e:
        if e.message.startswith("create "):           # the volume name: docker's own message
            raise
        raise MountError(f"invalid volume specification: '{text}': {e.message}") from None
    if kind == "bind":
        options = [propagation] if propagation else []
        return _record(kind, _clean(source), target, "ro" in modes, options + [CREATE_SOURCE])
    return _record(kind, source, target, "ro" in modes, [NOCOPY] if NOCOPY in modes else [])


def parse_mount(text: str) -> dict:
    """--mount type=bind|volume|tmpfs,source=|src=,target=|destination=|dst=,readonly|ro[=BOOL],
    volume-nocopy, bind-propagation=, bind-nonrecursive, tmpfs-size=, tmpfs-mode=."""
    kind, source, target, read_only = "volume", "", "", False
    bind, volume, tmpfs = {}, {}, {}      # the options of each type, as docker's CLI keeps them
    for field in _csv_fields(text):
        key, has_value, value = field.partition("=")
        if not has_value:
            if key in ("readonly", "ro"):
                read_only = True
            elif key == "volume-nocopy":
                volume["nocopy"] = True
            elif key == "bind-nonrecursive":
                bind["nonrecursive"] = True
            else:
                raise MountError(f"invalid field '{field}' must be a key=value pair")
        elif key == "type":
            kind = value.lower()
        elif key in ("source", "src"):
            source = value
        elif key in ("target", "dst", "destination"):
            target = value
        elif key in ("readonly", "ro"):
            read_only = _bool(key, value)
        elif key == "consistency":
            pass                           # docker accepts it and Linux ignores it
        elif key == "bind-propagation":
            bind["propagation"] = value.lower()
        elif key == "bind-nonrecursive":
            bind["nonrecursive"] = _bool(key, value)
        elif key == "volume-nocopy":
            volume["nocopy"] = _bool(key, value)
        elif key == "volume-driver":
            if value not in ("", "local"):
                raise MountError(f"volume driver {value!r} is not supported (only local)")
            volume.setdefault("nocopy", False)
        elif key in ("volume-label", "volume-opt", "volume-subpath"):
            raise MountError(f"--mount {key} is not supported")
        elif key == "tmpfs-size":
            tmpfs["size"] = _ram_in_bytes(key, value)
        elif key == "tmpfs-mode":
            tmpfs["mode"] = _octal(key, value)
        else:
            raise MountError(f"unexpected key '{key}' in '{field}'")
    if not kind:
        raise MountError("type is required")
    if not target:
        raise MountError("target is required")
    for name, given, owner in (("volume", volume, "volume"), ("bind", bind, "bind"),
                               ("tmpfs", tmpfs, "tmpfs")):
        if given and kind != owner:
            raise MountError(f"cannot mix '{name}-*' options with mount type '{kind}'")
    _check(kind, source, target, read_only=read_only, bind_options=bool(bind),
           volume_options=bool(volume), propagation=bind.get("propagation", ""))
    if kind == "bind":
        options = [bind["propagation"]] if bind.get("propagation") else []
        return _record(kind, _clean(source), target, read_only,
                       options + ([NONRECURSIVE] if bind.get("nonrecursive") else []))
    if kind == "volume":
        return _record(kind, source, target, read_only, [NOCOPY] if volume.get("nocopy") else [])
    options = [f"mode={tmpfs['mode']:o}"] if tmpfs.get("mode") else []
    if tmpfs.get("size"):
        options.append(f"size={_size_text(tmpfs['size'])}")
    return _record(kind, "", target, read_only, options)


def parse_tmpfs(text: str) -> dict:
    """--tmpfs /path[:options] (size=, mode=, uid=, gid=, nr_inodes=, noexec, exec, ro...)."""
    target, _, data = text.partition(":")
    _check_destination(target)
    options = data.split(",") if data else []
    merge_tmpfs(options)                    # refuses what tmpfs would not take
    read_only = False
    for opt in options:
        if opt in ("ro", "rw"):
            read_only = opt == "ro"
    return _record("tmpfs", "", target, read_only, options)


def merge_tmpfs(options) -> list[str]:
    """Options with the last of each kind kept (docker's MergeTmpfsOptions); a bad one refused."""
    flags, data, out = set(), set(), []
    for opt in reversed(list(options)):
        if opt == "defaults":
            continue
        kind = _TMPFS_FLAGS.get(opt)
        if kind is None:
            key, has_value, value = opt.partition("=")
            if not has_value or key not in _TMPFS_DATA:
                parts = [key, value] if has_value else [key]
                raise MountError(f"invalid tmpfs option [{' '.join(map(_quote, parts))}]")
            kind, seen = key, data
        else:
            seen = flags
        if kind not in seen:
            seen.add(kind)
            out.append(opt)
    out.reverse()
    return out


def daemon_propagation(source: str, daemon_dirs) -> str:
    """docker's rule (moby#36055): a bind that asks for no propagation gets rslave when its
    source is one of the daemon's directories, inside one or a parent of one (a private
    reference to the daemon's own mounts would keep them busy); "" otherwise (rprivate)."""
    src = os.path.normpath(source)
    for d in daemon_dirs:
        d = os.path.normpath(d)
        if src == d or d.startswith(src.rstrip("/") + "/") or src.startswith(d + "/"):
            return "rslave"
    return ""


def oci_mounts(mounts, volume_path) -> list[dict]:
    """config.json mounts for Mount records (dicts or hawser.v1.Mount messages); volume_path(name)
    is a volume's directory. Destinations must be absolute, not /, and each used once. A -v bind's
    missing host directory is made, once every record is known to be good."""
    out, seen, to_make = [], set(), []
    for m in mounts:
        kind = _field(m, "type") or "bind"
        source, ro = _field(m, "source") or "", bool(_field(m, "read_only"))
        options = list(_field(m, "options") or ())
        dest = _check_destination(_field(m, "destination") or "")
        if dest in seen:
            raise MountError(f"Duplicate mount point: {dest}")
        seen.add(dest)
        if kind == "tmpfs":
            out.append({"destination": dest, "type": "tmpfs", "source": "tmpfs",
                        "options": merge_tmpfs(TMPFS_DEFAULTS + (("ro",) if ro else ())
                                               + tuple(options))})
            continue
        if kind == "volume":
            if not source:
                raise MountError(f"the anonymous volume at {dest} has no name: create it first")
            source = volume_path(source)
        elif kind == "bind":
            if not source.startswith("/"):
                raise MountError(f"invalid mount config for type \"bind\": invalid mount path: "
                                 f"'{source}' mount path must be absolute")
            if not os.path.exists(source):
                if CREATE_SOURCE not in options:
                    raise MountError(f"invalid mount config for type \"bind\": bind source path "
                                     f"does not exist: {source}")
                to_make.append(source)
        else:
            raise MountError(f"invalid mount config for type \"{kind}\": mount type unknown")
        propagation = next((o for o in options if o in PROPAGATIONS),
                           _field(m, "propagation") or DEFAULT_PROPAGATION)
        out.append({"destination": dest, "type": "bind", "source": source,
                    "options": ["bind" if NONRECURSIVE in options else "rbind",
                                "ro" if ro else "rw", propagation]})
    for path in to_make:
        try:
            os.makedirs(path, 0o755, exist_ok=True)
        except OSError as e:
            raise MountError(f"bind source {path}: cannot make it: {e.strerror or e}") from None
    # a mount inside another's destination comes after it, or the outer one would hide it
    return sorted(out, key=lambda m: m["destination"].count("/"))


def rootfs_propagation(mounts) -> str:
    """The linux.rootfsPropagation that OCI mounts need (docker's rule): a shared bind needs a
    shared root, a slave bind a slave one; "" when the runtime's default does."""
    props = {o for m in mounts for o in m.get("options", ()) if o in PROPAGATIONS}
    if props & {"shared", "rshared"}:
        return "rshared"
    return "rslave" if props & {"slave", "rslave"} else ""


# -- docker's checks (the daemon's validateMountConfig) --------------------------------------
def _check(kind, source, target, read_only=False, bind_options=False, volume_options=False,
           propagation="") -> None:
    def fail(reason):
        raise MountError(f"invalid mount config for type {_quote(kind)}: {reason}")
    if not target:
        fail("field Target must not be empty")
    if _clean(target) == "/":
        fail("invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        fail(f"invalid mount path: '{target}' mount path must be absolute")
    if kind == "bind":
        if not source:
            fail("field Source must not be empty")
        if propagation and propagation not in PROPAGATIONS:
            fail(f"invalid propagation mode: {propagation}")
        if volume_options:
            fail("field VolumeOptions must not be specified")
        if not source.startswith("/"):
            fail(f"invalid mount path: '{source}' mount path must be absolute")
    elif kind == "volume":
        if bind_options:
            fail("field BindOptions must not be specified")
        if read_only and not source:
            fail("must not set ReadOnly mode when using anonymous volumes")
        problem = volume_name_error(source) if source else None
        if problem:
            raise MountError(problem)
    elif kind == "tmpfs":
        if bind_options:
            fail("field BindOptions must not be specified")
        if source:
            fail("field Source must not be specified")
    else:
        fail("mount type unknown")


def _check_destination(target: str) -> str:
    if target and _clean(target) == "/":
        raise MountError("invalid specification: destination can't be '/'")
    if not target.startswith("/"):
        raise MountError(f"invalid mount path: '{target}' mount path must be absolute")
    return _clean(target)


def _valid_mode(mode: str) -> bool:
    if not mode:
        return True
    kinds = [_MODES.get(m) for m in mode.split(",")]
    return None not in kinds and len(kinds) == len(set(kinds))


def _record(kind, source, target, read_only, options) -> dict:
    return {"type": kind, "source": source, "destination": _clean(target),
            "read_only": read_only, "options": options}


def _field(m, name):
    return m.get(name) if isinstance(m, dict) else getattr(m, name)


def _clean(path: str) -> str:
    """Go's path.Clean for an absolute path: no //, /./ or /../ left."""
    path = os.path.normpath(path) if path else path
    return "/" + path.lstrip("/") if path.startswith("//") else path


def _quote(s: str) -> str:
    """Go's %q for the strings messages name."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        else:
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 0x80 else f"\\u{ord(ch):04x}")
    return '"' + "".join(out) + '"'


def _bool(key: str, value: str) -> bool:
    if value in _TRUE or value in _FALSE:
        return value in _TRUE
    raise MountError(f"invalid value for {key}: {value}")


def _ram_in_bytes(key: str, value: str) -> int:
    """go-units' RAMInBytes: 64m, 1.5g, 512 KiB, 1024 (binary units, an optional i and b)."""
    s = value
    for suffixes in ("bB", "iI"):
        if s and s[-1] in suffixes:
            s = s[:-1]
    unit = 1
    if s and s[-1].lower() in _UNITS:
        unit, s = _UNITS[s[-1].lower()], s[:-1]
    if s.endswith(" "):
        s = s[:-1]
    whole, _, frac = s.partition(".")
    if not whole.isdigit() or not whole.isascii() or frac and not (frac.isdigit() and
                                                                   frac.isascii()):
        raise MountError(f"invalid value for {key}: {value}")
    return int(float(s) * unit)


def _octal(key: str, value: str) -> int:
    if not value or any(ch not in "01234567" for ch in value) or int(value, 8) >= 1 << 32:
        raise MountError(f"invalid value for {key}: {value}")
    return int(value, 8)


def _size_text(size: int) -> str:
    for suffix, unit in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % unit == 0:
            return f"{size // unit}{suffix}"
    return str(size)


def _csv_fields(text: str) -> list[str]:
    """One line of CSV as Go's encoding/csv reads it (docker's CLI reads --mount so): commas
    between fields, a field in double quotes may hold commas, "" in it is one quote."""
    if not text:
        raise MountError("target is required")
    fields, i, n = [], 0, len(text)
    while True:
        if text.startswith('"', i):
            pieces, j = [], i + 1
            while True:
                k = text.find('"', j)
                if k < 0:
                    raise MountError(f'parse error on line 1, column {n + 1}: extraneous or '
                                     'missing " in quoted-field')
                pieces.append(text[j:k])
                if not text.startswith('"', k + 1):
                    break
                pieces.append('"')
                j = k + 2
            i = k + 1
            if i < n and text[i] != ",":
                raise MountError(f'parse error on line 1, column {i + 1}: extraneous or '
                                 'missing " in quoted-field')
            fields.append("".join(pieces))
        else:
            end = text.find(",", i)
            end = n if end < 0 else end
            quote = text.find('"', i, end)
            if quote >= 0:
                raise MountError(f'parse error on line 1, column {quote + 1}: bare " in '
                                 'non-quoted field')
            fields.append(text[i:end])
            i = end
        if i >= n:
            return fields
        i += 1
