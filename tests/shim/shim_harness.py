"""Harness of the shim tests: a containerd-shim-hawser-v2 driven directly through shim.ttrpc
(no containerd), an events sink standing in for containerd's ttrpc events service, FIFOs read
like ctr reads them, and clean-up of everything a shim made (its process, its socket under
/run/containerd/s, its state directory, the runtime's containers and root)."""
from __future__ import annotations

import _socket
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shim import cli, ttrpc, wire  # noqa: E402
from shim.proto.schema import SERVICES  # noqa: E402

SHIM = str(REPO / ".venv" / "bin" / "containerd-shim-hawser-v2")
HAWSER = str(REPO / ".venv" / "bin" / "hawser")
TASK = "containerd.task.v2.Task"
EVENTS = "containerd.services.events.ttrpc.v1.Events"
task = wire.package("containerd.task.v2")
events = wire.package("containerd.events")
Empty = wire.message("google.protobuf.Empty")


def short_tempdir(prefix: str) -> Path:
    """unix socket paths are limited to 108 bytes: pytest's tmp_path may be too long."""
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


class EventSink:
    """containerd's events service as far as a shim sees it: Forward, recorded in order."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.events: list[tuple[str, str, object]] = []
        self.cond = threading.Condition()
        self.server = ttrpc.Server()
        self.server.register(EVENTS, self)
        sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
        sock.bind(self.path)
        sock.listen(16)
        threading.Thread(target=self.server.serve, args=(sock,), daemon=True).start()

    def Forward(self, req):
        env = req.envelope
        name = wire.any_name(env.event)
        with self.cond:
            self.events.append((env.topic, env.namespace, wire.message(name).decode(
                env.event.value)))
            self.cond.notify_all()
        return Empty()

    def topics(self, cid: str | None = None) -> list[str]:
        with self.cond:
            return [t for t, _, e in self.events if cid is None or e.container_id == cid]

    def wait_for(self, topic: str, timeout: float = 10, pred=lambda e: True):
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, _, e in self.events:
                    if t == topic and pred(e):
                        return e
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {topic} event within {timeout}s: {self.events}")
                self.cond.wait(left)

    def close(self):
        self.server.shutdown()


class Shim:
    """One shim daemon started with `start`, as containerd starts it."""

    def __init__(self, bundle: Path, cid: str, namespace: str, address: str,
                 ttrpc_address: str | None, publish_binary: str = "/bin/false"):
        self.bundle, self.id, self.namespace, self.address = bundle, cid, namespace, address
        self.ttrpc_address, self.publish_binary = ttrpc_address, publish_binary
        self.client = None
        self.pid = None
        self.socket = None

    def flags(self) -> list[str]:
        return [SHIM, "-namespace", self.namespace, "-address", self.address, "-publish-binary",
                self.publish_binary, "-id", self.id]

    def env(self) -> dict:
        env = dict(os.environ)
        env.pop("TTRPC_ADDRESS", None)
        if self.ttrpc_address:
            env["TTRPC_ADDRESS"] = self.ttrpc_address
        return env

    def start(self) -> str:
        proc = subprocess.run(self.flags() + ["start"], cwd=self.bundle, env=self.env(),
                              capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        assert proc.returncode == 0 and proc.stdout.startswith("unix://"), proc
        self.socket = proc.stdout[len("unix://"):]
        self.client = ttrpc.Client(proc.stdout)
        self.pid = self.call("Connect", id=self.id).shim_pid
        return proc.stdout

    def delete_command(self) -> tuple[subprocess.CompletedProcess, object]:
        proc = subprocess.run(self.flags() + ["-bundle", str(self.bundle), "delete"],
                              cwd=self.bundle, env=self.env(), capture_output=True, timeout=60,
                              stdin=subprocess.DEVNULL)
        resp = task.DeleteResponse.decode(proc.stdout) if proc.returncode == 0 else None
        return proc, resp

    def call(self, method: str, timeout: float = 30, **fields):
        req, resp = SERVICES[TASK][method]
        return self.client.call(TASK, method, wire.message(req)(**fields), wire.message(resp),
                                timeout=timeout)

    def error(self, method: str, **fields) -> ttrpc.Error:
        try:
            self.call(method, **fields)
        except ttrpc.Error as e:
            return e
        raise AssertionError(f"{method}({fields}) succeeded")

    @property
    def state_dir(self) -> str:
        return cli.state_dir(self.address, self.namespace, self.id)

    @property
    def runtime_root(self) -> str:
        return f"/run/containerd/hawser/{self.namespace}"

    def runtime_containers(self) -> list[str]:
        """The ids in the runtime's root (its dot-files are caches)."""
        root = self.runtime_root
        return sorted(x for x in os.listdir(root) if not x.startswith(".")) \
            if os.path.isdir(root) else []

    def alive(self) -> bool:
        if not self.pid:
            return False
        try:
            with open(f"/proc/{self.pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    def wait_gone(self, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.02)
        return False

    def kill(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGKILL)
            self.wait_gone()

    def cleanup(self) -> None:
        """Whatever a test left: the daemon (by its pid), the runtime's containers, the socket,
        the state directory, the bundle's rootfs mounts."""
        if self.client is not None:
            self.client.close()
        self.kill()
        root = self.runtime_root
        if os.path.isdir(root):
            for cid in os.listdir(root):
                if not cid.startswith("."):
                    subprocess.run([HAWSER, "--root", root, "delete", "--force", cid],
                                   capture_output=True, timeout=60)
            shutil.rmtree(root, ignore_errors=True)
        if self.socket and os.path.dirname(self.socket) == cli.SOCKET_DIR:
            try:
                os.unlink(self.socket)
            except FileNotFoundError:
                pass
        shutil.rmtree(self.state_dir, ignore_errors=True)


class Fifo:
    """A FIFO read (or written) by a thread, as ctr does with a task's stdio."""

    def __init__(self, path: Path, mode: str = "r"):
        self.path = path
        os.mkfifo(path)
        self.data = b""
        self.done = threading.Event()
        self.fd = None
        if mode == "r":
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:  # the test ended (and removed its dir) before anyone wrote
            self.done.set()
            return
        try:
            while chunk := os.read(fd, 65536):
                self.data += chunk
        finally:
            os.close(fd)
            self.done.set()

    def text(self, timeout: float = 10) -> str:
        """Everything written, once the last writer has closed (EOF)."""
        assert self.done.wait(timeout), f"no EOF on {self.path}; so far {self.data!r}"
        return self.data.decode(errors="replace")

    def open_writer(self):
        self.fd = os.open(self.path, os.O_WRONLY)
        return self.fd

    def write(self, data: bytes):
        os.write(self.fd, data)

    def close_writer(self):
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def zombie_children(pid: int) -> list[tuple[int, str]]:
    return [(p, name) for p, ppid, state, name in children(pid) if state == "Z"]


def children(pid: int) -> list[tuple[int, int, str, str]]:
    """(pid, ppid, state, comm) of the processes whose parent is pid."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.index("(") + 1:stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append((int(entry), pid, fields[0], name))
    return out


def rss_kib(pid: int) -> tuple[int, int]:
    """(RSS, PSS) of pid in KiB."""
    with open(f"/proc/{pid}/status") as f:
        rss = int(f.read().split("VmRSS:")[1].split()[0])
    with open(f"/proc/{pid}/smaps_rollup") as f:
        pss = int(f.read().split("Pss:")[1].split()[0])
    return rss, pss
