"""Container life-cycle benchmarks on a busybox `true` bundle.

run     `RT run ID`: create + start + wait + delete in one command (the runtime is the parent).
cswd    `RT create --pid-file P ID`, `RT start ID`, wait for the process, `RT delete ID`: what a
        shim does; we are child subreaper, so the container's process is reparented to us.
state   `RT state ID` on a container in the created state.
"""
from __future__ import annotations

import json
import time

from common import Benchmark, Context, Runtime, RuntimeFailed


class Run(Benchmark):
    name = "run"
    title = "run (create+start+wait+delete in one command)"
    metrics = ("run",)

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        cid = ctx.new_id("run")
        rt.live.add(cid)
        ms = ctx.timed(rt, "run", "--bundle", rt.bundle, cid)
        rt.live.discard(cid)   # `run` deletes the container when its process exits
        return {"run": ms}


class CreateStartWaitDelete(Benchmark):
    name = "cswd"
    title = "create, start, wait, delete (four commands, as a shim does)"
    metrics = ("cswd", "cswd.create", "cswd.start", "cswd.wait", "cswd.delete")

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        cid = ctx.new_id("cswd")
        pidfile = rt.root.parent / f"{cid}.pid"
        t0 = time.perf_counter()
        rt.live.add(cid)
        create = ctx.timed(rt, "create", "--bundle", rt.bundle, "--pid-file", pidfile, cid)
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError) as e:
            raise RuntimeFailed(f"`{rt.name} create` wrote no usable pid file: {e}") from None
        start = ctx.timed(rt, "start", cid)
        t1 = time.perf_counter()
        ctx.wait_exit(pid, ctx.timeout)
        wait = (time.perf_counter() - t1) * 1000.0
        delete = ctx.timed(rt, "delete", cid)
        rt.live.discard(cid)
        total = (time.perf_counter() - t0) * 1000.0
        pidfile.unlink(missing_ok=True)
        ctx.reap_strays()
        return {"cswd": total, "cswd.create": create, "cswd.start": start, "cswd.wait": wait,
                "cswd.delete": delete}


class State(Benchmark):
    name = "state"
    title = "state of a created container"
    metrics = ("state",)

    def __init__(self):
        self.cid: dict[str, str] = {}

    def setup(self, ctx: Context, rt: Runtime) -> None:
        cid = self.cid[rt.name] = ctx.new_id("state")
        rt.live.add(cid)
        ctx.timed(rt, "create", "--bundle", rt.bundle, cid)
        try:
            status = json.loads(ctx.output(rt, "state", cid)).get("status")
        except ValueError as e:
            raise RuntimeFailed(f"`{rt.name} state` printed no JSON: {e}") from None
        if status != "created":
            raise RuntimeFailed(f"`{rt.name} state` says status {status!r}, expected 'created'")

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        return {"state": ctx.timed(rt, "state", self.cid[rt.name])}

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        cid = self.cid.pop(rt.name, None)
        if cid:
            ctx.force_delete(rt, cid)
        ctx.reap_strays()


BENCHMARKS = [Run, CreateStartWaitDelete, State]
