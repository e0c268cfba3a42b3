"""`process.terminal: true` with --console-socket, as containerd and podman use it: the test listens
on a unix socket, hawser sends the pty master over it (SCM_RIGHTS, the pty's name as the message),
and the test drives an interactive busybox shell through the master."""
from __future__ import annotations

import fcntl
import os
import re
import select
import socket
import struct
import subprocess
import termios
import time
import uuid

import pytest

from leaks import LeakCheck, run_hawser

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def new_id(prefix: str = "tty") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def console_socket(tmp_path):
    path = tmp_path / "console.sock"
    assert len(str(path)) < 108
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(15)
    yield srv, path
    srv.close()


def terminal_bundle(make_bundle, args=("sh",), size=None):
    b = make_bundle(args=list(args), terminal=True)
    if size:
        b.process["consoleSize"] = {"height": size[0], "width": size[1]}
    return b.write()


class Console:
    """Runs a hawser command that takes --console-socket, receives the pty master."""

    def __init__(self, hawser, srv, path, tmp_path, *args):
        self.out = open(tmp_path / "hawser.out", "w+")
        self.err = open(tmp_path / "hawser.err", "w+")
        self.proc = subprocess.Popen(hawser.cmd(*args[:1], "--console-socket", path, *args[1:]),
                                     stdin=subprocess.DEVNULL, stdout=self.out, stderr=self.err)
        self.master = None
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            self.proc.kill()
            self.proc.wait()
            self.err.seek(0)
            raise AssertionError(f"hawser never connected to the console socket: {self.err.read()}")
        with conn:
            conn.settimeout(15)
            self.name, fds, _, _ = socket.recv_fds(conn, 4096, 4)
        self.fds = fds
        self.master = fds[0] if fds else None
        self.returncode = self.proc.wait(timeout=30)
        self.err.seek(0)
        self.stderr = self.err.read()

    def write(self, text: str) -> None:
        os.write(self.master, text.encode())

    def read_all(self, timeout: float = 15) -> str:
        """Everything until the slave side is closed by the last process (EIO) or a timeout."""
        out = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.master], [], [], 0.2)
            if not ready:
                continue
            try:
                data = os.read(self.master, 4096)
            except OSError:  # EIO: no slave open any more
                break
            if not data:
                break
            out += data
        return out.decode(errors="replace").replace("\r\n", "\n")

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        self.out.close()
        self.err.close()


def test_console_socket_with_create_and_start(hawser, make_bundle, console_socket, tmp_path):
    srv, path = console_socket
    b = terminal_bundle(make_bundle)
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "create", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        assert re.fullmatch(rb"/dev/pts/\d+", c.name), c.name
        assert len(c.fds) == 1
        assert os.isatty(c.master)
        hawser("start", cid)
        c.write("echo hello; tty; [ -t 0 ] && [ -t 1 ] && [ -t 2 ] && echo stdio-is-tty; exit\n")
        out = c.read_all()
    finally:
        c.close()
    lines = out.splitlines()
    assert "hello" in lines, out
    assert "/dev/pts/0" in lines, out
    assert "stdio-is-tty" in lines, out


def test_console_is_the_controlling_terminal(hawser, make_bundle, console_socket, tmp_path):
    srv, path = console_socket
    # stat: pid (comm) state ppid pgrp session tty_nr ...; /dev/tty only opens for a process
    # that has a controlling terminal.
    script = ("set -- $(cat /proc/$$/stat); echo \"session=$6 tty=$7\"; "
              "stat -c 'pts=%t:%T' /dev/pts/0; echo probe > /dev/tty && echo devtty-ok")
    b = terminal_bundle(make_bundle, args=("sh", "-c", script))
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "create", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        hawser("start", cid)
        out = c.read_all()
    finally:
        c.close()
    fields = dict(re.findall(r"(\w+)=(\S+)", out))
    assert fields["session"] == "1", out  # init is the session leader...
    major, minor = (int(x, 16) for x in fields["pts"].split(":"))
    assert int(fields["tty"]) == os.makedev(major, minor) != 0, out  # ...of the pty's session
    assert "devtty-ok" in out


def test_console_belongs_to_a_non_root_user(hawser, make_bundle, console_socket, tmp_path):
    srv, path = console_socket
    b = terminal_bundle(make_bundle, args=("sh", "-c", "id -u; stat -c '%u' $(tty); tty"))
    b.process["user"] = {"uid": 1000, "gid": 1000}
    b.write()
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "create", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        hawser("start", cid)
        out = c.read_all()
    finally:
        c.close()
    assert out.split() == ["1000", "1000", "/dev/pts/0"]


def test_dev_console_is_the_pty(hawser, make_bundle, console_socket, tmp_path):
    """runtime-spec, config-linux "Default Devices": "/dev/console is set up if terminal is
    enabled in the config by bind mounting the pseudoterminal pty to /dev/console" (runc does)."""
    srv, path = console_socket
    script = ("stat -c 'console=%t:%T' /dev/console; stat -c 'tty=%t:%T' $(tty); "
              "grep -c ' /dev/console ' /proc/self/mountinfo; echo via-console > /dev/console")
    b = terminal_bundle(make_bundle, args=("sh", "-c", script))
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "create", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        hawser("start", cid)
        out = c.read_all()
    finally:
        c.close()
    fields = dict(re.findall(r"(\w+)=(\S+)", out))
    assert "console" in fields, out
    assert fields["console"] == fields["tty"], out
    assert "via-console" in out.splitlines()


def test_console_size(hawser, make_bundle, console_socket, tmp_path):
    srv, path = console_socket
    b = terminal_bundle(make_bundle, args=("sh", "-c", "stty size"), size=(30, 100))
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "create", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(c.master, termios.TIOCGWINSZ,
                                                             b"\0" * 8))
        assert (rows, cols) == (30, 100)
        hawser("start", cid)
        out = c.read_all()
    finally:
        c.close()
    assert out.strip() == "30 100"


def test_console_with_run_detached(hawser, make_bundle, console_socket, tmp_path):
    srv, path = console_socket
    b = terminal_bundle(make_bundle)
    cid = new_id()
    c = Console(hawser, srv, path, tmp_path, "run", "-d", "--bundle", b.path, cid)
    try:
        assert c.returncode == 0, c.stderr
        assert re.fullmatch(rb"/dev/pts/\d+", c.name), c.name
        assert hawser.state(cid)["status"] == "running"
        c.write("echo detached-$((40+2)); tty; exit\n")
        out = c.read_all()
    finally:
        c.close()
    assert "detached-42" in out.splitlines()
    assert "/dev/pts/0" in out.splitlines()
    deadline = time.monotonic() + 10
    while hawser.state(cid)["status"] != "stopped":
        assert time.monotonic() < deadline, "the container did not stop after `exit`"
        time.sleep(0.02)
    hawser("delete", cid)


def test_terminal_and_console_socket_must_go_together(hawser, make_bundle, console_socket):
    _, path = console_socket
    no_tty = make_bundle(args=["true"])
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[no_tty.path]):
        r = run_hawser(hawser.cmd("create", "--console-socket", path, "--bundle", no_tty.path, cid))
        assert r.returncode != 0
        assert "terminal" in r.stderr, r
    tty = terminal_bundle(make_bundle, args=("true",))
    cid = new_id()
    with LeakCheck(hawser.root, cid, watch=[tty.path]):
        r = run_hawser(hawser.cmd("create", "--bundle", tty.path, cid))
        assert r.returncode != 0
        assert "console-socket" in r.stderr, r
    assert hawser.ids() == []
