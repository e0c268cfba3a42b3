"""Shared harness of the client tests (tests/test_clients_*.py): real clients (podman + conmon,
containerd 1.6 + ctr, dockerd 20.10) drive a runtime through a wrapper script that logs the argv
it was called with, so every scenario runs with runc and with hawser and the commands each client
sends are asserted. Also: a pty driver (a real terminal for `-it` / `-t`), cgroup readers, host
network state snapshots (restored by the fixtures that change it), clean-up helpers.

Nothing here touches the machine's own container state: every daemon and storage is private to the
test module that starts it, and every clean-up removes only what a test made."""
from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest

from paths import HAWSER

RUNC = shutil.which("runc") or "/usr/sbin/runc"
RUNTIMES = {"runc": RUNC, "hawser": HAWSER}
CGROUP_ROOT = Path("/sys/fs/cgroup")

# --------------------------------------------------------------------------------------------
# argv capture

WRAPPER = """#!/bin/bash
# Logs how it was called to {log} (NUL-separated: cwd, argument count, arguments), then becomes
# {real}. bash's printf writes a short record with one write(2) to an O_APPEND file: concurrent
# calls do not interleave.
printf '%s\\0' "$PWD" "$#" "$@" >> {log}
exec {real} "$@"
"""


class Captured:
    """A wrapper around a real runtime with the same file name (podman treats runtimes by name,
    e.g. it passes --log-format=json only to those it knows), logging every call.
    `mark()` starts a new window: calls() then returns only the calls made after it (a wrapper
    shared by a module-scoped daemon, e.g. dockerd's --add-runtime)."""

    def __init__(self, directory: Path, real: str, name: str | None = None):
        self.real = real
        self.name = name or Path(real).name
        self.log = directory / "argv.log"
        bindir = directory / "wrap"
        bindir.mkdir(parents=True, exist_ok=True)
        self.path = bindir / Path(real).name
        self.path.write_text(WRAPPER.format(log=shlex.quote(str(self.log)),
                                            real=shlex.quote(real)))
        self.path.chmod(0o755)
        self._start = 0

    def _all(self) -> list[tuple[str, list[str]]]:
        if not self.log.exists():
            return []
        fields = self.log.read_bytes().decode(errors="surrogateescape").split("\0")
        out, i = [], 0
        while i + 1 < len(fields):
            cwd, count = fields[i], int(fields[i + 1])
            out.append((cwd, fields[i + 2:i + 2 + count]))
            i += 2 + count
        return out

    def mark(self) -> "Captured":
        self._start = len(self._all())
        return self

    def calls(self) -> list[tuple[str, list[str]]]:
        """[(cwd, argv without argv[0])] in call order."""
        return self._all()[self._start:]

    def text(self) -> str:
        return "\n".join(f"[cwd {cwd}] {shlex.join(argv)}" for cwd, argv in self.calls())

    def summary(self, ids=()) -> str:
        """The calls with the variable parts replaced by placeholders (<id>, <base>, ...), for
        a report of what a client sends."""
        text = self.text()
        for cid in ids:
            text = text.replace(cid, "<id>")
        for rx, repl in NORMALISE:
            text = rx.sub(repl, text)
        return text


NORMALISE = [
    (re.compile(r"/tmp/(hwpodman|hwctd|hwdk)-[A-Za-z0-9_]+"), r"<\1>"),
    (re.compile(r"\b[0-9a-f]{64}\b"), "<id>"),
    (re.compile(r"\bhw-(runc|hawser)-[0-9a-f]{8}\b"), "<id>"),
    (re.compile(r"hwtest-[a-z-]*[0-9a-f]{8}"), "<ns>"),
    (re.compile(r"/tmp/runc-process\d+"), "<process.json>"),
    (re.compile(r"/tmp/pty\d+/pty\.sock"), "<console.sock>"),
    (re.compile(r"/tmp/pytest-of-[^ ]*?/(runc|hawser)/"), r"<tmp>/\1/"),
]


# Global options of runc's CLI that take a value (when not written --opt=value).
GLOBAL_WITH_VALUE = {"--root", "--log", "--log-format", "--criu", "--rootless"}


def split_call(argv: list[str]) -> tuple[dict, str, list[str]]:
    """(global options, subcommand, rest) of a runc-style command line."""
    opts: dict[str, str | bool] = {}
    i = 0
    while i < len(argv) and argv[i].startswith("-"):
        arg = argv[i]
        if "=" in arg:
            key, value = arg.split("=", 1)
            opts[key] = value
        elif arg in GLOBAL_WITH_VALUE and i + 1 < len(argv):
            opts[arg] = argv[i + 1]
            i += 1
        else:
            opts[arg] = True
        i += 1
    if i >= len(argv):
        return opts, "", []
    return opts, argv[i], argv[i + 1:]


def option(rest: list[str], name: str) -> str | None:
    for i, arg in enumerate(rest):
        if arg == name and i + 1 < len(rest):
            return rest[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def calls_of(captured: Captured, sub: str) -> list[tuple[str, dict, list[str]]]:
    out = []
    for cwd, argv in captured.calls():
        opts, name, rest = split_call(argv)
        if name == sub:
            out.append((cwd, opts, rest))
    return out


def subcommands(captured: Captured) -> list[str]:
    return [split_call(argv)[1] for _, argv in captured.calls()]


def signal_number(arg: str) -> int | None:
    """runc's kill takes 9, KILL or SIGKILL."""
    if arg.isdigit():
        return int(arg)
    name = arg.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError:
        return None


def kills_of(captured: Captured, cid: str) -> list[tuple[bool, int | None]]:
    """[(--all given, signal number)] of every `kill [--all] ID SIG` sent for `cid`."""
    out = []
    for _, _, rest in calls_of(captured, "kill"):
        positional = [a for a in rest if not a.startswith("-")]
        if positional[:1] != [cid]:
            continue
        sig = signal_number(positional[1]) if len(positional) > 1 else int(signal.SIGTERM)
        out.append(("--all" in rest or "-a" in rest, sig))
    return out


def record_argv(client: str, runtime: str, scenario: str, cap: Captured, ids=()) -> None:
    """Shown by `pytest -rP`: what the client sent to the runtime in this scenario (variable
    parts as placeholders)."""
    print(f"--- {client} -> {runtime}: {scenario}\n{cap.summary(ids)}")


# --------------------------------------------------------------------------------------------
# The runtime parameter every client test takes

@pytest.fixture(params=list(RUNTIMES))
def runtime(request):
    return request.param


@pytest.fixture
def captured(runtime, tmp_path) -> Captured:
    return Captured(tmp_path / runtime, RUNTIMES[runtime])


# --------------------------------------------------------------------------------------------
# Waiting, clean-up

def mount_points_under(*dirs: Path) -> list[str]:
    prefixes = [str(d).rstrip("/") + "/" for d in dirs]
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].replace("\\040", " ")
            if any(point.startswith(p) or point + "/" == p for p in prefixes):
                points.append(point)
    return sorted(set(points), key=len, reverse=True)


def unmount_under(*dirs: Path) -> None:
    """Lazily unmount every mount point under the given directories, deepest first."""
    for point in mount_points_under(*dirs):
        subprocess.run(["umount", "-l", point], capture_output=True)


def remove_cgroups(relative: str) -> list[str]:
    """rmdir `relative` (and what is below it) in every mounted hierarchy; return leftovers."""
    left = []
    relative = relative.strip("/")
    if not relative:
        return left
    for hierarchy in CGROUP_ROOT.iterdir():
        top = hierarchy / relative
        if hierarchy.is_symlink() or not top.is_dir():
            continue
        for dirpath, _, _ in sorted(os.walk(top), key=lambda w: len(w[0]), reverse=True):
            for _ in range(20):    # a cgroup is busy for a moment after its last task exits
                try:
                    os.rmdir(dirpath)
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
            else:
                left.append(dirpath)
    return left


def pid_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def stop_process(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a process this harness started, SIGKILL it if it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


# --------------------------------------------------------------------------------------------
# cgroups (v1 here; the unified hierarchy is read when a controller is not on v1)

def cgroup_of(pid: int, controller: str) -> Path:
    """The host directory of `pid`'s cgroup for a v1 controller ("memory", "cpu", "pids",
    "freezer")."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        num, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUP_ROOT / controller / path.lstrip("/")
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        num, controllers, path = line.split(":", 2)
        if num == "0":
            unified = CGROUP_ROOT / "unified"
            return (unified if unified.is_dir() else CGROUP_ROOT) / path.lstrip("/")
    raise AssertionError(f"pid {pid} is in no {controller} cgroup")


def read_cgroup(pid: int, controller: str, name: str) -> str:
    return (cgroup_of(pid, controller) / name).read_text().strip()


# --------------------------------------------------------------------------------------------
# A real terminal for a client (`podman run -it`, `ctr run -t`, `docker exec -it`)

class PtyProcess:
    """`argv` started on the slave side of a new pty (its controlling terminal, stdin, stdout
    and stderr), of size rows x cols; the test types on the master and reads what the client
    writes to its terminal."""

    def __init__(self, argv: list[str], rows: int = 37, cols: int = 101, env=None):
        self.argv = [str(a) for a in argv]
        self.output = b""
        self.status: int | None = None
        pid, fd = pty.fork()
        if pid == 0:    # child: the pty slave is our controlling terminal and stdio
            try:
                os.execvpe(self.argv[0], self.argv, env if env is not None else os.environ)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    def _read(self, timeout: float) -> bool:
        """Append what is there within `timeout`; False at EOF (the client closed the pty)."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError as e:
            if e.errno == errno.EIO:
                return False
            raise
        if not data:
            return False
        # busybox's ash asks where the cursor is (ESC[6n) after a prompt and reads the answer
        # from its input: a terminal answers at once, or what is typed next is taken for it
        for _ in range(data.count(b"\x1b[6n")):
            os.write(self.fd, b"\x1b[1;1R")
        self.output += data
        return True

    def text(self) -> str:
        return self.output.decode(errors="replace")

    def expect(self, pattern: str, timeout: float = 20, start: int = 0) -> re.Match:
        """Wait for the regex `pattern` in the output (from offset `start`)."""
        rx = re.compile(pattern.encode())
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.output, start)
            if m:
                return m
            left = deadline - time.monotonic()
            why = f"within {timeout}s"
            if left > 0:
                if self._read(min(left, 0.2)):
                    continue
                m = rx.search(self.output, start)
                if m:
                    return m
                why = "before the terminal closed"
            raise AssertionError(f"{shlex.join(self.argv)}: no {pattern!r} in the terminal "
                                 f"output {why}:\n{self.text()!r}")

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def wait(self, timeout: float = 20) -> int:
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > deadline:
                raise AssertionError(f"{shlex.join(self.argv)} still running after {timeout}s:"
                                     f"\n{self.text()!r}")
            self._read(0.05)
        while self._read(0.05):    # drain what is left
            if time.monotonic() > deadline + 2:
                break
        return self.status

    def close(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            os.waitpid(self.pid, 0)
        try:
            os.close(self.fd)
        except OSError:
            pass


def pty_conversation(term: PtyProcess, prompt_ready: str = r"[#$] ") -> str:
    """Type into the shell behind `term` and read its answers: the arithmetic proves the shell
    evaluated what was typed (the echo of the typed line has "$((6*7))", not 42); `tty` and
    `stty size` show the process has a terminal of the client's size. Returns the output."""
    term.expect(prompt_ready)
    start = len(term.output)
    term.send("echo answer=$((6*7)); tty\r")
    term.expect(r"answer=42", start=start)
    term.expect(r"/dev/pts/\d+", start=start)
    expect_size(term, 37, 101)
    term.send("exit 5\r")
    return term.text()


def expect_size(term: PtyProcess, rows: int, cols: int, timeout: float = 20) -> None:
    """`stty size` in the shell behind term until it shows rows x cols: a window change reaches
    the container's terminal a moment after the client's (SIGWINCH, then a resize request)."""
    deadline = time.monotonic() + timeout
    while True:
        start = len(term.output)
        term.send("stty size\r")
        try:
            term.expect(r"\b\d+ \d+\r?\n[^\n]*[#$] ", timeout=5, start=start)
        except AssertionError:
            pass
        if re.search(rf"\b{rows} {cols}\b".encode(), term.output[start:]):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the terminal is not {rows}x{cols}:\n{term.text()!r}")
        time.sleep(0.1)


# --------------------------------------------------------------------------------------------
# Network: a free port, an HTTP GET, the host's network state (restored by the fixtures)

def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, timeout: float = 10, path: str = "/") -> str:
    """GET http://127.0.0.1:port/path, retried until the server answers; the whole response."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
                s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                data = b""
                while True:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            if data:
                return data.decode(errors="replace")
            last = "empty response"
        except OSError as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"no HTTP answer on 127.0.0.1:{port} within {timeout}s: {last}")


IPTABLES_TABLES = ("filter", "nat", "mangle")
SYSCTLS = ("net/ipv4/ip_forward", "net/ipv4/conf/all/route_localnet",
           "net/ipv6/conf/all/forwarding", "net/bridge/bridge-nf-call-iptables")


def _iptables_save(table: str) -> list[str]:
    if not shutil.which("iptables-save"):
        return []
    proc = subprocess.run(["iptables-save", "-t", table], capture_output=True, text=True)
    # chains as ":NAME" (their policy line carries packet counters), rules as iptables-save
    # writes them
    return [l.split()[0] if l.startswith(":") else l for l in proc.stdout.splitlines()
            if l.startswith((":", "-A "))]


class HostNetState:
    """What a client's networking may add to the host: links, iptables chains and rules,
    /run/netns entries, a few sysctls. `restore()` removes what was added since the snapshot
    (only that: what was there before stays) and puts changed sysctls back."""

    def __init__(self):
        self.links = self._links()
        self.iptables = {t: _iptables_save(t) for t in IPTABLES_TABLES}
        self.netns = self._netns()
        self.sysctls = {k: self._sysctl(k) for k in SYSCTLS}

    @staticmethod
    def _links() -> set[str]:
        return {p.name for p in Path("/sys/class/net").iterdir()}

    @staticmethod
    def _netns() -> set[str]:
        d = Path("/run/netns")
        return {p.name for p in d.iterdir()} if d.is_dir() else set()

    @staticmethod
    def _sysctl(key: str) -> str | None:
        try:
            return Path("/proc/sys", key).read_text().strip()
        except OSError:
            return None

    def added(self) -> dict:
        now = HostNetState()
        return {
            "links": sorted(now.links - self.links),
            "iptables": {t: [l for l in now.iptables[t] if l not in self.iptables[t]]
                         for t in IPTABLES_TABLES},
            "netns": sorted(now.netns - self.netns),
            "sysctls": {k: (self.sysctls[k], v) for k, v in now.sysctls.items()
                        if v != self.sysctls[k]},
        }

    def restore(self, links=(), iptables=(), netns=()) -> dict:
        """Undo what was added since the snapshot and matches the given prefixes of link names,
        substrings of iptables lines and prefixes of /run/netns names (only what the client
        under test makes: a concurrent user's additions stay); put changed sysctls back.
        Returns what was added (for a report)."""
        added = self.added()
        for name in added["netns"]:
            if not name.startswith(tuple(netns)):
                continue
            path = Path("/run/netns") / name
            subprocess.run(["umount", "-l", str(path)], capture_output=True)
            try:
                path.unlink()
            except OSError:
                pass
        for link in added["links"]:
            if link.startswith(tuple(links)):
                subprocess.run(["ip", "link", "delete", link], capture_output=True)
        for table in IPTABLES_TABLES:
            lines = [l for l in added["iptables"][table] if any(m in l for m in iptables)]
            for line in (l for l in lines if l.startswith("-A ")):
                rule = shlex.split(line)
                subprocess.run(["iptables", "-w", "-t", table, "-D", *rule[1:]],
                               capture_output=True)
            for line in (l for l in lines if l.startswith(":")):
                subprocess.run(["iptables", "-w", "-t", table, "-F", line[1:]],
                               capture_output=True)
            for line in (l for l in lines if l.startswith(":")):
                subprocess.run(["iptables", "-w", "-t", table, "-X", line[1:]],
                               capture_output=True)
        for key, (before, _) in added["sysctls"].items():
            if before is not None:
                try:
                    Path("/proc/sys", key).write_text(before + "\n")
                except OSError:
                    pass
        return added


# --------------------------------------------------------------------------------------------
# A private containerd 1.6 (for ctr, and under dockerd)

CONTAINERD_CONFIG = """version = 2
root = "{base}/root"
state = "{base}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]

[grpc]
  address = "{base}/c.sock"

[ttrpc]
  address = "{base}/c.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{base}/opt"
"""


class Containerd:
    """A private containerd daemon (own root, state, sockets, no CRI); `ctr(...)` talks to it in
    `namespace`. Shim sockets still go to /run/containerd/s (containerd 1.6 hard-codes that
    directory): stop() removes the ones of its own shims."""

    def __init__(self, base: Path, namespace: str | None = None):
        self.base = base
        self.sock = base / "c.sock"
        self.namespace = namespace or f"hwtest-{os.urandom(4).hex()}"
        self.image = "docker.io/library/hawser-busybox:test"
        self.runc_root = base / "runc-root"
        self.fifo_dir = base / "fifo"
        self.proc: subprocess.Popen | None = None
        self.log = base / "containerd.log"

    @property
    def task_dir(self) -> Path:
        return self.base / "state" / "io.containerd.runtime.v2.task" / self.namespace

    def start(self) -> None:
        if not shutil.which("containerd") or not shutil.which("ctr"):
            pytest.fail("containerd is not installed: run `make install`")
        config = self.base / "config.toml"
        config.write_text(CONTAINERD_CONFIG.format(base=self.base))
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(["containerd", "--config", str(config)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"containerd exited {self.proc.returncode}:\n"
                                     f"{self.log.read_text()[-3000:]}")
            if self.sock.exists() and self.ctr("version", check=False, timeout=10).returncode == 0:
                return
            time.sleep(0.05)
        raise AssertionError(f"containerd did not come up:\n{self.log.read_text()[-3000:]}")

    def ctr_cmd(self, *args) -> list[str]:
        return ["ctr", "--address", str(self.sock), "--namespace", self.namespace,
                *map(str, args)]

    def ctr(self, *args, check=True, timeout=120) -> subprocess.CompletedProcess:
        proc = subprocess.run(self.ctr_cmd(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)
        if check and proc.returncode != 0:
            raise AssertionError(f"ctr {shlex.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def run_flags(self, binary: str) -> list[str]:
        return ["--fifo-dir", str(self.fifo_dir), "--runc-binary", binary,
                "--runc-root", str(self.runc_root)]

    def ids(self, what: str) -> list[str]:
        proc = self.ctr(what, "ls", "--quiet", check=False, timeout=30)
        return proc.stdout.split() if proc.returncode == 0 else []

    def tasks(self) -> dict[str, tuple[int, str]]:
        """id -> (pid, STATUS) from `ctr task ls`."""
        out = {}
        for line in self.ctr("tasks", "ls").stdout.splitlines()[1:]:
            fields = line.split()
            if len(fields) >= 3:
                out[fields[0]] = (int(fields[1]), fields[2])
        return out

    def shim_pids(self) -> dict[int, Path]:
        """pid -> task dir, from the shim.pid files under our namespace's task state."""
        pids = {}
        if self.task_dir.is_dir():
            for f in self.task_dir.glob("*/shim.pid"):
                try:
                    pids[int(f.read_text().strip())] = f.parent
                except (OSError, ValueError):
                    pass
        return pids

    def shim_sockets(self) -> list[Path]:
        out = []
        if self.task_dir.is_dir():
            for f in self.task_dir.glob("*/address"):
                try:
                    address = f.read_text().strip()
                except OSError:
                    continue
                if address.startswith("unix://"):
                    out.append(Path(address[len("unix://"):]))
        return out

    def stop(self, clean=True) -> None:
        if self.proc is None:
            return
        if clean and self.proc.poll() is None:
            for cid in self.ids("tasks"):
                self.ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False, timeout=30)
                self.ctr("tasks", "delete", "--force", cid, check=False, timeout=30)
            for cid in self.ids("containers"):
                self.ctr("containers", "delete", cid, check=False, timeout=30)
            self.ctr("images", "remove", self.image, check=False, timeout=30)
        shims = self.shim_pids()
        sockets = self.shim_sockets()
        stop_process(self.proc)
        for pid in shims:    # only the shims this daemon started, identified by their pid files
            if "containerd-shim" in pid_cmdline(pid) and str(self.sock) in pid_cmdline(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for sock in sockets:
            if sock.parent == Path("/run/containerd/s"):
                try:
                    sock.unlink()
                except FileNotFoundError:
                    pass
        unmount_under(self.base)


def ctr_fail(what: str, proc, cap: Captured, ctd: Containerd) -> str:
    try:
        log = [l for l in ctd.log.read_text().splitlines() if "level=error" in l
               or "level=warning" in l][-10:]
    except OSError:
        log = []
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            f"runtime calls:\n{cap.text()}\ncontainerd log (errors, warnings):\n" + "\n".join(log))
