"""Validate config.json (and state / features documents) against hawser's own runtime-spec v1.3
schemas in oci-specs/, with one-line errors naming the JSON path and the rule:

    config.json: process.user.uid: 'x' is not of type 'integer'

Why a cache: `import jsonschema` costs ~85 ms and `hawser create` should take a few. A config
that passed once is remembered as an empty file `<cache_dir>/<sha256 hex>`; the digest covers
a version string of the config schema files too, so editing a schema invalidates every entry. A hit
skips only the schema run: the JSON is always parsed, and jsonschema is imported only on a miss.
The spec's prose rules that a schema states cheaply (ociVersion 1.x, absolute cwd and hook
paths, no duplicate namespace types, major/minor unless a FIFO...) are in the schemas themselves.
"""
import os
import stat

from runtime import jsonlite
from runtime.errors import HawserError

try:
    from _sha256 import sha256  # builtin; hashlib would load OpenSSL (~2 ms)
except ImportError:  # Python 3.12+ merged it into _sha2
    from _sha2 import sha256

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "oci-specs")
# Every file a config validation can reach: their size and mtime are part of the cache key.
CONFIG_SCHEMAS = ("config-schema.json", "config-linux.json", "defs.json", "defs-linux.json")
SPEC_VERSION = "runtime-spec 1.3"
CACHE_MAX = 1000

_validators = {}  # (schema dir, file name, file stats) -> jsonschema validator


def validate_config(raw, cache_dir=None):
    """Parse and validate config.json bytes; return the dict or raise HawserError.
    cache_dir (normally `<state root>/.validated`) remembers digests of valid configs."""
    if isinstance(raw, str):
        raw = raw.encode()
    try:
        doc = jsonlite.loads(raw, parse_constant=_no_constant)
    except ValueError as err:  # UnicodeDecodeError is a ValueError too
        raise HawserError(f"config.json: invalid JSON: {err}") from None
    if cache_dir is None:
        _check_config(doc)
        return doc
    h = sha256(b"hawser-config\0")
    try:
        h.update(_schema_version())
    except OSError as err:
        raise HawserError(f"config.json: cannot read the schemas: {err}") from None
    h.update(raw)
    entry = os.path.join(cache_dir, h.hexdigest())
    try:
        if stat.S_ISREG(os.lstat(entry).st_mode):
            _touch(entry)
            return doc
    except OSError:
        pass
    _check_config(doc)
    _remember(cache_dir, entry)
    return doc


def _check_config(doc) -> None:
    """The quick checker answers for most configs in a few ms; jsonschema (~90 ms with its
    import) only runs when it is not sure, which includes every invalid config, so the error
    message always comes from jsonschema."""
    from runtime.quickcheck import surely_valid
    if not surely_valid(doc, schema_dir=SCHEMA_DIR):
        _check(doc, "config-schema.json", "config.json")


def _no_constant(name):
    # Python's json reads NaN/Infinity; RFC 8259 and the Go runtimes (runc, podman) do not.
    raise ValueError(f"{name} is not valid JSON")


def validate_state(doc):
    """Check a state document (what `hawser state` prints and hooks read); return it."""
    _check(doc, "state-schema.json", "state")
    return doc


def validate_features(doc):
    """Check a features document (what `hawser features` prints); return it."""
    _check(doc, "features-schema.json", "features")
    return doc


def _schema_version():
    """Size and mtime of each config schema file: any edit changes them. Four stat() calls cost
    ~10 us where reading and hashing the ~30 KB of schemas costs ~100 us on every create."""
    parts = [SPEC_VERSION]
    for name in CONFIG_SCHEMAS:
        st = os.stat(os.path.join(SCHEMA_DIR, name))
        parts.append(f"{name}:{st.st_size}:{st.st_mtime_ns}")
    return ";".join(parts).encode()


def _touch(entry):
    # Marks the entry recently used, so eviction drops the least recently used configs.
    try:
        os.utime(entry, follow_symlinks=False)
    except OSError:
        pass


def _remember(cache_dir, entry):
    """Best effort: a read-only or full state root only costs a re-validation next time."""
    try:
        os.makedirs(cache_dir, 0o700, exist_ok=True)
        fd = os.open(entry, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        os.close(fd)
        names = os.listdir(cache_dir)
    except OSError:
        return
    if len(names) <= CACHE_MAX:
        return
    aged = []
    for name in names:
        try:
            aged.append((os.lstat(os.path.join(cache_dir, name)).st_mtime_ns, name))
        except OSError:
            pass  # removed by a concurrent hawser
    aged.sort()
    for _, name in aged[:len(aged) - CACHE_MAX]:
        try:
            os.unlink(os.path.join(cache_dir, name))
        except OSError:
            pass


def _validator(name):
    files = sorted(f for f in os.listdir(SCHEMA_DIR) if f.endswith(".json"))
    # Keyed by the files' stats too, so a long-lived process (shim, tests) sees schema edits.
    key = (SCHEMA_DIR, name) + tuple(
        (f, os.stat(os.path.join(SCHEMA_DIR, f)).st_mtime_ns) for f in files)
    if key not in _validators:
        # Imported here only: this is the 85 ms a cache hit saves.
        from jsonschema import Draft202012Validator
        from referencing import Registry
        from referencing.jsonschema import DRAFT202012
        resources = {}
        for fname in files:
            with open(os.path.join(SCHEMA_DIR, fname), "rb") as f:
                resources[fname] = DRAFT202012.create_resource(jsonlite.loads(f.read()))
        # The files have no $id: registered by file name, their relative $refs
        # ("defs.json#/$defs/uint32") resolve exactly as they do from the directory.
        registry = Registry().with_resources(resources.items())
        _validators[key] = Draft202012Validator(resources[name].contents, registry=registry)
    return _validators[key]


def _check(doc, schema, label):
    try:
        validator = _validator(schema)
    except OSError as err:  # oci-specs/ missing from an installation
        raise HawserError(f"{label}: cannot read the schemas: {err}") from None
    from jsonschema.exceptions import best_match
    err = best_match(validator.iter_errors(doc))
    if err is not None:
        raise HawserError(format_error(label, err))


def format_error(label, err):
    """'config.json: mounts[2].destination: <rule>'; keys that are not plain names are quoted:
    linux.sysctl["net.ipv4.ip_forward"]."""
    where = ""
    for part in err.absolute_path:
        if isinstance(part, int):
            where += f"[{part}]"
        elif part and "." not in part and "[" not in part:
            where += ("." if where else "") + part
        else:
            where += "[" + jsonlite.dumps(part) + "]"
    msg = err.message
    # A rule whose default text is a bare regex or count says it in words ("errorMessage", the
    # ajv-errors convention; jsonschema ignores it); type errors keep the default text.
    if err.validator != "type" and isinstance(err.schema, dict) and "errorMessage" in err.schema:
        msg = err.schema["errorMessage"].format(err.instance)
    return f"{label}: {where}: {msg}" if where else f"{label}: {msg}"


def validate_process(raw, label="process.json"):
    """An `exec --process` file: a runtime-spec Process object, checked by the config schema
    (as the `process` of a minimal config) and reported under its own label."""
    try:
        doc = jsonlite.loads(raw, parse_constant=_no_constant)
    except ValueError as err:
        raise HawserError(f"{label}: invalid JSON: {err}") from None
    try:
        _check({"ociVersion": "1.3.0", "process": doc}, "config-schema.json", "config.json")
    except HawserError as err:
        text = str(err)
        for prefix in ("config.json: process.", "config.json: process: "):
            if text.startswith(prefix):
                text = f"{label}: " + text[len(prefix):]
                break
        raise HawserError(text) from None
    return doc
