#!/usr/bin/env python3
"""Make an OCI bundle for `make demo` and `make bench`: DEST/rootfs, the busybox root filesystem the
tests use (built by tests/conftest.py:build_busybox_rootfs, the one implementation), and
DEST/config.json from `RUNTIME spec`, with the process args given after `--`.

    tools/mkbundle.py [--spec-runtime BIN] [--terminal] [--rootfs-only] DEST [-- ARG...]

Run it with .venv/bin/python3: conftest imports pytest.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def build_rootfs(dest: Path) -> Path:
    sys.path.insert(0, str(REPO / "tests"))
    try:
        from conftest import build_busybox_rootfs
    except ImportError as e:
        sys.exit(f"mkbundle: cannot import tests/conftest.py ({e}): run `make install` and use "
                 f".venv/bin/python3")
    finally:
        sys.path.pop(0)
    return build_busybox_rootfs(dest)


def write_config(bundle: Path, runtime: str, args: list[str], terminal: bool) -> dict:
    proc = subprocess.run([runtime, "spec", "--bundle", str(bundle)], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        sys.exit(f"mkbundle: `{runtime} spec` exited {proc.returncode}: {proc.stderr.strip()}")
    path = bundle / "config.json"
    config = json.loads(path.read_text())
    config["process"]["args"] = args
    config["process"]["terminal"] = terminal
    path.write_text(json.dumps(config, indent=2) + "\n")
    return config


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args_after = []
    if "--" in argv:
        i = argv.index("--")
        argv, args_after = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dest", type=Path, help="bundle directory (created)")
    p.add_argument("--spec-runtime", default=os.environ.get("HAWSER_BIN", str(REPO / ".venv/bin/hawser")),
                   help="runtime whose `spec` command writes config.json (default: hawser)")
    p.add_argument("--terminal", action="store_true", help="process.terminal = true")
    p.add_argument("--rootfs-only", action="store_true", help="only DEST/rootfs, no config.json")
    opts = p.parse_args(argv)
    opts.dest.mkdir(parents=True, exist_ok=True)
    build_rootfs(opts.dest / "rootfs")
    if not opts.rootfs_only:
        write_config(opts.dest, opts.spec_runtime, args_after or ["sh"], opts.terminal)
    return 0


if __name__ == "__main__":
    sys.exit(main())
