"""The low-level OCI runtime's command line, called as containerd's runc shim calls it:
`<runtime> --root R --log BUNDLE/log.json --log-format json <command> ...`, cwd = the bundle
(the shim's own cwd). hawser by default; runc, crun or any runc-compatible binary when the
create options name one.

Every process is started and waited for through the shim's Reaper. A failure raises RuntimeFailed
with the `msg` of the last {"level":"error"} line the command added to the log (what every client
of runc reports), else its stderr, else its exit status.
"""
import os

from runtime import jsonlite
from shim import ttrpc

# containerd matches these to tell "the process is gone" from other kill failures
GONE = ("container not running", "does not exist", "no such process", "process already finished",
        "not found")


class RuntimeFailed(Exception):
    pass


class Runtime:
    def __init__(self, reaper, binary: str, root: str, log: str, forks=None):
        """forks: the shim's fork server (shim/forkserver.py) when binary is hawser itself."""
        self.reaper, self.binary, self.root, self.log = reaper, binary, root, log
        self.forks = forks

    def run(self, *args, stdio=(None, None, None), input: bytes | None = None,
            capture: bool = False) -> bytes:
        """Run one command; its stdout when capture, else b"". stdio: fds for a process the
        runtime leaves behind (create, exec): they must not be pipes to the shim."""
        argv = [self.binary, "--root", self.root, "--log", self.log, "--log-format", "json",
                *args]
        try:
            offset = os.stat(self.log).st_size
        except OSError:
            offset = 0
        stdin, stdout, _ = stdio
        err_fd = os.memfd_create("runtime-stderr", os.MFD_CLOEXEC)
        in_r = in_w = out_r = out_w = -1
        try:
            if input is not None:
                in_r, in_w = os.pipe()
                stdin = in_r
            if capture:
                out_r, out_w = os.pipe()
                stdout = out_w
            stderr = err_fd if stdio[2] is None else stdio[2]
            if self.forks is not None and input is None and not capture:
                code = self._forked(argv, stdin, stdout, stderr)
                if code is not None:
                    if code != 0:
                        raise RuntimeFailed(self._error(offset, err_fd) or
                                            f"{os.path.basename(self.binary)} {args[0]}: exit "
                                            f"status {code}")
                    return b""
            try:
                child = self.reaper.spawn(argv, stdin, stdout, stderr)
            except OSError as e:
                raise RuntimeFailed(f"{self.binary}: {e.strerror}") from None
            for fd in (in_r, out_w):
                if fd >= 0:
                    os.close(fd)
            in_r = out_w = -1
            if in_w >= 0:
                try:
                    os.write(in_w, input)    # small documents: the pipe holds them
                except BrokenPipeError:
                    pass
                os.close(in_w)
                in_w = -1
            out = b""
            if capture:
                chunks = []
                while chunk := os.read(out_r, 65536):
                    chunks.append(chunk)
                out = b"".join(chunks)
            code = child.wait()
            if code != 0:
                name = os.path.basename(self.binary)
                raise RuntimeFailed(self._error(offset, err_fd) or
                                    f"{name} {args[0]}: exit status {code}")
            return out
        finally:
            for fd in (err_fd, in_r, in_w, out_r, out_w):
                if fd >= 0:
                    os.close(fd)

    def _forked(self, argv, stdin, stdout, stderr) -> int | None:
        """The command's exit code through the fork server; None when it is gone."""
        from shim.forkserver import Unavailable
        null = self.reaper.devnull
        try:
            return self.forks.run(argv, (null if stdin is None else stdin,
                                         null if stdout is None else stdout, stderr))
        except Unavailable:
            self.forks = None
            return None
        except OSError as e:
            raise RuntimeFailed(f"{self.binary}: {e}") from None

    def _error(self, offset: int, err_fd: int) -> str:
        msg = None
        try:
            with open(self.log, "rb") as f:
                f.seek(offset)
                for line in f.read().splitlines():
                    try:
                        entry = jsonlite.loads(line)
                    except ValueError:
                        continue
                    if isinstance(entry, dict) and entry.get("level") == "error":
                        msg = entry.get("msg")
        except OSError:
            pass
        if msg:
            return str(msg)
        os.lseek(err_fd, 0, os.SEEK_SET)
        return os.read(err_fd, 4096).decode(errors="replace").strip()

    # -- the commands -------------------------------------------------------------------------

    def create(self, cid: str, bundle: str, pid_file: str, console: str | None, stdio,
               no_pivot: bool = False, no_new_keyring: bool = False) -> None:
        args = ["create", "--bundle", bundle, "--pid-file", pid_file]
        if console:
            args += ["--console-socket", console]
        if no_pivot:
            args.append("--no-pivot")
        if no_new_keyring:
            args.append("--no-new-keyring")
        self.run(*args, cid, stdio=stdio)

    def start(self, cid: str) -> None:
        self.run("start", cid)

    def exec(self, cid: str, process_file: str, pid_file: str, console: str | None,
             stdio) -> None:
        args = ["exec", "--process", process_file, "--detach", "--pid-file", pid_file]
        if console:
            args += ["--console-socket", console]
        self.run(*args, cid, stdio=stdio)

    def kill(self, cid: str, signal: int, all: bool = False) -> None:
        """NotFound when the container is already gone, as containerd expects."""
        try:
            self.run("kill", *(["--all"] if all else []), cid, str(signal))
        except RuntimeFailed as e:
            if any(text in str(e) for text in GONE):
                raise ttrpc.Error(ttrpc.NOT_FOUND, f"process already finished: {e}") from None
            raise

    def delete(self, cid: str, force: bool = False) -> None:
        self.run("delete", *(["--force"] if force else []), cid)

    def pause(self, cid: str) -> None:
        self.run("pause", cid)

    def resume(self, cid: str) -> None:
        self.run("resume", cid)

    def ps(self, cid: str) -> list[int]:
        out = self.run("ps", "--format", "json", cid, capture=True)
        pids = jsonlite.loads(out or b"[]")
        return [int(p) for p in pids or ()]

    def update(self, cid: str, resources_json: bytes) -> None:
        self.run("update", "--resources", "-", cid, input=resources_json)


def read_pid_file(path: str) -> int:
    with open(path) as f:
        return int(f.read().strip())
