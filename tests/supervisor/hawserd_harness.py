"""A real hawserd per test (private --root/--state/--address under a short tmp dir) and a
hawserctl runner; cleanup kills only what the test started: hawserd by its pid, the shims by
the pids hawserd recorded or whose command line names this hawserd's private socket, the
runtime's containers in the private runtime root, and the cgroups of this hawserd's containers."""
from __future__ import annotations

import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from shim import cli as shim_cli  # noqa: E402

BIN = REPO / ".venv" / "bin"
HAWSERD, HAWSERCTL, HAWSER = str(BIN / "hawserd"), str(BIN / "hawserctl"), str(BIN / "hawser")
CGROUP_ROOT = Path("/sys/fs/cgroup")


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def wait_until(pred, timeout: float = 10, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class Hawserd:
    def __init__(self, *extra: str):
        self.extra = list(extra)    # more hawserd flags (--runtime runc)
        self.base = Path(tempfile.mkdtemp(prefix="hwd-", dir="/tmp"))
        self.root, self.state = self.base / "root", self.base / "state"
        self.socket = self.base / "hawserd.sock"
        self.address = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None
        self.shim_pids: set[int] = set()
        # the default network's bridge and the nftables table of this hawserd's own (a second
        # hawserd, and the host's, keep theirs); what it turns on of the host put back after
        tag = secrets.token_hex(5)
        self.bridge, self.nft_table = f"hwd{tag}", f"hwd_{tag}"
        self.ip_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()

    def argv(self) -> list[str]:
        return [HAWSERD, "--root", str(self.root), "--state", str(self.state), "--address",
                self.address, "--log-level", "debug", "--bridge", self.bridge, "--nft-table",
                self.nft_table, *self.extra]

    def bridges(self) -> list[str]:
        """The bridges of this hawserd's networks (from its database)."""
        db = self.root / "meta.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(db)
        try:
            return [r[0] for r in conn.execute("SELECT bridge FROM networks")]
        except sqlite3.OperationalError:
            return []
        finally:
            conn.close()

    def remove_networking(self) -> None:
        """Its bridges and its nftables table, ip_forward as it was."""
        for name in set(self.bridges()) | {self.bridge}:
            if name and os.path.exists(f"/sys/class/net/{name}"):
                subprocess.run(["ip", "link", "del", name], capture_output=True, timeout=30)
        subprocess.run(["nft", "delete", "table", "ip", self.nft_table], capture_output=True,
                       timeout=30)
        Path("/proc/sys/net/ipv4/ip_forward").write_text(self.ip_forward)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.argv(), stdout=subprocess.DEVNULL,
                                     stderr=open(self.base / "hawserd.log", "ab"),
                                     stdin=subprocess.DEVNULL)
        ok = wait_until(lambda: self.socket.exists() and self.ctl("version", check=False)
                        .returncode == 0 or self.proc.poll() is not None, 15, 0.1)
        assert ok and self.proc.poll() is None, (self.base / "hawserd.log").read_text()

    def sigkill(self) -> None:
        self._remember_shims()
        self.proc.kill()
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self._remember_shims()
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)

    def ctl(self, *args, check=True, timeout=60, input=None,
            env=None) -> subprocess.CompletedProcess:
        proc = subprocess.run([HAWSERCTL, "--address", self.address, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, input=input,
                              env=None if env is None else {**os.environ, **env})
        if check and proc.returncode != 0:
            raise AssertionError(f"hawserctl {' '.join(map(str, args))} exited "
                                 f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

    def info(self, ref: str) -> dict:
        """The container's record through the API (Containers.Get), as the fields of its
        message (status as hawserctl names it: exited for STOPPED); absent defaults left out."""
        return _container_dict(self._containers().Get(_cpb().GetContainerRequest(id=ref),
                                                      timeout=30).container)

    def ps_all(self) -> dict[str, dict]:
        """Every container (Containers.List with all), by id."""
        listed = self._containers().List(_cpb().ListContainersRequest(all=True), timeout=30)
        return {c.id: _container_dict(c) for c in listed.containers}

    def _containers(self):
        import grpc
        from supervisor.api import containers_pb2_grpc
        if getattr(self, "_channel", None) is None:
            self._channel = grpc.insecure_channel(self.address)
        return containers_pb2_grpc.ContainersStub(self._channel)

    def records(self) -> list[dict]:
        db = self.root / "meta.db"
        if not db.exists():
            return []
        conn = sqlite3.connect(db)
        try:
            conn.row_factory = sqlite3.Row
            return [dict(r) for r in conn.execute("SELECT * FROM containers")]
        finally:
            conn.close()

    def _remember_shims(self) -> None:
        self.shim_pids |= {r["shim_pid"] for r in self.records() if r["shim_pid"]}

    def known_ids(self) -> set[str]:
        """Every container id this hawserd has left a trace of: records, bundles, runtime state,
        shim processes (a crash can leave any of them without the others)."""
        ids = {r["id"] for r in self.records()} | set(shim_pids(self).values())
        for d in (self.state / "bundles", self.state / "runtime" / "hawser"):
            if d.is_dir():
                ids |= {x for x in os.listdir(d) if not x.startswith(".") and "." not in x}
        return ids

    def cleanup(self) -> None:
        try:
            if self.proc and self.proc.poll() is None:
                for r in self.records():
                    self.ctl("rm", "-f", r["id"], check=False, timeout=60)
            self.stop()
        finally:
            self._remember_shims()
            ids = self.known_ids()
            for pid in self.shim_pids | set(shim_pids(self)):
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    wait_until(lambda: not alive(pid), 5)
            runtime_root = self.state / "runtime" / "hawser"
            if runtime_root.is_dir():
                for cid in os.listdir(runtime_root):
                    if not cid.startswith("."):
                        subprocess.run([HAWSER, "--root", str(runtime_root), "delete", "--force",
                                        cid], capture_output=True, timeout=60)
            for cid in ids:
                sock = shim_cli.socket_address(self.address, "hawser", cid)[len("unix://"):]
                if os.path.exists(sock):
                    os.unlink(sock)
                shutil.rmtree(shim_cli.state_dir(self.address, "hawser", cid),
                              ignore_errors=True)
                remove_cgroups(cid)
            if getattr(self, "_channel", None) is not None:
                self._channel.close()
            unmount_under(self.base)
            self.remove_networking()
            shutil.rmtree(self.base, ignore_errors=True)


STATUS_NAMES = {0: "unknown", 1: "created", 2: "running", 3: "exited", 4: "paused"}


def _cpb():
    from supervisor.api import containers_pb2
    return containers_pb2


def _container_dict(c) -> dict:
    from google.protobuf.json_format import MessageToDict
    d = MessageToDict(c, preserving_proto_field_name=True)
    d["status"] = STATUS_NAMES.get(c.status, "unknown")
    for key in ("pid", "exit_status", "restart_count"):
        if key in d:
            d[key] = int(d[key])
    return d


def unmount_under(path: Path) -> None:
    """Whatever is still mounted under path (a container's rootfs a killed shim left), lazily:
    rmtree must never walk into a mounted overlay."""
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    for point in sorted((p for p in points if p == str(path) or p.startswith(f"{path}/")),
                        key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, timeout=30)


def shim_pids(hawserd: Hawserd, cid: str = "") -> dict[int, str]:
    """Shim processes serving this hawserd (its socket is on their command line): pid -> id."""
    out = {}
    mark = str(hawserd.socket).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(mark in a for a in argv) and any(b"containerd-shim-hawser-v2" in a
                                                for a in argv[:3]):
            sid = argv[argv.index(b"-id") + 1].decode() if b"-id" in argv else ""
            if (not cid or sid == cid) and alive(int(entry)):
                out[int(entry)] = sid
    return out


def container_cgroups(cid: str) -> list[Path]:
    return [h / "hawserd" / cid for h in CGROUP_ROOT.iterdir() if (h / "hawserd" / cid).is_dir()]


def remove_cgroups(cid: str) -> None:
    """The cgroups of one of our containers (the runtime normally removes them), with what is
    still in them killed first."""
    for cg in container_cgroups(cid):
        try:
            for pid in (cg / "cgroup.procs").read_text().split():
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            pass
        wait_until(lambda: _rmdir(cg), 5)


def _rmdir(path: Path) -> bool:
    try:
        path.rmdir()
        return True
    except FileNotFoundError:
        return True
    except OSError:
        return False


def leftovers(hawserd: Hawserd, cid: str) -> list[str]:
    """What is left of container cid outside hawserd's record of it."""
    found = [f"shim pid {p}" for p in shim_pids(hawserd, cid)]
    sock = shim_cli.socket_address(hawserd.address, "hawser", cid)[len("unix://"):]
    if os.path.exists(sock):
        found.append(f"shim socket {sock}")
    sdir = shim_cli.state_dir(hawserd.address, "hawser", cid)
    if os.path.exists(sdir):
        found.append(f"shim state {sdir}")
    rdir = hawserd.state / "runtime" / "hawser" / cid
    if rdir.exists():
        found.append(f"runtime state {rdir}")
    found += [f"cgroup {cg}" for cg in container_cgroups(cid)]
    with open("/proc/self/mountinfo") as f:
        found += [f"mount {line}" for line in f if cid in line]
    return found


def no_leftovers(hawserd: Hawserd, cid: str) -> bool:
    """Shims exit a moment after their Shutdown: wait for that."""
    return wait_until(lambda: not leftovers(hawserd, cid), 10, 0.1)
