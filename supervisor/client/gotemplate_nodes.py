"""The nodes of a parsed Go template (text/template/parse's), with the String() forms that
execution errors quote ("executing \"\" at <.Foo>")."""
from supervisor.client.gofmt import quote


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
