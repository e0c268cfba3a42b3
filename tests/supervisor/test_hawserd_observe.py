"""hawserctl events (Subscribe), top (Pids) and stats --no-stream (Stats)."""
from __future__ import annotations

import json
import subprocess
import threading
import time

from hawserd_harness import HAWSERCTL, wait_until


def test_top_and_stats(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "t", "--memory", "64m", "--pids-limit", "20",
                "--rootfs", busybox_rootfs, "sh", "-c", "sleep 100 & sleep 101")
    assert wait_until(lambda: "sleep 101" in hawserd.ctl("top", "t").stdout, 5)
    out = hawserd.ctl("top", "t").stdout.splitlines()
    assert out[0].split() == ["PID", "PPID", "STAT", "CMD"]
    cmds = {line.split(None, 3)[3] for line in out[1:]}
    assert {"sleep 100", "sleep 101"} <= cmds
    [s] = json.loads(hawserd.ctl("stats", "--no-stream", "--format", "json", "t").stdout)
    assert s["name"] == "t" and s["memory_limit"] == 64 << 20 and s["pids_limit"] == 20
    assert s["pids"] >= 2 and s["memory_usage"] > 0
    assert "t " in hawserd.ctl("stats", "--no-stream").stdout


def test_events_stream(hawserd, busybox_rootfs):
    ev = subprocess.Popen([HAWSERCTL, "--address", hawserd.address, "events", "--format",
                           "json", "-f", "/tasks/"], stdout=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)
        p = hawserd.ctl("run", "--rootfs", busybox_rootfs, "sh", "-c", "exit 3", check=False)
        assert p.returncode == 3
        got = []

        def read():
            for line in ev.stdout:
                got.append(json.loads(line))

        threading.Thread(target=read, daemon=True).start()
        # an exited task is deleted (its shim goes)
        assert wait_until(lambda: any(e["topic"] == "/tasks/delete" for e in got), 8), got
    finally:
        ev.kill()
        ev.wait()
    assert [e["topic"] for e in got] == ["/tasks/create", "/tasks/start", "/tasks/exit",
                                         "/tasks/delete"]
    assert got[2]["exit_status"] == 3
