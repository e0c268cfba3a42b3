"""Restart policies applied by hawserd, and the stop signal used by stop."""
from __future__ import annotations

import json
import time

from hawserd_harness import wait_until


def info(hawserd, ref: str) -> dict:
    return json.loads(hawserd.ctl("inspect", ref).stdout)[0]


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
