"""The `hawser` command line, runc-compatible: global flags, then a command with its flags.

Parsed by hand (argparse imports re and gettext: ~5 ms per call). Flags follow Go's flag package,
as runc's do: `-flag`, `--flag`, `--flag=value`, `--flag value`, and parsing stops at the first
positional argument.
"""
import os
import sys

from runtime import OCI_VERSION, VERSION, HawserError

USAGE = """usage: hawser [global options] command [command options] [arguments...]

hawser runs OCI containers (a runc-compatible runtime).

commands:
  spec       create a new specification file (config.json)
  create     create a container
  start      execute the user defined process in a created container
  run        create and run a container
  state      output the state of a container
  kill       send a signal to the container's init process (default SIGTERM)
  delete     delete a container and the resources it holds
  list       list containers started by hawser with the given root
  exec       execute a new process inside the container
  ps         list the processes running inside a container
  pause      suspend all processes inside the container
  resume     resume all processes paused by pause
  update     update the resource limits of a container
  events     display container events (stats, oom)
  features   show the enabled features

global options:
  --root DIR          state directory (default /run/hawser)
  --log FILE          log file (default stderr)
  --log-format FMT    text or json (default text)
  --debug             debug logging
  --systemd-cgroup    use systemd cgroups (not supported)
  --version, -v       print the version
  --help, -h          show this help
"""

# command -> {flag: (kind, dest)}; kind "bool" or "value"
COMMON_CREATE = {
    "bundle": ("value", "bundle"), "b": ("value", "bundle"),
    "pid-file": ("value", "pid_file"), "console-socket": ("value", "console_socket"),
    "no-pivot": ("bool", "no_pivot"), "no-new-keyring": ("bool", "no_new_keyring"),
    "preserve-fds": ("value", "preserve_fds"),
}
COMMANDS = {
    "spec": ({"bundle": ("value", "bundle"), "b": ("value", "bundle"),
              "rootless": ("bool", "rootless")}, 0, 0),
    "create": (COMMON_CREATE, 1, 1),
    "run": ({**COMMON_CREATE, "detach": ("bool", "detach"), "d": ("bool", "detach"),
             "keep": ("bool", "keep"), "no-subreaper": ("bool", "no_subreaper")}, 1, 1),
    "start": ({}, 1, 1),
    "state": ({}, 1, 1),
    "kill": ({"all": ("bool", "all"), "a": ("bool", "all")}, 1, 2),
    "delete": ({"force": ("bool", "force"), "f": ("bool", "force")}, 1, 1),
    "list": ({"format": ("value", "format"), "f": ("value", "format"),
              "quiet": ("bool", "quiet"), "q": ("bool", "quiet")}, 0, 0),
    "features": ({}, 0, 0),
    "exec": ({"process": ("value", "process_file"), "p": ("value", "process_file"),
              "tty": ("bool", "tty"), "t": ("bool", "tty"),
              "console-socket": ("value", "console_socket"),
              "detach": ("bool", "detach"), "d": ("bool", "detach"),
              "pid-file": ("value", "pid_file"),
              "env": ("multi", "env"), "e": ("multi", "env"),
              "cwd": ("value", "cwd"), "user": ("value", "user"), "u": ("value", "user"),
              "additional-gids": ("multi", "additional_gids"), "g": ("multi", "additional_gids"),
              "cap": ("multi", "caps"), "c": ("multi", "caps"),
              "no-new-privs": ("bool", "no_new_privs"),
              "preserve-fds": ("value", "preserve_fds"),
              "process-label": ("value", "process_label"), "apparmor": ("value", "apparmor"),
              "ignore-paused": ("bool", "ignore_paused")}, 1, None),
    "ps": ({"format": ("value", "format"), "f": ("value", "format")}, 1, None),
    "pause": ({}, 1, 1),
    "resume": ({}, 1, 1),
    "update": ({"resources": ("value", "resources"), "r": ("value", "resources"),
                **{name: ("value", "flag:" + name) for name in (
                    "memory", "memory-reservation", "memory-swap", "kernel-memory",
                    "kernel-memory-tcp", "cpu-shares", "cpu-share", "cpu-quota", "cpu-period",
                    "cpu-rt-period", "cpu-rt-runtime", "cpuset-cpus", "cpuset-mems",
                    "pids-limit", "blkio-weight", "l3-cache-schema", "mem-bw-schema")}}, 1, 1),
    "events": ({"stats": ("bool", "stats"), "interval": ("value", "interval")}, 1, 1),
}
GLOBAL = {
    "root": ("value", "root"), "log": ("value", "log"), "log-format": ("value", "log_format"),
    "debug": ("bool", "debug"), "systemd-cgroup": ("bool", "systemd_cgroup"),
    "criu": ("value", "criu"), "rootless": ("value", "rootless"),
    "version": ("bool", "version"), "v": ("bool", "version"),
    "help": ("bool", "help"), "h": ("bool", "help"),
}


class UsageError(HawserError):
    pass


def _go_bool(value: str, name: str) -> bool:
    """strconv.ParseBool, as Go's flag package reads `--flag=value`."""
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise UsageError(f'invalid boolean value "{value}" for -{name}')


def parse_flags(args: list[str], table: dict, where: str) -> tuple[dict, list[str]]:
    """Flags until the first positional argument (or `--`); returns (flags, the rest)."""
    opts: dict = {}
    where = f"{where}: " if where else ""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return opts, args[i + 1:]
        if not arg.startswith("-") or arg == "-":
            break
        name, eq, value = arg.lstrip("-").partition("=")
        if name not in table:
            raise UsageError(f"{where}flag provided but not defined: -{name}")
        kind, dest = table[name]
        if kind == "multi":
            if not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(f"{where}flag needs an argument: -{name}")
                value = args[i]
            opts.setdefault(dest, []).append(value)
        elif kind == "bool":
            opts[dest] = _go_bool(value, name) if eq else True
        else:
            if not eq:
                i += 1
                if i >= len(args):
                    raise UsageError(f"{where}flag needs an argument: -{name}")
                value = args[i]
            opts[dest] = value
        i += 1
    return opts, args[i:]


def main(argv: list[str] | None = None) -> int:
    # A short-lived process with no reference cycles worth collecting: without the collector its
    # passes cannot run, nor touch (and so copy) every object in the forked container init.
    import gc
    gc.disable()
    argv = sys.argv[1:] if argv is None else argv
    try:
        gopts, rest = parse_flags(argv, GLOBAL, "")
        fmt = gopts.get("log_format", "text")
        if fmt not in ("text", "json"):
            raise UsageError(f"invalid --log-format {fmt!r}: use text or json")
        if gopts.get("log") or fmt != "text" or gopts.get("debug"):
            # Only then: a `state` that succeeds never needs the log module.
            from runtime import log
            log.configure(gopts.get("log"), fmt, gopts.get("debug", False))
    except HawserError as e:
        sys.stderr.write(f"hawser: {e}\n")
        return 1
    if gopts.get("version"):
        sys.stdout.write(f"hawser version {VERSION}\nspec: {OCI_VERSION}\n")
        return 0
    if gopts.get("help") or not rest:
        sys.stdout.write(USAGE)
        return 0 if gopts.get("help") else 1
    try:
        if gopts.get("systemd_cgroup"):
            raise HawserError("--systemd-cgroup is not supported: hawser manages cgroupfs directly")
        return dispatch(rest[0], rest[1:], gopts.get("root") or "/run/hawser")
    except HawserError as e:
        from runtime import log
        log.error(str(e))
        # exec's own failures exit 255 (as runc): 1 could be the process's own exit status.
        return 255 if rest[0] == "exec" else 1
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        # A failure no check foresaw still gets one line, not a traceback (which --debug shows).
        from runtime import log
        if gopts.get("debug"):
            import traceback
            traceback.print_exc()
        log.error(f"{e.strerror or e}" + (f": {e.filename}" if e.filename else ""))
        return 255 if rest[0] == "exec" else 1


def launch() -> None:
    """The entry of .venv/bin/hawser: main(), then stdout and stderr flushed and os._exit(), which
    skips the interpreter's teardown (freeing every module and object, ~4 ms of a `run`). Nothing
    of ours needs it: the log is written unbuffered, files are closed by their `with`, no thread
    or atexit handler runs. An exception main() lets through still ends the normal way."""
    code = main()
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        code = code or 120  # what the interpreter returns when the final flush fails
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    os._exit(code & 0xFF if isinstance(code, int) else 1)  # as exit(3) truncates it


def dispatch(cmd: str, args: list[str], root: str) -> int:
    if cmd not in COMMANDS:
        raise UsageError(f"no such command: {cmd!r} (see hawser --help)")
    if "-h" in args[:1] or "--help" in args[:1]:
        sys.stdout.write(USAGE)
        return 0
    table, least, most = COMMANDS[cmd]
    opts, pos = parse_flags(args, table, cmd)
    if len(pos) < least or (most is not None and len(pos) > most):
        want = least if least == most else (f"at least {least}" if most is None
                                            else f"{least} to {most}")
        raise UsageError(f'"{cmd}" requires {want} argument(s), got {len(pos)}')
    root = os.path.abspath(root)
    return globals()["cmd_" + cmd](root, opts, pos)


def parse_fd_count(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise UsageError(f"--preserve-fds: {text!r} is not a number")
    return int(text)


def _create_options(opts: dict):
    from runtime.create import CreateOptions
    fds = parse_fd_count(opts.get("preserve_fds", "0"))
    return CreateOptions(bundle=opts.get("bundle") or ".", pid_file=opts.get("pid_file"),
                         console_socket=opts.get("console_socket"),
                         no_pivot=opts.get("no_pivot", False),
                         no_new_keyring=opts.get("no_new_keyring", False), preserve_fds=fds)


def cmd_spec(root, opts, pos) -> int:
    from runtime.specgen import write_spec
    write_spec(opts.get("bundle") or ".", opts.get("rootless", False))
    return 0


def cmd_create(root, opts, pos) -> int:
    from runtime.create import create
    create(root, pos[0], _create_options(opts)).unlock()
    return 0


def cmd_run(root, opts, pos) -> int:
    from runtime.run import run
    return run(root, pos[0], _create_options(opts), opts.get("detach", False))


def cmd_start(root, opts, pos) -> int:
    from runtime.start import start
    start(root, pos[0])
    return 0


def cmd_state(root, opts, pos) -> int:
    from runtime import jsonlite, state
    c = state.load(root, pos[0], lock=False)
    sys.stdout.write(jsonlite.dumps(c.oci_state(), indent="  ") + "\n")
    return 0


def cmd_kill(root, opts, pos) -> int:
    from runtime.kill import kill
    from runtime.signals import parse_signal
    sig = parse_signal(pos[1] if len(pos) > 1 else "SIGTERM")
    kill(root, pos[0], sig, opts.get("all", False))
    return 0


def cmd_delete(root, opts, pos) -> int:
    from runtime.delete import delete
    delete(root, pos[0], opts.get("force", False))
    return 0


def cmd_list(root, opts, pos) -> int:
    from runtime.query import list_containers
    fmt = opts.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid --format {fmt!r}: use table or json")
    sys.stdout.write(list_containers(root, fmt, opts.get("quiet", False)))
    return 0


def cmd_features(root, opts, pos) -> int:
    from runtime.features import features_json
    sys.stdout.write(features_json() + "\n")
    return 0


def cmd_exec(root, opts, pos) -> int:
    from runtime.exec import ExecOptions, exec_in
    fds = parse_fd_count(opts.get("preserve_fds", "0"))
    if opts.get("apparmor") or opts.get("process_label"):
        raise HawserError("--apparmor/--process-label: AppArmor and SELinux are not supported")
    eo = ExecOptions(process_file=opts.get("process_file"), args=pos[1:],
                     tty=opts.get("tty", False), console_socket=opts.get("console_socket"),
                     detach=opts.get("detach", False), pid_file=opts.get("pid_file"),
                     env=opts.get("env"), cwd=opts.get("cwd"), user=opts.get("user"),
                     additional_gids=opts.get("additional_gids"), caps=opts.get("caps"),
                     no_new_privs=opts.get("no_new_privs", False), preserve_fds=fds,
                     ignore_paused=opts.get("ignore_paused", False))
    return exec_in(root, pos[0], eo)


def cmd_ps(root, opts, pos) -> int:
    from runtime.ps import ps
    fmt = opts.get("format", "table")
    if fmt not in ("table", "json"):
        raise UsageError(f"invalid --format {fmt!r}: use table or json")
    sys.stdout.write(ps(root, pos[0], fmt, pos[1:]))
    return 0


def cmd_pause(root, opts, pos) -> int:
    from runtime.pause import pause
    pause(root, pos[0])
    return 0


def cmd_resume(root, opts, pos) -> int:
    from runtime.pause import resume
    resume(root, pos[0])
    return 0


def cmd_update(root, opts, pos) -> int:
    from runtime.update import read_resources, resources_from_flags, update
    flags = {k[5:]: v for k, v in opts.items() if k.startswith("flag:")}
    for unsupported in ("l3-cache-schema", "mem-bw-schema"):
        if unsupported in flags:
            raise HawserError(f"--{unsupported}: Intel RDT is not supported")
    if opts.get("resources") and flags:
        raise UsageError("update: give either -r/--resources or resource flags, not both")
    resources = read_resources(opts["resources"]) if opts.get("resources") \
        else resources_from_flags(flags)
    update(root, pos[0], resources)
    return 0


def cmd_events(root, opts, pos) -> int:
    from runtime.events import events, parse_duration
    events(root, pos[0], opts.get("stats", False), parse_duration(opts.get("interval", "5s")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
