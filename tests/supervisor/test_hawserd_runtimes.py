"""The low-level runtime is hawserd's choice per container: hawser by default, runc or crun by
--runtime (the shim drives whichever it is given)."""
from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from hawserd_harness import wait_until


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed (make install)")
def test_containers_under_runc(hawserd, busybox_rootfs):
    p = hawserd.ctl("run", "--rm", "--runtime", "runc", "--rootfs", busybox_rootfs, "sh", "-c",
                    "echo out; echo err >&2; exit 4", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (4, "out\n", "err\n")
    hawserd.ctl("run", "-d", "--name", "r", "--runtime", "runc", "--memory", "64m", "--rootfs",
                busybox_rootfs, "sleep", "1000")
    c = hawserd.info("r")
    assert c["runtime"] == "runc" and c["status"] == "running"
    # runc (not hawser) runs it: runc knows it, in its root under hawserd's state
    [runc_root] = {p.parent.parent for p in (hawserd.state / "runtime").rglob("state.json")
                   if p.parent.name == c["id"]}
    p = subprocess.run(["runc", "--root", runc_root, "state", c["id"]], capture_output=True,
                       text=True)
    assert p.returncode == 0 and json.loads(p.stdout)["status"] == "running", p.stderr
    assert hawserd.ctl("exec", "r", "cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes") \
        .stdout.strip() == str(64 << 20)
    hawserd.ctl("stop", "-t", "1", "r")
    assert hawserd.info("r")["exit_status"] == 137
    hawserd.ctl("rm", "r")
    assert wait_until(lambda: not (runc_root / c["id"]).exists(), 5)
    assert hawserd.ctl("ps", "-a", "-q").stdout == ""


@pytest.mark.skipif(not shutil.which("runc"), reason="runc is not installed (make install)")
def test_daemon_default_runtime(hawserd_factory, busybox_rootfs):
    d = hawserd_factory("--runtime", "runc")
    assert json.loads(d.ctl("version", "--format", "json").stdout)["runtime"] == "runc"
    d.ctl("run", "-d", "--name", "x", "--rootfs", busybox_rootfs, "sleep", "1000")
    assert d.info("x")["runtime"] == "runc"
    assert d.ctl("exec", "x", "echo", "hi").stdout == "hi\n"
