"""Containers.Logs: the json-file log through the API (tail, follow), and attached run."""
from __future__ import annotations

import json
import subprocess
import time

import grpc

from hawserd_harness import HAWSERCTL, wait_until
from supervisor.api import containers_pb2, containers_pb2_grpc


def test_logs_tail_and_streams(hawserd, busybox_rootfs):
    hawserd.ctl("run", "--name", "n", "--rootfs", busybox_rootfs, "sh", "-c",
                "for i in 1 2 3 4; do echo $i; done; sleep 0.3; echo five >&2")
    assert hawserd.ctl("logs", "n").stdout == "1\n2\n3\n4\n"
    p = hawserd.ctl("logs", "--tail", "2", "n")
    assert (p.stdout, p.stderr) == ("4\n", "five\n")
    assert hawserd.ctl("logs", "--tail", "0", "n").stdout == ""
    with grpc.insecure_channel(hawserd.address) as ch:
        entries = list(containers_pb2_grpc.ContainersStub(ch).Logs(
            containers_pb2.LogsRequest(id="n", tail=-1)))
    assert [(e.stream, e.log) for e in entries][-2:] == [("stdout", "4\n"), ("stderr", "five\n")]
    assert all(e.time.endswith("Z") for e in entries)
    p = hawserd.ctl("logs", "nosuch", check=False)
    assert p.returncode == 125 and "(NOT_FOUND)" in p.stderr


def test_logs_follow_until_the_container_stops(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "f", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo a; sleep 0.5; echo b; sleep 0.5; echo c")
    assert wait_until(lambda: "a" in hawserd.ctl("logs", "f").stdout, 5)
    t = time.monotonic()
    p = hawserd.ctl("logs", "-f", "f", timeout=15)
    assert p.stdout == "a\nb\nc\n" and time.monotonic() - t > 0.3
    c = hawserd.info("f")
    with open(c["log_path"]) as f:    # still docker's json-file format on disk
        assert [json.loads(line)["log"] for line in f] == ["a\n", "b\n", "c\n"]


def test_logs_follow_with_tail_0_sees_only_new_output(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "g", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo old; sleep 1; echo new; sleep 0.3")
    assert wait_until(lambda: "old" in hawserd.ctl("logs", "g").stdout, 5)
    follower = subprocess.Popen([HAWSERCTL, "--address", hawserd.address, "logs", "-f",
                                 "--tail", "0", "g"], stdout=subprocess.PIPE, text=True)
    try:
        out, _ = follower.communicate(timeout=15)
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
    assert out == "new\n"


def test_attached_run_streams_through_the_api(hawserd, busybox_rootfs):
    p = hawserd.ctl("run", "--rootfs", busybox_rootfs, "sh", "-c",
                    "echo one; sleep 0.3; echo two >&2; sleep 0.3; echo three; exit 2",
                    check=False)
    assert (p.returncode, p.stdout, p.stderr) == (2, "one\nthree\n", "two\n")
