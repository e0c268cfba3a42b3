"""Container state under --root: one directory per container holding state.json.

The status is derived, never stored: a container is `stopped` as soon as its init pid is gone, a
zombie, or a different process (the pid's start time, field 22 of /proc/PID/stat, is recorded at
create, so a recycled pid is not mistaken for the container); `paused` while its freezer is frozen;
`created` while init still waits for `start` (its start.sock exists); else `running`.
Every operation on an id holds an exclusive flock on the container's directory.
"""
import os

from runtime import HawserError, NotExist, jsonlite

DEFAULT_ROOT = "/run/hawser"
STATE_FILE = "state.json"
START_SOCKET = "start.sock"
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")


def check_id(cid: str) -> None:
    """runc's rule: ids match [\\w+-.]+ and are not a path element of their own."""
    if not cid or cid.startswith(".") or not _ID_CHARS.issuperset(cid) or len(cid) > 255:
        raise HawserError(f"invalid container id {cid!r}: use letters, digits, '_', '+', '-', '.'")


def rfc3339(ns: int) -> str:
    import time
    sec, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec))
    frac_s = f"{frac:09d}".rstrip("0")
    return f"{base}.{frac_s}Z" if frac_s else f"{base}Z"


def polls(timeout: float):
    """Yields until `timeout` seconds have passed, sleeping a little longer each time (0.5 ms
    doubling to 50 ms): for waiting on processes to go and cgroups to empty."""
    import time
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        yield
        if time.monotonic() > deadline:
            return
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def read_bytes(path: str) -> bytes:
    """os.open/os.read: open() adds an fstat, an lseek and an ioctl, each ~15 us on this VM."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        chunks = []
        while True:
            data = os.read(fd, 65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)
    finally:
        os.close(fd)


def proc_start_time(pid: int) -> int | None:
    """Start time of a live (non-zombie) process, or None if there is none."""
    try:
        stat = read_bytes(f"/proc/{pid}/stat")
    except OSError:
        return None
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class Container:
    """A container's record. `data` is state.json; `dir` its directory under the root."""

    def __init__(self, root: str, cid: str, data: dict | None = None):
        self.root = root
        self.id = cid
        self.dir = f"{root}/{cid}"
        self.data: dict = data or {}
        self._lock_fd: int | None = None
        self.console = None  # `run`'s end of the console socket, when it relays the pty itself

    # persistence
    def save(self) -> None:
        tmp = f"{self.dir}/.{STATE_FILE}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, jsonlite.compact(self.data).encode())
        finally:
            os.close(fd)
        os.rename(tmp, f"{self.dir}/{STATE_FILE}")

    def lock(self) -> "Container":
        import fcntl
        fd = os.open(self.dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._lock_fd = fd
        return self

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # status
    @property
    def pid(self) -> int:
        return self.data.get("pid", 0)

    def alive(self) -> bool:
        pid = self.pid
        return pid > 0 and proc_start_time(pid) == self.data.get("pidStart")

    def status(self) -> str:
        if not self.alive():
            return "stopped"
        if self.frozen():
            return "paused"
        if os.path.exists(f"{self.dir}/{START_SOCKET}") and self._init_not_execd():
            return "created"
        return "running"

    def _init_not_execd(self) -> bool:
        """Init is still the runtime (our interpreter) until it execve()s the user's program;
        start.sock alone could outlive a `start` killed after the exec."""
        import sys
        try:
            st = os.stat(f"/proc/{self.pid}/exe")
            me = os.stat(sys.executable)
        except OSError:
            return True
        return (st.st_dev, st.st_ino) == (me.st_dev, me.st_ino)

    def frozen(self) -> bool:
        freezer = self.data.get("cgroup", {}).get("paths", {})
        if "freezer" in freezer:
            path, want = f"{freezer['freezer']}/freezer.state", b"FROZEN"
        elif "" in freezer:
            path, want = f"{freezer['']}/cgroup.freeze", b"1"
        else:
            return False
        try:
            return read_bytes(path).strip() == want
        except OSError:
            return False

    def oci_state(self) -> dict:
        """The runtime-spec state document, with runc's extra fields (rootfs, created, owner)."""
        status = self.status()
        return {
            "ociVersion": self.data.get("ociVersion", "1.0.2"),
            "id": self.id,
            "pid": self.pid if status != "stopped" else 0,
            "status": status,
            "bundle": self.data.get("bundle", ""),
            "rootfs": self.data.get("rootfs", ""),
            "created": self.data.get("created", ""),
            "owner": "",
            "annotations": self.data.get("annotations", {}),
        }

    def hook_state(self, status: str) -> dict:
        """The state given to hooks on stdin (spec: ociVersion, id, status, pid, bundle, annotations)."""
        return {"ociVersion": self.data.get("ociVersion", "1.0.2"), "id": self.id,
                "status": status, "pid": self.pid, "bundle": self.data.get("bundle", ""),
                "annotations": self.data.get("annotations", {})}


def ensure_root(root: str) -> None:
    try:
        os.makedirs(root, 0o700, exist_ok=True)
    except OSError as e:
        raise HawserError(f"cannot create state root {root}: {e.strerror}") from None


def new_container(root: str, cid: str) -> Container:
    """Claim `cid` under root (mkdir is the atomic test for a duplicate id) and lock it."""
    check_id(cid)
    ensure_root(root)
    c = Container(root, cid)
    try:
        os.mkdir(c.dir, 0o700)
    except FileExistsError:
        raise HawserError(f"container with id {cid} already exists") from None
    return c.lock()


def load(root: str, cid: str, lock: bool = True) -> Container:
    """The container `cid`, locked unless lock=False; NotExist if there is none."""
    check_id(cid)
    c = Container(root, cid)
    try:
        if lock:
            c.lock()
        c.data = jsonlite.loads(read_bytes(f"{c.dir}/{STATE_FILE}"))
    except FileNotFoundError:
        c.unlock()
        raise NotExist(cid) from None
    except NotADirectoryError:
        raise NotExist(cid) from None
    return c


def list_ids(root: str) -> list[str]:
    try:
        names = os.listdir(root)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and os.path.isdir(f"{root}/{n}"))


def remove(c: Container) -> None:
    """Remove the container's directory (state.json last, so a crash leaves a loadable record)."""
    for name in os.listdir(c.dir):
        if name != STATE_FILE:
            path = f"{c.dir}/{name}"
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
            except IsADirectoryError:
                import shutil  # never on the hot path: hawser makes no directories here
                shutil.rmtree(path, ignore_errors=True)
    try:
        os.unlink(f"{c.dir}/{STATE_FILE}")
    except FileNotFoundError:
        pass
    os.rmdir(c.dir)
    c.unlock()
