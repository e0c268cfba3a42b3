"""The functions of Go templates as gotemplate.py calls them: Go's builtins (and or not len
index slice print printf println eq ne lt le gt ge html js urlquery call) and docker's (json
split join title lower upper pad truncate, and the header functions of its tables), with
Go's error messages; `Func` says a function's parameter types as Go's evalCall checks them."""
from supervisor.client import gofmt, gofmt_printf, gojson


class _Sentinel:
    __slots__ = ("name",)

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


NO_VALUE = _Sentinel("NO_VALUE")   # Go's invalid reflect.Value: a missing key, a nil interface


class CallError(Exception):
    """A function's error: shown as "error calling NAME: MESSAGE"."""


class Func:
    """A function as Go's template sees it: its parameters' types ("value" for reflect.Value,
    "any", "string", "int", "bool", "[]string") and the variadic one's, if any."""
    __slots__ = ("fn", "params", "variadic")

    def __init__(self, fn, params=(), variadic=None):
        self.fn, self.params, self.variadic = fn, tuple(params), variadic

    def __call__(self, *args):
        return self.fn(*args)


def truth(v) -> tuple[bool, bool]:
    """Go's isTrue: (truth, ok)."""
    if v is NO_VALUE or v is None or v is gofmt.NIL:
        return False, True
    if isinstance(v, (bool, int, float)):
        return v != 0, True
    if isinstance(v, (str, list, tuple, dict)):
        return len(v) > 0, True
    return True, True


def _deref(v):
    return None if v is NO_VALUE else v


def _len(item):
    if item is NO_VALUE:
        raise CallError("reflect: call of reflect.Value.Type on zero Value")
    if item is None or item is gofmt.NIL:
        raise CallError("len of nil pointer")
    if isinstance(item, str):
        return len(item.encode("utf-8", "surrogateescape"))
    if isinstance(item, (list, tuple, dict)):
        return len(item)
    raise CallError(f"len of type {gofmt.type_name(item)}")


def _bytes(s: str) -> bytes:
    return s.encode("utf-8", "surrogateescape")


def _index_arg(index, cap: int) -> int:
    if index is None or index is NO_VALUE:
        raise CallError("cannot index slice/array with nil")
    if not isinstance(index, int) or isinstance(index, bool):
        raise CallError(f"cannot index slice/array with type {gofmt.type_name(index)}")
    if index < 0 or index > cap:
        raise CallError(f"index out of range: {index}")
    return index


def _index(item, *indexes):
    item = _deref(item)
    if item is None:
        raise CallError("index of untyped nil")
    for index in indexes:
        index = _deref(index)
        if item is None or item is gofmt.NIL:
            raise CallError("index of nil pointer")
        if isinstance(item, (list, tuple, str)):
            x = _index_arg(index, len(_bytes(item)) if isinstance(item, str) else len(item))
            if isinstance(item, str):
                data = _bytes(item)
                if x == len(data):
                    raise CallError("reflect: string index out of range")
                item = data[x]
            else:
                if x == len(item):
                    raise CallError("reflect: slice index out of range")
                item = item[x]
        elif isinstance(item, dict):
            if index is None:
                raise CallError("value is nil; should be of type string")
            if not isinstance(index, str):
                raise CallError(f"value has type {gofmt.type_name(index)}; should be string")
            value = item.get(index, NO_VALUE)
            item = getattr(item, "zero", None) if value is NO_VALUE or isinstance(value, Func) \
                else value
        else:
            raise CallError(f"can't index item of type {gofmt.type_name(item)}")
    return item


def _slice(item, *indexes):
    item = _deref(item)
    if item is None:
        raise CallError("slice of untyped nil")
    if len(indexes) > 3:
        raise CallError(f"too many slice indexes: {len(indexes)}")
    if isinstance(item, str):
        if len(indexes) == 3:
            raise CallError("cannot 3-index slice a string")
        data = _bytes(item)
    elif isinstance(item, (list, tuple)):
        data = item
    else:
        raise CallError(f"can't slice item of type {gofmt.type_name(item)}")
    idx = [0, len(data), len(data)]
    for i, index in enumerate(indexes):
        idx[i] = _index_arg(_deref(index), len(data))
    if idx[0] > idx[1]:
        raise CallError(f"invalid slice index: {idx[0]} > {idx[1]}")
    if len(indexes) == 3 and idx[1] > idx[2]:
        raise CallError(f"invalid slice index: {idx[1]} > {idx[2]}")
    part = data[idx[0]:idx[1]]
    if isinstance(item, str):
        return part.decode("utf-8", "surrogateescape")
    return gofmt.Slice(part, type=getattr(item, "type", "[]interface {}"))


_INT, _FLOAT, _STRING, _BOOL = "int", "float", "string", "bool"


def _basic_kind(v):
    if v is NO_VALUE or v is None:
        return "invalid"
    if isinstance(v, bool):
        return _BOOL
    if isinstance(v, int):
        return _INT
    if isinstance(v, float):
        return _FLOAT
    if isinstance(v, str):
        return _STRING
    return "other"


def _eq(arg1, *arg2):
    if not arg2:
        raise CallError("missing argument for comparison")
    k1 = _basic_kind(arg1)
    for arg in arg2:
        k2 = _basic_kind(arg)
        if k1 != k2:
            if k1 != "invalid" and k2 != "invalid":
                raise CallError("incompatible types for comparison")
            continue
        if k1 == "invalid":
            return True
        if k1 == "other":
            if isinstance(arg1, (list, dict)) or isinstance(arg, (list, dict)):
                raise CallError(f"non-comparable type {gofmt.sprint_value(arg1)}: "
                                f"{gofmt.type_name(arg1)}")
            if arg1 is arg:
                return True
        elif arg1 == arg:
            return True
    return False


def _lt(arg1, arg2):
    k1, k2 = _basic_kind(arg1), _basic_kind(arg2)
    if k1 in ("invalid", "other") or k2 in ("invalid", "other"):
        raise CallError("invalid type for comparison")
    if k1 != k2:
        raise CallError("incompatible types for comparison")
    if k1 == _BOOL:
        raise CallError("invalid type for comparison")
    return arg1 < arg2


def _html(*args) -> str:
    s = _eval_args(args)
    return "".join({'"': "&#34;", "'": "&#39;", "&": "&amp;", "<": "&lt;", ">": "&gt;",
                    "\0": "\ufffd"}.get(c, c) for c in s)


def _js(*args) -> str:
    out = []
    for c in _eval_args(args):
        esc = {"\\": "\\\\", "'": "\\'", '"': '\\"', "<": "\\u003C", ">": "\\u003E",
               "&": "\\u0026", "=": "\\u003D"}.get(c)
        if esc:
            out.append(esc)
        elif ord(c) < 0x20:
            out.append(f"\\u00{ord(c):02X}")
        elif ord(c) >= 0x80 and not c.isprintable():
            out.append(f"\\u{ord(c):04X}")
        else:
            out.append(c)
    return "".join(out)


def _urlquery(*args) -> str:
    out = []
    for b in _bytes(_eval_args(args)):
        c = chr(b)
        if c.isascii() and (c.isalnum() or c in "-_.~"):
            out.append(c)
        elif c == " ":
            out.append("+")
        else:
            out.append(f"%{b:02X}")
    return "".join(out)


def _eval_args(args) -> str:
    if len(args) == 1 and isinstance(args[0], str):
        return args[0]
    return gofmt.sprint(args)


def _call(fn, *args):
    fn = _deref(fn)
    if fn is None:
        raise CallError("call of nil")
    if not isinstance(fn, Func):
        raise CallError(f"non-function of type {gofmt.type_name(fn)}")
    return fn.fn(*(_deref(a) for a in args))


def _truth_value(v):
    return truth(v)[0]


BUILTINS = {
    "and": Func(None, ("value",), "value"),
    "or": Func(None, ("value",), "value"),
    "not": Func(lambda v: not _truth_value(v), ("value",)),
    "len": Func(_len, ("value",)),
    "index": Func(_index, ("value",), "value"),
    "slice": Func(_slice, ("value",), "value"),
    "print": Func(lambda *a: gofmt.sprint(a), (), "any"),
    "printf": Func(lambda f, *a: gofmt_printf.sprintf(f, a), ("string",), "any"),
    "println": Func(lambda *a: gofmt.sprintln(a), (), "any"),
    "eq": Func(_eq, ("value",), "value"),
    "ne": Func(lambda a, b: not _eq(a, b), ("value", "value")),
    "lt": Func(_lt, ("value", "value")),
    "le": Func(lambda a, b: _lt(a, b) or _eq(a, b), ("value", "value")),
    "gt": Func(lambda a, b: not (_lt(a, b) or _eq(a, b)), ("value", "value")),
    "ge": Func(lambda a, b: not _lt(a, b), ("value", "value")),
    "html": Func(_html, (), "any"),
    "js": Func(_js, (), "any"),
    "urlquery": Func(_urlquery, (), "any"),
    "call": Func(_call, ("value",), "value"),
}


# --- docker's functions (docker/cli templates) -----------------------------------------------

def _json(v) -> str:
    try:
        return gojson.json_dumps(v, escape_html=False)
    except ValueError:
        return ""    # docker ignores the encoder's error: nothing is written


def _split(s: str, sep: str):
    return gofmt.strings(list(s) if sep == "" else s.split(sep))


def _title(s: str) -> str:
    out, prev = [], " "
    for c in s:
        upper = c.upper()
        out.append(upper if _is_separator(prev) and len(upper) == 1 else c)
        prev = c
    return "".join(out)


def _is_separator(r: str) -> bool:
    """strings.Title's: ASCII alphanumerics and _ are not, other ASCII is; beyond ASCII
    letters and digits are not, spaces are."""
    if ord(r) <= 0x7F:
        return not (r.isalnum() or r == "_")
    if r.isalpha() or r.isdecimal():
        return False
    return r.isspace()


def _simple_case(s: str, convert) -> str:
    """Go's ToUpper/ToLower map rune to rune (Unicode's simple mappings): where Python's full
    mapping gives several, upper keeps the rune (ß) and lower takes the first (İ -> i)."""
    out = convert(s)
    if len(out) == len(s):
        return out
    lower = convert is str.lower
    return "".join(m if len(m) == 1 else m[0] if lower else c
                   for c, m in ((c, convert(c)) for c in s))


def _pad(s: str, prefix: int, suffix: int) -> str:
    if s == "":
        return s
    return " " * prefix + s + " " * suffix


def _truncate(s: str, length: int) -> str:
    data = _bytes(s)
    if len(data) < length:
        return s
    if length < 0:
        raise CallError(f"runtime error: slice bounds out of range [:{length}]")
    return data[:length].decode("utf-8", "surrogateescape")


DOCKER_FUNCS = {
    **BUILTINS,
    "json": Func(_json, ("any",)),
    "split": Func(_split, ("string", "string")),
    "join": Func(lambda a, sep: sep.join(a), ("[]string", "string")),
    "title": Func(_title, ("string",)),
    "lower": Func(lambda s: _simple_case(s, str.lower), ("string",)),
    "upper": Func(lambda s: _simple_case(s, str.upper), ("string",)),
    "pad": Func(_pad, ("string", "int", "int")),
    "truncate": Func(_truncate, ("string", "int")),
}

# docker's HeaderFunctions: a table's header shows the column's name, not what the function
# would make of it (pad is not among them: the header keeps the column's alignment)
HEADER_FUNCS = {
    **DOCKER_FUNCS,
    "json": Func(lambda v: v, ("string",)),
    "split": Func(lambda v, _: v, ("string", "string")),
    "join": Func(lambda v, _: v, ("string", "string")),
    "title": Func(lambda v: v, ("string",)),
    "lower": Func(lambda v: v, ("string",)),
    "upper": Func(lambda v: v, ("string",)),
    "truncate": Func(lambda v, _: v, ("string", "int")),
}
