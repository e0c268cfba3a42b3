#!/usr/bin/env python3
"""Make a local busybox image for `make demo` and `make bench`: a `docker save` archive
(docker-archive: manifest.json, the config, one layer) of the busybox root filesystem the tests
use (tests/conftest.py:build_busybox_rootfs), with FILE=TEXT files added, so that hawserd loads
it like any image (`hawserctl load -i DEST`).

    tools/mkimage.py DEST NAME[:TAG] [--add /PATH=FILE]... [-- CMD...]

Run it with .venv/bin/python3: conftest imports pytest.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
sys.path.insert(0, str(REPO / "tests"))

from mkbundle import build_rootfs  # noqa: E402
from images import write_docker_archive  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    cmd = ["sh"]
    if "--" in argv:
        i = argv.index("--")
        argv, cmd = argv[:i], argv[i + 1:]
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("dest", type=Path, help="the archive (written)")
    p.add_argument("name", help="repo:tag, e.g. hawser-demo/busybox:latest")
    p.add_argument("--add", action="append", default=[], metavar="/PATH=FILE",
                   help="put FILE at /PATH in the image")
    opts = p.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="hawser-mkimage."))
    try:
        rootfs = build_rootfs(tmp / "rootfs")
        for spec in opts.add:
            path, _, source = spec.partition("=")
            target = rootfs / path.lstrip("/")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
        write_docker_archive(rootfs, opts.dest, opts.name, cmd=cmd)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
