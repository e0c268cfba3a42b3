"""Shared fixtures: a real busybox rootfs, OCI bundles made from `hawser spec`, a private state root
per test, and a runner for the `hawser` CLI. Every fixture cleans up after itself, even on failure."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from leaks import removing_new_cgroup_parents
from paths import HAWSER
BUSYBOX = "/bin/busybox"

PASSWD = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n" \
         "user:x:1000:1000:user:/home/user:/bin/sh\n"
GROUP = "root:x:0:\nwheel:x:10:root\nnogroup:x:65534:\nuser:x:1000:\n"


def build_busybox_rootfs(dest: Path) -> Path:
    """A minimal root filesystem: Debian's busybox-static with every applet as a symlink."""
    if not os.path.exists(BUSYBOX):
        pytest.fail("busybox-static is not installed: run `make install`")
    for d in ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "proc", "sys", "dev", "tmp", "root",
              "home/user", "run", "var/tmp"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUSYBOX, dest / "bin" / "busybox")
    applets = subprocess.run([BUSYBOX, "--list-full"], check=True, capture_output=True,
                             text=True).stdout.split()
    for applet in applets:
        link = dest / applet
        if applet == "bin/busybox" or link.exists() or link.is_symlink():
            continue
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to("/bin/busybox")
    (dest / "etc" / "passwd").write_text(PASSWD)
    (dest / "etc" / "group").write_text(GROUP)
    (dest / "etc" / "hostname").write_text("busybox\n")
    os.chmod(dest / "tmp", 0o1777)
    return dest


@pytest.fixture(scope="session")
def busybox_rootfs(tmp_path_factory) -> Path:
    """A pristine busybox rootfs shared by the session: copy it before writing into it."""
    return build_busybox_rootfs(tmp_path_factory.mktemp("rootfs") / "rootfs")


def hawser_cmd(*args: str, root: str | None = None, binary: str = HAWSER) -> list[str]:
    cmd = [binary]
    if root:
        cmd += ["--root", root]
    return cmd + [str(a) for a in args]


class Bundle:
    """An OCI bundle: `path/config.json` plus `path/rootfs` (a private copy of the busybox rootfs)."""

    def __init__(self, path: Path, config: dict):
        self.path = path
        self.config = config

    @property
    def rootfs(self) -> Path:
        return self.path / "rootfs"

    @property
    def process(self) -> dict:
        return self.config["process"]

    @property
    def linux(self) -> dict:
        return self.config.setdefault("linux", {})

    def write(self) -> "Bundle":
        (self.path / "config.json").write_text(json.dumps(self.config, indent=2))
        return self


@pytest.fixture
def make_bundle(tmp_path, busybox_rootfs):
    """make_bundle(args=[...], terminal=False, **edits) -> Bundle, config.json from `hawser spec`."""
    counter = [0]

    def factory(args=("true",), terminal=False, name=None) -> Bundle:
        counter[0] += 1
        path = tmp_path / (name or f"bundle{counter[0]}")
        path.mkdir()
        subprocess.run([HAWSER, "spec", "--bundle", str(path)], check=True)
        shutil.copytree(busybox_rootfs, path / "rootfs", symlinks=True)
        config = json.loads((path / "config.json").read_text())
        config["process"]["args"] = list(args)
        config["process"]["terminal"] = terminal
        return Bundle(path, config).write()

    return factory


class Hawser:
    """Runs the `hawser` CLI against a private --root; remembers ids so cleanup can force-delete."""

    def __init__(self, root: Path):
        self.root = root

    def cmd(self, *args) -> list[str]:
        return hawser_cmd(*args, root=str(self.root))

    def __call__(self, *args, check=True, input=None, timeout=60, cwd=None, **kw):
        proc = subprocess.run(self.cmd(*args), capture_output=True, text=True, input=input,
                              timeout=timeout, cwd=cwd, **kw)
        if check and proc.returncode != 0:
            raise AssertionError(f"hawser {' '.join(map(str, args))} exited {proc.returncode}:\n"
                                 f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
        return proc

    def state(self, cid: str) -> dict:
        return json.loads(self("state", cid).stdout)

    def ids(self) -> list[str]:
        if not self.root.exists():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and not p.name.startswith("."))

    def cleanup(self) -> list[str]:
        """Force-delete whatever a test left; return the ids that had to be cleaned."""
        left = self.ids()
        for cid in left:
            subprocess.run(self.cmd("delete", "--force", cid), capture_output=True, timeout=60)
        return left


@pytest.fixture
def hawser(tmp_path) -> Hawser:
    h = Hawser(tmp_path / "state-root")
    yield h
    h.cleanup()


@pytest.fixture(scope="session", autouse=True)
def remove_default_cgroup_parents():
    """Containers without a cgroupsPath live under /hawser/<id>; delete removes <id> and leaves the
    shared parent, as runc does. The parents this test session created are removed at its end."""
    yield from removing_new_cgroup_parents("hawser")
