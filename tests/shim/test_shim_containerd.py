"""containerd 1.6 itself runs containers through containerd-shim-hawser-v2
(`ctr run --runtime io.containerd.hawser.v2`): output and exit codes, a detached task driven with
`ctr task ls/ps/exec/pause/resume/kill/delete`, a terminal, events reaching containerd, a restart
of containerd while a task runs, and a shim killed with SIGKILL. Every scenario runs with hawser
(the shim's default runtime) and with runc (named by --runtime-config-path).

The daemon is private to this module (own root, state, sockets, no CRI), with .venv/bin first on
its PATH so that it finds the shim binary."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import pytest

from clients_harness import (Containerd, PtyProcess, pid_cmdline, pty_conversation, remove_cgroups,
                             stop_process)
from waits import wait_for
from images import write_oci_archive
from shim_harness import REPO, Shim, cli, short_tempdir

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
RUNTIME = "io.containerd.hawser.v2"
VENV_BIN = str(REPO / ".venv" / "bin")


def our_shims(ctd: Containerd) -> dict[int, str]:
    """pid -> cmdline of the hawser shims serving this containerd (found by its socket)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cmd = pid_cmdline(int(entry))
            if "containerd-shim-hawser-v2" in cmd and f"-address {ctd.sock} " in cmd:
                out[int(entry)] = cmd
    return out


def shim_of(ctd: Containerd, cid: str) -> int:
    pids = [pid for pid, cmd in our_shims(ctd).items() if f" -id {cid} " in cmd]
    assert len(pids) == 1, our_shims(ctd)
    return pids[0]


@pytest.fixture(scope="module")
def containerd(busybox_rootfs):
    base = short_tempdir("hwctd-")
    ctd = Containerd(base)
    path = os.environ["PATH"]
    os.environ["PATH"] = f"{VENV_BIN}:{path}"    # containerd looks the shim up on its PATH
    try:
        ctd.start()
    finally:
        os.environ["PATH"] = path
    (base / "runc.json").write_text(json.dumps({"binary_name": shutil.which("runc") or
                                                "/usr/sbin/runc"}))
    ctd.ids_seen = []
    try:
        archive = write_oci_archive(busybox_rootfs, base / "busybox-oci.tar", ctd.image)
        ctd.ctr("images", "import", "--all-platforms", archive)
        yield ctd
    finally:
        try:
            ctd.stop()
        finally:
            for pid in our_shims(ctd):    # identified by this daemon's private socket
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            for cid in ctd.ids_seen:
                sock = cli.socket_address(str(ctd.sock), ctd.namespace, cid)[len("unix://"):]
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(sock)
                shutil.rmtree(cli.state_dir(str(ctd.sock), ctd.namespace, cid),
                              ignore_errors=True)
            root = Path(f"/run/containerd/hawser/{ctd.namespace}")
            if root.is_dir():
                for cid in os.listdir(root):
                    if not cid.startswith("."):
                        subprocess.run([f"{VENV_BIN}/hawser", "--root", str(root), "delete",
                                        "--force", cid], capture_output=True, timeout=60)
                shutil.rmtree(root, ignore_errors=True)
            left = remove_cgroups(ctd.namespace)
            shutil.rmtree(base, ignore_errors=True)
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture(params=["hawser", "runc"])
def flags(request, containerd) -> list[str]:
    """ctr run flags: our runtime type, and for runc the config file naming it."""
    if request.param == "runc":
        return ["--runtime", RUNTIME, "--runtime-config-path", str(containerd.base / "runc.json")]
    return ["--runtime", RUNTIME]


def new_id(ctd: Containerd) -> str:
    cid = f"hws-{uuid.uuid4().hex[:8]}"
    ctd.ids_seen.append(cid)
    return cid


def fail(what, proc, ctd: Containerd) -> str:
    log = [l for l in ctd.log.read_text().splitlines() if "level=error" in l or
           "level=warn" in l or "hawser" in l][-15:]
    return (f"{what}: exit {proc.returncode}\nstdout: {proc.stdout!r}\nstderr: {proc.stderr}\n"
            "containerd log:\n" + "\n".join(log))


def run(ctd, flags, cid, *args, extra=()):
    return ctd.ctr("run", *flags, *extra, "--rm", ctd.image, cid, *args, check=False)


@contextlib.contextmanager
def detached(ctd: Containerd, flags, cid: str, *args):
    """ctr run --detach; yields the task's pid; kills and deletes what is left."""
    try:
        proc = ctd.ctr("run", "--detach", *flags, ctd.image, cid, *args, check=False)
        assert proc.returncode == 0, fail("ctr run --detach", proc, ctd)
        pid, status = ctd.tasks()[cid]
        assert status == "RUNNING"
        yield pid
    finally:
        if cid in ctd.tasks():
            ctd.ctr("tasks", "kill", "--signal", "SIGKILL", cid, check=False, timeout=30)
            wait_for(lambda: ctd.tasks().get(cid, (0, "STOPPED"))[1] == "STOPPED", 20,
                     what=f"task {cid} to stop")
            ctd.ctr("tasks", "delete", cid, check=False, timeout=30)
        ctd.ctr("containers", "delete", cid, check=False, timeout=30)


def test_run_output_exit_codes_and_events(containerd, flags):
    events = subprocess.Popen(containerd.ctr_cmd("events"), stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.3)
        cid = echo_id = new_id(containerd)
        proc = run(containerd, flags, cid, "echo", "hello")
        assert (proc.returncode, proc.stdout) == (0, "hello\n"), fail("ctr run echo", proc,
                                                                     containerd)
        proc = run(containerd, flags, new_id(containerd), "sh", "-c",
                   "echo out; echo err >&2; exit 7")
        assert (proc.returncode, proc.stdout) == (7, "out\n") and "err" in proc.stderr, \
            fail("ctr run exit 7", proc, containerd)
        proc = run(containerd, flags, new_id(containerd), "/nonexistent")
        assert proc.returncode != 0 and "nonexistent" in proc.stderr, \
            fail("ctr run /nonexistent", proc, containerd)
        time.sleep(0.3)
    finally:
        events.terminate()
        out = events.communicate(timeout=10)[0]
    # what the shim forwarded over TTRPC_ADDRESS, as containerd re-publishes it
    # (date, time, zone, UTC, namespace, topic, event)
    topics = [line.split(maxsplit=6)[5] for line in out.splitlines()
              if len(line.split()) > 6 and f"\"container_id\":\"{echo_id}\"" in line]
    assert [t for t in topics if t.startswith("/tasks/")] == \
        ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], out
    assert not our_shims(containerd), "a shim outlived its task"


def test_detached_task_ls_ps_exec_pause_resume_kill(containerd, flags):
    ctd = containerd
    cid = new_id(ctd)
    with detached(ctd, flags, cid, "sh", "-c", "sleep 1000 & exec sleep 1001") as pid:
        child = wait_for(lambda: [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children")
                                  .read_text().split()], 5, what="the background sleep")
        proc = ctd.ctr("tasks", "ps", cid, check=False)
        assert proc.returncode == 0, fail("ctr task ps", proc, ctd)
        listed = sorted(int(l.split()[0]) for l in proc.stdout.splitlines()[1:] if l.strip())
        assert listed == sorted([pid, *child]), proc.stdout
        proc = ctd.ctr("tasks", "exec", "--exec-id", "e1", cid, "sh", "-c",
                       "echo exec-out; echo exec-err >&2; exit 5", check=False)
        assert (proc.returncode, proc.stdout) == (5, "exec-out\n") and "exec-err" in \
            proc.stderr, fail("ctr task exec", proc, ctd)
        term = PtyProcess(ctd.ctr_cmd("tasks", "exec", "-t", "--exec-id", "sh1", cid, "sh"))
        try:
            pty_conversation(term)
            assert term.wait() == 5, f"ctr task exec -t exited {term.status}: {term.text()!r}"
        finally:
            term.close()
        proc = ctd.ctr("tasks", "metrics", "--format", "json", cid, check=False)
        assert proc.returncode == 0, fail("ctr task metrics", proc, ctd)
        metrics = json.loads(proc.stdout)
        assert metrics["memory"]["usage"]["usage"] > 0 and metrics["pids"]["current"] >= 2, \
            metrics
        ctd.ctr("tasks", "pause", cid)
        assert ctd.tasks()[cid][1] == "PAUSED"
        ctd.ctr("tasks", "resume", cid)
        assert ctd.tasks()[cid][1] == "RUNNING"
        ctd.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        wait_for(lambda: ctd.tasks()[cid][1] == "STOPPED", 20, what="the task to stop")
        ctd.ctr("tasks", "delete", cid)
        assert cid not in ctd.tasks()
        assert not os.path.exists(f"/proc/{pid}")
    wait_for(lambda: not our_shims(ctd), 10, what="the shim to exit")


def test_terminal(containerd, flags):
    cid = new_id(containerd)
    term = PtyProcess(containerd.ctr_cmd("run", "-t", *flags, "--rm", containerd.image, cid,
                                         "sh"))
    try:
        pty_conversation(term)
        assert term.wait() == 5, f"ctr run -t exited {term.status}: {term.text()!r}"
    finally:
        term.close()


def test_containerd_restart_keeps_the_task(containerd, flags):
    ctd = containerd
    cid = new_id(ctd)
    with detached(ctd, flags, cid, "sleep", "1000") as pid:
        shim = shim_of(ctd, cid)
        stop_process(ctd.proc)    # containerd only: the shim and the task stay
        assert os.path.exists(f"/proc/{pid}") and os.path.exists(f"/proc/{shim}")
        path = os.environ["PATH"]
        os.environ["PATH"] = f"{VENV_BIN}:{path}"
        try:
            ctd.start()
        finally:
            os.environ["PATH"] = path
        assert ctd.tasks()[cid] == (pid, "RUNNING")    # found again through `address`
        proc = ctd.ctr("tasks", "exec", "--exec-id", "after", cid, "echo", "still here",
                       check=False)
        assert (proc.returncode, proc.stdout) == (0, "still here\n"), \
            fail("exec after restart", proc, ctd)
        ctd.ctr("tasks", "kill", "--signal", "SIGKILL", cid)
        wait_for(lambda: ctd.tasks()[cid][1] == "STOPPED", 20, what="the task to stop")
        assert shim_of(ctd, cid) == shim


def test_shim_killed_reports_the_task_stopped(containerd, flags):
    """containerd 1.6 notices the dead shim, runs `containerd-shim-hawser-v2 delete` (the runtime
    removes the container), publishes the task's exit with the DeleteResponse's status (137) and
    drops the task, as it does for its runc shim."""
    ctd = containerd
    cid = new_id(ctd)
    events = subprocess.Popen(ctd.ctr_cmd("events"), stdout=subprocess.PIPE, text=True)
    try:
        with detached(ctd, flags, cid, "sleep", "1000") as pid:
            os.kill(shim_of(ctd, cid), signal.SIGKILL)
            wait_for(lambda: ctd.tasks().get(cid, (0, "gone"))[1] != "RUNNING", 20,
                     what="the task to be reported stopped")
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), 10,
                     what="the container's process to be gone")
            sock = cli.socket_address(str(ctd.sock), ctd.namespace, cid)[len("unix://"):]
            assert not os.path.exists(sock), "the dead shim's socket was left"
            assert not os.path.exists(cli.state_dir(str(ctd.sock), ctd.namespace, cid))
            time.sleep(0.3)
    finally:
        events.terminate()
        out = events.communicate(timeout=10)[0]
    exits = [json.loads(line.split(maxsplit=6)[6]) for line in out.splitlines()
             if len(line.split()) > 6 and line.split()[5] == "/tasks/exit" and
             f"\"container_id\":\"{cid}\"" in line]
    assert exits and exits[-1].get("exit_status") == 137 and exits[-1]["pid"] == pid, out


def test_events_through_the_publish_binary(containerd, make_bundle):
    """Without TTRPC_ADDRESS the shim publishes with `containerd --address A publish --topic T
    --namespace NS` (the Any on stdin): containerd re-publishes what it receives."""
    ctd = containerd
    events = subprocess.Popen(ctd.ctr_cmd("events"), stdout=subprocess.PIPE, text=True)
    cid = new_id(ctd)
    shim = Shim(make_bundle(["sh", "-c", "exit 4"]).path, cid, ctd.namespace, str(ctd.sock),
                ttrpc_address=None, publish_binary=shutil.which("containerd"))
    try:
        time.sleep(0.3)
        shim.start()
        shim.call("Create", id=cid, bundle=str(shim.bundle))
        shim.call("Start", id=cid)
        assert shim.call("Wait", id=cid).exit_status == 4
        shim.call("Delete", id=cid)
        shim.call("Shutdown", id=cid)
        assert shim.wait_gone()
        time.sleep(0.3)
    finally:
        shim.cleanup()
        events.terminate()
        out = events.communicate(timeout=10)[0]
    topics = [line.split(maxsplit=6)[5] for line in out.splitlines()
              if len(line.split()) > 6 and f"\"container_id\":\"{cid}\"" in line]
    assert topics == ["/tasks/create", "/tasks/start", "/tasks/exit", "/tasks/delete"], out
