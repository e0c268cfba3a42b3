"""One containerd-shim-hawser-v2 per container, started and driven as containerd does: `start`
(cwd = the bundle) prints the ttrpc address; the task API is then called over shim/ttrpc.py with
the messages of shim/wire.py; `delete` cleans up after a shim that died."""
import os
import shutil
import subprocess

from shim import cli as shim_cli
from shim import ttrpc, wire
from shim.proto.schema import SERVICES

TASK = "containerd.task.v2.Task"
NAMESPACE = "hawser"
task_msgs = wire.package("containerd.task.v2")
RuncOptions = wire.message("containerd.runc.v1.Options")
Mount = wire.message("containerd.types.Mount")
RUNTIMES = {"hawser": None, "runc": "runc", "crun": "crun"}
Error = ttrpc.Error


def shim_binary() -> str:
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    venv_bin = os.path.join(repo, ".venv", "bin", "containerd-shim-hawser-v2")
    return venv_bin if os.access(venv_bin, os.X_OK) else \
        shutil.which("containerd-shim-hawser-v2") or venv_bin


def runtime_binary(runtime: str) -> str:
    """hawser | runc | crun | a path -> the binary the shim runs ("" = the shim's default)."""
    if runtime in ("", "hawser"):
        return ""
    path = shutil.which(RUNTIMES.get(runtime) or runtime) if "/" not in runtime else runtime
    if not path or not os.access(path, os.X_OK):
        raise FileNotFoundError(f"runtime {runtime!r}: no such executable")
    return path


class ShimFlags:
    """The command line every shim of this hawserd gets (the address only names its socket)."""

    def __init__(self, address: str, events_address: str):
        self.address, self.events_address = address, events_address

    def argv(self, cid: str) -> list[str]:
        return [shim_binary(), "-namespace", NAMESPACE, "-address", self.address,
                "-publish-binary", "/bin/false", "-id", cid]

    def env(self) -> dict:
        return dict(os.environ, TTRPC_ADDRESS=self.events_address)


class ShimClient:
    def __init__(self, cid: str, address: str):
        self.id, self.address = cid, address
        self.client = ttrpc.Client(address)

    def call(self, method: str, timeout: float | None = 30, **fields):
        req, resp = SERVICES[TASK][method]
        return self.client.call(TASK, method, wire.message(req)(**fields), wire.message(resp),
                                timeout=timeout)

    def create(self, bundle: str, stdin: str, stdout: str, stderr: str, terminal: bool,
               runtime: str, runtime_root: str, rootfs=()):
        """The task; rootfs: containerd mounts ({"type", "source", "options"}) the shim mounts
        on <bundle>/rootfs (an image's snapshot), as containerd's Create does."""
        opts = RuncOptions(binary_name=runtime, root=runtime_root)
        mounts = [Mount(type=m["type"], source=m["source"], options=list(m["options"]))
                  for m in rootfs]
        return self.call("Create", id=self.id, bundle=bundle, stdin=stdin, stdout=stdout,
                         stderr=stderr, terminal=terminal, rootfs=mounts,
                         options=wire.pack_any(opts)).pid

    def close(self) -> None:
        self.client.close()


def shim_address(flags: ShimFlags, cid: str) -> str:
    """Where `shim start` puts the shim's socket (known before it runs)."""
    return shim_cli.socket_address(flags.address, NAMESPACE, cid)


def start_shim(flags: ShimFlags, cid: str, bundle: str) -> ShimClient:
    proc = subprocess.run(flags.argv(cid) + ["start"], cwd=bundle, env=flags.env(),
                          capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    if proc.returncode != 0 or not proc.stdout.startswith("unix://"):
        raise RuntimeError(f"shim start failed ({proc.returncode}): {proc.stderr.strip()}")
    return ShimClient(cid, proc.stdout.strip())


def delete_dead_shim(flags: ShimFlags, cid: str, bundle: str):
    """`shim delete` after a shim died: the runtime's container and the shim's state go; the
    DeleteResponse (exit status 137 when the real one died with the shim) or None."""
    proc = subprocess.run(flags.argv(cid) + ["-bundle", bundle, "delete"], cwd=bundle,
                          env=flags.env(), capture_output=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    return task_msgs.DeleteResponse.decode(proc.stdout) if proc.returncode == 0 else None
