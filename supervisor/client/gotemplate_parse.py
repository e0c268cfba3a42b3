"""Go's text/template/parse for gotemplate.py: the lexer and parser of Go 1.19 (what docker 20.10
is built with), with its error messages ("template: :1: unexpected EOF") and the nodes'
String() forms that execution errors quote ("executing \"\" at <.Foo>").

Positions are character offsets into the text; `Tree.location` turns one into Go's
"name:line:byte-column". The lexer is a generator, so an error late in the text is only seen
once the parser gets there, as in Go."""

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


def _nonempty(body: list) -> bool:
    """Not Go's IsEmptyTree: more than spaces."""
    return any(not isinstance(n, Text) or n.text.strip(SPACE) for n in body)


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


# --- nodes -----------------------------------------------------------------------------------

class Node:
    __slots__ = ("pos",)
    kind = ""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class Text(Node):
    __slots__ = ("text",)

    def __init__(self, pos, text):
        self.pos, self.text = pos, text

    def __str__(self):
        return self.text


class Dot(Node):
    kind = "dot"

    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "."


class Nil(Node):
    kind = "nil"

    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "nil"


class Bool(Node):
    __slots__ = ("value",)
    kind = "bool"

    def __init__(self, pos, value):
        self.pos, self.value = pos, value

    def __str__(self):
        return "true" if self.value else "false"


class Number(Node):
    """A constant: `is_int`/`value_int` when it has an integer value, `value_float` always;
    `literal_float` when written as a float (1.0, 1e3), which makes it a float64 operand."""
    __slots__ = ("text", "is_int", "value_int", "value_float", "literal_float")
    kind = "number"

    def __init__(self, pos, text, is_int, value_int, value_float, literal_float):
        self.pos, self.text, self.is_int = pos, text, is_int
        self.value_int, self.value_float, self.literal_float = value_int, value_float, \
            literal_float

    def __str__(self):
        return self.text


class String(Node):
    __slots__ = ("quoted", "text")
    kind = "string"

    def __init__(self, pos, quoted, text):
        self.pos, self.quoted, self.text = pos, quoted, text

    def __str__(self):
        return self.quoted


class Identifier(Node):
    __slots__ = ("name",)
    kind = "identifier"

    def __init__(self, pos, name):
        self.pos, self.name = pos, name

    def __str__(self):
        return self.name


class Variable(Node):
    """$x or $x.A.B: idents[0] is the variable's name."""
    __slots__ = ("idents",)
    kind = "variable"

    def __init__(self, pos, idents):
        self.pos, self.idents = pos, idents

    def __str__(self):
        return ".".join(self.idents)


class Field(Node):
    __slots__ = ("idents",)
    kind = "field"

    def __init__(self, pos, idents):
        self.pos, self.idents = pos, idents

    def __str__(self):
        return "".join("." + i for i in self.idents)


class Chain(Node):
    """(pipeline).A.B"""
    __slots__ = ("node", "fields")
    kind = "chain"

    def __init__(self, pos, node, fields):
        self.pos, self.node, self.fields = pos, node, fields

    def __str__(self):
        s = f"({self.node})" if isinstance(self.node, Pipe) else str(self.node)
        return s + "".join("." + f for f in self.fields)


class Command(Node):
    __slots__ = ("args",)
    kind = "command"

    def __init__(self, pos, args):
        self.pos, self.args = pos, args

    def __str__(self):
        return " ".join(f"({a})" if isinstance(a, Pipe) else str(a) for a in self.args)


class Pipe(Node):
    __slots__ = ("line", "decl", "is_assign", "cmds")
    kind = "pipe"

    def __init__(self, pos, line):
        self.pos, self.line, self.decl, self.is_assign, self.cmds = pos, line, [], False, []

    def __str__(self):
        s = ""
        if self.decl:
            s = ", ".join(str(v) for v in self.decl) + (" = " if self.is_assign else " := ")
        return s + " | ".join(str(c) for c in self.cmds)


class Action(Node):
    __slots__ = ("line", "pipe")

    def __init__(self, pos, line, pipe):
        self.pos, self.line, self.pipe = pos, line, pipe

    def __str__(self):
        return "{{" + str(self.pipe) + "}}"


class Branch(Node):
    """if, range, with: `keyword` is which."""
    __slots__ = ("keyword", "line", "pipe", "list", "else_list")

    def __init__(self, keyword, pos, line, pipe, list_, else_list):
        self.keyword, self.pos, self.line, self.pipe = keyword, pos, line, pipe
        self.list, self.else_list = list_, else_list

    def __str__(self):
        body = "".join(map(str, self.list))
        if self.else_list is not None:
            body += "{{else}}" + "".join(map(str, self.else_list))
        return f"{{{{{self.keyword} {self.pipe}}}}}{body}{{{{end}}}}"


class Loop(Node):
    """break, continue"""
    __slots__ = ("keyword",)

    def __init__(self, keyword, pos):
        self.keyword, self.pos = keyword, pos

    def __str__(self):
        return "{{" + self.keyword + "}}"


class Call(Node):
    """{{template "name" pipeline}}"""
    __slots__ = ("line", "name", "pipe")

    def __init__(self, pos, line, name, pipe):
        self.pos, self.line, self.name, self.pipe = pos, line, name, pipe

    def __str__(self):
        from supervisor.client.gofmt import quote
        if self.pipe is None:
            return f"{{{{template {quote(self.name)}}}}}"
        return f"{{{{template {quote(self.name)} {self.pipe}}}}}"


class _End:
    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "{{end}}"


class _Else:
    def __init__(self, pos):
        self.pos = pos

    def __str__(self):
        return "{{else}}"


# --- string and number literals --------------------------------------------------------------

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


def number(pos: int, text: str, typ: str) -> Number:
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
        return Number(pos, text, True, r, float(r), False)
    if text.endswith("i"):
        raise ValueError(f"complex numbers are not supported: {_goquote(text)}")
    i = _go_int(text)
    if i is not None:
        return Number(pos, text, -(1 << 63) <= i < (1 << 63), i, float(i), False)
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
    return Number(pos, text, is_int, int(f) if is_int else 0, f, True)


# --- the parser ------------------------------------------------------------------------------

class Tree:
    """A parsed template: `root` (a list of nodes) and the templates it defines."""

    def __init__(self, text: str, name: str = "", funcs=(), defined=None):
        self.text, self.name, self.funcs = text, name, funcs
        self.defined = {} if defined is None else defined
        self.root: list = []
        self._lex = lex(text)
        self._buf: list[Token] = []
        self._i = 0
        self._last: Token | None = None
        self.vars = ["$"]
        self.range_depth = 0
        self.action_line = 0

    # tokens
    def next(self) -> Token:
        if self._i == len(self._buf):
            self._buf.append(next(self._lex))
        tok = self._buf[self._i]
        self._i += 1
        self._last = tok
        return tok

    def backup(self, n: int = 1) -> None:
        self._i -= n

    def peek(self) -> Token:
        tok = self.next()
        self.backup()
        return tok

    def next_non_space(self) -> Token:
        tok = self.next()
        while tok.typ == "space":
            tok = self.next()
        return tok

    def peek_non_space(self) -> Token:
        tok = self.next_non_space()
        self.backup()
        return tok

    # errors
    def errorf(self, msg: str):
        line = self._last.line if self._last else 1
        raise ParseError(f"template: {self.name}:{line}: {msg}")

    def unexpected(self, tok: Token, context: str):
        if tok.typ == "error":
            extra = ""
            if self.action_line and self.action_line != tok.line:
                extra = f" in action started at {self.name}:{self.action_line}"
                if tok.val.endswith(" action"):
                    extra = extra[len(" in action"):]
            self.errorf(f"{tok}{extra}")
        self.errorf(f"unexpected {tok} in {context}")

    def expect(self, typ: str, context: str) -> Token:
        tok = self.next_non_space()
        if tok.typ != typ:
            self.unexpected(tok, context)
        return tok

    # grammar
    def parse(self) -> "Tree":
        while self.peek().typ != "EOF":
            if self.peek().typ == "{{":
                mark = self._i
                self.next()
                if self.next_non_space().typ == "define":
                    self.parse_definition()
                    continue
                self._i = mark
            n = self.text_or_action()
            if isinstance(n, (_End, _Else)):
                self.errorf(f"unexpected {n}")
            self.root.append(n)
        return self

    def parse_definition(self) -> None:
        tok = self.next_non_space()
        if tok.typ not in ("string", "raw"):
            self.unexpected(tok, "define clause")
        name = self._unquote(tok)
        self.expect("}}", "define clause")
        saved, self.vars = self.vars, ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in define clause")
        self.define(name, body)

    def define(self, name: str, body: list) -> None:
        if self.defined.get(name) and _nonempty(body):
            self.errorf(f"template: multiple definition of template {_goquote(name)}")
        if not self.defined.get(name) or _nonempty(body):
            self.defined[name] = body

    def item_list(self):
        items = []
        while self.peek_non_space().typ != "EOF":
            n = self.text_or_action()
            if isinstance(n, (_End, _Else)):
                return items, n
            items.append(n)
        self.errorf("unexpected EOF")

    def text_or_action(self):
        tok = self.next_non_space()
        if tok.typ == "text":
            return Text(tok.pos, tok.val)
        if tok.typ == "{{":
            self.action_line = tok.line
            try:
                return self.action()
            finally:
                self.action_line = 0
        self.unexpected(tok, "input")

    def action(self):
        tok = self.next_non_space()
        typ = tok.typ
        if typ in ("break", "continue"):
            return self.loop_control(tok)
        if typ == "block":
            return self.block_control(tok)
        if typ == "else":
            return self.else_control()
        if typ == "end":
            self.expect("}}", "end")
            return _End(tok.pos)
        if typ in ("if", "range", "with"):
            return self.branch(typ)
        if typ == "template":
            return self.template_control(tok)
        self.backup()
        tok = self.peek()
        return Action(tok.pos, tok.line, self.pipeline("command", "}}"))

    def loop_control(self, tok):
        after = self.next_non_space()
        if after.typ != "}}":
            self.unexpected(after, f"{{{{{tok.typ}}}}}")
        if not self.range_depth:
            self.errorf(f"{{{{{tok.typ}}}}} outside {{{{range}}}}")
        return Loop(tok.typ, tok.pos)

    def else_control(self):
        peek = self.peek_non_space()
        if peek.typ == "if":    # {{else if ...}}: the "if" is left for the branch to see
            return _Else(peek.pos)
        tok = self.expect("}}", "else")
        return _Else(tok.pos)

    def branch(self, keyword: str):
        mark = len(self.vars)
        try:
            pipe = self.pipeline(keyword, "}}")
            if keyword == "range":
                self.range_depth += 1
            body, nxt = self.item_list()
            if keyword == "range":
                self.range_depth -= 1
            else_list = None
            if isinstance(nxt, _Else):
                if keyword == "if" and self.peek().typ == "if":
                    self.next()
                    else_list = [self.branch("if")]
                else:
                    else_list, nxt = self.item_list()
                    if not isinstance(nxt, _End):
                        self.errorf(f"expected end; found {nxt}")
            return Branch(keyword, pipe.pos, pipe.line, pipe, body, else_list)
        finally:
            del self.vars[mark:]

    def template_control(self, tok):
        context = "template clause"
        name_tok = self.next_non_space()
        name = self.parse_template_name(name_tok, context)
        pipe = None
        if self.next_non_space().typ != "}}":
            self.backup()
            pipe = self.pipeline(context, "}}")   # its variables live until the next "end"
        return Call(name_tok.pos, name_tok.line, name, pipe)

    def block_control(self, tok):
        context = "block clause"
        tok = self.next_non_space()
        name = self.parse_template_name(tok, context)
        pipe = self.pipeline(context, "}}")
        saved = self.vars
        self.vars = ["$"]
        body, end = self.item_list()
        self.vars = saved
        if not isinstance(end, _End):
            self.errorf(f"unexpected {end} in {context}")
        self.define(name, body)
        return Call(tok.pos, tok.line, name, pipe)

    def parse_template_name(self, tok, context) -> str:
        if tok.typ not in ("string", "raw"):
            self.unexpected(tok, context)
        return self._unquote(tok)

    def _unquote(self, tok) -> str:
        try:
            return unquote(tok.val)
        except ValueError as e:
            self.errorf(str(e))

    def pipeline(self, context: str, end: str) -> Pipe:
        tok = self.peek_non_space()
        pipe = Pipe(tok.pos, tok.line)
        while True:    # declarations: $x := / $x = / range $i, $e :=
            mark = self._i
            v = self.next_non_space()
            if v.typ != "variable":
                self._i = mark
                break
            nxt = self.peek_non_space()
            if nxt.typ in ("=", ":="):
                pipe.is_assign = nxt.typ == "="
                self.next_non_space()
                pipe.decl.append(Variable(v.pos, [v.val]))
                self.vars.append(v.val)
                break
            if nxt.typ == ",":
                self.next_non_space()
                pipe.decl.append(Variable(v.pos, [v.val]))
                self.vars.append(v.val)
                if context == "range" and len(pipe.decl) < 2:
                    if self.peek_non_space().typ in ("variable", "}}", ")"):
                        continue
                    self.errorf("range can only initialize variables")
                self.errorf(f"too many declarations in {context}")
            self._i = mark    # $x is an operand, not a declaration
            break
        while True:
            tok = self.next_non_space()
            if tok.typ == end:
                self.check_pipeline(pipe, context)
                return pipe
            if tok.typ in ("bool", "charconst", "dot", "field", "identifier", "number", "nil",
                           "raw", "string", "variable", "("):
                self.backup()
                pipe.cmds.append(self.command())
            else:
                self.unexpected(tok, context)

    def check_pipeline(self, pipe: Pipe, context: str) -> None:
        if not pipe.cmds:
            self.errorf(f"missing value for {context}")
        for i, c in enumerate(pipe.cmds[1:]):
            if c.args[0].kind in ("bool", "dot", "nil", "number", "string"):
                self.errorf(f"non executable command in pipeline stage {i + 2}")

    def command(self) -> Command:
        cmd = Command(self.peek_non_space().pos, [])
        while True:
            self.peek_non_space()
            operand = self.operand()
            if operand is not None:
                cmd.args.append(operand)
            tok = self.next()
            if tok.typ == "space":
                continue
            if tok.typ in ("}}", ")"):
                self.backup()
            elif tok.typ != "|":
                self.unexpected(tok, "operand")
            break
        if not cmd.args:
            self.errorf("empty command")
        return cmd

    def operand(self):
        node = self.term()
        if node is None:
            return None
        if self.peek().typ == "field":
            pos = self.peek().pos
            fields = []
            while self.peek().typ == "field":
                fields.append(self.next().val[1:])
            if isinstance(node, Field):
                return Field(pos, node.idents + fields)
            if isinstance(node, Variable):
                return Variable(pos, node.idents + fields)
            if node.kind in ("bool", "string", "number", "nil", "dot"):
                self.errorf(f"unexpected . after term {_goquote(str(node))}")
            return Chain(pos, node, fields)
        return node

    def term(self):
        tok = self.next_non_space()
        typ = tok.typ
        if typ == "identifier":
            if tok.val not in self.funcs:
                self.errorf(f"function {_goquote(tok.val)} not defined")
            return Identifier(tok.pos, tok.val)
        if typ == "dot":
            return Dot(tok.pos)
        if typ == "nil":
            return Nil(tok.pos)
        if typ == "variable":
            if tok.val not in self.vars:
                self.errorf(f"undefined variable {_goquote(tok.val)}")
            return Variable(tok.pos, [tok.val])
        if typ == "field":
            return Field(tok.pos, [tok.val[1:]])
        if typ == "bool":
            return Bool(tok.pos, tok.val == "true")
        if typ in ("charconst", "number"):
            try:
                return number(tok.pos, tok.val, typ)
            except ValueError as e:
                self.errorf(str(e))
        if typ == "(":
            return self.pipeline("parenthesized pipeline", ")")
        if typ in ("string", "raw"):
            return String(tok.pos, tok.val, self._unquote(tok))
        self.backup()
        return None

    def location(self, pos: int) -> str:
        """Go's ErrorContext location: name:line:column, the column in bytes."""
        before = self.text[:pos]
        nl = before.rfind("\n")
        col = len(before[nl + 1:].encode("utf-8", "surrogateescape"))
        return f"{self.name}:{before.count(chr(10)) + 1}:{col}"
