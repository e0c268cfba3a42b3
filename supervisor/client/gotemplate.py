"""Go's text/template (Go 1.19, docker 20.10's) for `hawserctl --format`: docker's templates run
on docker-shaped dicts (supervisor/client/docker.py) and print what docker prints.

    Template("{{.State.Pid}}").execute(data) -> str        TemplateError: Go's message

Data are Python values as gofmt.py describes them: a plain dict is a Go map (a missing key is
<no value>, or an error with missingkey=error), a gofmt.Struct a Go struct (a missing field is
an error). Functions (gotemplate_funcs.py): Go's builtins and docker's; a dict value that is a
`Func` is a method (docker ps's `.Label "k"`). Parsing: gotemplate_parse.py."""
from supervisor.client import gofmt
from supervisor.client.gotemplate_funcs import (BUILTINS, DOCKER_FUNCS, HEADER_FUNCS, NO_VALUE,
                                                CallError, Func, _Sentinel, truth)
from supervisor.client.gotemplate_parse import ParseError, TemplateError, Tree

__all__ = ["Template", "TemplateError", "ParseError", "Func", "CallError", "BUILTINS",
           "DOCKER_FUNCS", "HEADER_FUNCS", "NO_VALUE"]


_NO_FINAL = _Sentinel("NO_FINAL")  # no value piped in from a previous command
MAX_DEPTH = 100000


_GO_TYPE = {"value": "reflect.Value", "any": "interface {}", "string": "string", "int": "int",
            "bool": "bool", "[]string": "[]string"}


class _Break(Exception):
    pass


class _Continue(Exception):
    pass


def _generic(container) -> bool:
    """A map[string]interface {} or []interface {}: what it holds has the static type
    interface {}, which is what Go names in some errors."""
    if isinstance(container, gofmt.Struct):
        return False
    return getattr(container, "type", "interface {}").endswith("interface {}")


class Template:
    def __init__(self, text: str, funcs: dict | None = None, name: str = "",
                 missingkey: str = "default"):
        """Parse `text`; funcs: the functions it may call (DOCKER_FUNCS by default).
        missingkey: Go's option: "default" (<no value>), "zero" or "error"."""
        self.funcs = DOCKER_FUNCS if funcs is None else funcs
        self.name, self.missingkey = name, missingkey
        self.tree = Tree(text, name, self.funcs).parse()

    def execute(self, data, out: list | None = None, funcs: dict | None = None,
                missingkey: str | None = None) -> str:
        """The output; TemplateError on failure, with what was written before it in `out`
        when given (Go writes as it goes). funcs: others of the same names (docker's header
        functions); missingkey: another than the template's."""
        out = [] if out is None else out
        state = _State(self, out, funcs or self.funcs, data)
        state.missingkey = missingkey or self.missingkey
        try:
            state.walk(data, self.tree.root)
        except RecursionError:
            raise TemplateError(f"template: {self.name}: exceeded maximum template depth "
                                f"({MAX_DEPTH})") from None
        return "".join(out)


class _State:
    def __init__(self, tmpl: Template, out: list, funcs: dict, data, name=None):
        self.tmpl, self.out, self.funcs = tmpl, out, funcs
        self.name = tmpl.name if name is None else name
        self.vars = [("$", data)]
        self.node = None
        self.missingkey = tmpl.missingkey

    # errors
    def errorf(self, msg: str):
        if self.node is None:
            raise TemplateError(f"template: {self.name}: {msg}")
        location = self.tmpl.tree.location(self.node.pos)
        raise TemplateError(f"template: {location}: executing {gofmt.quote(self.name)} at "
                            f"<{self.node}>: {msg}")

    # variables
    def var_value(self, name: str):
        for k, v in reversed(self.vars):
            if k == name:
                return v
        self.errorf(f"undefined variable: {name}")

    def set_var(self, name: str, value) -> None:
        for i in range(len(self.vars) - 1, -1, -1):
            if self.vars[i][0] == name:
                self.vars[i] = (name, value)
                return
        self.errorf(f"undefined variable: {name}")

    # statements
    def walk(self, dot, node) -> None:
        if isinstance(node, list):
            for n in node:
                self.walk(dot, n)
            return
        cls = type(node).__name__
        if cls == "Text":
            self.out.append(node.text)
        elif cls == "Action":
            val = self.eval_pipeline(dot, node.pipe)
            if not node.pipe.decl:
                self.print_value(node, val)
        elif cls == "Branch":
            if node.keyword == "range":
                self.walk_range(dot, node)
            else:
                self.walk_if_or_with(dot, node)
        elif cls == "Loop":
            raise _Break() if node.keyword == "break" else _Continue()
        elif cls == "Call":
            self.walk_template(dot, node)
        else:
            self.node = node
            self.errorf(f"unknown node: {node}")

    def print_value(self, node, val) -> None:
        self.node = node
        if val is NO_VALUE:
            self.out.append("<no value>")
        elif isinstance(val, Func):
            self.errorf(f"can't print {node} of type func")
        else:
            self.out.append(gofmt.sprint_value(val))

    def walk_if_or_with(self, dot, node) -> None:
        mark = len(self.vars)
        val = self.eval_pipeline(dot, node.pipe)
        yes, ok = truth(val)
        if not ok:
            self.errorf(f"if/with can't use {val}")
        if yes:
            self.walk(val if node.keyword == "with" else dot, node.list)
        elif node.else_list is not None:
            self.walk(dot, node.else_list)
        del self.vars[mark:]

    def walk_range(self, dot, node) -> None:
        self.node = node
        outer = len(self.vars)
        val = self.eval_pipeline(dot, node.pipe)
        if isinstance(val, (list, tuple)):
            items = list(enumerate(val))
        elif isinstance(val, dict):
            items = [(k, val[k]) for k in sorted(val) if not isinstance(val[k], Func)]
        elif val is NO_VALUE or val is None:
            items = []
        else:
            self.errorf(f"range can't iterate over {gofmt.sprint_value(val)}")
        mark = len(self.vars)
        decl = node.pipe.decl
        try:
            for index, elem in items:
                if decl:
                    self._set_range_var(node, 1, elem)
                if len(decl) > 1:
                    self._set_range_var(node, 2, index)
                try:
                    self.walk(elem, node.list)
                except _Continue:
                    pass
                finally:
                    del self.vars[mark:]
        except _Break:
            pass
        if not items and node.else_list is not None:
            self.walk(dot, node.else_list)
        del self.vars[outer:]

    def _set_range_var(self, node, n: int, value) -> None:
        if node.pipe.is_assign:
            self.set_var(node.pipe.decl[-n].idents[0], value)
        else:
            name, _ = self.vars[-n]
            self.vars[-n] = (name, value)

    def walk_template(self, dot, node) -> None:
        self.node = node
        body = self.tmpl.tree.defined.get(node.name)
        if body is None:
            self.errorf(f"template {gofmt.quote(node.name)} not defined")
        value = self.eval_pipeline(dot, node.pipe) if node.pipe is not None else NO_VALUE
        inner = _State(self.tmpl, self.out, self.funcs, value, name=node.name)
        inner.missingkey = self.missingkey
        try:
            inner.walk(value, body)
        except RecursionError:    # Python's stack ends long before Go's depth limit
            self.node = node
            self.errorf(f"exceeded maximum template depth ({MAX_DEPTH})")

    # expressions
    def eval_pipeline(self, dot, pipe):
        self.node = pipe
        value = _NO_FINAL
        for cmd in pipe.cmds:
            value = self.eval_command(dot, cmd, value)
            if value is None:    # Go digs into an interface: a nil one is no value
                value = NO_VALUE
        for var in pipe.decl:
            if pipe.is_assign:
                self.set_var(var.idents[0], value)
            else:
                self.vars.append((var.idents[0], value))
        return value

    def not_a_function(self, args, final) -> None:
        if (args and len(args) > 1) or final is not _NO_FINAL:
            self.errorf(f"can't give argument to non-function {args[0]}")

    def eval_command(self, dot, cmd, final):
        first = cmd.args[0]
        kind = first.kind
        if kind == "field":
            return self.eval_field_node(dot, first, cmd.args, final)
        if kind == "chain":
            return self.eval_chain_node(dot, first, cmd.args, final)
        if kind == "identifier":
            return self.eval_function(dot, first, cmd, cmd.args, final)
        if kind == "pipe":
            self.not_a_function(cmd.args, final)
            return self.eval_pipeline(dot, first)
        if kind == "variable":
            return self.eval_variable_node(dot, first, cmd.args, final)
        self.node = first
        self.not_a_function(cmd.args, final)
        if kind == "bool":
            return first.value
        if kind == "dot":
            return dot
        if kind == "nil":
            self.errorf("nil is not a command")
        if kind == "number":
            return self.ideal_constant(first)
        return first.text

    def ideal_constant(self, n):
        self.node = n
        if n.literal_float:
            return n.value_float
        if n.is_int:
            return n.value_int
        self.errorf(f"{n.text} overflows int")

    def eval_field_node(self, dot, field, args, final):
        self.node = field
        return self.eval_field_chain(dot, dot, field, field.idents, args, final)

    def eval_chain_node(self, dot, chain, args, final):
        self.node = chain
        if chain.node.kind == "nil":
            self.errorf(f"indirection through explicit nil in {chain}")
        base = self.eval_arg(dot, None, chain.node)
        return self.eval_field_chain(dot, base, chain, chain.fields, args, final)

    def eval_variable_node(self, dot, var, args, final):
        self.node = var
        value = self.var_value(var.idents[0])
        if len(var.idents) == 1:
            self.not_a_function(args, final)
            return value
        return self.eval_field_chain(dot, value, var, var.idents[1:], args, final)

    def eval_field_chain(self, dot, receiver, node, idents, args, final):
        typed = True    # a pipeline's value has its concrete type; a generic map's, interface {}
        for ident in idents[:-1]:
            parent = receiver
            receiver = self.eval_field(dot, ident, node, None, _NO_FINAL, receiver, typed)
            typed = not _generic(parent)
        return self.eval_field(dot, idents[-1], node, args, final, receiver, typed)

    def eval_field(self, dot, name, node, args, final, receiver, typed):
        if receiver is NO_VALUE:
            if self.missingkey == "error":
                self.errorf(f"nil data; no entry for key {gofmt.quote(name)}")
            return NO_VALUE
        if isinstance(receiver, dict):
            value = receiver.get(name, NO_VALUE)
            if isinstance(value, Func):
                return self.eval_call(dot, value, False, node, name, args, final)
            has_args = (args is not None and len(args) > 1) or final is not _NO_FINAL
            if isinstance(receiver, gofmt.Struct):
                if has_args:
                    self.errorf(f"{name} has arguments but cannot be invoked as function")
                if (value is NO_VALUE and name not in receiver.optional) or \
                        name in receiver.json_only:
                    self.errorf(f"can't evaluate field {name} in type {receiver.type}")
                return value
            if has_args:
                self.errorf(f"{name} is not a method but has arguments")
            if value is NO_VALUE:
                if self.missingkey == "error" and name not in getattr(receiver, "optional", ()):
                    self.errorf(f"map has no entry for key {gofmt.quote(name)}")
                if self.missingkey == "zero":
                    return getattr(receiver, "zero", None)
            return value
        if receiver is None or receiver is gofmt.NIL:
            self.errorf(f"nil pointer evaluating interface {{}}.{name}")
        kind = gofmt.type_name(receiver) if typed else "interface {}"
        self.errorf(f"can't evaluate field {name} in type {kind}")

    def eval_function(self, dot, ident, cmd, args, final):
        self.node = ident
        fn = self.funcs.get(ident.name)
        if fn is None:
            self.errorf(f"{gofmt.quote(ident.name)} is not a defined function")
        return self.eval_call(dot, fn, True, cmd, ident.name, args, final)

    def eval_call(self, dot, fn: Func, builtin: bool, node, name, args, final):
        args = list(args[1:]) if args is not None else []
        num_in = len(args) + (final is not _NO_FINAL)
        params = fn.params
        if fn.variadic is not None:
            if num_in < len(params):
                self.errorf(f"wrong number of args for {name}: want at least {len(params)} "
                            f"got {len(args)}")
        elif num_in != len(params):
            self.errorf(f"wrong number of args for {name}: want {len(params)} got {num_in}")
        if builtin and name in ("and", "or"):
            v = NO_VALUE
            for arg in args:
                v = self.eval_arg(dot, "value", arg)
                if truth(v)[0] == (name == "or"):
                    return v
            if final is not _NO_FINAL:
                v = self.validate(final, "value")
            return v
        argv = []
        for i, arg in enumerate(args):
            argv.append(self.eval_arg(dot, params[i] if i < len(params) else fn.variadic, arg))
        if final is not _NO_FINAL:
            i = len(args)
            argv.append(self.validate(final, params[i] if i < len(params) else fn.variadic))
        try:
            return fn.fn(*argv)
        except CallError as e:
            self.node = node
            self.errorf(f"error calling {name}: {e}")

    def eval_arg(self, dot, typ, n):
        self.node = n
        kind = n.kind
        if kind == "dot":
            return self.validate(dot, typ)
        if kind == "nil":
            if typ in (None, "value"):
                return NO_VALUE
            if typ in ("any", "[]string"):
                return None
            self.errorf(f"cannot assign nil to {_GO_TYPE[typ]}")
        if kind == "field":
            return self.validate(self.eval_field_node(dot, n, [n], _NO_FINAL), typ)
        if kind == "variable":
            return self.validate(self.eval_variable_node(dot, n, None, _NO_FINAL), typ)
        if kind == "pipe":
            return self.validate(self.eval_pipeline(dot, n), typ)
        if kind == "identifier":
            return self.validate(self.eval_function(dot, n, n, None, _NO_FINAL), typ)
        if kind == "chain":
            return self.validate(self.eval_chain_node(dot, n, None, _NO_FINAL), typ)
        if typ == "bool":
            if kind == "bool":
                return n.value
            self.errorf(f"expected bool; found {n}")
        if typ == "int":
            if kind == "number" and n.is_int:
                return n.value_int
            self.errorf(f"expected integer; found {n}")
        if typ == "string":
            if kind == "string":
                return n.text
            self.errorf(f"expected string; found {n}")
        if typ == "[]string":
            self.errorf(f"can't handle {n} for arg of type []string")
        if kind == "bool":
            return n.value
        if kind == "number":
            return self.ideal_constant(n)
        return n.text

    def validate(self, value, typ):
        """Go's validateType: a value for a parameter of type `typ` (None: untyped)."""
        if value is NO_VALUE:
            if typ in (None, "value"):
                return NO_VALUE
            if typ in ("any", "[]string"):
                return None
            self.errorf(f"invalid value; expected {_GO_TYPE[typ]}")
        if typ in (None, "any", "value"):
            return value
        ok = {"string": lambda v: isinstance(v, str),
              "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
              "bool": lambda v: isinstance(v, bool),
              "[]string": lambda v: isinstance(v, (list, tuple)) and
              all(isinstance(e, str) for e in v)}[typ](value)
        if not ok:
            got = "interface {}" if value is None else gofmt.type_name(value)
            self.errorf(f"wrong type for value; expected {_GO_TYPE[typ]}; got {got}")
        return value
