"""JSON loads/dumps on the C module `_json`, for the hot path.

Why not `import json`: it costs ~7 ms here (it pulls `re` and `enum`), as long as the whole
`hawser` start-up should take. This module imports only `_json` and `sys` (C modules) and
behaves like the stdlib for the calls hawser makes: same output bytes, same error messages.
"""
import sys

import _json

_CONSTANTS = {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}


class JSONDecodeError(ValueError):
    """Like json.JSONDecodeError: msg, doc, pos, lineno, colno; str() is json's message."""

    def __init__(self, msg, doc, pos):
        lineno = doc.count("\n", 0, pos) + 1
        colno = pos - doc.rfind("\n", 0, pos)
        super().__init__(f"{msg}: line {lineno} column {colno} (char {pos})")
        self.msg, self.doc, self.pos, self.lineno, self.colno = msg, doc, pos, lineno, colno

    def __reduce__(self):
        return self.__class__, (self.msg, self.doc, self.pos)


# On a syntax error the C scanner looks up sys.modules["json.decoder"].JSONDecodeError and, when
# json was never imported, fails with a SystemError that has lost the message. While it runs we
# put a stand-in there (only if the real one is absent) so the C message and offset reach us.
_shim = type(sys)("json.decoder")
_shim.JSONDecodeError = JSONDecodeError


class _Context:
    """The attributes `_json.make_scanner` reads (json.JSONDecoder's, without the decoder)."""
    __slots__ = ("strict", "object_hook", "object_pairs_hook", "parse_float", "parse_int",
                 "parse_constant", "memo")

    def __init__(self, object_hook, object_pairs_hook, parse_float, parse_int, parse_constant,
                 strict):
        self.strict = strict
        self.object_hook = object_hook
        self.object_pairs_hook = object_pairs_hook
        # float/int themselves let the C scanner take its fast paths.
        self.parse_float = parse_float or float
        self.parse_int = parse_int or int
        self.parse_constant = parse_constant or _CONSTANTS.__getitem__
        self.memo = {}


_default_scanner = _json.make_scanner(_Context(None, None, None, None, None, True))
_WS = " \t\n\r"


def _decode_bytes(b):
    # json.detect_encoding: RFC 8259 text starts with two ASCII chars, so NUL bytes tell UTF-16/32.
    if b.startswith(b"\xef\xbb\xbf"):
        return b.decode("utf-8-sig", "surrogatepass")
    if b.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        return b.decode("utf-32", "surrogatepass")
    if b.startswith((b"\xff\xfe", b"\xfe\xff")):
        return b.decode("utf-16", "surrogatepass")
    enc = "utf-8"
    if len(b) >= 4:
        if not b[0]:
            enc = "utf-16-be" if b[1] else "utf-32-be"
        elif not b[1]:
            enc = "utf-16-le" if b[2] or b[3] else "utf-32-le"
    elif len(b) == 2:
        if not b[0]:
            enc = "utf-16-be"
        elif not b[1]:
            enc = "utf-16-le"
    return b.decode(enc, "surrogatepass")


def loads(s, *, object_hook=None, object_pairs_hook=None, parse_float=None, parse_int=None,
          parse_constant=None, strict=True):
    """json.loads: str, bytes or bytearray -> Python object; ValueError (JSONDecodeError) if bad."""
    if isinstance(s, str):
        if s.startswith("\ufeff"):
            raise JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", s, 0)
    elif isinstance(s, (bytes, bytearray)):
        s = _decode_bytes(s)
    else:
        raise TypeError(f"the JSON object must be str, bytes or bytearray, "
                        f"not {s.__class__.__name__}")
    if (object_hook or object_pairs_hook or parse_float or parse_int or parse_constant
            or not strict):
        scan = _json.make_scanner(_Context(object_hook, object_pairs_hook, parse_float,
                                           parse_int, parse_constant, strict))
    else:
        scan = _default_scanner
    idx = len(s) - len(s.lstrip(_WS))
    shimmed = "json.decoder" not in sys.modules
    if shimmed:
        sys.modules["json.decoder"] = _shim
    try:
        obj, end = scan(s, idx)
    except StopIteration as err:
        raise JSONDecodeError("Expecting value", s, err.value) from None
    except ValueError as err:
        if type(err) is JSONDecodeError or not hasattr(err, "pos"):
            raise
        # The real json.decoder was loaded (e.g. under pytest): same message, our type.
        raise JSONDecodeError(err.msg, s, err.pos) from None
    finally:
        if shimmed and sys.modules.get("json.decoder") is _shim:
            del sys.modules["json.decoder"]
    end = len(s) - len(s[end:].lstrip(_WS))
    if end != len(s):
        raise JSONDecodeError("Extra data", s, end)
    return obj


def load(fp, **kw):
    return loads(fp.read(), **kw)


def _key(k, skipkeys, allow_nan):
    """json's dict-key coercion; None means 'skip this item'."""
    if isinstance(k, str):
        return k
    if k is True:
        return "true"
    if k is False:
        return "false"
    if k is None:
        return "null"
    if isinstance(k, float):
        return _float(k, allow_nan)
    if isinstance(k, int):
        return int.__repr__(k)
    if skipkeys:
        return None
    raise TypeError(f"keys must be str, int, float, bool or None, not {k.__class__.__name__}")


def _float(o, allow_nan):
    if o != o:
        text = "NaN"
    elif o == float("inf"):
        text = "Infinity"
    elif o == float("-inf"):
        text = "-Infinity"
    else:
        return float.__repr__(o)
    if not allow_nan:
        raise ValueError("Out of range float values are not JSON compliant: " + repr(o))
    return text


def _default(o):
    raise TypeError(f"Object of type {o.__class__.__name__} is not JSON serializable")


def dumps(obj, *, indent=None, separators=None, sort_keys=False, ensure_ascii=True,
          allow_nan=True, skipkeys=False, check_circular=True, default=None):
    """json.dumps. indent=None: one line via the C encoder; indent=N or str: the pretty form."""
    enc_str = _json.encode_basestring_ascii if ensure_ascii else _json.encode_basestring
    if separators is not None:
        item_sep, key_sep = separators
    else:
        item_sep, key_sep = (", " if indent is None else ","), ": "
    default = default or _default
    if indent is None:
        # The C encoder only does one-line output, which is what the hot path writes.
        enc = _json.make_encoder({} if check_circular else None, default, enc_str, None,
                                 key_sep, item_sep, sort_keys, skipkeys, allow_nan)
        return "".join(enc(obj, 0))
    if not isinstance(indent, str):
        indent = " " * indent
    out = []
    _pretty(obj, 0, out, indent, item_sep, key_sep, enc_str, sort_keys, skipkeys, allow_nan,
            default, {} if check_circular else None)
    return "".join(out)


def _pretty(o, level, out, ind, item_sep, key_sep, enc_str, sort_keys, skipkeys, allow_nan,
            default, markers):
    """The indented form (`hawser spec`), recursive like json's pure-Python encoder."""
    if isinstance(o, str):
        out.append(enc_str(o))
    elif o is None:
        out.append("null")
    elif o is True:
        out.append("true")
    elif o is False:
        out.append("false")
    elif isinstance(o, int):
        out.append(int.__repr__(o))
    elif isinstance(o, float):
        out.append(_float(o, allow_nan))
    elif isinstance(o, (list, tuple, dict)):
        if markers is not None:
            if id(o) in markers:
                raise ValueError("Circular reference detected")
            markers[id(o)] = o
        is_dict = isinstance(o, dict)
        if not o:
            out.append("{}" if is_dict else "[]")
        else:
            inner = "\n" + ind * (level + 1)
            out.append(("{" if is_dict else "[") + inner)
            first = True
            items = (sorted(o.items()) if sort_keys else o.items()) if is_dict else o
            for item in items:
                if is_dict:
                    k = _key(item[0], skipkeys, allow_nan)
                    if k is None:
                        continue
                if not first:
                    out.append(item_sep + inner)
                first = False
                if is_dict:
                    out.append(enc_str(k) + key_sep)
                    item = item[1]
                _pretty(item, level + 1, out, ind, item_sep, key_sep, enc_str, sort_keys,
                        skipkeys, allow_nan, default, markers)
            out.append("\n" + ind * level + ("}" if is_dict else "]"))
        if markers is not None:
            del markers[id(o)]
    else:
        if markers is not None:
            if id(o) in markers:
                raise ValueError("Circular reference detected")
            markers[id(o)] = o
        _pretty(default(o), level, out, ind, item_sep, key_sep, enc_str, sort_keys, skipkeys,
                allow_nan, default, markers)
        if markers is not None:
            del markers[id(o)]


def dump(obj, fp, **kw):
    fp.write(dumps(obj, **kw))


def compact(obj):
    """One line without spaces, as Go's json.Marshal writes it (runc's events, ps, log lines)."""
    return dumps(obj, separators=(",", ":"))
