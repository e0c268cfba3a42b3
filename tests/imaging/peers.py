"""The real peers the image tests read and write archives with: podman with private storage
(vfs, its own root, run root, tmp dir, cgroup parent), skopeo, and a private containerd (the
harness's: own root, state and sockets). podman and skopeo write c/image's blob-info cache under
/var/lib/containers whatever --root says: they run in a private mount namespace with a tmpfs
over it, so the host keeps nothing of theirs."""
from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from clients_harness import Containerd, remove_cgroups, unmount_under

__all__ = ["Podman", "Containerd", "skopeo", "private_containerd", "private_podman"]
ULIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
HIDE = next((d for d in ("/var/lib/containers", "/var/lib") if os.path.isdir(d)), "/var/lib")


def hidden(argv: list[str]) -> list[str]:
    """argv in a private mount namespace where HIDE is an empty tmpfs."""
    return ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
            'mount -t tmpfs hwtest-hide "$1" && shift && exec "$@"', "sh", HIDE, *argv]


def run(argv: list[str], check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(hidden(argv), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"{shlex.join(argv)} exited {proc.returncode}:\n"
                             f"stdout: {proc.stdout}\nstderr: {proc.stderr}")
    return proc


def skopeo(*args, check: bool = True) -> subprocess.CompletedProcess:
    if not shutil.which("skopeo"):
        pytest.fail("skopeo is not installed: run `make install`")
    return run(["skopeo", "--insecure-policy", *map(str, args)], check=check)


class Podman:
    def __init__(self, base: Path):
        self.base = base
        self.cgroup_parent = f"/hwtest-img-{uuid.uuid4().hex[:8]}"
        for d in ("storage", "runroot", "tmp", "netconf"):
            (base / d).mkdir(parents=True, exist_ok=True)
        self.globals = ["--root", str(base / "storage"), "--runroot", str(base / "runroot"),
                        "--storage-driver", "vfs", "--cgroup-manager", "cgroupfs",
                        "--events-backend", "file", "--tmpdir", str(base / "tmp"),
                        "--network-config-dir", str(base / "netconf"), "--runtime", "runc"]

    def __call__(self, *args, check: bool = True, timeout: float = 300):
        return run(["podman", *self.globals, *map(str, args)], check=check, timeout=timeout)

    def run_flags(self) -> list[str]:
        # --pull never: an image missing here is an error, never a lookup on the network
        return [*ULIMITS, "--cgroup-parent", self.cgroup_parent, "--network", "none",
                "--pull", "never"]

    def close(self) -> list[str]:
        """Everything podman made goes; the cgroups it could not remove are returned."""
        self("rm", "--all", "--force", "--time", "0", check=False)
        self("rmi", "--all", "--force", check=False)
        unmount_under(self.base)
        left = remove_cgroups(self.cgroup_parent)
        shutil.rmtree(self.base, ignore_errors=True)
        return left


@pytest.fixture(scope="module")
def private_podman():
    if not shutil.which("podman"):
        pytest.fail("podman is not installed: run `make install`")
    pm = Podman(Path(tempfile.mkdtemp(prefix="hwimgpm-", dir="/tmp")))
    try:
        yield pm
    finally:
        left = pm.close()
        assert not left, f"cgroups left behind: {left}"


@pytest.fixture(scope="module")
def private_containerd():
    # unix socket paths are limited to 108 bytes: a short base directory
    ctd = Containerd(Path(tempfile.mkdtemp(prefix="hwimgctd-", dir="/tmp")))
    try:
        ctd.start()
        yield ctd
    finally:
        try:
            if ctd.proc is not None and ctd.proc.poll() is None:
                for name in ctd.ids("images"):
                    ctd.ctr("images", "remove", name, check=False, timeout=30)
            ctd.stop()
        finally:
            left = remove_cgroups(ctd.namespace)
            shutil.rmtree(ctd.base, ignore_errors=True)
        assert not left, f"cgroups left behind: {left}"
