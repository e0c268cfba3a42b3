"""--log / --log-format: runc-style log lines. containerd and podman read the `msg` of the last
`{"level":"error"}` line of this file when a call fails, so errors always go there too."""
import os
import time

from runtime import jsonlite

_fd = 2
_json = False
_debug = False
_file = False


def configure(path: str | None, fmt: str, debug: bool) -> None:
    global _fd, _json, _debug, _file
    _json, _debug = fmt == "json", debug
    if path:
        _fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)
        _file = True


def file_fd():
    """The fd of the --log file, or None when logging to stderr."""
    return _fd if _file else None


def _now() -> str:
    ns = time.time_ns()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ns // 1_000_000_000)) + \
        f".{ns % 1_000_000_000:09d}Z"


def _emit(level: str, msg: str) -> None:
    if _json:
        line = jsonlite.compact({"level": level, "msg": msg, "time": _now()})
    else:
        line = f'time="{_now()}" level={level} msg="{msg}"'
    try:
        os.write(_fd, (line + "\n").encode())
    except OSError:
        pass


def error(msg: str) -> None:
    """An error ends the command: it goes to the log and, as one plain line, to stderr (unless the
    log itself is stderr in json)."""
    if _file or _json:
        _emit("error", msg)
    if _file or not _json:
        try:
            os.write(2, f"hawser: {msg}\n".encode())
        except OSError:
            pass


def warn(msg: str) -> None:
    _emit("warning", msg)


def debug(msg: str) -> None:
    if _debug:
        _emit("debug", msg)
