"""A small, strict interpreter of hawser's own schemas in oci-specs/, for the hot path.

containerd and podman hand every container a config of its own (the id is in cgroupsPath, the
hostname, mount sources), so the digest cache rarely hits there, and jsonschema costs ~90 ms per
`hawser create` (its import alone ~85 ms). This checks a config with the same schemas in a few
milliseconds, importing nothing.

It only ever answers "valid" when it is sure: any keyword, pattern or value it does not handle
exactly makes it answer "not sure", and the caller then runs jsonschema, which also writes the
error message. So it can be conservative, never lax (tests check it against jsonschema).
"""
import os

from runtime import jsonlite

SCHEMA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "oci-specs")
IGNORED = frozenset(("$schema", "$id", "$comment", "description", "errorMessage", "title",
                     "examples", "default", "$defs"))


class Unsure(Exception):
    """Something this checker does not interpret exactly: let jsonschema decide."""


def _digits(s: str) -> bool:
    return s.isascii() and s.isdigit()


def _semver_part(s: str) -> bool:  # 0|[1-9][0-9]*
    return _digits(s) and (s == "0" or s[0] != "0")


def _idents(s: str) -> bool:  # [0-9A-Za-z.-]+
    return bool(s) and s.isascii() and all(c.isalnum() or c in ".-" for c in s)


def _oci_version(s: str) -> bool:
    core, plus, build = s.partition("+")
    if plus and not _idents(build):
        return False
    core, dash, pre = core.partition("-")
    if dash and not _idents(pre):
        return False
    parts = core.split(".")
    return len(parts) == 3 and parts[0] == "1" and _semver_part(parts[1]) and _semver_part(parts[2])


def _upper_after(prefix: str, extra: str = ""):
    def check(s: str) -> bool:
        rest = s[len(prefix):]
        return (s.startswith(prefix) and bool(rest) and rest.isascii()
                and all(c.isupper() or c in extra for c in rest))
    return check


# The patterns the schemas use, each as exact Python (strings with a newline are left to
# jsonschema: its "$" also matches before a final newline).
PATTERNS = {
    "^/": lambda s: s.startswith("/"),
    "^RLIMIT_[A-Z]+$": _upper_after("RLIMIT_"),
    "^CAP_[A-Z_]+$": _upper_after("CAP_", "_"),
    "^[rwm]*$": lambda s: all(c in "rwm" for c in s),
    "^[0-9, -]*$": lambda s: all(c in "0123456789, -" for c in s),
    "^MB:[^\\n]*$": lambda s: s.startswith("MB:"),
    "^[1-9][0-9]*[KMG]B$": lambda s: (len(s) >= 3 and s[-1] == "B" and s[-2] in "KMG"
                                      and _digits(s[:-2]) and s[0] != "0"),
    "^1\\.(0|[1-9][0-9]*)\\.(0|[1-9][0-9]*)(-[0-9A-Za-z.-]+)?(\\+[0-9A-Za-z.-]+)?$": _oci_version,
}


def _is_type(value, name: str) -> bool:
    if name == "object":
        return type(value) is dict
    if name == "array":
        return type(value) is list
    if name == "string":
        return type(value) is str
    if name == "integer":
        if type(value) is float:
            raise Unsure()  # 1.0 is an integer to JSON Schema
        return type(value) is int
    if name == "number":
        return type(value) in (int, float)
    if name == "boolean":
        return type(value) is bool
    if name == "null":
        return value is None
    raise Unsure()


class Checker:
    def __init__(self, schema_dir: str = SCHEMA_DIR):
        self.dir = schema_dir
        self.docs: dict[str, dict] = {}

    def doc(self, name: str) -> dict:
        if name not in self.docs:
            with open(os.path.join(self.dir, name), "rb") as f:
                self.docs[name] = jsonlite.loads(f.read())
        return self.docs[name]

    def resolve(self, ref: str, base: str):
        name, _, pointer = ref.partition("#")
        name = name or base
        node = self.doc(name)
        for part in pointer.split("/")[1:]:
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node, name

    def valid(self, value, schema, base: str) -> bool:
        if schema is True:
            return True
        if schema is False:
            return False
        for key, arg in schema.items():
            if key in IGNORED:
                continue
            check = getattr(self, "k_" + key.replace("$", ""), None)
            if check is None:
                raise Unsure()
            if not check(value, arg, schema, base):
                return False
        return True

    # keywords -----------------------------------------------------------------------------
    def k_ref(self, v, ref, s, base):
        node, name = self.resolve(ref, base)
        return self.valid(v, node, name)

    def k_type(self, v, t, s, base):
        return any(_is_type(v, x) for x in t) if type(t) is list else _is_type(v, t)

    def k_enum(self, v, options, s, base):
        return any(_equal(v, o) for o in options)

    def k_const(self, v, c, s, base):
        return _equal(v, c)

    def k_properties(self, v, props, s, base):
        if type(v) is not dict:
            return True
        return all(self.valid(v[k], sub, base) for k, sub in props.items() if k in v)

    def k_additionalProperties(self, v, sub, s, base):
        if type(v) is not dict:
            return True
        if "patternProperties" in s:
            raise Unsure()
        known = s.get("properties", {})
        return all(self.valid(x, sub, base) for k, x in v.items() if k not in known)

    def k_required(self, v, names, s, base):
        return type(v) is not dict or all(n in v for n in names)

    def k_propertyNames(self, v, sub, s, base):
        return type(v) is not dict or all(self.valid(k, sub, base) for k in v)

    def k_items(self, v, sub, s, base):
        if type(v) is not list:
            return True
        if "prefixItems" in s or type(sub) is list:
            raise Unsure()
        return all(self.valid(x, sub, base) for x in v)

    def k_minItems(self, v, n, s, base):
        return type(v) is not list or len(v) >= n

    def k_contains(self, v, sub, s, base):
        if type(v) is not list:
            return True
        count = sum(1 for x in v if self.valid(x, sub, base))
        return s.get("minContains", 1) <= count <= s.get("maxContains", count)

    def k_minContains(self, v, n, s, base):
        return True  # with contains

    k_maxContains = k_minContains

    def k_minimum(self, v, n, s, base):
        return type(v) not in (int, float) or v >= n

    def k_maximum(self, v, n, s, base):
        return type(v) not in (int, float) or v <= n

    def k_minLength(self, v, n, s, base):
        # jsonschema counts code points, as len() does
        return type(v) is not str or len(v) >= n

    def k_pattern(self, v, pattern, s, base):
        if type(v) is not str:
            return True
        fn = PATTERNS.get(pattern)
        if fn is None or "\n" in v:
            raise Unsure()
        return fn(v)

    def k_allOf(self, v, subs, s, base):
        return all(self.valid(v, sub, base) for sub in subs)

    def k_not(self, v, sub, s, base):
        return not self.valid(v, sub, base)

    def k_if(self, v, sub, s, base):
        if self.valid(v, sub, base):
            return self.valid(v, s.get("then", True), base)
        return self.valid(v, s.get("else", True), base)

    def k_then(self, v, sub, s, base):
        return True  # with if

    k_else = k_then


def _equal(a, b) -> bool:
    """JSON equality: True is not 1, 1.0 is 1."""
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if type(a) in (int, float) and type(b) in (int, float):
        return a == b
    if type(a) is not type(b):
        return False
    if type(a) is list:
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def surely_valid(doc, schema_file: str = "config-schema.json", schema_dir: str = SCHEMA_DIR) -> bool:
    """True only if doc is valid under the schema; False when invalid or not sure."""
    checker = Checker(schema_dir)
    try:
        return checker.valid(doc, checker.doc(schema_file), schema_file)
    except (Unsure, RecursionError, KeyError, OSError, ValueError):
        return False
