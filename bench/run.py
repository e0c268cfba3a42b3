#!/usr/bin/env python3
"""`make bench`: hawser against runc and crun, in the same run, on the same busybox bundle.

Every runtime gets its own --root and its own copy of the bundle (config.json from `runc spec`
by default, process `true`). Iterations are interleaved across runtimes (the starting runtime
rotates) so that drift on the machine affects them alike. A runtime that fails (crun 1.8 refuses
a hybrid cgroup layout; hawser may not be ready) is reported with its error and the run goes on.
Prints a table of medians, p90 and the ratios hawser/runc and hawser/crun, then one JSON line.

Adding a benchmark: write bench/NAME.py with BENCHMARKS = [Benchmark subclasses] (see
common.Benchmark and lifecycle.py) and add "NAME" to MODULES below.
"""
from __future__ import annotations

import argparse
import importlib
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Benchmark, Context, Runtime, RuntimeFailed, dumps, summary  # noqa: E402

# Benchmark modules in bench/, run in this order.
MODULES = ["lifecycle", "exec", "shim", "supervisor", "images_bench", "network_bench"]


def load_benchmarks(only: set[str] | None) -> list[Benchmark]:
    out = []
    for name in MODULES:
        mod = importlib.import_module(name)
        for cls in mod.BENCHMARKS:
            if only is None or cls.name in only:
                out.append(cls())
    return out


def spawn_baseline(ctx: Context, n: int) -> float:
    """What the harness itself costs per command: Popen + wait of /bin/true, same stdio set-up."""
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        subprocess.Popen(["/bin/true"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL).wait()
        samples.append((time.perf_counter() - t0) * 1000.0)
    return summary(samples)["median_ms"]


def run_benchmark(bench: Benchmark, ctx: Context, runtimes: list[Runtime]):
    samples: dict[str, dict[str, list[float]]] = {m: {} for m in bench.metrics}
    errors: dict[str, str] = {}
    active: list[Runtime] = []
    print(f"\n== {bench.name}: {bench.title}", flush=True)
    try:
        for rt in runtimes:
            try:
                bench.setup(ctx, rt)
                for _ in range(max(1, ctx.warmup)):
                    bench.once(ctx, rt)
                active.append(rt)
            except RuntimeFailed as e:
                errors[rt.name] = str(e)
                print(f"   {rt.name} skipped: {e}", flush=True)
        for i in range(ctx.iterations):
            k = i % len(active) if active else 0
            for rt in active[k:] + active[:k]:
                if rt.name in errors:
                    continue
                try:
                    for metric, ms in bench.once(ctx, rt).items():
                        samples.setdefault(metric, {}).setdefault(rt.name, []).append(ms)
                except RuntimeFailed as e:
                    errors[rt.name] = f"iteration {i + 1}: {e}"
                    print(f"   {rt.name} failed: {errors[rt.name]}", flush=True)
    finally:
        for rt in runtimes:
            try:
                bench.teardown(ctx, rt)
            except Exception as e:  # noqa: BLE001 - keep tearing down the others
                print(f"   {rt.name} teardown failed: {e}", flush=True)
    results = {}
    for metric, per_rt in samples.items():
        results[metric] = {name: summary(s) for name, s in per_rt.items()
                           if s and name not in errors}
    return results, errors


def ratios(results: dict, ref: str, others: list[str]) -> dict:
    out = {}
    for metric, per_rt in results.items():
        row = {}
        for other in others:
            a, b = per_rt.get(ref), per_rt.get(other)
            row[f"{ref}/{other}"] = round(a["median_ms"] / b["median_ms"], 2) if a and b else None
        out[metric] = row
    return out


def print_table(benches, all_results, all_errors, runtimes, ratio_table) -> None:
    print()
    hdr = f"{'metric':<14} {'runtime':<8} {'median ms':>10} {'p90 ms':>9} {'min ms':>9} {'n':>4}"
    print(hdr)
    print("-" * len(hdr))
    for bench in benches:
        errors = all_errors.get(bench.name, {})
        for metric in bench.metrics:
            per_rt = all_results.get(metric, {})
            label = metric
            for rt in runtimes:
                s = per_rt.get(rt.name)
                if s:
                    print(f"{label:<14} {rt.name:<8} {s['median_ms']:>10.2f} {s['p90_ms']:>9.2f} "
                          f"{s['min_ms']:>9.2f} {s['n']:>4}")
                elif metric == bench.metrics[0]:
                    state = "failed" if rt.name in errors else "no samples"
                    print(f"{label:<14} {rt.name:<8} {state:>10}")
                else:
                    continue
                label = ""
    cols = [c for c in next(iter(ratio_table.values()), {})]
    if cols:
        print()
        print(f"{'ratio of medians':<16} " + " ".join(f"{c:>12}" for c in cols))
        for metric, row in ratio_table.items():
            cells = [f"{row[c]:>11.2f}x" if row.get(c) is not None else f"{'n/a':>12}" for c in cols]
            print(f"{metric:<16} " + " ".join(cells))
    # Each failure once, with the benchmarks it hit.
    seen: dict[tuple[str, str], list[str]] = {}
    for bench in benches:
        for name, why in all_errors.get(bench.name, {}).items():
            seen.setdefault((name, why), []).append(bench.name)
    if seen:
        print()
    for (name, why), where in seen.items():
        print(f"{name} skipped in {', '.join(where)}: {why}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--iterations", "-n", type=int, default=30, help="timed iterations (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="untimed warm-up iterations (default 3)")
    p.add_argument("--hawser", default=os.environ.get("HAWSER_BIN", str(REPO / ".venv/bin/hawser")))
    p.add_argument("--runc", default="/usr/sbin/runc")
    p.add_argument("--crun", default="/usr/bin/crun")
    p.add_argument("--runtimes", default="hawser,runc,crun",
                   help="comma-separated subset of hawser,runc,crun; the first is the reference "
                        "of the ratios")
    p.add_argument("--only", help="comma-separated benchmark names (default: all)")
    p.add_argument("--spec-runtime", help="runtime whose `spec` makes config.json (default runc)")
    p.add_argument("--timeout", type=float, default=20.0,
                   help="seconds one runtime command may take before it counts as failed (20)")
    p.add_argument("--json", metavar="FILE", help="also write the JSON result to FILE")
    p.add_argument("--keep", action="store_true", help="keep the temp directory")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    opts = p.parse_args(argv)

    only = set(opts.only.split(",")) if opts.only else None
    benches = load_benchmarks(only)
    if opts.list:
        for b in load_benchmarks(None):
            print(f"{b.name:<10} {b.title}")
        return 0
    if not benches:
        p.error(f"no benchmark named {opts.only}")
    if os.geteuid() != 0:
        p.error("run as root (containers need it)")

    paths = {"hawser": opts.hawser, "runc": opts.runc, "crun": opts.crun}
    runtimes, unavailable = [], {}
    for name in opts.runtimes.split(","):
        if name not in paths:
            p.error(f"unknown runtime {name!r}")
        rt = Runtime(name, paths[name])
        why = rt.available()
        if why:
            unavailable[name] = why
            print(f"{name} skipped: {why}")
        else:
            runtimes.append(rt)
    if not runtimes:
        print("bench: no runtime to measure")
        return 1
    spec_rt = opts.spec_runtime or (opts.runc if os.path.exists(opts.runc) else runtimes[0].path)

    info = {name: {"path": paths[name], "version": None} for name in opts.runtimes.split(",")}
    for rt in runtimes:
        info[rt.name]["version"] = rt.version()
    for name, why in unavailable.items():
        info[name]["error"] = why

    # Ctrl-C (SIGINT), SIGTERM and SIGHUP all end in the `finally` clean-up below.
    def interrupted(signum, _frame):
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGINT, signal.default_int_handler)   # even if started with it ignored
    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)

    ctx = Context(runtimes, opts.iterations, opts.warmup, spec_rt, keep=opts.keep,
                  timeout=opts.timeout)
    all_results, all_errors = {}, {}
    stopped = False
    try:
        ctx.prepare(["true"])
        print(f"hawser bench: {opts.iterations} iterations after {opts.warmup} warm-up, busybox "
              f"`true`, config.json from `{os.path.basename(spec_rt)} spec`")
        print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, kernel {platform.release()}")
        for rt in runtimes:
            print(f"  {rt.name:<7} {rt.path}  ({info[rt.name]['version']})")
        baseline = spawn_baseline(ctx, max(10, opts.iterations))
        print(f"harness: spawning /bin/true costs {baseline:.2f} ms (median); it is included in "
              f"every figure")
        for bench in benches:
            results, errors = run_benchmark(bench, ctx, runtimes)
            all_results.update(results)
            all_errors[bench.name] = errors
    except KeyboardInterrupt:
        stopped = True
        print("\nbench: interrupted, cleaning up", file=sys.stderr)
    finally:
        # No second Ctrl-C in the middle of the clean-up (each delete has its own timeout).
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ctx.close()
    if stopped:
        return 130

    names = [rt.name for rt in runtimes]
    ref = opts.runtimes.split(",")[0]
    others = [n for n in opts.runtimes.split(",") if n != ref]
    ratio_table = ratios(all_results, ref, others)
    print_table(benches, all_results, all_errors, runtimes, ratio_table)
    doc = {
        "iterations": opts.iterations, "warmup": opts.warmup,
        "runtimes": info, "measured": names, "baseline_spawn_ms": baseline,
        "results": all_results, "errors": all_errors, "ratios": ratio_table,
    }
    line = dumps(doc)
    if opts.json:
        Path(opts.json).write_text(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
