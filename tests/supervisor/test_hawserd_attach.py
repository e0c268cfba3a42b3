"""Live sessions through hawserd: `run -it` / `exec -it` from a real terminal (a pty the test
types into, reads and resizes), `run -i` with piped stdin, `start -a`, `attach`, and the errors
of Tasks.Attach."""
from __future__ import annotations

import fcntl
import signal
import struct
import subprocess
import termios

import grpc
import pytest

from clients_harness import PtyProcess, expect_size, pty_conversation
from hawserd_harness import HAWSERCTL, wait_until


def ctl_argv(hawserd, *args) -> list[str]:
    return [HAWSERCTL, "--address", hawserd.address, *map(str, args)]


def resize(term: PtyProcess, rows: int, cols: int) -> None:
    """The window of the client's terminal changes: the kernel sends it SIGWINCH."""
    fcntl.ioctl(term.fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def converse_and_resize(term: PtyProcess) -> None:
    """pty_conversation after a resize of the client's window, checked inside the container."""
    term.expect(r"[#$] ")
    resize(term, 24, 77)
    expect_size(term, 24, 77)
    resize(term, 37, 101)
    pty_conversation(term)


def test_run_it_from_a_terminal(hawserd, busybox_rootfs):
    term = PtyProcess(ctl_argv(hawserd, "run", "-it", "--name", "tty", "--rootfs",
                               busybox_rootfs, "sh"))
    try:
        converse_and_resize(term)
        assert term.wait() == 5, term.text()
    finally:
        term.close()
    c = hawserd.info("tty")
    assert c["status"] == "exited" and c["exit_status"] == 5
    # the session is in the container's log too, as the terminal wrote it
    assert "answer=42" in hawserd.ctl("logs", "tty").stdout


def test_run_it_rm_removes_the_container(hawserd, busybox_rootfs):
    term = PtyProcess(ctl_argv(hawserd, "run", "-it", "--rm", "--name", "gone", "--rootfs",
                               busybox_rootfs, "sh"))
    try:
        pty_conversation(term)
        assert term.wait() == 5, term.text()
    finally:
        term.close()
    assert hawserd.ctl("ps", "-a", "-q").stdout == ""


def test_exec_it_from_a_terminal(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "box", "--rootfs", busybox_rootfs, "sleep", "1000")
    term = PtyProcess(ctl_argv(hawserd, "exec", "-it", "box", "sh"))
    try:
        converse_and_resize(term)
        assert term.wait() == 5, term.text()
    finally:
        term.close()
    assert hawserd.info("box")["status"] == "running"


def test_run_i_pipes_stdin_and_closes_it(hawserd, busybox_rootfs):
    """Without a terminal: stdin reaches the process, our EOF is its EOF, and stdout and
    stderr stay apart; the exit code is the container's."""
    p = hawserd.ctl("run", "-i", "--rm", "--rootfs", busybox_rootfs, "sh", "-c",
                    "wc -l; echo to-err >&2; exit 3", input="a\nb\nc\n", check=False)
    assert (p.returncode, p.stdout.strip(), p.stderr) == (3, "3", "to-err\n")


def test_run_without_i_gives_no_stdin(hawserd, busybox_rootfs):
    p = hawserd.ctl("run", "--rm", "--rootfs", busybox_rootfs, "sh", "-c", "cat; echo done",
                    input="not read\n")
    assert (p.returncode, p.stdout) == (0, "done\n")


def test_signals_to_an_attached_client_go_to_the_container(hawserd, busybox_rootfs):
    """docker's sig-proxy: ^C (SIGINT) to `run` without a terminal is the container's to handle;
    the client ends with the container's exit code."""
    p = subprocess.Popen(ctl_argv(hawserd, "run", "--rm", "--rootfs", busybox_rootfs, "sh", "-c",
                                  "trap 'echo got-int; exit 9' INT; echo ready; "
                                  "while true; do sleep 0.1; done"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "ready\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(20) == 9 and p.stdout.read() == "got-int\n"
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(10)
        p.stdout.close()


def test_start_a_and_attach(hawserd, busybox_rootfs):
    hawserd.ctl("create", "-i", "--name", "c", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo first; read x; echo got $x; exit 4")
    p = hawserd.ctl("start", "-a", "-i", "c", input="hello\n", check=False)
    assert (p.returncode, p.stdout) == (4, "first\ngot hello\n")
    # attach to a running container: its output from then on, our stdin to it
    hawserd.ctl("create", "-i", "--name", "d", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo ready; read x; echo got $x; exit 7")
    hawserd.ctl("start", "d")
    assert wait_until(lambda: hawserd.ctl("logs", "d").stdout == "ready\n", 10)
    p = hawserd.ctl("attach", "d", input="again\n", check=False)
    assert (p.returncode, p.stdout) == (7, "got again\n")


def test_attach_errors(hawserd, busybox_rootfs):
    p = hawserd.ctl("attach", "nosuch", check=False)
    assert p.returncode == 125 and "(NOT_FOUND)" in p.stderr
    hawserd.ctl("run", "--name", "done", "--rootfs", busybox_rootfs, "true")
    p = hawserd.ctl("attach", "done", check=False)
    assert p.returncode == 125 and "(FAILED_PRECONDITION)" in p.stderr and \
        "not running" in p.stderr
    hawserd.ctl("run", "-d", "--name", "busy", "--rootfs", busybox_rootfs, "sh", "-c",
                "while true; do echo tick; sleep 0.1; done")
    # stdin for a container created without -i, a resize without -t: refused by the daemon
    for extra, why in ((dict(stdin=b"x"), "create it with -i"),
                       (dict(width=80, height=24), "create it with -t")):
        with pytest.raises(grpc.RpcError) as err:
            list(attach_call(hawserd, "busy", extra))
        assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION and \
            why in err.value.details()
    # a client that goes away leaves the container running
    p = subprocess.Popen(ctl_argv(hawserd, "attach", "busy"), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE)
    try:
        assert p.stdout.readline() == b"tick\n"
        p.kill()
    finally:
        p.wait(10)
        p.stdout.close()
    assert hawserd.ctl("exec", "busy", "echo", "alive").stdout == "alive\n"


def attach_call(hawserd, cid: str, second: dict):
    """Tasks.Attach through grpcio directly: the first request, then `second`."""
    from supervisor.api import tasks_pb2, tasks_pb2_grpc
    channel = grpc.insecure_channel(hawserd.address)
    try:
        stub = tasks_pb2_grpc.TasksStub(channel)
        reqs = [tasks_pb2.AttachRequest(container_id=cid), tasks_pb2.AttachRequest(**second)]
        yield from stub.Attach(iter(reqs), timeout=20)
    finally:
        channel.close()
