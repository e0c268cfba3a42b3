"""containerd-shim-hawser-v2: the shim v2 command line (runtime type io.containerd.hawser.v2).

    containerd-shim-hawser-v2 -namespace NS -address A -publish-binary B -id ID [-debug] start
        (cwd: the bundle) start the daemon for this container, or find the one already serving
        its address; write `address` in the bundle; print the ttrpc address; exit.
    ... -id ID -bundle B delete
        clean up after a shim that died: `runtime delete --force`, unmount the rootfs; print a
        DeleteResponse (protobuf) on stdout.
    ... (no action)
        the daemon: serve containerd.task.v2.Task on the socket inherited as fd 3.

Flags are Go's: -flag value, --flag value, -flag=value; -debug and -v are booleans.
"""
import os
import sys

import _sha256

from shim import VERSION

SOCKET_DIR = "/run/containerd/s"      # containerd 1.6 puts every shim socket there
STATE_DIR = "/run/hawser-shim"        # the shim's own files, one directory per shim socket
LISTEN_FD = 3
BOOL_FLAGS = {"debug", "v"}
VALUE_FLAGS = {"namespace", "address", "publish-binary", "id", "bundle", "socket"}


class UsageError(Exception):
    pass


def parse(argv: list[str]) -> tuple[dict, str]:
    flags: dict = {"publish-binary": "containerd"}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] not in ("-", "--"):
        name, eq, value = argv[i].lstrip("-").partition("=")
        if name in BOOL_FLAGS:
            flags[name] = value.lower() not in ("false", "0") if eq else True
        elif name in VALUE_FLAGS:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise UsageError(f"flag needs an argument: -{name}")
                value = argv[i]
            flags[name] = value
        else:
            raise UsageError(f"flag provided but not defined: -{name}")
        i += 1
    if i < len(argv) and argv[i] == "--":
        i += 1
    return flags, argv[i] if i < len(argv) else ""


def _clean(path: str) -> str:
    """Go's filepath.Clean, for the joined path containerd hashes."""
    import posixpath
    out = posixpath.normpath(path) if path else "."
    return "/" + out.lstrip("/") if out.startswith("//") else out


def socket_name(address: str, namespace: str, cid: str) -> str:
    """sha256 of filepath.Join(address, namespace, id): the name containerd's own shims use."""
    joined = _clean("/".join(p for p in (address, namespace, cid) if p))
    return _sha256.sha256(joined.encode()).hexdigest()


def socket_address(address: str, namespace: str, cid: str) -> str:
    return f"unix://{SOCKET_DIR}/{socket_name(address, namespace, cid)}"


def state_dir(address: str, namespace: str, cid: str) -> str:
    return os.path.join(STATE_DIR, socket_name(address, namespace, cid))


def self_command() -> list[str]:
    """How to run this program again (the daemon is started the way `start` was)."""
    argv0 = os.path.abspath(sys.argv[0]) if sys.argv and sys.argv[0] else ""
    if argv0 and os.path.isfile(argv0) and os.access(argv0, os.X_OK):
        return [argv0]
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return [sys.executable, "-c", f"import sys; sys.path.insert(0, {repo!r}); "
                                  "from shim.cli import main; sys.exit(main())"]


def default_runtime() -> str:
    """hawser, from the same bin directory as this shim (the project's .venv/bin)."""
    here = os.path.dirname(self_command()[0])
    for cand in (os.path.join(here, "hawser"), os.path.join(os.path.dirname(sys.executable),
                                                             "hawser")):
        if os.access(cand, os.X_OK):
            return cand
    return "hawser"


def main(argv: list[str] | None = None) -> int:
    try:
        flags, action = parse(sys.argv[1:] if argv is None else argv)
        if flags.get("v"):
            print(f"{os.path.basename(sys.argv[0])}:\n  Version:  {VERSION}\n  Runtime:  "
                  "io.containerd.hawser.v2\n")
            return 0
        if not flags.get("namespace"):
            raise UsageError("shim namespace cannot be empty")
        if action == "start":
            from shim import daemon
            _exit_with(daemon.start(flags).encode())
        if action == "delete":
            from shim import cleanup
            _exit_with(cleanup.delete(flags))
        if action:
            raise UsageError(f"unknown action {action!r}")
        from shim import daemon
        return daemon.serve(flags)
    except UsageError as e:
        sys.stderr.write(f"containerd-shim-hawser-v2: {e}\n")
        return 2
    except Exception as e:
        sys.stderr.write(f"containerd-shim-hawser-v2: {e}")
        return 1


def _exit_with(output: bytes) -> None:
    """Write the answer and exit at once: containerd waits for `start` and `delete` to end, and
    the interpreter's clean-up would only add to every container's creation and removal."""
    view = memoryview(output)
    while view:
        view = view[os.write(1, view):]
    os._exit(0)


if __name__ == "__main__":
    sys.exit(main())
