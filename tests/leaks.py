"""A leak checker for integration tests of `hawser`: after a command (usually a failing one) there
must be nothing left of the container it was about.

    with LeakCheck(root, "c1", watch=[bundle.path]) as leaks:
        ...run hawser...
    # on a clean exit of the block, AssertionError listing every leftover:
    #   - an entry under the state root (other than the .validated/.seccomp caches),
    #   - a cgroup directory <hierarchy>/hawser/<id> in any /sys/fs/cgroup hierarchy,
    #   - a new mount (in this mount namespace) whose mount point or source lies under a watched
    #     path or names the container id,
    #   - a new live process whose command line or executable mentions a watched path, or that sits
    #     in the container's cgroup; and any new child of the test process,
    #   - a file descriptor of the test process that was not open before.

Mounts are compared line by line against /proc/self/mountinfo taken before the block, but only
those that concern the container are counted: other test runs share this machine and may mount
things of their own meanwhile.
"""
from __future__ import annotations

import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
ROOT_CACHES = {".validated", ".seccomp"}


def cgroup_dirs(cid: str) -> list[str]:
    """Every /sys/fs/cgroup/<hierarchy>/hawser/<id> that exists (v1 controllers and unified)."""
    found = []
    if os.path.normpath(f"hawser/{cid}").partition("/")[2] in ("", "."):
        return found  # "..", "" or "." name no cgroup of a container
    for hierarchy in sorted(CGROUP_ROOT.iterdir()):
        path = hierarchy / "hawser" / cid
        if path.is_dir():
            found.append(str(path))
    return found


def removing_new_cgroup_parents(name: str):
    """A fixture body: the /sys/fs/cgroup/<hierarchy>/<name> parents that appear while it is
    suspended are removed after (rmdir only succeeds on an empty cgroup, so nothing anyone still
    uses is touched)."""
    def parents():
        return {h / name for h in CGROUP_ROOT.iterdir() if (h / name).is_dir()}
    before = parents()
    yield
    for parent in parents() - before:
        try:
            parent.rmdir()
        except OSError:
            pass


def state_entries(root: Path) -> list[str]:
    """What the state root holds apart from its caches."""
    try:
        return sorted(n for n in os.listdir(root) if n not in ROOT_CACHES)
    except FileNotFoundError:
        return []


def mountinfo() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return f.read().splitlines()


def _mount_point_and_source(line: str) -> tuple[str, str]:
    # id parent maj:min root mount-point options [optional...] - fstype source super-options
    fields = line.split()
    sep = fields.index("-")
    return fields[4], fields[sep + 2] if len(fields) > sep + 2 else ""


def _read(path: str, binary: bool = False):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return b"" if binary else ""
    return data if binary else data.decode(errors="replace")


def process_table() -> dict[int, dict]:
    """pid -> {cmdline, exe, cgroup, ppid, state} of every process (any that vanish are skipped)."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        stat = _read(f"/proc/{name}/stat")
        if not stat:
            continue
        rest = stat[stat.rfind(")") + 2:].split()
        try:
            exe = os.readlink(f"/proc/{name}/exe")
        except OSError:
            exe = ""
        table[int(name)] = {
            "cmdline": _read(f"/proc/{name}/cmdline", True).replace(b"\0", b" ").decode(
                errors="replace").strip(),
            "exe": exe,
            "cgroup": _read(f"/proc/{name}/cgroup"),
            "state": rest[0],
            "ppid": int(rest[1]),
        }
    return table


def open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            pass  # the fd of the listdir itself
    return fds


class LeakCheck:
    """Snapshot on enter, compare on exit; see the module docstring. `cids` are the container ids
    the block is about, `watch` paths (bundles, hook programs, the state root) that processes and
    mounts of the container would mention. `allow_ids` may stay under the root (e.g. a container
    the test deletes itself later)."""

    def __init__(self, root, cids, watch=(), markers=()):
        self.root = Path(root)
        self.cids = [cids] if isinstance(cids, str) else list(cids)
        self.watch = [str(p) for p in watch] + [str(self.root)]
        self.markers = [str(m) for m in markers]

    def __enter__(self) -> "LeakCheck":
        self.fds = open_fds()
        self.mounts = set(mountinfo())
        self.pids = set(process_table())
        self.before_entries = state_entries(self.root)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.assert_clean()

    def _mentions(self, text: str) -> bool:
        return any(w and w in text for w in self.watch + self.markers)

    def leftovers(self) -> list[str]:
        found = []
        entries = [e for e in state_entries(self.root) if e not in self.before_entries]
        found += [f"state root entry {self.root}/{e}" for e in entries]
        for cid in self.cids:
            found += [f"cgroup directory {d}" for d in cgroup_dirs(cid)]
        for line in set(mountinfo()) - self.mounts:
            point, source = _mount_point_and_source(line)
            if self._mentions(point) or self._mentions(source) or \
                    any(f"/{cid}" in point for cid in self.cids):
                found.append(f"mount {line}")
        me = os.getpid()
        for pid, p in process_table().items():
            if pid in self.pids or pid == me:
                continue
            if p["state"] in ("Z", "X") and p["ppid"] != me:
                continue  # dead, waiting for its (other) parent to reap it
            in_cgroup = any(line.endswith(f"/hawser/{cid}")
                            for cid in self.cids for line in p["cgroup"].splitlines())
            if p["ppid"] == me or in_cgroup or self._mentions(p["cmdline"]) or \
                    self._mentions(p["exe"]):
                found.append(f"process {pid} ({p['state']}, ppid {p['ppid']}): {p['cmdline']!r}"
                             f" exe {p['exe']!r}")
        now = open_fds()
        for fd, target in sorted(now.items()):
            if self.fds.get(fd) != target:
                found.append(f"file descriptor {fd} -> {target}")
        return found

    def assert_clean(self) -> None:
        left = self.leftovers()
        assert not left, "left behind:\n  " + "\n  ".join(left)


class Result:
    """What a user of the CLI sees: exit status, stdout, stderr and the --log lines (parsed)."""

    def __init__(self, args, returncode, stdout, stderr, log_text):
        self.args = args
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.log_text = log_text

    @property
    def log(self) -> list[dict]:
        import json
        return [json.loads(line) for line in self.log_text.splitlines() if line.strip()]

    def __repr__(self) -> str:
        return (f"hawser {' '.join(map(str, self.args))} -> {self.returncode}\n"
                f"stdout: {self.stdout!r}\nstderr: {self.stderr!r}\nlog: {self.log_text!r}")


def run_hawser(cmd: list[str], log: str | None = None, log_format: str = "json",
               timeout: float = 30, stdin=None) -> Result:
    """Run `cmd` (a hawser command line from Hawser.cmd) with stdout/stderr sent to files, not
    pipes: a created or detached container inherits them and would keep a pipe open for as long as
    it lives. With `log`, `--log LOG --log-format FMT` are added as global flags."""
    import subprocess
    import tempfile
    if log is not None:
        cmd = [cmd[0], "--log", str(log), "--log-format", log_format] + list(cmd[1:])
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.run(cmd, stdin=stdin if stdin is not None else subprocess.DEVNULL,
                              stdout=out, stderr=err, timeout=timeout)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    log_text = ""
    if log is not None and os.path.exists(log):
        with open(log) as f:
            log_text = f.read()
    return Result(cmd[1:], proc.returncode, stdout, stderr, log_text)
