"""argparse's interface for hawserctl's command line, which parses the usual command lines without
importing argparse.

Why: `import argparse` is ~8 ms here (it pulls re, enum and gettext) and building hawserctl's
parser with it ~3 ms more (shutil, a help formatter per argument), a sixth of `hawserctl run`.

How it stays argparse: every call on a parser is recorded, so a real argparse parser can be built
from them at any time. This module parses only what it is sure to read as argparse would (exact
option strings, `--opt=value`, combined short flags, values attached to a short option, negative
numbers as values, options before the positionals); anything else (an error, -h, an abbreviated
option, `--`, a feature it does not know) is handed to the real parser, whose result, help and
error messages are argparse's own. tests/supervisor/test_cliargs.py compares the two.
"""
import sys

REMAINDER = "..."
SUPPRESS = "==SUPPRESS=="
_ACTIONS = (None, "store", "store_true", "append")
_NARGS = (None, "*", "+", REMAINDER)
_ARG_KW = {"action", "default", "type", "required", "nargs", "help", "dest", "metavar"}
_PARSER_KW = {"prog", "description", "add_help", "epilog", "usage", "formatter_class", "help"}


def __getattr__(name: str):
    """What this module lacks (HelpFormatter, ArgumentTypeError...) is argparse's."""
    import argparse
    return getattr(argparse, name)


class Namespace:
    def __init__(self, **values):
        self.__dict__.update(values)

    def __eq__(self, other):
        return vars(self) == vars(other)

    def __contains__(self, key):
        return key in self.__dict__

    def __repr__(self):
        return "Namespace(" + ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items()) + ")"


def _negative_number(arg: str) -> bool:
    """argparse's ^-\\d+$|^-\\d*\\.\\d+$: a value, not an option (while no option looks so)."""
    whole, dot, frac = arg[1:].partition(".")
    return arg[:1] == "-" and ((whole.isdecimal() and not dot) or
                               (dot and (not whole or whole.isdecimal()) and frac.isdecimal()))


class _Fallback(Exception):
    """Not a command line this module reads for sure: argparse decides."""


class _Arg:
    __slots__ = ("dest", "action", "default", "type", "required", "nargs")

    def __init__(self, dest, kw: dict, positional: bool):
        self.dest, self.action, self.type = dest, kw.get("action") or "store", kw.get("type")
        self.nargs = kw.get("nargs")
        self.default = kw.get("default", False if self.action == "store_true" else None)
        if isinstance(self.default, str) and self.type is not None:
            self.default = self.type(self.default)      # as argparse converts string defaults
        self.required = kw.get("required", False) or (positional and self.nargs in (None, "+"))


class _Node:
    """A recorded argparse object: parser or subparsers action. Once the real parser exists
    (_real), calls go to it."""

    def __init__(self, root):
        self._root, self._real = root or self, None

    def _record(self, method: str, args: tuple, kwargs: dict, result=None):
        self._root._ops.append((self, method, args, kwargs, result))
        return result

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        self._root._materialize()
        return getattr(self._real, name)


class ArgumentParser(_Node):
    def __init__(self, prog=None, description=None, add_help=True, _root=None, **kwargs):
        super().__init__(_root)
        self._kwargs = dict(kwargs, prog=prog, description=description, add_help=add_help)
        self._options: dict[str, _Arg] = {}
        self._args: list[_Arg] = []
        self._positionals: list[_Arg] = []
        self._commands = None       # (dest, required, {name: ArgumentParser})
        if _root is None:
            self._ops: list = []
            self._unsupported = False
        if not set(kwargs) <= _PARSER_KW:
            self._root._unsupported = True
        if add_help:
            self._options["-h"] = self._options["--help"] = _Arg("help", {"action": "help"}, False)

    def _materialize(self):
        """The real argparse parser, built from the recorded calls (once)."""
        if self._real is None:
            import argparse
            self._real = argparse.ArgumentParser(**self._kwargs)
            for node, method, args, kwargs, result in self._ops:
                out = getattr(node._real, method)(*args, **kwargs)
                if result is not None:
                    result._real = out
        return self._real

    def add_argument(self, *names, **kw):
        if self._real is not None:
            return self._real.add_argument(*names, **kw)
        self._record("add_argument", names, kw)
        positional = not names[0].startswith("-")
        if not set(kw) <= _ARG_KW or kw.get("action") not in _ACTIONS or \
                kw.get("nargs") not in _NARGS or SUPPRESS in (kw.get("default"), kw.get("dest")) \
                or (not positional and kw.get("nargs") is not None) or \
                (positional and kw.get("action") not in (None, "store")):
            self._root._unsupported = True
            return None
        if positional:
            dest = kw.get("dest") or names[0]
        else:
            long = [n for n in names if n.startswith("--")]
            dest = kw.get("dest") or (long or names)[0].lstrip("-").replace("-", "_")
        try:
            arg = _Arg(dest, kw, positional)
        except Exception:       # a string default its type refuses: argparse's error at parse
            self._root._unsupported = True
            return None
        if any(_negative_number(n) for n in names if not positional):
            self._root._unsupported = True     # argparse then reads -1 as an option everywhere
        self._args.append(arg)
        if positional:
            self._positionals.append(arg)
        for n in names if not positional else ():
            self._options[n] = arg
        return None

    def add_subparsers(self, **kw):
        if self._real is not None:
            return self._real.add_subparsers(**kw)
        if not set(kw) <= {"dest", "required", "title", "description", "help", "metavar"} or \
                self._commands is not None:
            self._root._unsupported = True
        self._commands = (kw.get("dest"), kw.get("required", False), {})
        return self._record("add_subparsers", (), kw, _Subparsers(self))

    def parse_args(self, args=None, namespace=None):
        if args is None:
            args = sys.argv[1:]
        root = self._root
        if self is root and root._real is None and namespace is None and not root._unsupported:
            try:
                values = {}
                self._parse(list(args), values)
                return Namespace(**values)
            except _Fallback:
                pass
        return self._materialize_self().parse_args(args, namespace)

    def _materialize_self(self):
        self._root._materialize()
        return self._real

    # -- the parse

    def _is_option(self, arg: str) -> bool:
        """Would argparse take this for an option string ("O")? Anything unsure is."""
        return len(arg) > 1 and arg[0] == "-" and not _negative_number(arg)

    def _parse(self, args: list, values: dict) -> None:
        for a in self._args:
            values.setdefault(a.dest, list(a.default) if isinstance(a.default, list)
                              else a.default)
        seen, i = set(), 0
        # `run ... -- CMD`: a lone REMAINDER takes the `--` too (hawserctl drops it)
        lone_remainder = [p.nargs for p in self._positionals] == [REMAINDER]
        while i < len(args) and self._is_option(args[i]) and \
                not (args[i] == "--" and lone_remainder):
            i = self._option(args, i, values, seen)
        for a in self._args:
            if a.required and a not in self._positionals and a not in seen:
                raise _Fallback
        rest = args[i:]
        if self._commands is not None:
            dest, required, commands = self._commands
            if not rest or rest[0] not in commands:
                raise _Fallback
            if dest:
                values[dest] = rest[0]
            sub: dict = {}
            commands[rest[0]]._parse(rest[1:], sub)
            values.update(sub)
        else:
            self._assign(rest, values)

    def _option(self, args: list, i: int, values: dict, seen: set) -> int:
        arg, value = args[i], None
        if arg == "--":
            raise _Fallback
        if arg in self._options:
            opts = [(self._options[arg], None)]
        elif "=" in arg and arg.split("=", 1)[0] in self._options:
            name, value = arg.split("=", 1)
            opts = [(self._options[name], value)]
        elif arg[1] != "-" and arg[:2] in self._options:      # -wDIR, or flags together: -dit
            first = self._options[arg[:2]]
            if first.action == "store_true":
                opts = [(self._options.get("-" + c), None) for c in arg[1:]]
                if any(o is None or o.action != "store_true" for o, _ in opts):
                    raise _Fallback
            else:
                opts = [(first, arg[2:])]
        else:
            raise _Fallback     # an abbreviation, an unknown option: argparse knows what to say
        i += 1
        for a, value in opts:
            if a.action == "help" or (a.action == "store_true" and value is not None):
                raise _Fallback
            seen.add(a)
            if a.action == "store_true":
                values[a.dest] = True
                continue
            if value is None:
                if i >= len(args) or self._is_option(args[i]) or args[i] == "--":
                    raise _Fallback
                value, i = args[i], i + 1
            value = self._convert(a, value)
            if a.action == "append":
                values[a.dest] = list(values[a.dest] or ()) + [value]
            else:
                values[a.dest] = value
        return i

    def _convert(self, a: _Arg, value: str):
        if a.type is None:
            return value
        try:
            return a.type(value)
        except (TypeError, ValueError):
            raise _Fallback from None

    def _assign(self, rest: list, values: dict) -> None:
        """The positionals, all after the options: a REMAINDER takes what its leading single
        positionals leave; else every one must be a plain value, one variadic at most."""
        ps = self._positionals
        if ps and ps[-1].nargs == REMAINDER:
            singles = ps[:-1]
            if any(p.nargs is not None for p in singles) or len(rest) < len(singles) or \
                    (singles and "--" in rest[:len(singles) + 1]):
                raise _Fallback     # argparse: a `--` next to a single positional is its own
            for p, value in zip(singles, rest):
                values[p.dest] = self._convert(p, value)
            values[ps[-1].dest] = rest[len(singles):]
            return
        if any(self._is_option(v) for v in rest) or "--" in rest:
            raise _Fallback
        variadic = [p for p in ps if p.nargs is not None]
        extra = len(rest) - (len(ps) - len(variadic))
        if len(variadic) > 1 or extra < 0 or (not variadic and extra) or \
                (variadic and variadic[0].nargs == "+" and extra < 1):
            raise _Fallback
        for p in ps:
            n = extra if p.nargs is not None else 1
            taken, rest = rest[:n], rest[n:]
            if p.nargs is None:
                values[p.dest] = self._convert(p, taken[0])
            elif taken or p.default is None:
                values[p.dest] = [self._convert(p, v) for v in taken]


class _Subparsers(_Node):
    def __init__(self, parser: ArgumentParser):
        super().__init__(parser._root)
        self._parser = parser

    def add_parser(self, name: str, **kw):
        if self._real is not None:
            return self._real.add_parser(name, **kw)
        sub = ArgumentParser(_root=self._root, **kw)
        self._parser._commands[2][name] = sub
        return self._record("add_parser", (name,), kw, sub)
