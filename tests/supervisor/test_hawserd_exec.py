"""hawserd's Tasks.Exec through the shim (Exec + Start + Wait) and `hawserctl exec`."""
from __future__ import annotations

from hawserd_harness import wait_until


def test_exec_returns_output_and_exit_code(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "box", "-e", "A=1", "--rootfs", busybox_rootfs,
                "sleep", "100")
    p = hawserd.ctl("exec", "box", "sh", "-c", "echo out $A; echo err >&2; exit 6", check=False)
    assert (p.returncode, p.stdout, p.stderr) == (6, "out 1\n", "err\n")
    p = hawserd.ctl("exec", "-e", "A=2", "-e", "B=x", "-u", "1000", "-w", "/tmp", "box",
                    "sh", "-c", "echo $A $B $(id -u) $(pwd)")
    assert p.stdout == "2 x 1000 /tmp\n"
    p = hawserd.ctl("exec", "-i", "box", "sh", "-c", "read line; echo got $line",
                    input="hello\n")
    assert p.stdout == "got hello\n"


def test_detached_exec_writes_into_the_container_log(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "box", "--rootfs", busybox_rootfs, "sleep", "100")
    assert hawserd.ctl("exec", "-d", "box", "sh", "-c", "echo from-exec").stdout == ""
    assert wait_until(lambda: hawserd.ctl("logs", "box").stdout == "from-exec\n", 5)


def test_exec_errors(hawserd, busybox_rootfs):
    hawserd.ctl("create", "--name", "idle", "--rootfs", busybox_rootfs, "sleep", "100")
    p = hawserd.ctl("exec", "idle", "true", check=False)
    assert p.returncode == 125 and "(FAILED_PRECONDITION)" in p.stderr
    p = hawserd.ctl("exec", "nosuch", "true", check=False)
    assert p.returncode == 125 and "(NOT_FOUND)" in p.stderr
    hawserd.ctl("start", "idle")
    p = hawserd.ctl("exec", "-w", "rel", "idle", "true", check=False)
    assert p.returncode == 125 and "(INVALID_ARGUMENT)" in p.stderr
    p = hawserd.ctl("exec", "idle", "/no/such/binary", check=False)
    assert p.returncode != 0
    assert hawserd.ctl("exec", "idle", "true").returncode == 0
