"""Go's text/template lexer (Go 1.19, docker 20.10's) for gotemplate.py, and its literals:
tokens with their positions (character offsets) and lines, Go's error messages, strconv's
Unquote and ParseInt/ParseFloat as the parser uses them. A generator: an error late in the
text is only seen once the parser gets there, as in Go."""

KEYWORDS = {"block", "break", "continue", "define", "else", "end", "if", "range", "nil",
            "template", "with"}
SPACE = " \t\r\n"


class TemplateError(Exception):
    """A template that does not parse or execute; str() is Go's message."""


class ParseError(TemplateError):
    pass


class Token:
    __slots__ = ("typ", "pos", "val", "line")

    def __init__(self, typ: str, pos: int, val: str, line: int):
        self.typ, self.pos, self.val, self.line = typ, pos, val, line

    def __str__(self) -> str:    # Go's item.String(), as "unexpected %s in %s" shows it
        if self.typ == "EOF":
            return "EOF"
        if self.typ == "error":
            return self.val
        if self.typ in KEYWORDS or self.typ == "dot":
            return f"<{self.val}>"
        if len(self.val) > 10:
            from supervisor.client.gofmt import quote
            return quote(self.val[:10]) + "..."
        from supervisor.client.gofmt import quote
        return quote(self.val)


def _alnum(ch: str) -> bool:
    return ch == "_" or ch.isalpha() or ch.isdecimal()


def _rune(ch: str) -> str:    # Go's %#U
    return f"U+{ord(ch):04X} {ch!r}" if ch.isprintable() else f"U+{ord(ch):04X}"


def lex(text: str):
    """Yields Tokens: text, {{, }}, space, identifier, field, variable, string, raw, char,
    number, bool, the keywords, dot, |, (, ), =, :=, char (a comma...), then EOF or error."""
    pos, line, n = 0, 1, len(text)

    def token(typ, start, end):
        return Token(typ, start, text[start:end], line)

    while True:
        # text up to the next action
        j = text.find("{{", pos)
        if j < 0:
            if pos < n:
                yield token("text", pos, n)
            yield Token("EOF", n, "", line + text.count("\n", pos, n))
            return
        trim = text[j + 2:j + 3] == "-" and text[j + 3:j + 4] != "" and text[j + 3] in SPACE
        end = j
        if trim:
            while end > pos and text[end - 1] in SPACE:
                end -= 1
        if end > pos:
            yield token("text", pos, end)
        line += text.count("\n", pos, j)
        pos = j + 2
        after = pos + 2 if trim else pos
        if text.startswith("/*", after):     # a comment: nothing but the comment in its action
            close = text.find("*/", after + 2)
            if close < 0:
                yield Token("error", j, "unclosed comment", line)
                return
            line += text.count("\n", j, close)
            pos = close + 2
            if text.startswith(" -}}", pos) or text.startswith("\t-}}", pos) or \
                    text.startswith("\n-}}", pos) or text.startswith("\r-}}", pos):
                pos += 4
                while pos < n and text[pos] in SPACE:
                    line += text[pos] == "\n"
                    pos += 1
            elif text.startswith("}}", pos):
                pos += 2
            else:
                yield Token("error", j, "comment ends before closing delimiter", line)
                return
            continue
        yield Token("{{", j, "{{", line)
        pos = after
        depth = 0
        while True:    # inside the action
            if text.startswith("}}", pos) or (text[pos:pos + 1] != "" and text[pos] in SPACE
                                               and text.startswith("-}}", pos + 1)):
                if depth:
                    yield Token("error", pos, "unclosed left paren", line)
                    return
                trim_right = not text.startswith("}}", pos)
                yield Token("}}", pos, "}}", line)
                pos += 4 if trim_right else 2
                if trim_right:
                    while pos < n and text[pos] in SPACE:
                        line += text[pos] == "\n"
                        pos += 1
                break
            if pos >= n:
                yield Token("error", pos, "unclosed action", line)
                return
            start, ch = pos, text[pos]
            if ch in SPACE:
                while pos < n and text[pos] in SPACE:
                    pos += 1
                if text.startswith("-}}", pos):    # " -}}": its space is the delimiter's
                    pos -= 1
                    if pos == start:
                        continue
                yield token("space", start, pos)
                line += text.count("\n", start, pos)
                continue
            pos += 1
            if ch == "=":
                yield token("=", start, pos)
            elif ch == ":":
                if text[pos:pos + 1] != "=":
                    yield Token("error", start, "expected :=", line)
                    return
                pos += 1
                yield token(":=", start, pos)
            elif ch == "|":
                yield token("|", start, pos)
            elif ch == '"' or ch == "'":
                while True:
                    c = text[pos:pos + 1]
                    pos += 1
                    if c == "\\":
                        c = text[pos:pos + 1]
                        pos += 1
                        if c and c != "\n":
                            continue
                    if c == "" or c == "\n":
                        what = "quoted string" if ch == '"' else "character constant"
                        yield Token("error", start, f"unterminated {what}", line)
                        return
                    if c == ch:
                        break
                yield token("string" if ch == '"' else "charconst", start, pos)
            elif ch == "`":
                close = text.find("`", pos)
                if close < 0:
                    yield Token("error", start, "unterminated raw quoted string", line)
                    return
                pos = close + 1
                yield token("raw", start, pos)
                line += text.count("\n", start, pos)
            elif ch == "$" or (ch == "." and not text[pos:pos + 1].isdigit()):
                while pos < n and _alnum(text[pos]):
                    pos += 1
                if not _at_terminator(text, pos):
                    yield Token("error", start, f"bad character {_rune(text[pos])}", line)
                    return
                word = text[start:pos]
                yield token("variable" if ch == "$" else "dot" if word == "." else "field",
                            start, pos)
            elif ch in "+-." or ch.isdigit():
                pos = _scan_number(text, start)
                if pos < 0:
                    pos = -pos
                    yield Token("error", start, "bad number syntax: " +
                                _goquote(text[start:pos]), line)
                    return
                yield token("number", start, pos)
            elif _alnum(ch):
                while pos < n and _alnum(text[pos]):
                    pos += 1
                if not _at_terminator(text, pos):
                    yield Token("error", start, f"bad character {_rune(text[pos])}", line)
                    return
                word = text[start:pos]
                typ = word if word in KEYWORDS else "bool" if word in ("true", "false") \
                    else "identifier"
                yield token(typ, start, pos)
            elif ch == "(":
                depth += 1
                yield token("(", start, pos)
            elif ch == ")":
                depth -= 1
                yield token(")", start, pos)
                if depth < 0:
                    yield Token("error", start, f"unexpected right paren {_rune(ch)}", line)
                    return
            elif ord(ch) < 0x80 and ch.isprintable():
                yield token("punct" if ch != "," else ",", start, pos)
            else:
                yield Token("error", start, f"unrecognized character in action: {_rune(ch)}",
                            line)
                return


def _goquote(s: str) -> str:
    from supervisor.client.gofmt import quote
    return quote(s)


def _at_terminator(text: str, pos: int) -> bool:
    return pos >= len(text) or text[pos] in SPACE or text[pos] in ".,|:)(" or \
        text.startswith("}}", pos)


def _accept_run(text: str, pos: int, chars: str) -> int:
    while pos < len(text) and text[pos] in chars:
        pos += 1
    return pos


def _scan_number(text: str, pos: int) -> int:
    """The end of a number as Go's lexer scans it; negative (-end) when it is followed by a
    letter or digit (bad syntax)."""
    if text[pos:pos + 1] in ("+", "-"):
        pos += 1
    digits = "0123456789_"
    if text[pos:pos + 1] == "0":
        pos += 1
        prefix = text[pos:pos + 1]
        if prefix and prefix in "xX":
            pos, digits = pos + 1, "0123456789abcdefABCDEF_"
        elif prefix and prefix in "oO":
            pos, digits = pos + 1, "01234567_"
        elif prefix and prefix in "bB":
            pos, digits = pos + 1, "01_"
    pos = _accept_run(text, pos, digits)
    if text[pos:pos + 1] == ".":
        pos = _accept_run(text, pos + 1, digits)
    if len(digits) == 11 and text[pos:pos + 1] in ("e", "E"):
        pos += 1
        if text[pos:pos + 1] in ("+", "-"):
            pos += 1
        pos = _accept_run(text, pos, "0123456789_")
    if len(digits) == 23 and text[pos:pos + 1] in ("p", "P"):
        pos += 1
        if text[pos:pos + 1] in ("+", "-"):
            pos += 1
        pos = _accept_run(text, pos, "0123456789_")
    if text[pos:pos + 1] == "i":
        pos += 1
    if pos < len(text) and _alnum(text[pos]):
        return -(pos + 1)
    return pos


_SIMPLE_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                   "\\": "\\"}


def unquote(s: str) -> str:
    """strconv.Unquote of a "..." , `...` or '...' literal; ValueError("invalid syntax")."""
    q = s[0]
    if q == "`":
        return s[1:-1].replace("\r", "")
    body, out, i = s[1:-1], [], 0
    while i < len(body):
        c = body[i]
        if c == q and q == '"':
            raise ValueError("invalid syntax")
        if c != "\\":
            out.append(c)
            i += 1
            continue
        e = body[i + 1:i + 2]
        i += 2
        if e in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[e])
        elif e == q:
            out.append(q)
        elif e in ("x", "u", "U"):
            size = {"x": 2, "u": 4, "U": 8}[e]
            digits = body[i:i + size]
            if len(digits) != size or any(d not in "0123456789abcdefABCDEF" for d in digits):
                raise ValueError("invalid syntax")
            v = int(digits, 16)
            i += size
            if e == "x":
                out.append(chr(v) if q == "'" or v < 0x80 else chr(0xDC00 + v))
            elif v > 0x10FFFF or 0xD800 <= v <= 0xDFFF:
                raise ValueError("invalid syntax")
            else:
                out.append(chr(v))
        elif e and e in "01234567":
            digits = body[i - 1:i + 2]
            if len(digits) != 3 or any(d not in "01234567" for d in digits) or \
                    int(digits, 8) > 255:
                raise ValueError("invalid syntax")
            v = int(digits, 8)
            i += 2
            out.append(chr(v) if q == "'" or v < 0x80 else chr(0xDC00 + v))
        else:
            raise ValueError("invalid syntax")
    text = "".join(out)
    if q == "'" and len(text) != 1:
        raise ValueError("invalid syntax")
    return text


def _escape_prefix(body: str) -> str:
    """The first escape sequence of a character constant's body (\\x41, \\u00e9, \\101)."""
    size = {"x": 4, "u": 6, "U": 10}.get(body[1], 4 if body[1] in "01234567" else 2)
    return body[:size]


def _go_int(text: str):
    """strconv.ParseInt(text, 0, 64), or None."""
    t = text
    sign = -1 if t.startswith("-") else 1
    t = t[1:] if t[:1] in ("+", "-") else t
    base = 10
    if t[:2].lower() in ("0x", "0o", "0b"):
        base, t = {"x": 16, "o": 8, "b": 2}[t[1].lower()], t[2:]
    elif len(t) > 1 and t[0] == "0":
        base, t = 8, t[1:]
    if not t or t.startswith("_") or t.endswith("_") or "__" in t:
        return None
    try:
        v = sign * int(t.replace("_", ""), base)
    except ValueError:
        return None
    return v if -(1 << 63) <= v < (1 << 64) else None


def number_value(text: str, typ: str) -> tuple:
    """(is_int, int value, float value, written as a float) of a number or character
    constant, as Go's parser makes a NumberNode; ValueError with its message."""
    if typ == "charconst":
        body = text[1:-1]
        if not body:
            raise ValueError("invalid syntax")
        first = body[:2 if body[0] == "\\" else 1]
        if first == "\\" or len(body) > 1 and first[0] == "\\" and body[1] in "xuU01234567":
            first = _escape_prefix(body)
        if first != body:
            raise ValueError(f"malformed character constant: {text}")
        r = ord(unquote(text))
        return True, r, float(r), False
    if text.endswith("i"):
        raise ValueError(f"complex numbers are not supported: {_goquote(text)}")
    i = _go_int(text)
    if i is not None:
        return -(1 << 63) <= i < (1 << 63), i, float(i), False
    try:
        t = text.replace("_", "")
        f = float.fromhex(t) if t.lstrip("+-")[:2].lower() == "0x" else float(t)
        if f in (float("inf"), float("-inf")):    # out of float64's range: ParseFloat fails
            raise ValueError
    except ValueError:
        raise ValueError(f"illegal number syntax: {_goquote(text)}") from None
    if not any(c in text for c in ".eEpP"):
        raise ValueError(f"integer overflow: {_goquote(text)}")
    is_int = f == f and f not in (float("inf"), float("-inf")) and f == int(f) and \
        -(1 << 63) <= int(f) < (1 << 63)
    return is_int, int(f) if is_int else 0, f, True
