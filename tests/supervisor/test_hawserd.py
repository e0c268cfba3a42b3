"""hawserd + hawserctl end to end: real busybox containers, each under its own shim."""
from __future__ import annotations

import json
import os
import stat
import subprocess
import time

from hawserd_harness import HAWSERD, Hawserd, alive, wait_until


def test_run_prints_output_and_returns_the_exit_code(hawserd, busybox_rootfs):
    p = hawserd.ctl("run", "--rootfs", busybox_rootfs, "sh", "-c",
                    "echo hello; echo oops >&2; exit 3", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (3, "hello\n", "oops\n")
    [c] = hawserd.ps_all().values()
    assert (c["status"], c["exit_status"]) == ("exited", 3)
    assert hawserd.ctl("ps", "-q").stdout == ""     # not running: only with -a


def test_run_options_reach_the_process(hawserd, busybox_rootfs):
    p = hawserd.ctl("run", "--rm", "-e", "GREETING=hi", "-w", "/tmp", "-u", "1000",
                    "-h", "boxhost", "--rootfs", busybox_rootfs,
                    "sh", "-c", 'echo $GREETING $(pwd) $(id -u) $(hostname)')
    assert p.stdout == "hi /tmp 1000 boxhost\n"
    assert hawserd.ctl("ps", "-a", "-q").stdout == ""    # --rm removed it
    assert hawserd.records() == []


def test_detached_ps_logs_inspect_stop_rm(hawserd, busybox_rootfs):
    cid = hawserd.ctl("run", "-d", "--name", "web", "--rootfs", busybox_rootfs, "sh", "-c",
                      "echo started; trap 'echo bye; exit 7' TERM; "
                      "while true; do sleep 0.1; done").stdout.strip()
    assert len(cid) == 64
    assert wait_until(lambda: "started" in hawserd.ctl("logs", "web").stdout)
    assert hawserd.ctl("ps", "-q").stdout.split() == [cid[:12]]
    [info] = json.loads(hawserd.ctl("inspect", "web").stdout)    # docker's shape
    assert (info["Id"], info["Name"], info["State"]["Status"]) == (cid, "/web", "running")
    assert info["State"]["Pid"] > 0 and alive(info["State"]["Pid"])
    assert info["State"]["Running"] is True and "FinishedAt" not in info["State"]
    assert hawserd.ctl("inspect", "--format", "{{.State.Pid}}", "web").stdout == \
        f"{info['State']['Pid']}\n"
    with open(info["LogPath"]) as f:
        entry = json.loads(f.readline())
    assert (entry["stream"], entry["log"]) == ("stdout", "started\n") and "time" in entry
    hawserd.ctl("stop", "-t", "5", "web")
    info = hawserd.info(cid[:8])
    assert (info["status"], info["exit_status"]) == ("exited", 7)
    assert hawserd.ctl("logs", "web").stdout == "started\nbye\n"
    assert hawserd.ctl("wait", "web").stdout == "7\n"
    hawserd.ctl("rm", "web")
    assert hawserd.ctl("ps", "-a", "-q").stdout == ""
    assert not [x for x in os.listdir(hawserd.state / "runtime" / "hawser") if x[0] != "."]


def test_stop_kills_a_process_that_ignores_sigterm(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "stubborn", "--rootfs", busybox_rootfs,
                "sh", "-c", "trap '' TERM; while true; do sleep 0.1; done")
    t = time.monotonic()
    hawserd.ctl("stop", "-t", "1", "stubborn")
    assert 0.9 < time.monotonic() - t < 15
    info = hawserd.info("stubborn")
    assert (info["status"], info["exit_status"]) == ("exited", 137)


def test_rm_of_a_running_container_needs_force(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "busy", "--rootfs", busybox_rootfs, "sleep", "100")
    p = hawserd.ctl("rm", "busy", check=False)
    assert p.returncode != 0 and "force" in p.stderr
    hawserd.ctl("rm", "-f", "busy")
    assert hawserd.records() == []


def test_errors_have_status_codes_and_clear_messages(hawserd, busybox_rootfs, tmp_path):
    hawserd.ctl("create", "--name", "dup", "--rootfs", busybox_rootfs, "true")
    p = hawserd.ctl("create", "--name", "dup", "--rootfs", busybox_rootfs, "true", check=False)
    assert p.returncode == 125 and "(ALREADY_EXISTS)" in p.stderr and "dup" in p.stderr
    p = hawserd.ctl("inspect", "no-such-container", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (1, "[]\n",
                                                  "Error: No such object: no-such-container\n")
    p = hawserd.ctl("stop", "no-such-container", check=False)
    assert p.returncode != 0 and "no such container" in p.stderr
    missing = tmp_path / "missing"
    p = hawserd.ctl("run", "--rootfs", missing, "true", check=False)
    assert p.returncode == 125 and "(INVALID_ARGUMENT)" in p.stderr
    assert f"rootfs {missing}: no such directory" in p.stderr
    p = hawserd.ctl("run", "--runtime", "/nonexistent/runc", "--rootfs", busybox_rootfs, "true",
                    check=False)
    assert p.returncode == 125 and "(FAILED_PRECONDITION)" in p.stderr
    p = hawserd.ctl("create", "--pids-limit", "-1", "--rootfs", busybox_rootfs, "true",
                    check=False)
    assert "(INVALID_ARGUMENT)" in p.stderr
    assert [r["name"] for r in hawserd.records()] == ["dup"]


def test_socket_mode_and_a_second_daemon_on_the_same_root(hawserd):
    mode = os.stat(hawserd.socket).st_mode
    assert stat.S_ISSOCK(mode) and stat.S_IMODE(mode) == 0o660
    other = Hawserd()
    try:
        p = subprocess.run([HAWSERD, "--root", str(hawserd.root), "--state", str(other.state),
                            "--address", other.address], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode != 0 and "another hawserd" in p.stderr
        assert not other.socket.exists()
    finally:
        other.cleanup()


def test_sigkill_of_hawserd_then_restart_resumes_control(hawserd, busybox_rootfs):
    cid = hawserd.ctl("run", "-d", "--name", "survivor", "--rootfs", busybox_rootfs, "sh", "-c",
                      "trap 'echo bye; exit 5' TERM; echo up; while true; do sleep 0.1; done"
                      ).stdout.strip()
    short = hawserd.ctl("run", "-d", "--name", "short", "--rootfs", busybox_rootfs,
                        "sleep", "100").stdout.strip()
    assert wait_until(lambda: "up" in hawserd.ctl("logs", "survivor").stdout)
    pid = hawserd.info(cid)["pid"]
    [short_shim] = [r["shim_pid"] for r in hawserd.records() if r["id"] == short]
    hawserd.sigkill()
    assert alive(pid)
    os.kill(short_shim, 9)          # this container's shim dies while hawserd is down
    assert wait_until(lambda: not alive(short_shim))
    hawserd.start()
    info = hawserd.info("survivor")
    assert (info["status"], info["pid"]) == ("running", pid)
    assert hawserd.ctl("ps", "-q").stdout.split() == [cid[:12]]
    gone = hawserd.info("short")
    assert (gone["status"], gone["exit_status"]) == ("exited", 137)
    hawserd.ctl("stop", "-t", "5", "survivor")
    info = hawserd.info("survivor")
    assert (info["status"], info["exit_status"]) == ("exited", 5)
    assert "bye" in hawserd.ctl("logs", "survivor").stdout
    hawserd.ctl("rm", "survivor", "short")
    assert not alive(pid)
