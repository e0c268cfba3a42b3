"""Dockerfile instructions applied to an image config, as `docker import --change` and
`docker commit --change`: CMD and ENTRYPOINT (JSON and shell forms), ENV, WORKDIR, USER,
EXPOSE, LABEL, VOLUME, STOPSIGNAL, with docker's quoting and $VAR / ${VAR} expansion from the
image's own environment in the instructions docker expands them in."""
import json
import posixpath
import re
import signal

SHELL = ["/bin/sh", "-c"]
SUPPORTED = ("CMD", "ENTRYPOINT", "ENV", "EXPOSE", "LABEL", "STOPSIGNAL", "USER", "VOLUME",
             "WORKDIR")
PORT = re.compile(r"(\d+)(?:-(\d+))?(?:/(tcp|udp|sctp))?", re.IGNORECASE)
NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class ChangeError(ValueError):
    pass


def apply_changes(config: dict, changes) -> dict:
    """Apply each change (one instruction a string) to the image config document (its
    "config" object is made when absent); ChangeError (a ValueError) names a bad one. The
    config is changed only when every change is good."""
    if isinstance(changes, str):
        changes = [changes]
    work = json.loads(json.dumps(config.get("config") or {}))
    cmd_given = False
    for change in changes:
        instruction, _, args = (change or "").strip().partition(" ")
        if "\n" in args.strip():
            raise ChangeError(f"change {change!r}: one instruction a change")
        keyword, args = instruction.upper(), args.strip()
        if keyword not in SUPPORTED:
            raise ChangeError(f"change {change!r}: {instruction or '(empty)'} is not an "
                              f"instruction a change can make (those are {', '.join(SUPPORTED)})")
        if not args:
            raise ChangeError(f"change {change!r}: {keyword} needs an argument")
        try:
            _APPLY[keyword](work, args)
        except ChangeError as e:
            raise ChangeError(f"change {change!r}: {e}") from None
        if keyword == "CMD":
            cmd_given = True
        elif keyword == "ENTRYPOINT" and not cmd_given:
            work.pop("Cmd", None)        # docker: a new entrypoint drops the inherited Cmd
    config["config"] = work
    return config


def _command(args: str) -> list[str]:
    if args.startswith("["):
        try:
            value = json.loads(args)
        except ValueError:
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
    return SHELL + [args]            # the shell form (also what is not a JSON list of strings)


def _cmd(work, args):
    work["Cmd"] = _command(args)


def _entrypoint(work, args):
    work["Entrypoint"] = _command(args)


def _env(work, args):
    env = list(work.get("Env") or [])
    for key, value in _pairs(args, _environ(work), "ENV"):
        keys = [e.partition("=")[0] for e in env]
        if key in keys:                     # docker replaces it where it is
            env[keys.index(key)] = f"{key}={value}"
        else:
            env.append(f"{key}={value}")
    work["Env"] = env


def _label(work, args):
    labels = dict(work.get("Labels") or {})
    for key, value in _pairs(args, _environ(work), "LABEL"):
        labels[key] = value
    work["Labels"] = labels


def _pairs(args: str, env: dict, keyword: str) -> list[tuple[str, str]]:
    """KEY=value ... (quoted as a shell would), or docker's older "KEY value with spaces"."""
    words = words_of(args, env)
    if "=" not in words[0]:
        key, _, value = args.partition(" ")
        if not value.strip():
            raise ChangeError(f"{keyword} {key} needs a value (KEY=value or KEY value)")
        return [(_key(key, keyword), words_of(value.strip(), env, split=False)[0])]
    out = []
    for word in words:
        key, eq, value = word.partition("=")
        if not eq:
            raise ChangeError(f"{keyword}: {word!r} is not KEY=value")
        out.append((_key(key, keyword), value))
    return out


def _key(key: str, keyword: str) -> str:
    if not key:
        raise ChangeError(f"{keyword}: empty name")
    if keyword == "ENV" and not NAME.fullmatch(key):
        raise ChangeError(f"ENV: {key!r} is not a variable name")
    return key


def _workdir(work, args):
    path = words_of(args, _environ(work), split=False)[0]
    if not path.startswith("/"):
        path = posixpath.join(work.get("WorkingDir") or "/", path)
    work["WorkingDir"] = posixpath.normpath(path)


def _user(work, args):
    words = words_of(args, _environ(work))
    if len(words) != 1:
        raise ChangeError("USER takes one user[:group]")
    work["User"] = words[0]


def _expose(work, args):
    ports = dict(work.get("ExposedPorts") or {})
    for word in words_of(args, _environ(work)):
        m = PORT.fullmatch(word)
        if not m:
            raise ChangeError(f"EXPOSE: {word!r} is not a port (80, 80/tcp, 8000-8010/udp)")
        first, last = int(m.group(1)), int(m.group(2) or m.group(1))
        if not 0 < first <= last <= 65535:
            raise ChangeError(f"EXPOSE: {word!r} is not a port range within 1-65535")
        for port in range(first, last + 1):
            ports[f"{port}/{(m.group(3) or 'tcp').lower()}"] = {}
    work["ExposedPorts"] = ports


def _volume(work, args):
    volumes = dict(work.get("Volumes") or {})
    paths = None
    if args.startswith("["):
        try:
            paths = json.loads(args)
        except ValueError:
            paths = None
        if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
            paths = None
    for path in paths if paths is not None else words_of(args, _environ(work)):
        if not path.strip():
            raise ChangeError("VOLUME: empty path")
        volumes[path] = {}
    work["Volumes"] = volumes


def _stopsignal(work, args):
    words = words_of(args, _environ(work))
    if len(words) != 1:
        raise ChangeError("STOPSIGNAL takes one signal")
    sig = words[0]
    name = sig.upper() if sig.upper().startswith("SIG") else "SIG" + sig.upper()
    if sig.isdigit():
        if not 0 < int(sig) <= signal.SIGRTMAX:
            raise ChangeError(f"STOPSIGNAL: {sig} is not a signal number")
    elif name not in signal.Signals.__members__ and not re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?",
                                                                      name):
        raise ChangeError(f"STOPSIGNAL: {sig!r} is not a signal")
    work["StopSignal"] = sig


_APPLY = {"CMD": _cmd, "ENTRYPOINT": _entrypoint, "ENV": _env, "EXPOSE": _expose,
          "LABEL": _label, "STOPSIGNAL": _stopsignal, "USER": _user, "VOLUME": _volume,
          "WORKDIR": _workdir}


def _environ(work) -> dict:
    return dict(e.partition("=")[::2] for e in work.get("Env") or [])


def words_of(text: str, env: dict, split: bool = True) -> list[str]:
    """docker's shell lexer: words split on blanks (unless not split: one word, its blanks
    kept), 'single' quotes literal, "double" quotes and bare words with \\ escapes and $VAR,
    ${VAR}, ${VAR:-default}, ${VAR:+alternative}."""
    words, word, have, i = [], [], False, 0
    while i < len(text):
        c = text[i]
        if c in " \t" and split:
            if have:
                words.append("".join(word))
            word, have, i = [], False, i + 1
            continue
        have = True
        if c == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise ChangeError(f"unmatched ' in {text!r}")
            word.append(text[i + 1:end])
            i = end + 1
        elif c == '"':
            i = _double_quoted(text, i + 1, env, word)
        elif c == "\\" and i + 1 < len(text):
            word.append(text[i + 1])
            i += 2
        elif c == "$":
            i = _variable(text, i, env, word)
        else:
            word.append(c)
            i += 1
    if have:
        words.append("".join(word))
    if not words:
        raise ChangeError("no argument")
    return words


def _double_quoted(text: str, i: int, env: dict, word: list) -> int:
    while i < len(text):
        c = text[i]
        if c == '"':
            return i + 1
        if c == "\\" and i + 1 < len(text) and text[i + 1] in '"\\$':
            word.append(text[i + 1])
            i += 2
        elif c == "$":
            i = _variable(text, i, env, word)
        else:
            word.append(c)
            i += 1
    raise ChangeError(f'unmatched " in {text!r}')


def _variable(text: str, i: int, env: dict, word: list) -> int:
    if text.startswith("${", i):
        end = text.find("}", i)
        if end < 0:
            raise ChangeError(f"missing }} in {text!r}")
        inner = text[i + 2:end]
        name, op, alt = re.match(r"([A-Za-z_][A-Za-z0-9_]*)(?::([-+]))?(.*)", inner).groups() \
            if NAME.match(inner) else (None, None, None)
        if name is None or (alt and not op):
            raise ChangeError(f"bad substitution ${{{inner}}} in {text!r}")
        value = env.get(name, "")
        if op == "-":
            value = value or alt
        elif op == "+":
            value = alt if value else ""
        word.append(value)
        return end + 1
    m = NAME.match(text, i + 1)
    if not m:
        word.append("$")
        return i + 1
    word.append(env.get(m.group(0), ""))
    return m.end()
