"""Review findings (robustness: races, crashes mid-operation, compatibility): each test is named
after a bug and fails until it is fixed. Real busybox containers through the conftest fixtures."""
from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import termios
import time
import uuid
from pathlib import Path

import pytest

from leaks import cgroup_dirs
from waits import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")


def new_id(prefix: str = "rv") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def detached(hawser, *args, timeout=30):
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        p = subprocess.run(hawser.cmd(*args), stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                           timeout=timeout)
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())


def status(hawser, cid) -> str | None:
    p = hawser("state", cid, check=False)
    return json.loads(p.stdout)["status"] if p.returncode == 0 else None


# --- 1. foreground `run` deletes whatever container has its id when its own one ends ------------

def test_run_deletes_a_same_id_container_created_while_it_waited(hawser, make_bundle, tmp_path):
    """run.run() unlocks while it waits and, once its init is gone, re-locks <root>/<id> and calls
    delete_container() with the state it loaded at create. If its container was deleted meanwhile
    (delete --force from an orchestrator) and a new one created with the same id, `run` kills the
    new container's processes (same default cgroup /hawser/<id>) and removes its state.
    SIGSTOP on `run` makes the interleaving deterministic."""
    cid = new_id()
    b1 = make_bundle(args=["sleep", "1000"])
    with open(tmp_path / "run.out", "w") as out:
        run = subprocess.Popen(hawser.cmd("run", "--bundle", str(b1.path), cid),
                               stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    try:
        wait_for(lambda: status(hawser, cid) == "running", what="the first container")
        os.kill(run.pid, signal.SIGSTOP)
        try:
            hawser("delete", "--force", cid)
            b2 = make_bundle(args=["sleep", "1000"])
            r = detached(hawser, "run", "-d", "--bundle", str(b2.path), cid)
            assert r.returncode == 0, r.stderr
            assert status(hawser, cid) == "running"
        finally:
            os.kill(run.pid, signal.SIGCONT)
        run.wait(timeout=30)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
    assert status(hawser, cid) == "running", \
        "the foreground `run` of the first container deleted the second one"


# --- 2. a create killed before state.json exists leaves an id nothing can remove --------------

def test_a_killed_create_is_removed_by_delete_force(hawser, make_bundle, tmp_path):
    """A `hawser create` killed mid-way (the OOM killer, a caller's timeout) must leave a record
    that `delete --force` (what containerd runs then) removes with whatever was made, so that the
    id can be created again. Here create is held in connect() to a console socket whose backlog
    is full, after it claimed the id, then SIGKILLed."""
    path = str(tmp_path / "c.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(0)
    filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    filler.connect(path)  # the backlog (0 -> 1 pending) is now full: the next connect blocks
    cid = new_id()
    b = make_bundle(args=["sh"], terminal=True)
    state_dir = hawser.root / cid
    try:
        with open(tmp_path / "create.err", "w") as err:
            p = subprocess.Popen(hawser.cmd("create", "--console-socket", path, "--bundle",
                                            str(b.path), cid),
                                 stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        wait_for(lambda: (state_dir / "state.json").is_file(), what="create to claim the id")
        time.sleep(0.3)
        assert p.poll() is None, (tmp_path / "create.err").read_text()
        p.kill()
        p.wait()
        d = hawser("delete", "--force", cid, check=False)
        left = ([str(state_dir)] if state_dir.exists() else []) + cgroup_dirs(cid)
        again = detached(hawser, "create", "--bundle", str(make_bundle(args=["true"]).path), cid)
        assert not left and again.returncode == 0, \
            f"delete --force exited {d.returncode} but left {left}; create again: {again.stderr}"
    finally:
        filler.close()
        srv.close()
        subprocess.run(hawser.cmd("delete", "--force", cid), capture_output=True)
        shutil.rmtree(state_dir, ignore_errors=True)
        for c in cgroup_dirs(cid):
            try:
                os.rmdir(c)
            except OSError:
                pass


# --- 3. relative bind-mount sources are resolved against the caller's cwd, not the bundle --------

def test_relative_bind_source_is_resolved_against_the_bundle(hawser, make_bundle, tmp_path):
    """runc resolves a relative mount source against the bundle (it chdir()s there); hawser's init
    stat()s and mounts it relative to whatever cwd the caller had: `hawser run --bundle B` from
    another directory fails, or binds a different host directory of the same name."""
    b = make_bundle(args=["cat", "/mnt/data/file"])
    (b.path / "data").mkdir()
    (b.path / "data" / "file").write_text("from the bundle\n")
    b.config["mounts"].append({"destination": "/mnt/data", "type": "bind", "source": "data",
                               "options": ["rbind", "ro"]})
    b.write()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    (elsewhere / "data" / "file").write_text("from the caller's cwd\n")
    p = hawser("run", "--bundle", str(b.path), new_id(), check=False, cwd=str(elsewhere),
               stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    assert p.stdout == "from the bundle\n"


# --- 4. `run` with its own terminal relay drops window-size changes -------------------------------

def test_run_terminal_relay_loses_window_resizes(hawser, make_bundle, tmp_path):
    """relay_console() installs a SIGWINCH handler that copies our terminal's size to the pty, then
    calls wait_init(), which installs `forward` for every signal in FORWARDED - SIGWINCH (28)
    included - replacing it. A resize of the user's terminal is then forwarded to the container
    as a bare signal while the container's pty keeps its old size."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    b = make_bundle(args=["sh", "-c", "stty size; sleep 1.5; stty size"], terminal=True)
    run = subprocess.Popen(hawser.cmd("run", "--bundle", str(b.path), new_id()),
                           stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        resized = False
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not resized and b"24 80" in out:
                fcntl.ioctl(master, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 132, 0, 0))
                os.kill(run.pid, signal.SIGWINCH)  # what the terminal does to its foreground
                resized = True
            if run.poll() is not None and not ready:
                break
        run.wait(timeout=20)
    finally:
        if run.poll() is None:
            run.kill()
            run.wait()
        os.close(master)
    text = out.decode(errors="replace")
    assert "24 80" in text, text
    assert "50 132" in text, f"the container never saw the new size: {text!r}"


# --- 5. a `start` killed after init's execve leaves the container "created" forever -------------

def test_start_killed_after_exec_leaves_running_container_created(hawser, make_bundle, tmp_path):
    """start_container() unlinks start.sock only after init's execve (EOF); status() says
    "created" while start.sock exists. A `hawser start` killed while init runs its
    startContainer hooks leaves a running container reported as "created": a second start fails
    (connection refused) and `delete` without --force kills the running container."""
    hook = tmp_path / "slow-hook"
    hook.write_text("#!/bin/sh\nsleep 1\n")
    hook.chmod(0o755)
    b = make_bundle(args=["sleep", "1000"])
    # the hook runs inside the container: put a copy of itself in the rootfs
    shutil.copy(hook, b.rootfs / "slow-hook")
    b.config.setdefault("hooks", {})["startContainer"] = [{"path": "/slow-hook"}]
    b.write()
    cid = new_id()
    r = detached(hawser, "create", "--bundle", str(b.path), cid)
    assert r.returncode == 0, r.stderr
    pid = hawser.state(cid)["pid"]
    start = subprocess.Popen(hawser.cmd("start", cid), stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # init is in its startContainer hook
    start.kill()
    start.wait()
    wait_for(lambda: Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"),
             what="the container's program to run")
    assert hawser.state(cid)["status"] == "running"
