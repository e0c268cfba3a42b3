"""Go's encoding/json output of the Python values gofmt.py describes (json.Marshal, an Encoder
without HTML escaping, MarshalIndent), and their JSON as interface {} decodes it (docker
inspect's second try of a template)."""
from supervisor.client.gofmt import NIL, Map, Slice, Struct, Time, json_float, type_name


def _json_string(s: str, escape_html: bool) -> str:
    out = ['"']
    for ch in s:
        o = ord(ch)
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif o < 0x20 or (escape_html and ch in "<>&") or o in (0x2028, 0x2029):
            out.append(f"\\u{o:04x}")
        elif 0xD800 <= o <= 0xDFFF:            # not UTF-8: Go's encoder writes U+FFFD
            out.append("\\ufffd")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _empty(v) -> bool:
    """Go's isEmptyValue, for omitempty."""
    return v is None or v is NIL or v is False or (isinstance(v, (int, float)) and v == 0) \
        or (isinstance(v, (str, list, tuple, dict)) and len(v) == 0)


def _json(v, out: list, escape_html: bool, indent: str, level: int) -> None:
    if v is None or v is NIL or (isinstance(v, (Slice, Map)) and v.nil):
        out.append("null")
    elif v is True:
        out.append("true")
    elif v is False:
        out.append("false")
    elif isinstance(v, str):
        out.append(_json_string(v, escape_html))
    elif isinstance(v, int):
        out.append(str(v))
    elif isinstance(v, float):
        out.append(json_float(v))
    elif isinstance(v, dict):
        escape_html = escape_html or getattr(v, "escape_html", False)
        keys = sorted(v) if isinstance(v, Map) else list(v)
        omit = getattr(v, "omitempty", ())
        items = [(k, v[k]) for k in keys
                 if not callable(v[k]) and not (k in omit and _empty(v[k]))]
        if not items:
            out.append("{}")
            return
        out.append("{")
        for i, (k, item) in enumerate(items):
            if i:
                out.append(",")
            if indent:
                out.append("\n" + indent * (level + 1))
            out.append(_json_string(str(k), escape_html))
            out.append(": " if indent else ":")
            _json(item, out, escape_html, indent, level + 1)
        if indent:
            out.append("\n" + indent * level)
        out.append("}")
    elif isinstance(v, (list, tuple)):
        if not v:
            out.append("[]")
            return
        out.append("[")
        for i, item in enumerate(v):
            if i:
                out.append(",")
            if indent:
                out.append("\n" + indent * (level + 1))
            _json(item, out, escape_html, indent, level + 1)
        if indent:
            out.append("\n" + indent * level)
        out.append("]")
    else:
        raise ValueError(f"json: unsupported type: {type_name(v)}")


def as_json_value(v):
    """The value as its JSON decoded into interface {} gives it (docker inspect's second try
    of a template that failed on its Go types): maps and slices of plain values, structs as
    maps; a Struct's absent optional fields stay absent and not an error."""
    if v is None or v is NIL or (isinstance(v, (Slice, Map)) and v.nil):
        return None
    if isinstance(v, Time):
        return str(v)
    if isinstance(v, Struct):
        items = ((k, x) for k, x in v.items()
                 if not callable(x) and not (k in v.omitempty and _empty(x)))
        return Map(sorted((k, as_json_value(x)) for k, x in items), optional=v.optional)
    if isinstance(v, dict):
        return Map(sorted((k, as_json_value(x)) for k, x in v.items() if not callable(x)))
    if isinstance(v, (list, tuple)):
        return [as_json_value(x) for x in v]
    return v


def json_dumps(v, escape_html: bool = True, indent: str = "") -> str:
    """encoding/json's bytes: json.Marshal (escape_html), an Encoder with SetEscapeHTML(false),
    or MarshalIndent(v, "", indent). Dicts keep their order (a Go struct's fields, or docker's
    JSON as it came); Map's keys are sorted as Go sorts a map's."""
    out: list = []
    _json(v, out, escape_html, indent, 0)
    return "".join(out)
