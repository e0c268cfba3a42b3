"""Go's fmt.Sprintf for gotemplate's printf: verbs, flags, width and precision on the Python
values gofmt.py describes, with Go's in-band errors (%!d(string=x), %!s(MISSING),
%!(EXTRA ...))."""
from supervisor.client.gofmt import (NIL, Struct, Time, format_float, quote, quote_rune,
                                     sprint_value, type_name)


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
