"""Network namespaces, names and host state of a test's own, all removed at the end.

A namespace is made by `unshare --net` running a `sleep` of the test's (it holds the namespace)
and bind-mounted on a file under the test's tmp dir (the path hawserd's code is given, as it
would be given a /proc/PID/ns/net or a /run/netns file). Commands run in it through nsenter.
Every name starts with PREFIX and a random part, so tests running at the same time (and other
engineers' tests) never meet; only the holder's PID is ever killed.
"""
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

PREFIX = "hwt"
SERVER = r"""
import socket, sys
tag, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
s = socket.socket(socket.AF_INET, kind)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", port))
if proto == "tcp":
    s.listen(16)
print("ready", flush=True)
while True:
    if proto == "tcp":
        c, peer = s.accept()
        c.sendall(f"{tag} {peer[0]}\n".encode())
        c.close()
    else:
        data, peer = s.recvfrom(100)
        s.sendto(f"{tag} {peer[0]}\n".encode(), peer)
"""
CLIENT = r"""
import socket, sys
host, port, proto = sys.argv[1], int(sys.argv[2]), sys.argv[3]
try:
    if proto == "tcp":
        s = socket.create_connection((host, port), timeout=3)
        print(s.makefile().readline().strip())
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(3)
        s.sendto(b"hi", (host, port))
        print(s.recv(100).decode().strip())
except OSError as e:
    print(f"error {e}")
"""


def unique(kind: str = "") -> str:
    """A fresh name of the test's own (short enough for an interface: at most 15 bytes)."""
    return f"{PREFIX}{kind}{secrets.token_hex(3)}"


def links() -> set[str]:
    """The host namespace's interface names."""
    return set(os.listdir("/sys/class/net"))


class TestNetns:
    """A network namespace of the test's own (see the module's docstring)."""
    __test__ = False  # not a test class, for pytest

    def __init__(self, directory: Path):
        self.holder = subprocess.Popen(["unshare", "--net", "--", "sleep", "infinity"],
                                       stdin=subprocess.DEVNULL)
        self.proc_path = f"/proc/{self.holder.pid}/ns/net"
        self.path = str(directory / unique("ns"))
        self.servers: list[subprocess.Popen] = []
        mine = os.stat("/proc/self/ns/net").st_ino
        deadline = time.monotonic() + 5
        while os.stat(self.proc_path).st_ino == mine:  # until unshare has made it
            if time.monotonic() > deadline or self.holder.poll() is not None:
                self.close()
                raise RuntimeError("unshare --net did not make a namespace")
            time.sleep(0.002)
        Path(self.path).touch()
        subprocess.run(["mount", "--bind", self.proc_path, self.path], check=True)

    def run(self, *cmd: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run(["nsenter", f"--net={self.path}", "--", *cmd], check=check,
                              capture_output=True, text=True, timeout=30)

    def serve(self, tag: str, port: int, proto: str = "tcp") -> subprocess.Popen:
        """A server in the namespace on 0.0.0.0:port that answers '<tag> <peer address>'."""
        proc = subprocess.Popen(["nsenter", f"--net={self.path}", "--", sys.executable, "-I",
                                 "-c", SERVER, tag, str(port), proto],
                                stdout=subprocess.PIPE, text=True)
        self.servers.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    def connect(self, host: str, port: int, proto: str = "tcp") -> str:
        """What a client in the namespace gets from host:port ('error ...' if it fails)."""
        return self.run(sys.executable, "-I", "-c", CLIENT, host, str(port), proto).stdout.strip()

    def close(self) -> None:
        for proc in self.servers:
            proc.kill()
            proc.wait()
            proc.stdout.close()
        if os.path.ismount(self.path):
            subprocess.run(["umount", self.path], check=False)
        if os.path.exists(self.path):
            os.unlink(self.path)
        self.holder.kill()  # by its PID: the sleep this test started
        self.holder.wait()


def connect_from_host(host: str, port: int, proto: str = "tcp") -> str:
    """What a client in the host's namespace (a subprocess) gets from host:port."""
    return subprocess.run([sys.executable, "-I", "-c", CLIENT, host, str(port), proto],
                          capture_output=True, text=True, timeout=30).stdout.strip()


@pytest.fixture
def make_netns(tmp_path, link_prefix):
    """make_netns() -> a new TestNetns; all of them removed when the test ends (before
    link_prefix's check: the veths in them go with them)."""
    made: list[TestNetns] = []

    def make() -> TestNetns:
        ns = TestNetns(tmp_path)
        made.append(ns)
        return ns
    yield make
    for ns in made:
        ns.close()


class HostSysctl:
    """A host sysctl recorded now and put back by restore() (only if it was changed)."""

    def __init__(self, key: str):
        self.path = Path("/proc/sys") / key.replace(".", "/")
        self.before = self.path.read_text().strip()

    def restore(self) -> None:
        if self.path.read_text().strip() != self.before:
            self.path.write_text(self.before + "\n")


@pytest.fixture
def ip_forward():
    """net.ipv4.ip_forward recorded and restored (nat.ensure_table sets it to 1)."""
    saved = HostSysctl("net/ipv4/ip_forward")
    yield saved
    saved.restore()


@pytest.fixture
def link_prefix():
    """A prefix for the host interfaces this test makes (its bridges, and attach's veths via
    veth_prefix): the test fails if one is left at the end, and it is removed then, so the
    next test starts clean."""
    prefix = f"{PREFIX}{secrets.token_hex(2)}"
    yield prefix
    # A closed namespace is dismantled by the kernel a little later (cleanup_net runs in a
    # workqueue): the host ends of its veths go then.
    deadline = time.monotonic() + 10
    while (left := sorted(n for n in links() if n.startswith(prefix))) and \
            time.monotonic() < deadline:
        time.sleep(0.02)
    for name in left:
        subprocess.run(["ip", "link", "delete", name], capture_output=True)
    assert not left, f"interfaces left behind: {left}"


def free_port() -> int:
    """A TCP/UDP port nothing on the host is bound to at the moment (the kernel's choice)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
