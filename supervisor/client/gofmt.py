"""Go's view of Python values, for the template engine (gotemplate.py) and docker's shapes:
their Go types, fmt's %v and Sprint/Sprintln, strconv.Quote and Go's float formats
(Sprintf: gofmt_printf.py; encoding/json: gojson.py).

Python values stand for Go's as docker's data are: str, int, float (float64), bool, None (nil),
list ([]interface {}), dict (map[string]interface {}). What a Go type says and a Python value
cannot is carried by `Struct` (field order, a field that is not there is an error, not a
missing map key; omitempty), `Map` (index of a missing key gives the element type's zero,
e.g. "" for docker's map[string]string Labels), `Slice`/`Map` with nil=True (a nil slice or
map: JSON null, yet fmt prints [] or map[] and len is 0), `NIL` (a nil pointer: <nil>, where
a nil interface is no value) and `Time` (a time.Time: RFC 3339 in JSON, Go's String() in fmt)."""


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
