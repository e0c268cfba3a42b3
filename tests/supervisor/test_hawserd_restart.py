"""Restart policies applied by hawserd, and the stop signal used by stop."""
from __future__ import annotations

import os
import signal
import time

import pytest

from hawserd_harness import alive, wait_until


def info(hawserd, ref: str) -> dict:
    return hawserd.info(ref)


def runs(hawserd, ref: str) -> int:
    return hawserd.ctl("logs", ref).stdout.count("run\n")


def test_on_failure_2_restarts_twice_then_leaves_it_exited(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "flaky", "--restart", "on-failure:2",
                "--rootfs", busybox_rootfs, "sh", "-c", "echo run; exit 1")
    assert wait_until(lambda: info(hawserd, "flaky").get("restart_count") == 2 and
                      info(hawserd, "flaky")["status"] == "exited", 8)
    time.sleep(0.8)    # the next back-off would be 0.4 s: no third restart comes
    c = info(hawserd, "flaky")
    assert (c["status"], c["exit_status"], c["restart_count"]) == ("exited", 1, 2)
    assert runs(hawserd, "flaky") == 3


def test_on_failure_does_not_restart_a_success(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "ok", "--restart", "on-failure",
                "--rootfs", busybox_rootfs, "sh", "-c", "echo run; exit 0")
    assert wait_until(lambda: info(hawserd, "ok")["status"] == "exited", 5)
    time.sleep(0.4)
    assert info(hawserd, "ok").get("restart_count", 0) == 0 and runs(hawserd, "ok") == 1


def test_always_restarts_after_exit_but_not_after_stop(hawserd, busybox_rootfs):
    for policy in ("always", "unless-stopped"):
        hawserd.ctl("run", "-d", "--name", policy, "--restart", policy,
                    "--rootfs", busybox_rootfs, "sh", "-c",
                    "trap 'exit 0' TERM; echo run; sleep 0.2")
    for policy in ("always", "unless-stopped"):
        assert wait_until(lambda: runs(hawserd, policy) >= 2, 8)
        hawserd.ctl("stop", "-t", "5", policy)
        assert info(hawserd, policy)["status"] == "exited"
    seen = {p: runs(hawserd, p) for p in ("always", "unless-stopped")}
    time.sleep(1.0)
    for policy in ("always", "unless-stopped"):
        assert info(hawserd, policy)["status"] == "exited"
        assert runs(hawserd, policy) == seen[policy]
    hawserd.ctl("start", "always")    # a start by a user: the policy applies again
    assert wait_until(lambda: runs(hawserd, "always") >= seen["always"] + 2, 8)
    hawserd.ctl("rm", "-f", "always")
    assert [r["name"] for r in hawserd.records()] == ["unless-stopped"]


def test_stop_uses_the_stop_signal(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "s", "--stop-signal", "USR1", "--rootfs", busybox_rootfs,
                "sh", "-c", "trap 'echo got-usr1; exit 0' USR1; echo up; "
                "while true; do sleep 0.1; done")
    assert wait_until(lambda: "up" in hawserd.ctl("logs", "s").stdout, 5)
    t = time.monotonic()
    hawserd.ctl("stop", "-t", "10", "s")
    assert time.monotonic() - t < 5
    c = info(hawserd, "s")
    assert (c["status"], c.get("exit_status", 0), c["config"]["stop_signal"]) == \
        ("exited", 0, "SIGUSR1")
    assert "got-usr1" in hawserd.ctl("logs", "s").stdout


def test_invalid_restart_policy_and_stop_signal(hawserd, busybox_rootfs):
    for opt in (["--restart", "sometimes"], ["--restart", "always:3"],
                ["--stop-signal", "SIGNOPE"]):
        p = hawserd.ctl("create", *opt, "--rootfs", busybox_rootfs, "true", check=False)
        assert p.returncode == 125 and "(INVALID_ARGUMENT)" in p.stderr, p.stderr
    assert hawserd.records() == []



@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
def test_restart_policies_when_hawserd_starts_again(hawserd, busybox_rootfs, how):
    """docker's rules when its daemon starts, after a graceful stop or SIGKILL of hawserd:
    always: started again even after a stop by a user; unless-stopped: only if no user stopped
    it; on-failure: if its exit while hawserd was down was a failure; no: stays exited; a
    container that never ran stays created."""
    cases = {    # name: (policy, what ends it: a stop by a user, or a signal while hawserd is down)
        "always-stopped": ("always", "stop"),
        "unless-stopped-stopped": ("unless-stopped", "stop"),
        "unless-stopped-died": ("unless-stopped", signal.SIGKILL),
        "on-failure-failed": ("on-failure:3", signal.SIGTERM),
        "on-failure-succeeded": ("on-failure", signal.SIGUSR1),
        "on-failure-stopped": ("on-failure", "stop"),
        "no-died": ("no", signal.SIGKILL),
    }
    for name, (policy, _) in cases.items():
        hawserd.ctl("run", "-d", "--name", name, "--restart", policy, "--rootfs",
                    busybox_rootfs, "sh", "-c", "echo run; trap 'exit 1' TERM; "
                    "trap 'exit 0' USR1; while true; do sleep 0.1; done")
    hawserd.ctl("create", "--name", "always-created", "--restart", "always", "--rootfs",
                busybox_rootfs, "sh", "-c", "echo run; sleep 1000")
    stopped = [n for n, (_, end) in cases.items() if end == "stop"]
    hawserd.ctl("stop", "-t", "5", *stopped)
    assert wait_until(lambda: all(runs(hawserd, n) == 1 for n in cases), 10)
    pids = {n: info(hawserd, n).get("pid", 0) for n in cases}
    hawserd.stop() if how == "sigterm" else hawserd.sigkill()
    for name, (_, end) in cases.items():
        if end != "stop":
            os.kill(pids[name], end)
    assert wait_until(lambda: not any(pids[n] and alive(pids[n]) for n in cases))
    hawserd.start()
    want = {"always-stopped": "running", "unless-stopped-stopped": "exited",
            "unless-stopped-died": "running", "on-failure-failed": "running",
            "on-failure-succeeded": "exited", "on-failure-stopped": "exited",
            "no-died": "exited", "always-created": "created"}
    assert wait_until(lambda: all(info(hawserd, n)["status"] == s for n, s in want.items()),
                      15), {n: info(hawserd, n)["status"] for n in want}
    time.sleep(0.5)    # and nothing else starts
    got = {n: info(hawserd, n) for n in want}
    assert {n: c["status"] for n, c in got.items()} == want
    for name, status in want.items():
        assert runs(hawserd, name) == {"running": 2, "exited": 1, "created": 0}[status], name
        if status == "running":
            assert got[name]["pid"] != pids[name] and alive(got[name]["pid"])
            assert got[name].get("restart_count", 0) == 0
    assert [got[n].get("exit_status", 0) for n in ("on-failure-succeeded", "no-died",
                                                  "unless-stopped-stopped")] == [0, 137, 1]
    # a restarted one is under hawserd's control again: its next exit follows its policy
    os.kill(got["on-failure-failed"]["pid"], signal.SIGTERM)
    assert wait_until(lambda: runs(hawserd, "on-failure-failed") == 3 and
                      info(hawserd, "on-failure-failed")["status"] == "running", 10)
    assert info(hawserd, "on-failure-failed")["restart_count"] == 1
