"""What the v1 and v2 managers share: file helpers whose errors name the OCI field at fault, the
/proc/self/mountinfo and /proc/self/cgroup parsers, and the Manager base (paths, pids, destroy).

Hot path: imported by every `hawser create/delete/kill`: only os, errno, time and project modules.
"""
import errno
import os
import time

from runtime.errors import HawserError

P = "linux.resources"
MAX_U64 = (1 << 64) - 1


# ---- files -------------------------------------------------------------------------------------
def read(path: str) -> str:
    with open(path, "rb", buffering=0) as f:
        return f.read().decode()


def read_or(path: str, default: str = "") -> str:
    try:
        return read(path)
    except OSError:
        return default


def to_int(text: str) -> int:
    """A cgroup number; "max" (v2, pids) reads as MAX_U64 like runc's parsers do."""
    text = text.strip()
    if text == "max":
        return MAX_U64
    try:
        return int(text)
    except ValueError:
        return 0


def read_int(path: str) -> int:
    return to_int(read_or(path, "0"))


def keyed(path: str) -> dict[str, int]:
    """`key value` lines (memory.stat, cpu.stat, memory.events ...) -> {key: int}."""
    out = {}
    for line in read_or(path).splitlines():
        k, _, v = line.partition(" ")
        if v:
            out[k] = to_int(v)
    return out


def write_raw(path: str, value: str) -> None:
    # No O_CREAT: every cgroup file exists once the directory does, so a missing file means a
    # controller is absent; creating a plain file there would hide that.
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def write(d: str, name: str, value, field: str) -> None:
    """Write one value; a failure becomes a HawserError naming the OCI field and the file."""
    value = str(value)
    try:
        write_raw(f"{d}/{name}", value)
    except OSError as e:
        hint = ""
        if e.errno == errno.ENOENT:
            hint = " (the controller or this knob is not available for this cgroup)"
        raise HawserError(f"{field}: cannot write {value!r} to {d}/{name}: {e.strerror}{hint}") \
            from None


# ---- /proc parsers -----------------------------------------------------------------------------
def _unescape(s: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    if "\\" not in s:
        return s
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\" and s[i + 1:i + 4].isdigit():
            out.append(chr(int(s[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(s[i])
            i += 1
    return "".join(out)


def mounts(mountinfo: str = "/proc/self/mountinfo") -> list[tuple[str, str, str, str]]:
    """Cgroup mounts as (mount root, mount point, fstype, super options)."""
    out = []
    for line in read(mountinfo).splitlines():
        pre, _, post = line.partition(" - ")
        post = post.split(" ")
        if post[0] not in ("cgroup", "cgroup2"):
            continue
        f = pre.split(" ")
        out.append((_unescape(f[3]), _unescape(f[4]), post[0], post[2] if len(post) > 2 else ""))
    return out


def own_cgroups(proc_cgroup: str = "/proc/self/cgroup") -> dict[str, str]:
    """controller (or "name=systemd", or "" for the unified hierarchy) -> this process's cgroup."""
    out = {}
    for line in read(proc_cgroup).splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for c in (parts[1].split(",") if parts[1] else [""]):
                out[c] = parts[2]
    return out


def hugepage_sizes() -> list[str]:
    """The host's huge page sizes named as in OCI pageSize / cgroup file names ("2MB", "1GB")."""
    sizes = []
    try:
        names = os.listdir("/sys/kernel/mm/hugepages")
    except OSError:
        return sizes
    for n in names:  # hugepages-2048kB
        if not (n.startswith("hugepages-") and n.endswith("kB")):
            continue
        size, units = int(n[10:-2]), ["KB", "MB", "GB", "TB", "PB"]
        while size >= 1024 and size % 1024 == 0 and len(units) > 1:
            size //= 1024
            units.pop(0)
        sizes.append(f"{size}{units[0]}")
    return sizes


# ---- the shared Manager ------------------------------------------------------------------------
def procs(d: str) -> list[int]:
    """Every pid in cgroup d and its descendants (missing cgroups count as empty)."""
    out = []
    try:
        out = [int(x) for x in read(d + "/cgroup.procs").split()]
        entries = list(os.scandir(d))
    except (FileNotFoundError, ProcessLookupError):  # ENODEV/ESRCH on a cgroup being removed
        return out
    for e in entries:
        if e.is_dir(follow_symlinks=False):
            out += procs(e.path)
    return out


def _rmdir_tree(d: str) -> str | None:
    """Remove cgroup d after its children; None when gone, else the reason it is still there."""
    try:
        subdirs = [e.path for e in os.scandir(d) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return None
    for sub in subdirs:
        why = _rmdir_tree(sub)
        if why:
            return why
    delay = 0.01
    for _ in range(6):
        try:
            os.rmdir(d)
            return None
        except FileNotFoundError:
            return None
        except OSError as e:
            # EBUSY: tasks that were just killed are still exiting; give them ~0.6 s, as runc does.
            if e.errno != errno.EBUSY:
                return e.strerror
            time.sleep(delay)
            delay *= 2
    return "it still holds processes"


class Manager:
    """One container's cgroup(s). Subclasses: V1Manager (one dir per hierarchy), V2Manager."""

    version = ""
    # pids/freeze read the first of these that the manager has (v1); v2 has only "".
    _main_keys = ("",)

    def __init__(self, paths: dict[str, str], cgroups_path: str = ""):
        self._paths = dict(paths)
        self.cgroups_path = cgroups_path

    # -- identity / state file --
    def paths(self) -> dict[str, str]:
        return dict(self._paths)

    def to_dict(self) -> dict:
        return {"version": self.version, "cgroupsPath": self.cgroups_path, "paths": self.paths()}

    @classmethod
    def from_dict(cls, d: dict) -> "Manager":
        return cls(d["paths"], d.get("cgroupsPath", ""))

    def dirs(self) -> list[str]:
        """The distinct directories (co-mounted v1 controllers share one)."""
        seen = []
        for d in self._paths.values():
            if d not in seen:
                seen.append(d)
        return seen

    def main_dir(self) -> str:
        for k in self._main_keys:
            if k in self._paths:
                return self._paths[k]
        return next(iter(self._paths.values()))

    def exists(self) -> bool:
        return os.path.isdir(self.main_dir())

    # -- processes --
    def pids(self) -> list[int]:
        return procs(self.main_dir())

    def apply(self, pid: int) -> None:
        for d in self.dirs():
            try:
                write_raw(d + "/cgroup.procs", str(pid))
            except OSError as e:
                raise HawserError(f"cannot move process {pid} into cgroup {d}: {e.strerror}") \
                    from None

    def apply_self(self) -> None:
        """Move the calling (single-threaded) process in; see V1Manager for why this exists."""
        self.apply(os.getpid())

    # -- create / destroy helpers --
    def _refuse_busy(self) -> None:
        # runc refuses a cgroup that already has processes: they would share our limits and be
        # killed by our `kill --all` / `delete`. We check every hierarchy, not just one.
        for d in self.dirs():
            n = len(procs(d))
            if n:
                raise HawserError(f"cgroupsPath {self.cgroups_path!r}: cgroup {d} already holds "
                                  f"processes ({n}); is another container using it?")

    def _mkdir(self, path: str) -> None:
        os.mkdir(path, 0o755)  # tests of V2Manager on a plain directory override this

    def _makedirs(self, path: str) -> list[str]:
        """mkdir -p; returns the directories it made, outermost first."""
        if os.path.isdir(path):
            return []
        made = self._makedirs(os.path.dirname(path))
        try:
            self._mkdir(path)
            made.append(path)
        except FileExistsError:
            pass
        except OSError as e:
            raise HawserError(f"cannot create cgroup {path}: {e.strerror}") from None
        return made

    def _undo(self, made: list[str]) -> None:
        for d in reversed(made):
            try:
                os.rmdir(d)
            except OSError:
                pass

    def destroy(self) -> None:
        """rmdir the container's cgroup in every hierarchy (sub-cgroups first); kills nothing.
        Intermediate parents such as /hawser are shared and stay."""
        failed = []
        for d in self.dirs():
            why = _rmdir_tree(d)
            if why:
                failed.append(f"{d}: {why}")
        if failed:
            raise HawserError("cannot remove cgroup " + "; ".join(failed))

    # -- OOM --
    def oom_kill_count(self) -> int:
        raise NotImplementedError
