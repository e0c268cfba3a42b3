"""`RT exec ID true` into a running container (busybox `sleep`), the call a shim makes for every
`ctr task exec` / `docker exec`. The exec runs in the foreground: the time includes joining the
namespaces and cgroup, starting `true` and reaping it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from common import Benchmark, Context, Runtime, RuntimeFailed


def sleeping_bundle(rt: Runtime) -> Path:
    """A sibling of the runtime's bundle whose process sleeps, sharing its rootfs."""
    src = Path(rt.bundle)
    dst = src.parent / (src.name + "-sleep")
    dst.mkdir(exist_ok=True)
    config = json.loads((src / "config.json").read_text())
    config["process"]["args"] = ["sleep", "100000"]
    config["root"]["path"] = str((src / config["root"]["path"]).resolve())
    (dst / "config.json").write_text(json.dumps(config))
    return dst


class Exec(Benchmark):
    name = "exec"
    title = "exec of `true` into a running container"
    metrics = ("exec",)

    def __init__(self):
        self.cid: dict[str, str] = {}
        self.bundles: dict[str, Path] = {}

    def setup(self, ctx: Context, rt: Runtime) -> None:
        bundle = self.bundles[rt.name] = sleeping_bundle(rt)
        cid = self.cid[rt.name] = ctx.new_id("exec")
        rt.live.add(cid)
        ctx.timed(rt, "run", "--detach", "--bundle", bundle, cid)
        status = json.loads(ctx.output(rt, "state", cid)).get("status")
        if status != "running":
            raise RuntimeFailed(f"`{rt.name} run -d` left the container {status!r}")

    def once(self, ctx: Context, rt: Runtime) -> dict[str, float]:
        return {"exec": ctx.timed(rt, "exec", self.cid[rt.name], "true")}

    def teardown(self, ctx: Context, rt: Runtime) -> None:
        cid = self.cid.pop(rt.name, None)
        if cid:
            ctx.force_delete(rt, cid)
        ctx.reap_strays()
        bundle = self.bundles.pop(rt.name, None)
        if bundle:
            shutil.rmtree(bundle, ignore_errors=True)


BENCHMARKS = [Exec]
