"""Go's text/template/parse (Go 1.19, docker 20.10's) for gotemplate.py: the parser over
gotemplate_lex's tokens, with Go's error messages ("template: :1: unexpected EOF"), making
gotemplate_nodes' nodes. `Tree.location` turns a node's position into Go's
"name:line:byte-column"."""
from supervisor.client.gofmt import quote as _goquote
from supervisor.client.gotemplate_lex import (SPACE, ParseError, TemplateError, Token, lex,
                                              number_value, unquote)
from supervisor.client.gotemplate_nodes import (Action, Bool, Branch, Call, Chain, Command,
                                                Dot, Field, Identifier, Loop, Nil, Number,
                                                Pipe, String, Text, Variable, _Else, _End)

__all__ = ["Tree", "ParseError", "TemplateError", "Token"]


def _nonempty(body: list) -> bool:
    """Not Go's IsEmptyTree: more than spaces."""
    return any(not isinstance(n, Text) or n.text.strip(SPACE) for n in body)


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
                return Number(tok.pos, tok.val, *number_value(tok.val, typ))
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
