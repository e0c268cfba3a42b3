"""hawserd killed (SIGKILL) at any moment and started again: recovery finds every container's shim
and either takes the task back or cleans it up, so that every container `ps -a` lists is running
under a shim that answers, or not running with nothing of its task left; and nothing at all is
left of a container that is not listed."""
from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import time
from collections import Counter

from hawserd_harness import HAWSER, HAWSERCTL, Hawserd, alive, leftovers, shim_pids, wait_until

N = 20
ROUNDS = int(os.environ.get("HAWSER_RECOVERY_ROUNDS", "4"))


def ps_all(hawserd) -> dict[str, dict]:
    return hawserd.ps_all()


def runtime_ids(hawserd) -> set[str]:
    root = hawserd.state / "runtime" / "hawser"
    p = subprocess.run([HAWSER, "--root", str(root), "list", "-q"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    return set(p.stdout.split())


def bundle_ids(hawserd) -> set[str]:
    d = hawserd.state / "bundles"
    return set(os.listdir(d)) if d.is_dir() else set()


def inconsistencies(hawserd, seen: set[str]) -> list[str]:
    """What contradicts the listing: a running container without a live process and shim; a
    container not running with something of a task left; anything of a container not listed."""
    listed = ps_all(hawserd)
    running = {cid for cid, c in listed.items() if c["status"] in ("running", "paused")}
    shims = shim_pids(hawserd)
    out = []
    for cid, c in listed.items():
        if cid in running:
            if not c.get("pid") or not alive(c["pid"]):
                out.append(f"{c['name']} is {c['status']} but its pid {c.get('pid')} is gone")
            if cid not in shims.values():
                out.append(f"{c['name']} is {c['status']} without a shim")
        else:
            out += [f"{c['name']} ({c['status']}): {x}" for x in leftovers(hawserd, cid)]
    for cid in seen - set(listed):
        out += [f"unlisted {cid[:12]}: {x}" for x in leftovers(hawserd, cid)]
        if (hawserd.root / "containers" / cid).exists():
            out.append(f"unlisted {cid[:12]}: log directory")
    out += [f"shim pid {pid} of {cid[:12]}, which is not running"
            for pid, cid in shims.items() if cid not in running]
    out += [f"runtime state of {cid[:12]}, which is not running"
            for cid in runtime_ids(hawserd) - running]
    out += [f"bundle of {cid[:12]}, which is not listed"
            for cid in bundle_ids(hawserd) - set(listed)]
    return out


def assert_consistent(hawserd, seen: set[str]) -> dict[str, dict]:
    problems: list[str] = []

    def settled() -> bool:
        problems[:] = inconsistencies(hawserd, seen)
        return not problems
    # a shim told to shut down exits a moment after its answer: give that a little time
    assert wait_until(settled, 5, 0.2), "\n".join(problems)
    return ps_all(hawserd)


def run_many(hawserd, rootfs, names: list[str]) -> list[subprocess.Popen]:
    return [subprocess.Popen([HAWSERCTL, "--address", hawserd.address, "run", "-d", "--name", n,
                              "--rootfs", str(rootfs), "sleep", "1000"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for n in names]


def test_sigkill_during_20_concurrent_runs(hawserd, busybox_rootfs):
    """Rounds of 20 concurrent `run -d` with hawserd killed after a random delay, while two
    older containers (one running, one exited 3) live through every round."""
    seed = int(os.environ.get("HAWSER_RECOVERY_SEED", time.time_ns() % 100000))
    rng = random.Random(seed)
    veteran = hawserd.ctl("run", "-d", "--name", "veteran", "--rootfs", busybox_rootfs,
                          "sleep", "1000").stdout.strip()
    hawserd.ctl("run", "--name", "done", "--rootfs", busybox_rootfs, "sh", "-c", "exit 3",
                check=False)
    vpid = ps_all(hawserd)[veteran]["pid"]
    seen: set[str] = set()
    seen_lines = 0
    for rnd in range(ROUNDS):
        # 20 runs take ~2.5 s here (the first records appear after ~0.5 s): kill early, in
        # the middle or late in that window
        delay = rng.uniform(*((0.3, 1.2), (1.2, 1.9), (1.9, 3.0))[rnd % 3])
        clients = run_many(hawserd, busybox_rootfs, [f"r{rnd}-{i}" for i in range(N)])
        time.sleep(delay)
        hawserd.sigkill()
        seen |= hawserd.known_ids()
        for c in clients:
            c.communicate(timeout=120)
        hawserd.start()
        listed = assert_consistent(hawserd, seen)
        ctx = f"seed {seed}, round {rnd}, delay {delay:.2f}"
        assert listed[veteran]["status"] == "running" and listed[veteran]["pid"] == vpid, ctx
        done = [c for c in listed.values() if c["name"] == "done"]
        assert [(c["status"], c.get("exit_status")) for c in done] == [("exited", 3)], ctx
        ours = [c for c in listed.values() if c["name"].startswith(f"r{rnd}-")]
        for c in ours:
            assert c["status"] in ("running", "created", "exited"), (ctx, c)
        print(f"{ctx}: " + ", ".join(f"{n} {s}" for s, n in sorted(Counter(
            c["status"] for c in ours).items())) + f", {N - len(ours)} gone")
        if os.environ.get("HAWSER_RECOVERY_LOG"):
            log = (hawserd.base / "hawserd.log").read_text().splitlines()
            print(Counter(x.split("recovery: ", 1)[1].split(": ", 1)[-1]
                          for x in log[seen_lines:] if "recovery: " in x))
            seen_lines = len(log)
        # every running one answers: exec, then kill (half) or rm -f (the others)
        running = [c for c in ours if c["status"] == "running"]
        for c in running:
            p = hawserd.ctl("exec", c["id"], "echo", "in", c["name"], check=False)
            assert (p.returncode, p.stdout) == (0, f"in {c['name']}\n"), (ctx, p.stderr)
        for c in running[::2]:
            hawserd.ctl("kill", c["id"])
        for c in running[::2]:
            assert hawserd.ctl("wait", c["id"]).stdout == "137\n", ctx
        if ours:
            hawserd.ctl("rm", "-f", *[c["id"] for c in ours])
        left = assert_consistent(hawserd, seen)
        assert sorted(c["name"] for c in left.values()) == ["done", "veteran"], ctx
    assert hawserd.ctl("exec", "veteran", "echo", "veteran").stdout == "veteran\n"
    hawserd.ctl("rm", "-f", "veteran", "done")
    assert ps_all(hawserd) == {}
    assert not alive(vpid)
    assert assert_consistent(hawserd, seen | {veteran}) == {}
    assert runtime_ids(hawserd) == set() and bundle_ids(hawserd) == set()
    assert os.listdir(hawserd.root / "containers") == []


def info(hawserd, ref: str) -> dict:
    return hawserd.info(ref)


def test_what_happened_while_hawserd_was_down(hawserd, busybox_rootfs):
    """A shim killed (its container goes: exited 137 as `shim delete` reports), a task that
    exited (its own status; removed if it was run with --rm), one still running (taken back:
    logs, exec, kill, wait), one that had exited before (keeps its status); no task, shim or
    runtime state stays for the others."""
    loop = "while true; do sleep 0.1; done"
    live = hawserd.ctl("run", "-d", "--name", "live", "--rootfs", busybox_rootfs, "sh", "-c",
                       f"echo up; trap 'echo down; exit 5' TERM; {loop}").stdout.strip()
    ends = hawserd.ctl("run", "-d", "--name", "ends", "--rootfs", busybox_rootfs, "sh", "-c",
                       f"trap 'exit 42' TERM; {loop}").stdout.strip()
    orphan = hawserd.ctl("run", "-d", "--name", "orphan", "--rootfs", busybox_rootfs,
                         "sleep", "1000").stdout.strip()
    autorm = hawserd.ctl("run", "-d", "--rm", "--name", "autorm", "--rootfs", busybox_rootfs,
                         "sh", "-c", f"trap 'exit 0' TERM; {loop}").stdout.strip()
    hawserd.ctl("run", "--name", "old", "--rootfs", busybox_rootfs, "sh", "-c", "exit 3",
                check=False)
    assert wait_until(lambda: "up" in hawserd.ctl("logs", "live").stdout)
    # `run` returns at the exit; the exited task's shim goes just after (hawserd's exit watcher)
    assert wait_until(lambda: [(r["shim_pid"], r["shim_address"]) for r in hawserd.records()
                               if r["name"] == "old"] == [(0, "")])
    recs = {r["name"]: r for r in hawserd.records()}
    hawserd.sigkill()
    os.kill(recs["orphan"]["shim_pid"], 9)
    os.kill(recs["ends"]["pid"], 15)
    os.kill(recs["autorm"]["pid"], 15)
    assert wait_until(lambda: not alive(recs["orphan"]["shim_pid"]) and
                      not alive(recs["ends"]["pid"]) and not alive(recs["autorm"]["pid"]))
    hawserd.start()
    assert autorm not in ps_all(hawserd)
    assert (info(hawserd, "orphan")["status"], info(hawserd, "orphan")["exit_status"]) == \
        ("exited", 137)
    assert not alive(recs["orphan"]["pid"])
    c = info(hawserd, "ends")
    assert (c["status"], c["exit_status"]) == ("exited", 42) and c["exited_at"]
    c = info(hawserd, "old")
    assert (c["status"], c["exit_status"]) == ("exited", 3)
    c = info(hawserd, "live")
    assert (c["status"], c["pid"]) == ("running", recs["live"]["pid"])
    assert_consistent(hawserd, {live, ends, orphan, autorm})
    assert hawserd.ctl("exec", "live", "sh", "-c", "echo in-live").stdout == "in-live\n"
    hawserd.ctl("kill", "-s", "TERM", "live")
    assert hawserd.ctl("wait", "live").stdout == "5\n"
    assert hawserd.ctl("logs", "live").stdout == "up\ndown\n"
    assert_consistent(hawserd, {live, ends, orphan, autorm})
    hawserd.ctl("rm", "live", "ends", "orphan", "old")
    assert assert_consistent(hawserd, {live, ends, orphan, autorm}) == {}


def test_an_interrupted_rm_is_completed(hawserd, busybox_rootfs):
    """hawserd killed during `rm -f`: after its intent was written (the record still there),
    or after the record went (only the bundle and the shim left): the removal is finished."""
    a = hawserd.ctl("run", "-d", "--name", "a", "--rootfs", busybox_rootfs,
                    "sleep", "1000").stdout.strip()
    b = hawserd.ctl("run", "-d", "--name", "b", "--rootfs", busybox_rootfs,
                    "sleep", "1000").stdout.strip()
    keep = hawserd.ctl("create", "--name", "keep", "--rootfs", busybox_rootfs,
                       "true").stdout.strip()
    hawserd.sigkill()
    # the states a crash inside delete_container leaves, made by hand
    rec = next(r for r in hawserd.records() if r["id"] == a)
    (hawserd.state / "bundles" / a / "hawserd-intent.json").write_text(json.dumps(
        {"op": "remove", "prev": {k: rec[k] for k in ("status", "pid", "exit_status",
                                                      "exited_at")}}))
    db = sqlite3.connect(hawserd.root / "meta.db")
    with db:
        db.execute("DELETE FROM containers WHERE id = ?", (b,))
    db.close()
    hawserd.start()
    assert set(ps_all(hawserd)) == {keep}
    assert info(hawserd, "keep")["status"] == "created"
    assert assert_consistent(hawserd, {a, b, keep}).keys() == {keep}
    assert not (hawserd.root / "containers" / a).exists()
    assert not (hawserd.root / "containers" / b).exists()
    hawserd.ctl("start", "keep")
    hawserd.ctl("rm", "keep")


def test_a_create_under_way_in_the_shim_is_rolled_back(hawserd, busybox_rootfs, tmp_path):
    """hawserd killed while the shim's Create is still running (a slow runtime): the new hawserd
    finds a shim with no task yet; the shim refuses to shut down until that Create is over,
    then the created task is deleted: the container is Created, nothing of the task left."""
    slow = tmp_path / "slow-runtime"
    creating = tmp_path / "creating"
    slow.write_text(f"#!/bin/sh\ncase \" $* \" in\n  *\" create \"*) touch {creating}; sleep 2;;\n"
                    f"esac\nexec {HAWSER} \"$@\"\n")
    slow.chmod(0o755)
    client = subprocess.Popen([HAWSERCTL, "--address", hawserd.address, "run", "-d", "--name",
                               "slow", "--runtime", str(slow), "--rootfs", str(busybox_rootfs),
                               "sleep", "1000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert wait_until(creating.exists, 10)
        hawserd.sigkill()
    finally:
        client.communicate(timeout=60)
    [rec] = hawserd.records()
    assert rec["status"] == "created" and rec["pid"] == 0 and alive(rec["shim_pid"])
    t = time.monotonic()
    hawserd.start()
    assert time.monotonic() - t > 0.5    # it waited for the Create
    c = info(hawserd, "slow")
    assert (c["status"], c.get("pid", 0)) == ("created", 0)
    assert assert_consistent(hawserd, {rec["id"]}).keys() == {rec["id"]}
    assert not alive(rec["shim_pid"])
    hawserd.ctl("start", "slow")
    assert info(hawserd, "slow")["status"] == "running"
    hawserd.ctl("rm", "-f", "slow")
    assert assert_consistent(hawserd, {rec["id"]}) == {}


def test_shims_of_another_root_on_the_same_address_are_not_touched(hawserd, busybox_rootfs):
    """Another hawserd (its own --root/--state) later serving the same address does not take
    the shims of the first one for orphans of its own."""
    hawserd.ctl("run", "-d", "--name", "mine", "--rootfs", busybox_rootfs, "sleep", "1000")
    [rec] = hawserd.records()
    hawserd.stop()
    other = Hawserd()
    other.socket, other.address = hawserd.socket, hawserd.address
    try:
        other.start()
        assert other.ctl("ps", "-a", "-q").stdout == ""
        assert alive(rec["pid"]) and alive(rec["shim_pid"])
    finally:
        other.stop()    # (not other.cleanup(): it would end every shim of this address)
        shutil.rmtree(other.base, ignore_errors=True)
    hawserd.start()
    c = info(hawserd, "mine")
    assert (c["status"], c["pid"]) == ("running", rec["pid"])
    hawserd.ctl("rm", "-f", "mine")
    assert assert_consistent(hawserd, {rec["id"]}) == {}


def test_stdin_and_terminal_output_after_a_restart(hawserd, busybox_rootfs):
    """A container created with -i is attached to after hawserd was killed (its stdin FIFO is
    still the shim's); a terminal's output written while hawserd was down reaches the log."""
    hawserd.ctl("create", "-i", "--name", "in", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo ready; read x; echo got $x; exit 7")
    hawserd.ctl("start", "in")
    hawserd.ctl("run", "-d", "-t", "--name", "tty", "--rootfs", busybox_rootfs, "sh", "-c",
                "echo one; sleep 1; echo two; sleep 1000")
    assert wait_until(lambda: hawserd.ctl("logs", "in").stdout == "ready\n" and
                      "one" in hawserd.ctl("logs", "tty").stdout, 10)
    hawserd.sigkill()
    time.sleep(1)    # "two" is written while nobody reads
    hawserd.start()
    p = hawserd.ctl("attach", "in", input="again\n", check=False)
    assert (p.returncode, p.stdout) == (7, "got again\n")
    assert wait_until(lambda: "two" in hawserd.ctl("logs", "tty").stdout, 10)
    hawserd.ctl("rm", "-f", "in", "tty")
