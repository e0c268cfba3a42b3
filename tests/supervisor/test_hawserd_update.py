"""Tasks.Update and `hawserctl update`: new limits in the running container's cgroup (v1 files),
in inspect, and in every later task of the container; bad values and containers without a
running task are refused with the right status code, and change nothing."""
from __future__ import annotations

import json
import math
import sqlite3
from pathlib import Path

import grpc
import pytest

from hawserd_harness import CGROUP_ROOT
from supervisor.api import tasks_pb2 as tpb, tasks_pb2_grpc as tgrpc

MIB = 1 << 20


def info(hawserd, ref: str) -> dict:
    return hawserd.info(ref)


def cgroup_file(pid: int, controller: str, name: str) -> str:
    """A cgroup v1 file of the cgroup process pid is in, for controller."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            for mount in (controllers, controller):
                if (CGROUP_ROOT / mount).is_dir():
                    return (CGROUP_ROOT / mount / path.lstrip("/") / name).read_text().strip()
    raise AssertionError(f"pid {pid} has no {controller} cgroup")


def limits_of(pid: int) -> tuple[int, str, int]:
    """(memory limit, pids.max, cpu quota) in the container's cgroups."""
    return (int(cgroup_file(pid, "memory", "memory.limit_in_bytes")),
            cgroup_file(pid, "pids", "pids.max"),
            int(cgroup_file(pid, "cpu", "cpu.cfs_quota_us")))


def test_update_changes_the_cgroup_inspect_and_the_next_task(hawserd, busybox_rootfs):
    hawserd.ctl("run", "-d", "--name", "lim", "--memory", "64m", "--pids-limit", "50",
                "--cpus", "0.5", "--rootfs", busybox_rootfs, "sleep", "1000")
    hawserd.ctl("run", "-d", "--name", "free", "--rootfs", busybox_rootfs, "sleep", "1000")
    pid = info(hawserd, "lim")["pid"]
    assert limits_of(pid) == (64 * MIB, "50", 50000)
    p = hawserd.ctl("update", "--memory", "128m", "--pids-limit", "80", "--cpus", "1.5", "lim",
                    "free")
    assert p.stdout.split() == ["lim", "free"]
    for name in ("lim", "free"):
        c = info(hawserd, name)
        assert limits_of(c["pid"]) == (128 * MIB, "80", 150000), name
        cfg = c["config"]
        assert (int(cfg["memory_limit"]), int(cfg["pids_limit"]), cfg["cpus"]) == (128 * MIB, 80, 1.5)
    # one limit at a time: the others stay
    hawserd.ctl("update", "--pids-limit", "33", "lim")
    assert limits_of(pid) == (128 * MIB, "33", 150000)
    cfg = info(hawserd, "lim")["config"]
    assert (int(cfg["memory_limit"]), int(cfg["pids_limit"]), cfg["cpus"]) == (128 * MIB, 33, 1.5)
    # a new task of the container (stop, start) has the updated limits
    hawserd.ctl("stop", "-t", "1", "lim")
    hawserd.ctl("start", "lim")
    new = info(hawserd, "lim")["pid"]
    assert new != pid and limits_of(new) == (128 * MIB, "33", 150000)
    # and so has it after hawserd restarts and takes it back
    hawserd.sigkill()
    hawserd.start()
    assert int(info(hawserd, "lim")["config"]["pids_limit"]) == 33
    hawserd.ctl("update", "--memory", "96m", "lim")
    assert limits_of(new) == (96 * MIB, "33", 150000)
    hawserd.ctl("rm", "-f", "lim", "free")


@pytest.fixture
def tasks(hawserd):
    channel = grpc.insecure_channel(hawserd.address)
    yield tgrpc.TasksStub(channel)
    channel.close()


def code(fn, req) -> tuple:
    try:
        fn(req, timeout=60)
        return grpc.StatusCode.OK, ""
    except grpc.RpcError as e:
        return e.code(), e.details()


@pytest.mark.parametrize("values", [
    {"memory_limit": -1}, {"pids_limit": -5}, {"cpus": -0.5}, {"cpus": math.nan},
    {"cpus": math.inf}, {"cpus": 1e9}, {},
], ids=["memory-negative", "pids-negative", "cpus-negative", "cpus-nan", "cpus-inf",
        "cpus-huge", "nothing"])
def test_invalid_updates_are_invalid_argument(hawserd, busybox_rootfs, tasks, values):
    hawserd.ctl("run", "-d", "--name", "v", "--pids-limit", "20", "--rootfs", busybox_rootfs,
                "sleep", "1000")
    before = info(hawserd, "v")
    got, details = code(tasks.Update, tpb.UpdateTaskRequest(container_id="v", **values))
    assert got == grpc.StatusCode.INVALID_ARGUMENT, (got, details)
    assert (next(iter(values)) if values else "nothing") in details
    assert info(hawserd, "v")["config"] == before["config"]
    assert cgroup_file(before["pid"], "pids", "pids.max") == "20"
    hawserd.ctl("rm", "-f", "v")


def test_update_needs_a_running_task(hawserd, busybox_rootfs, tasks):
    hawserd.ctl("create", "--name", "created", "--rootfs", busybox_rootfs, "sleep", "1000")
    hawserd.ctl("run", "--name", "exited", "--rootfs", busybox_rootfs, "true")
    for ref in ("created", "exited"):
        got, details = code(tasks.Update, tpb.UpdateTaskRequest(container_id=ref, pids_limit=9))
        assert got == grpc.StatusCode.FAILED_PRECONDITION and "no running task" in details
        assert "pids_limit" not in info(hawserd, ref)["config"]
    got, _ = code(tasks.Update, tpb.UpdateTaskRequest(container_id="nope", pids_limit=9))
    assert got == grpc.StatusCode.NOT_FOUND
    p = hawserd.ctl("update", "--pids-limit", "9", "exited", check=False)
    assert p.returncode != 0 and "no running task" in p.stderr
    # a limit the kernel refuses (below what the container uses): nothing changes
    hawserd.ctl("run", "-d", "--name", "big", "--memory", "64m", "--rootfs", busybox_rootfs,
                "sh", "-c", "x=$(head -c 3000000 /dev/zero | tr '\\0' a); sleep 1000")
    pid = info(hawserd, "big")["pid"]
    got, details = code(tasks.Update, tpb.UpdateTaskRequest(container_id="big",
                                                            memory_limit=4096))
    assert got == grpc.StatusCode.FAILED_PRECONDITION, details
    assert int(info(hawserd, "big")["config"]["memory_limit"]) == 64 * MIB
    assert int(cgroup_file(pid, "memory", "memory.limit_in_bytes")) == 64 * MIB
    bundle = json.loads((Path(info(hawserd, "big")["bundle"]) / "config.json").read_text())
    assert bundle["linux"]["resources"]["memory"]["limit"] == 64 * MIB
    hawserd.ctl("rm", "-f", "created", "exited", "big")


def test_an_update_interrupted_by_a_crash_is_completed(hawserd, busybox_rootfs):
    """hawserd killed after it recorded new limits and before the shim applied them (made by
    hand here: the record's config and the intent): started again, it applies them."""
    hawserd.ctl("run", "-d", "--name", "u", "--pids-limit", "20", "--rootfs", busybox_rootfs,
                "sleep", "1000")
    c = info(hawserd, "u")
    hawserd.sigkill()
    [rec] = hawserd.records()
    db = sqlite3.connect(hawserd.root / "meta.db")
    with db:
        db.execute("UPDATE containers SET config = ? WHERE id = ?",
                   (json.dumps(dict(json.loads(rec["config"]), pids_limit=44)), c["id"]))
    db.close()
    (Path(c["bundle"]) / "hawserd-intent.json").write_text(json.dumps(
        {"op": "update", "prev": {"status": "running", "pid": c["pid"], "exit_status": 0,
                                  "exited_at": 0}}))
    assert cgroup_file(c["pid"], "pids", "pids.max") == "20"
    hawserd.start()
    assert cgroup_file(c["pid"], "pids", "pids.max") == "44"
    assert info(hawserd, "u")["status"] == "running"
    assert not (Path(c["bundle"]) / "hawserd-intent.json").exists()
    hawserd.ctl("rm", "-f", "u")
