"""Go's view of Python values, for the template engine (gotemplate.py) and docker's shapes:
fmt's %v, Sprint/Sprintln/Sprintf, strconv.Quote, and encoding/json's output.

Python values stand for Go's as docker's data are: str, int, float (float64), bool, None (nil),
list ([]interface {}), dict (map[string]interface {}). Three subclasses carry what a Go type
says and a Python value cannot: `Struct` (a field that is not there is an error, not a missing
map key), `Map` (index of a missing key gives the element type's zero, e.g. "" for docker's
map[string]string Labels) and `Slice`/`Map` with nil=True (a nil slice or map: JSON null, yet
fmt prints [] or map[] and len is 0, as Go does for a typed nil)."""


class _NilPointer:
    """A typed nil pointer (docker's *int64 PidsLimit unset): fmt prints <nil>, JSON null,
    false in if; unlike a nil interface, a template does not see it as no value."""
    __slots__ = ()

    def __bool__(self):
        return False

    def __repr__(self):
        return "NIL"


NIL = _NilPointer()


class Time(str):
    """A Go time.Time: JSON has it as RFC 3339 (the str), fmt prints Time.String()."""
    __slots__ = ("text",)

    def __new__(cls, rfc3339: str, text: str):
        self = super().__new__(cls, rfc3339)
        self.text = text
        return self


class Struct(dict):
    """A Go struct as a dict, in field order (fmt prints it as {value value ...}).
    `type`: the Go type a missing field's error names. `optional`: fields that may be absent
    (docker's zero times, left out here) and then print <no value> instead of failing.
    `omitempty`: fields its JSON leaves out when empty (Go's struct tag), though templates see
    them. `json_only`: keys a template finds only in its JSON, the Go field being named
    otherwise (docker's Id is a field ID). `escape_html`: its JSON is json.Marshal's, < > &
    escaped whatever the encoder says (docker's table rows marshal themselves that way)."""
    __slots__ = ("type", "optional", "omitempty", "json_only", "escape_html")

    def __init__(self, *args, type=None, optional=(), omitempty=(), json_only=(),
                 escape_html=False, **kw):
        super().__init__(*args, **kw)
        self.type, self.escape_html = type or "struct", escape_html
        self.optional, self.omitempty = frozenset(optional), frozenset(omitempty)
        self.json_only = frozenset(json_only)


class Map(dict):
    """A typed Go map: `zero` is what index gives for a missing key; nil: JSON null.
    `optional`: keys whose absence is not an error even with missingkey=error (a Struct's
    optional fields, seen as JSON)."""
    __slots__ = ("zero", "nil", "type", "optional")

    def __init__(self, *args, zero=None, nil=False, type="map[string]interface {}", optional=(),
                 **kw):
        super().__init__(*args, **kw)
        self.zero, self.nil, self.type, self.optional = zero, nil and not self, type, optional


class Slice(list):
    """A typed Go slice; nil: JSON null (fmt still prints [])."""
    __slots__ = ("nil", "type")

    def __init__(self, items=(), nil=False, type="[]interface {}"):
        super().__init__(items)
        self.nil, self.type = nil and not self, type


def strings(items=None) -> Slice:
    """A []string: nil when `items` is None (docker's null Entrypoint, Cmd...)."""
    return Slice(items or (), nil=items is None, type="[]string")


def string_map(items=None) -> Map:
    """A map[string]string (docker's Labels): sorted as Go's encoder sorts a map's keys."""
    return Map(sorted((items or {}).items()), zero="", nil=items is None,
               type="map[string]string")


def type_name(v) -> str:
    """reflect's name of the Go type a value stands for."""
    if v is None:
        return "<nil>"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float64"
    if isinstance(v, str):
        return "string"
    if isinstance(v, (Map, Slice)):
        return v.type
    if isinstance(v, Struct):
        return v.type
    if isinstance(v, dict):
        return "map[string]interface {}"
    if isinstance(v, (list, tuple)):
        return "[]interface {}"
    return type(v).__name__


# --- numbers ------------------------------------------------------------------------------

def _shortest(x: float) -> tuple[str, int]:
    """The shortest decimal digits that read back as x (> 0) and the decimal point's place:
    x = 0.DIGITS * 10**dp (strconv's decimal), from repr, which is shortest too."""
    mant, _, exp = repr(x).partition("e")
    whole, _, frac = mant.partition(".")
    digits = whole + frac
    dp = len(whole) + (int(exp) if exp else 0)
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    return stripped.rstrip("0") or "0", dp


def _exp_form(digits: str, dp: int, e: str = "e") -> str:
    exp = dp - 1
    mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{mant}{e}{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _fixed_form(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def format_float(x: float, verb: str = "g") -> str:
    """strconv.FormatFloat(x, verb, -1, 64): shortest digits; 'g' is fmt's %v."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "+Inf" if x > 0 else "-Inf"
    sign = "-" if x < 0 or (x == 0 and str(x)[0] == "-") else ""
    if x == 0:
        return sign + ("0e+00" if verb == "e" else "0")
    digits, dp = _shortest(abs(x))
    if verb == "e" or (verb == "g" and not -4 <= dp - 1 < 6):   # shortest %g: precision 6
        return sign + _exp_form(digits, dp)
    return sign + _fixed_form(digits, dp)


def json_float(x: float) -> str:
    """encoding/json's float64: 'f' unless tiny or huge, then 'e' with e-7 not e-07."""
    if x != x or x in (float("inf"), float("-inf")):
        raise ValueError(f"json: unsupported value: {format_float(x)}")
    a = abs(x)
    if a != 0 and (a < 1e-6 or a >= 1e21):
        text = format_float(x, "e")
        if text[-4:-1] == "e-0":     # e-07 -> e-7
            text = text[:-2] + text[-1]
        return text
    return format_float(x, "f")


# --- strings --------------------------------------------------------------------------------

_QUOTE_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
                  "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}


def quote(s: str, ascii_only: bool = False) -> str:
    """strconv.Quote (QuoteToASCII with ascii_only): Go escapes, printable runes kept."""
    out = ['"']
    for ch in s:
        esc = _QUOTE_ESCAPES.get(ch)
        if esc:
            out.append(esc)
            continue
        o = ord(ch)
        if 0xDC80 <= o <= 0xDCFF:             # a byte of invalid UTF-8 (surrogateescape)
            out.append(f"\\x{o - 0xDC00:02x}")
        elif o < 0x20 or o == 0x7F:
            out.append(f"\\x{o:02x}")
        elif (ascii_only and o > 0x7E) or not ch.isprintable():
            if 0xD800 <= o <= 0xDFFF:
                o = 0xFFFD
            out.append(f"\\u{o:04x}" if o < 0x10000 else f"\\U{o:08x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def quote_rune(r: int) -> str:
    """strconv.QuoteRune."""
    if r == 0x27:
        return "'\\''"
    if r == 0x22:
        return "'\"'"
    return "'" + quote(chr(r) if 0 <= r < 0x110000 else "\ufffd")[1:-1] + "'"


# --- fmt: %v and Sprint ---------------------------------------------------------------------

def sprint_value(v) -> str:
    """fmt's %v of a value (maps sorted by key, as fmt prints them)."""
    if v is None or v is NIL:
        return "<nil>"
    if isinstance(v, Time):
        return v.text
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return format_float(v)
    if isinstance(v, Struct):    # fmt's {field field ...}
        return "{" + " ".join(sprint_value(e) for e in v.values() if not callable(e)) + "}"
    if isinstance(v, dict):
        return "map[" + " ".join(f"{sprint_value(k)}:{sprint_value(v[k])}"
                                 for k in sorted(v) if not callable(v[k])) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(sprint_value(e) for e in v) + "]"
    return str(v)


def sprint(args) -> str:
    """fmt.Sprint: a space between operands when neither is a string."""
    out, prev_string = [], False
    for i, a in enumerate(args):
        is_string = isinstance(a, str)
        if i and not is_string and not prev_string:
            out.append(" ")
        out.append(sprint_value(a))
        prev_string = is_string
    return "".join(out)


def sprintln(args) -> str:
    return " ".join(sprint_value(a) for a in args) + "\n"


# --- fmt: Sprintf ---------------------------------------------------------------------------

class _Spec:
    __slots__ = ("minus", "plus", "sharp", "zero", "space", "width", "prec")

    def __init__(self):
        self.minus = self.plus = self.sharp = self.zero = self.space = False
        self.width = self.prec = None

    def pad(self, s: str, numeric: bool = False) -> str:
        if self.width is None or len(s) >= self.width:
            return s
        fill = self.width - len(s)
        if self.minus:
            return s + " " * fill
        if self.zero and numeric:
            sign = s[0] if s[:1] in ("-", "+", " ") else ""
            return sign + "0" * fill + s[len(sign):]
        return " " * fill + s


def _bad(verb: str, v) -> str:
    if v is None:
        return f"%!{verb}(<nil>)"
    return f"%!{verb}({type_name(v)}={sprint_value(v)})"


def _sign(spec: _Spec, text: str, negative: bool) -> str:
    if negative:
        return "-" + text
    return ("+" if spec.plus else " " if spec.space else "") + text


def _fmt_int(spec: _Spec, verb: str, v: int) -> str:
    n = abs(v)
    if verb in "vd":
        text = str(n)
    elif verb in "xX":
        text = format(n, "x" if verb == "x" else "X")
        if spec.sharp:
            text = ("0x" if verb == "x" else "0X") + text
    elif verb in "oO":
        text = format(n, "o")
        if verb == "O":
            text = "0o" + text
        elif spec.sharp:
            text = "0" + text
    elif verb == "b":
        text = format(n, "b")
    elif verb == "c":
        return spec.pad(chr(v) if 0 <= v < 0x110000 else "\ufffd")
    elif verb == "q":
        return spec.pad(quote_rune(v))
    elif verb == "U":
        return spec.pad(f"U+{v:04X}")
    else:
        return _bad(verb, v)
    if spec.prec is not None:
        text = text.rjust(spec.prec, "0") if spec.prec or n else ""
        return spec.pad(_sign(spec, text, v < 0))
    return spec.pad(_sign(spec, text, v < 0), numeric=True)


def _fmt_float(spec: _Spec, verb: str, v: float) -> str:
    if verb not in "vgGeEfF":
        return _bad(verb, v)
    if v != v or v in (float("inf"), float("-inf")):
        text = "NaN" if v != v else ("+Inf" if v > 0 else "-Inf")
        if text == "+Inf" and not spec.plus:
            text = " Inf" if spec.space else "+Inf"
        return spec.pad(text)
    if spec.prec is None and verb in "vgG":
        text = format_float(abs(v))
        if verb == "G":
            text = text.upper()
    else:
        prec = 6 if spec.prec is None else spec.prec
        py = {"v": "g"}.get(verb, verb.lower() if verb in "F" else verb)
        text = format(abs(v), f"{'#' if spec.sharp else ''}.{prec}{py}")
    negative = v < 0 or (v == 0 and str(v)[0] == "-")
    return spec.pad(_sign(spec, text, negative), numeric=True)


def _fmt_str(spec: _Spec, verb: str, v: str) -> str:
    if verb in "vs":
        return spec.pad(v[:spec.prec] if spec.prec is not None else v)
    if verb == "q":
        if spec.sharp and "`" not in v and all(c == "\t" or c.isprintable() for c in v):
            return spec.pad("`" + v + "`")
        return spec.pad(quote(v, ascii_only=spec.plus))
    if verb in "xX":
        data = v.encode("utf-8", "surrogateescape")
        if spec.prec is not None:
            data = data[:spec.prec]
        sep = " " if spec.space else ""
        text = sep.join(format(b, "02x" if verb == "x" else "02X") for b in data)
        return spec.pad(text)
    return _bad(verb, v)


def format_one(spec: _Spec, verb: str, v, depth: int = 0) -> str:
    """fmt's printArg/printValue for one operand."""
    if verb == "T":
        return spec.pad(type_name(v))
    if isinstance(v, Time) and verb in "vs":
        return spec.pad(v.text)
    if v is None or v is NIL:
        return spec.pad("<nil>") if verb == "v" or depth else _bad(verb, v)
    if isinstance(v, bool):
        return spec.pad("true" if v else "false") if verb in "vt" else _bad(verb, v)
    if isinstance(v, int):
        return _fmt_int(spec, verb, v)
    if isinstance(v, float):
        return _fmt_float(spec, verb, v)
    if isinstance(v, str):
        return _fmt_str(spec, verb, v)
    if isinstance(v, Struct):
        return "{" + " ".join(format_one(spec, verb, e, depth + 1) for e in v.values()
                              if not callable(e)) + "}"
    if isinstance(v, dict):
        return "map[" + " ".join(
            f"{format_one(spec, verb, k, depth + 1)}:{format_one(spec, verb, v[k], depth + 1)}"
            for k in sorted(v) if not callable(v[k])) + "]"
    if isinstance(v, (list, tuple)):
        return "[" + " ".join(format_one(spec, verb, e, depth + 1) for e in v) + "]"
    return spec.pad(str(v))


def sprintf(fmt: str, args) -> str:
    """fmt.Sprintf, with Go's in-band errors (%!d(string=x), %!s(MISSING), %!(EXTRA ...))."""
    out, i, n, argi = [], 0, len(fmt), 0
    while i < n:
        j = fmt.find("%", i)
        if j < 0:
            out.append(fmt[i:])
            break
        out.append(fmt[i:j])
        i = j + 1
        if i >= n:
            out.append("%!(NOVERB)")
            break
        spec = _Spec()
        while i < n and fmt[i] in "#0+- ":
            c = fmt[i]
            spec.sharp |= c == "#"
            spec.zero |= c == "0"
            spec.plus |= c == "+"
            spec.minus |= c == "-"
            spec.space |= c == " "
            i += 1
        if i < n and fmt[i] == "*":
            i += 1
            if argi < len(args) and isinstance(args[argi], int) and \
                    not isinstance(args[argi], bool):
                spec.width = args[argi]
                if spec.width < 0:
                    spec.minus, spec.width = True, -spec.width
            else:
                out.append("%!(BADWIDTH)")
            argi += 1
        else:
            start = i
            while i < n and fmt[i].isdigit():
                i += 1
            if i > start:
                spec.width = int(fmt[start:i])
        if i < n and fmt[i] == ".":
            i += 1
            if i < n and fmt[i] == "*":
                i += 1
                if argi < len(args) and isinstance(args[argi], int) and \
                        not isinstance(args[argi], bool) and args[argi] >= 0:
                    spec.prec = args[argi]
                else:
                    out.append("%!(BADPREC)")
                argi += 1
            else:
                start = i
                while i < n and fmt[i].isdigit():
                    i += 1
                spec.prec = int(fmt[start:i] or 0)
        if i >= n:
            out.append("%!(NOVERB)")
            break
        verb = fmt[i]
        i += 1
        if verb == "%":
            out.append("%")
            continue
        if argi >= len(args):
            out.append(f"%!{verb}(MISSING)")
            continue
        out.append(format_one(spec, verb, args[argi]))
        argi += 1
    if argi < len(args):
        extra = ", ".join("<nil>" if a is None else f"{type_name(a)}={sprint_value(a)}"
                          for a in args[argi:])
        out.append(f"%!(EXTRA {extra})")
    return "".join(out)


# --- encoding/json --------------------------------------------------------------------------

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
