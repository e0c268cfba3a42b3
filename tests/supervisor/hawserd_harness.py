"""A real hawserd per test (private --root/--state/--address under a short tmp dir) and a
hawserctl runner; cleanup kills only what the test started: hawserd by its pid, the shims by
the pids hawserd recorded, the runtime's containers in the private runtime root."""
from __future__ import annotations

import os
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
    def __init__(self):
        self.base = Path(tempfile.mkdtemp(prefix="hwd-", dir="/tmp"))
        self.root, self.state = self.base / "root", self.base / "state"
        self.socket = self.base / "hawserd.sock"
        self.address = f"unix://{self.socket}"
        self.proc: subprocess.Popen | None = None
        self.shim_pids: set[int] = set()

    def argv(self) -> list[str]:
        return [HAWSERD, "--root", str(self.root), "--state", str(self.state), "--address",
                self.address, "--log-level", "debug"]

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

    def ctl(self, *args, check=True, timeout=60, input=None) -> subprocess.CompletedProcess:
        proc = subprocess.run([HAWSERCTL, "--address", self.address, *map(str, args)],
                              capture_output=True, text=True, timeout=timeout, input=input)
        if check and proc.returncode != 0:
            raise AssertionError(f"hawserctl {' '.join(map(str, args))} exited "
                                 f"{proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        return proc

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

    def cleanup(self) -> None:
        try:
            if self.proc and self.proc.poll() is None:
                for r in self.records():
                    self.ctl("rm", "-f", r["id"], check=False, timeout=60)
            self.stop()
        finally:
            self._remember_shims()
            for pid in self.shim_pids:
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
                    wait_until(lambda: not alive(pid), 5)
            runtime_root = self.state / "runtime" / "hawser"
            if runtime_root.is_dir():
                for cid in os.listdir(runtime_root):
                    if not cid.startswith("."):
                        subprocess.run([HAWSER, "--root", str(runtime_root), "delete", "--force",
                                        cid], capture_output=True, timeout=60)
            for r in self.records():
                sock = shim_cli.socket_address(self.address, "hawser", r["id"])[len("unix://"):]
                for leftover in (sock,):
                    if os.path.exists(leftover):
                        os.unlink(leftover)
                shutil.rmtree(shim_cli.state_dir(self.address, "hawser", r["id"]),
                              ignore_errors=True)
            shutil.rmtree(self.base, ignore_errors=True)
