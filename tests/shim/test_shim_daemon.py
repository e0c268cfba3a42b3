"""containerd-shim-hawser-v2 driven directly through its ttrpc Task API (no containerd), with real
busybox containers run by hawser: lifecycle and exit codes, stdio through FIFOs (nothing lost at
exit), exec, pids, pause/resume, terminal, CloseIO, update/stats, OOM, events in order, no zombies,
errors as containerd's status codes, a shim killed and cleaned up by `delete`, idle memory."""
from __future__ import annotations

import _socket
import json
import os
import shutil
import signal
import struct
import subprocess
import time
import uuid

import pytest

from shim_harness import (EventSink, Fifo, Shim, children, rss_kib, short_tempdir, ttrpc,
                          wire, zombie_children)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
CREATED, RUNNING, STOPPED, PAUSED = 1, 2, 3, 4


class Env:
    def __init__(self):
        self.base = short_tempdir("hwsh-")
        self.sink = EventSink(self.base / "events.sock")
        self.namespace = f"hwshim-{uuid.uuid4().hex[:8]}"
        self.address = str(self.base / "containerd.sock")    # only hashed into the socket name
        self.shims: list[Shim] = []

    def shim(self, bundle, cid: str | None = None, ttrpc_address: str | None = "sink") -> Shim:
        s = Shim(bundle.path, cid or f"c-{uuid.uuid4().hex[:8]}", self.namespace, self.address,
                 self.sink.path if ttrpc_address == "sink" else ttrpc_address)
        self.shims.append(s)
        s.start()
        return s

    def fifos(self, name: str, stdin: bool = False):
        d = self.base / name
        d.mkdir()
        out, err = Fifo(d / "stdout"), Fifo(d / "stderr")
        inp = Fifo(d / "stdin", mode="w") if stdin else None
        return inp, out, err

    def cleanup(self):
        try:
            for s in self.shims:
                s.cleanup()
        finally:
            self.sink.close()
            shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture
def env():
    e = Env()
    yield e
    e.cleanup()


def create(shim: Shim, bundle, out=None, err=None, inp=None, **kw):
    return shim.call("Create", id=shim.id, bundle=str(bundle.path),
                     stdout=str(out.path) if out else "", stderr=str(err.path) if err else "",
                     stdin=str(inp.path) if inp else "", **kw)


def finish(shim: Shim) -> None:
    """Delete the task, shut the shim down; it must exit and leave nothing behind."""
    shim.call("Delete", id=shim.id)
    shim.call("Shutdown", id=shim.id)
    assert shim.wait_gone(), "the shim did not exit after Shutdown"
    assert not os.path.exists(shim.socket), "the shim left its socket"
    assert not os.path.exists(shim.state_dir), "the shim left its state directory"


def test_lifecycle_exit_code_stdio_and_events(env, make_bundle):
    bundle = make_bundle(["sh", "-c", "echo out; echo err >&2; exit 3"])
    _, out, err = env.fifos("io")
    shim = env.shim(bundle)
    assert (bundle.path / "address").read_text() == "unix://" + shim.socket
    assert len("unix://" + shim.socket) <= 108
    pid = create(shim, bundle, out, err).pid
    assert pid > 0 and os.path.exists(f"/proc/{pid}")
    st = shim.call("State", id=shim.id)
    assert (st.status, st.pid, st.bundle, st.stdout) == (CREATED, pid, str(bundle.path),
                                                         str(out.path))
    assert shim.call("Connect", id=shim.id).task_pid == pid
    assert shim.call("Start", id=shim.id).pid == pid
    w = shim.call("Wait", id=shim.id)
    assert w.exit_status == 3 and abs(w.exited_at.seconds - time.time()) < 60
    assert (out.text(), err.text()) == ("out\n", "err\n")
    st = shim.call("State", id=shim.id)
    assert (st.status, st.exit_status) == (STOPPED, 3)
    d = shim.call("Delete", id=shim.id)
    assert (d.pid, d.exit_status, d.exited_at) == (pid, 3, w.exited_at)
    env.sink.wait_for("/tasks/delete")
    assert env.sink.topics(shim.id) == ["/tasks/create", "/tasks/start", "/tasks/exit",
                                        "/tasks/delete"]
    exit_event = env.sink.wait_for("/tasks/exit")
    assert (exit_event.id, exit_event.pid, exit_event.exit_status) == (shim.id, pid, 3)
    assert all(ns == env.namespace for _, ns, _ in env.sink.events)
    # the shim wrote nothing of its own into the bundle but `address` (log.json and init.pid
    # are the runtime's)
    assert sorted(p.name for p in bundle.path.iterdir()) == \
        ["address", "config.json", "init.pid", "log.json", "rootfs"]
    shim.call("Shutdown", id=shim.id)
    assert shim.wait_gone()
    assert not os.path.exists(shim.socket) and not os.path.exists(shim.state_dir)
    assert not shim.runtime_containers()


def test_last_output_is_not_lost(env, make_bundle):
    """~190 KiB written right before the exit, more than the FIFO holds: all of it arrives."""
    bundle = make_bundle(["sh", "-c", "seq 1 30000; echo END >&2; echo END"])
    _, out, err = env.fifos("io")
    shim = env.shim(bundle)
    create(shim, bundle, out, err)
    shim.call("Start", id=shim.id)
    assert shim.call("Wait", id=shim.id).exit_status == 0
    lines = out.text().splitlines()
    assert len(lines) == 30001 and lines[-2:] == ["30000", "END"]
    assert err.text() == "END\n"
    finish(shim)


def test_kill_wait_and_errors(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    create(shim, bundle)
    # unknown ids: NotFound; duplicates: AlreadyExists; state-forbidden requests: FailedPrecondition
    assert shim.error("State", id="nope").code == ttrpc.NOT_FOUND
    assert shim.error("Start", id="nope").code == ttrpc.NOT_FOUND
    assert shim.error("Kill", id="nope", signal=9).code == ttrpc.NOT_FOUND
    assert shim.error("Wait", id=shim.id, exec_id="nope").code == ttrpc.NOT_FOUND
    assert shim.error("Create", id=shim.id, bundle=str(bundle.path)).code == ttrpc.ALREADY_EXISTS
    assert shim.error("Pause", id=shim.id).code == ttrpc.FAILED_PRECONDITION
    shim.call("Start", id=shim.id)
    assert shim.error("Start", id=shim.id).code == ttrpc.FAILED_PRECONDITION
    assert shim.error("Delete", id=shim.id).code == ttrpc.FAILED_PRECONDITION
    e = shim.error("Checkpoint", id=shim.id, path="/tmp/x")
    assert e.code == ttrpc.UNIMPLEMENTED and "checkpoint" in e.message
    shim.call("Kill", id=shim.id, signal=signal.SIGKILL)
    assert shim.call("Wait", id=shim.id).exit_status == 137
    assert shim.error("Kill", id=shim.id, signal=9).code == ttrpc.NOT_FOUND
    finish(shim)


def test_concurrent_waits_and_a_created_task_deleted(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    pid = create(shim, bundle).pid
    results = []
    import threading
    waiters = [threading.Thread(target=lambda: results.append(shim.call("Wait", id=shim.id)))
               for _ in range(3)]
    for t in waiters:
        t.start()
    time.sleep(0.2)
    assert shim.call("State", id=shim.id).status == CREATED and not results
    d = shim.call("Delete", id=shim.id)    # never started: deleted (the runtime kills its init)
    for t in waiters:
        t.join(10)
    assert [r.exit_status for r in results] == [d.exit_status] * 3
    assert not _alive(pid)
    shim.call("Shutdown", id=shim.id)
    assert shim.wait_gone()


def test_exec_pids_and_exec_errors(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    init = create(shim, bundle).pid
    shim.call("Start", id=shim.id)
    spec = dict(bundle.process, args=["sh", "-c", "echo exec-out $X; echo exec-err >&2; exit 5"],
                env=bundle.process["env"] + ["X=42"])
    any_spec = wire.message("google.protobuf.Any")(
        type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
        value=json.dumps(spec).encode())
    _, out, err = env.fifos("e1")
    shim.call("Exec", id=shim.id, exec_id="e1", spec=any_spec, stdout=str(out.path),
              stderr=str(err.path))
    assert shim.error("Exec", id=shim.id, exec_id="e1", spec=any_spec).code == \
        ttrpc.ALREADY_EXISTS
    assert shim.call("State", id=shim.id, exec_id="e1").status == CREATED
    epid = shim.call("Start", id=shim.id, exec_id="e1").pid
    assert shim.error("Start", id=shim.id, exec_id="e1").code == ttrpc.FAILED_PRECONDITION
    assert shim.call("Wait", id=shim.id, exec_id="e1").exit_status == 5
    assert (out.text(), err.text()) == ("exec-out 42\n", "exec-err\n")
    st = shim.call("State", id=shim.id, exec_id="e1")
    assert (st.id, st.pid, st.status, st.exit_status) == ("e1", epid, STOPPED, 5)
    assert shim.call("Delete", id=shim.id, exec_id="e1").exit_status == 5
    assert shim.error("State", id=shim.id, exec_id="e1").code == ttrpc.NOT_FOUND
    # a long-running exec shows up in Pids, tagged with its exec id (ctr task ps shows it)
    long_spec = wire.message("google.protobuf.Any")(
        type_url=any_spec.type_url, value=json.dumps(dict(spec, args=["sleep", "50"])).encode())
    shim.call("Exec", id=shim.id, exec_id="e2", spec=long_spec)
    epid2 = shim.call("Start", id=shim.id, exec_id="e2").pid
    procs = {p.pid: p for p in shim.call("Pids", id=shim.id).processes}
    assert set(procs) == {init, epid2}
    assert procs[init].info is None
    details = wire.message("containerd.runc.v1.ProcessDetails").decode(procs[epid2].info.value)
    assert procs[epid2].info.type_url == "containerd.runc.v1.ProcessDetails"
    assert details.exec_id == "e2"
    shim.call("Kill", id=shim.id, exec_id="e2", signal=9)
    assert shim.call("Wait", id=shim.id, exec_id="e2").exit_status == 137
    assert shim.error("Kill", id=shim.id, exec_id="e2", signal=9).code == ttrpc.NOT_FOUND
    # an exec that cannot start: the runtime's error, and its waiters are released by Delete
    bad = wire.message("google.protobuf.Any")(
        type_url=any_spec.type_url, value=json.dumps(dict(spec, args=["/nonexistent"])).encode())
    shim.call("Exec", id=shim.id, exec_id="e3", spec=bad)
    e = shim.error("Start", id=shim.id, exec_id="e3")
    assert "nonexistent" in e.message, e.message
    shim.call("Delete", id=shim.id, exec_id="e3")
    shim.call("Kill", id=shim.id, signal=9)
    shim.call("Wait", id=shim.id)
    topics = env.sink.topics(shim.id)
    assert topics[:2] == ["/tasks/create", "/tasks/start"]
    exec_events = [(t, getattr(e, "exec_id", None) or getattr(e, "id", ""))
                   for t, _, e in env.sink.events if t.startswith("/tasks/exec") or
                   (t == "/tasks/exit" and e.id != shim.id)]
    assert exec_events[:3] == [("/tasks/exec-added", "e1"), ("/tasks/exec-started", "e1"),
                               ("/tasks/exit", "e1")]
    finish(shim)


def test_pause_resume(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    pid = create(shim, bundle).pid
    shim.call("Start", id=shim.id)
    shim.call("Pause", id=shim.id)
    assert shim.call("State", id=shim.id).status == PAUSED
    assert open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] in ("D", "S", "t", "T")
    assert shim.error("Pause", id=shim.id).code == ttrpc.FAILED_PRECONDITION
    shim.call("Resume", id=shim.id)
    assert shim.call("State", id=shim.id).status == RUNNING
    assert shim.error("Resume", id=shim.id).code == ttrpc.FAILED_PRECONDITION
    shim.call("Kill", id=shim.id, signal=9)
    shim.call("Wait", id=shim.id)
    env.sink.wait_for("/tasks/exit")
    assert env.sink.topics(shim.id) == ["/tasks/create", "/tasks/start", "/tasks/paused",
                                        "/tasks/resumed", "/tasks/exit"]
    finish(shim)


def test_no_zombies_from_orphans(env, make_bundle):
    """Without a pid namespace the container's orphans are re-parented to the shim (its child
    subreaper), which must reap them as they exit, and kill what outlives init."""
    bundle = make_bundle(["sh", "-c", "(sleep 0.3 &) ; (sleep 100 &) ; sleep 0.8"])
    bundle.linux["namespaces"] = [n for n in bundle.linux["namespaces"] if n["type"] != "pid"]
    bundle.write()
    shim = env.shim(bundle)
    create(shim, bundle)
    shim.call("Start", id=shim.id)
    time.sleep(0.15)
    adopted = [(p, name) for p, _, state, name in children(shim.pid) if name == "sleep"]
    assert len(adopted) >= 2, f"the orphaned sleeps are not the shim's children: " \
                              f"{children(shim.pid)}"
    time.sleep(0.4)    # the short sleep has exited: reaped, not a zombie
    assert not zombie_children(shim.pid), children(shim.pid)
    assert shim.call("Wait", id=shim.id).exit_status == 0
    deadline = time.monotonic() + 5    # the long sleep is killed with the container
    while time.monotonic() < deadline and any(n == "sleep" for _, _, _, n in children(shim.pid)):
        time.sleep(0.05)
    assert not children(shim.pid), children(shim.pid)
    finish(shim)


def test_terminal_resize_and_closeio(env, make_bundle):
    bundle = make_bundle(["sh", "-c", "read line; echo got:$line; stty size; tty"], terminal=True)
    inp, out, _ = env.fifos("tty", stdin=True)
    shim = env.shim(bundle)
    create(shim, bundle, out=out, inp=inp, terminal=True)
    shim.call("ResizePty", id=shim.id, width=101, height=37)
    shim.call("Start", id=shim.id)
    inp.open_writer()
    inp.write(b"hello\r")
    assert shim.call("Wait", id=shim.id).exit_status == 0
    inp.close_writer()
    text = out.text()
    assert "got:hello" in text and "37 101" in text and "/dev/pts/" in text, repr(text)
    finish(shim)


def test_closeio_ends_stdin(env, make_bundle):
    bundle = make_bundle(["sh", "-c", "cat; echo done"])
    inp, out, _ = env.fifos("io", stdin=True)
    shim = env.shim(bundle)
    create(shim, bundle, out=out, inp=inp)
    shim.call("Start", id=shim.id)
    inp.open_writer()
    inp.write(b"line 1\n")
    inp.close_writer()
    time.sleep(0.2)
    assert shim.call("State", id=shim.id).status == RUNNING    # the shim still holds stdin open
    shim.call("CloseIO", id=shim.id, stdin=True)
    assert shim.call("Wait", id=shim.id).exit_status == 0
    assert out.text() == "line 1\ndone\n"
    finish(shim)


def test_update_stats_and_oom(env, make_bundle):
    bundle = make_bundle(["sh", "-c", "sleep 0.5; x=$(head -c 100000000 /dev/zero | tr '\\0' a)"])
    bundle.linux["resources"] = {"memory": {"limit": 64 * 1024 * 1024}}
    bundle.write()
    shim = env.shim(bundle)
    pid = create(shim, bundle).pid
    resources = wire.message("google.protobuf.Any")(
        type_url="types.containerd.io/opencontainers/runtime-spec/1/LinuxResources",
        value=json.dumps({"memory": {"limit": 32 * 1024 * 1024}, "pids": {"limit": 50}}).encode())
    shim.call("Update", id=shim.id, resources=resources)
    any_stats = shim.call("Stats", id=shim.id).stats
    assert any_stats.type_url == "io.containerd.cgroups.v1.Metrics"
    metrics = wire.message("io.containerd.cgroups.v1.Metrics").decode(any_stats.value)
    assert metrics.memory.usage.limit == 32 * 1024 * 1024
    assert metrics.pids.limit == 50 and metrics.pids.current >= 1
    shim.call("Start", id=shim.id)
    assert shim.call("Wait", id=shim.id).exit_status == 137    # OOM-killed
    oom = env.sink.wait_for("/tasks/oom")
    assert oom.container_id == shim.id
    assert pid
    finish(shim)


def test_create_failure_reports_the_runtime_error_and_leaves_nothing(env, make_bundle):
    bundle = make_bundle(["true"])
    bundle.linux["namespaces"].append({"type": "user", "path": "/proc/self/ns/nonexistent"})
    bundle.write()
    shim = env.shim(bundle)
    e = shim.error("Create", id=shim.id, bundle=str(bundle.path))
    assert e.code == ttrpc.UNKNOWN and e.message.startswith("OCI runtime create failed: ")
    log_errors = [json.loads(l)["msg"] for l in (bundle.path / "log.json").read_text()
                  .splitlines() if json.loads(l).get("level") == "error"]
    assert log_errors and log_errors[-1] in e.message
    assert not shim.runtime_containers()
    assert not [c for c in children(shim.pid) if c[3] != "containerd-shim"]
    assert shim.error("State", id=shim.id).code == ttrpc.NOT_FOUND
    shim.call("Shutdown", id=shim.id)
    assert shim.wait_gone()


def test_runc_as_the_runtime(env, make_bundle, tmp_path):
    """The low-level runtime named by the create options: containerd's runc Options
    (binary_name) or the file of `ctr run --runtime-config-path` (JSON or TOML)."""
    runc = shutil.which("runc") or "/usr/sbin/runc"
    conf = tmp_path / "runtime.toml"
    conf.write_text(f'BinaryName = "{runc}"\nRoot = "{env.base}/runc-root"\n')
    options = [
        wire.pack_any(wire.message("runtimeoptions.v1.Options")(config_path=str(conf))),
        wire.pack_any(wire.message("containerd.runc.v1.Options")(binary_name=runc)),
    ]
    for i, opts in enumerate(options):
        bundle = make_bundle(["sh", "-c", "echo via runc"])
        _, out, err = env.fifos(f"io{i}")
        shim = env.shim(bundle)
        create(shim, bundle, out, err, options=opts)
        shim.call("Start", id=shim.id)
        assert shim.call("Wait", id=shim.id).exit_status == 0
        assert out.text() == "via runc\n"
        root = f"{env.base}/runc-root/{env.namespace}" if i == 0 else \
            f"/run/containerd/hawser/{env.namespace}"
        listed = subprocess.run([runc, "--root", root, "list", "-q"], capture_output=True,
                                text=True).stdout.split()
        assert listed == [shim.id]    # runc made it, in the root the options named
        finish(shim)


def test_shim_killed_then_delete_cleans_up(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    pid = create(shim, bundle).pid
    shim.call("Start", id=shim.id)
    shim.kill()
    assert os.path.exists(shim.socket) and os.path.exists(f"/proc/{pid}")
    proc, resp = shim.delete_command()
    assert proc.returncode == 0, proc.stderr
    assert (resp.pid, resp.exit_status) == (pid, 137) and resp.exited_at.seconds > 0
    deadline = time.monotonic() + 5
    while os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)
    assert not shim.runtime_containers()
    assert not os.path.exists(shim.socket) and not os.path.exists(shim.state_dir)


def test_start_reuses_a_live_shim_and_idles_small(env, make_bundle):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    again = subprocess.run(shim.flags() + ["start"], cwd=bundle.path, env=shim.env(),
                           capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and again.stdout == "unix://" + shim.socket
    assert shim.call("Connect", id=shim.id).shim_pid == shim.pid
    create(shim, bundle)
    shim.call("Start", id=shim.id)
    time.sleep(0.2)
    rss, pss = rss_kib(shim.pid)
    print(f"idle shim with a running container: RSS {rss} KiB, PSS {pss} KiB")
    assert rss < 15 * 1024, f"shim RSS {rss} KiB"
    with open(f"/proc/{shim.pid}/maps") as f:
        maps = f.read()
    assert "cygrpc" not in maps and "_upb" not in maps    # neither grpc nor protobuf loaded
    shim.call("Kill", id=shim.id, signal=9)
    shim.call("Wait", id=shim.id)
    finish(shim)


def _fork_servers(shim: Shim) -> list[int]:
    """The shim's fork server (shim/forkserver.py): a child with the shim's own name."""
    return [c[0] for c in children(shim.pid) if c[3] == "containerd-shim" and c[2] != "Z"]


def _alive(pid: int) -> bool:
    """Neither reaped nor a zombie (a process reaped between two reads is gone too)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def _gone(pids, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_fork_server_creates_and_starts_then_goes(env, make_bundle):
    """hawser's create and start go through the fork server; the container's init is still the
    shim's child (the shim is the subreaper above the command's process), the server adds no fd
    to the container and is gone once the init has started: an idle shim is one process."""
    bundle = make_bundle(["sh", "-c", "ls /proc/self/fd; sleep 100"])
    _, out, err = env.fifos("io")
    shim = env.shim(bundle)
    servers = _fork_servers(shim)
    assert len(servers) == 1, children(shim.pid)
    pid = create(shim, bundle, out, err).pid
    with open(f"/proc/{pid}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == shim.pid
    assert _fork_servers(shim) == servers    # still there between create and start
    shim.call("Start", id=shim.id)
    assert _gone(servers), "the fork server outlived the start of the init"
    assert _fork_servers(shim) == []
    deadline = time.monotonic() + 5
    while out.data.count(b"\n") < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(out.data.split()) == [b"0", b"1", b"2", b"3"]    # 3: ls's own directory fd
    shim.call("Kill", id=shim.id, signal=9)
    assert shim.call("Wait", id=shim.id).exit_status == 137
    finish(shim)


def test_no_fork_server_for_another_runtime(env, make_bundle):
    """The create options name runc: the fork server goes at Create, runc does the work."""
    runc = shutil.which("runc") or "/usr/sbin/runc"
    bundle = make_bundle(["true"])
    shim = env.shim(bundle)
    servers = _fork_servers(shim)
    assert len(servers) == 1
    create(shim, bundle, options=wire.pack_any(
        wire.message("containerd.runc.v1.Options")(binary_name=runc)))
    assert _gone(servers)
    shim.call("Start", id=shim.id)
    assert shim.call("Wait", id=shim.id).exit_status == 0
    finish(shim)


@pytest.mark.parametrize("frame", [struct.pack(">IIBB", (4 << 20) + 1, 1, 1, 0),
                                   struct.pack(">IIBB", 3, 1, 1, 0) + b"\xff\xff\xff",
                                   b"\x00\x00\x00\x10garbage"])
def test_bad_frames_do_not_hurt_the_shim(env, make_bundle, frame):
    bundle = make_bundle(["sleep", "100"])
    shim = env.shim(bundle)
    create(shim, bundle)
    bad = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    bad.connect(shim.socket)
    bad.settimeout(5)
    bad.sendall(frame)
    bad.shutdown(_socket.SHUT_WR)
    assert bad.recv(100) == b""    # that connection is closed...
    bad.close()
    assert shim.call("State", id=shim.id).status == CREATED    # ...the others are served
    shim.call("Kill", id=shim.id, signal=9)
    shim.call("Wait", id=shim.id)
    finish(shim)
