"""Unit tests of the container init logic (runtime/init/*) without the kernel's privileged calls.

Nothing here needs root or creates a container. `runtime.syscall.fake.FakeSyscalls` records the
calls; where the code under test needs real file descriptors (paths.ensure_in_root/open_in_root go
through syscall.get().openat2, then os.close / statvfs the fd), `RealPathsFake` sends openat2 to the
kernel (openat2 with RESOLVE_IN_ROOT works unprivileged on a tmp dir) and only records the rest.
os-level calls that would change the test process (chdir, chroot, umask, open of /etc/passwd or
/proc/self/timens_offsets) are replaced through the module's `os`/`open` globals.
"""
from __future__ import annotations

import errno
import os

import pytest

from runtime import syscall
from runtime.errors import HawserError
from runtime.init import mounts, namespaces, paths, process, rootfs
from runtime.init.mounts import MountPlan, current_flags, mount_entry
from runtime.spec import Linux, Mount, Process, Spec
from runtime.syscall import consts as c
from runtime.syscall.fake import FakeSyscalls
from runtime.syscall.linux import LinuxSyscalls


# --- fixtures and helpers -------------------------------------------------------------------------

class RealPathsFake(FakeSyscalls):
    """openat2 really resolves (unprivileged); mount & co. are only recorded. Each mount also
    records where its /proc/self/fd/N target pointed at the time of the call (in `resolved`)."""

    def __init__(self):
        super().__init__()
        self._real = LinuxSyscalls()
        self.resolved: list[str] = []

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        self._record("openat2", str(path), flags, resolve)
        return self._real.openat2(dirfd, path, flags, mode, resolve)

    def _resolve(self, target):
        t = str(target)
        self.resolved.append(os.readlink(t) if t.startswith("/proc/self/fd/") else t)

    def mount(self, source, target, fstype, flags=0, data=None):
        self._resolve(target)
        super().mount(source, target, fstype, flags, data)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0, propagation=0):
        self._resolve(path)
        super().mount_setattr(dirfd, path, flags, attr_set, attr_clr, propagation)


def _install(impl):
    previous = syscall.install(impl)
    try:
        yield impl
    finally:
        syscall.install(previous)


@pytest.fixture
def fake():
    yield from _install(FakeSyscalls())


@pytest.fixture
def pfake():
    yield from _install(RealPathsFake())


@pytest.fixture
def real_syscalls():
    yield from _install(LinuxSyscalls())


class OsProxy:
    """Stands in for a module's `os`: the listed functions are recorded into `calls` (and run for
    real only if `passthrough`), everything else is the real os module."""

    def __init__(self, calls: list, record=(), passthrough=()):
        self._calls, self._record, self._pass = calls, set(record), set(passthrough)

    def __getattr__(self, name):
        real = getattr(os, name)
        if name not in self._record:
            return real

        def recorder(*args, **kw):
            if name in self._pass:
                result = real(*args, **kw)
                self._calls.append((name, *args, result))
                return result
            self._calls.append((name, *args))
            return None
        return recorder


class FakeChannel:
    def __init__(self, calls: list):
        self.calls = calls

    def send(self, kind, **fields):
        self.calls.append(("send", kind))

    def expect(self, kind):
        self.calls.append(("expect", kind))
        return {"kind": kind}


@pytest.fixture
def rootdir(tmp_path):
    root = tmp_path / "rootfs"
    root.mkdir()
    fd = os.open(root, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    yield root, fd
    os.close(fd)


def _mounts(fake) -> list[tuple]:
    return [call for call in fake.calls if call[0] in ("mount", "mount_setattr", "umount2")]


# --- MountPlan: option parsing ---------------------------------------------------------------------

def test_plan_flags_and_data():
    p = MountPlan(["nosuid", "nodev", "noexec", "mode=755", "size=65536k", "ro"], "mounts[0] (/x)")
    assert p.flags == c.MS_NOSUID | c.MS_NODEV | c.MS_NOEXEC | c.MS_RDONLY
    assert p.clear == 0
    assert p.data == "mode=755,size=65536k"
    assert p.propagation == [] and p.rec_set == p.rec_clr == 0
    assert not p.is_bind


def test_plan_no_data_is_none():
    assert MountPlan([], "w").data is None
    assert MountPlan(["defaults", "ro"], "w").data is None


def test_plan_clear_flags_last_one_wins():
    p = MountPlan(["ro", "rw", "nosuid", "suid", "exec"], "w")
    assert p.flags == 0
    assert p.clear == c.MS_RDONLY | c.MS_NOSUID | c.MS_NOEXEC
    p = MountPlan(["rw", "ro"], "w")
    assert p.flags == c.MS_RDONLY


def test_plan_atime_family():
    p = MountPlan(["noatime", "nodiratime", "strictatime", "norelatime", "lazytime"], "w")
    assert p.flags == c.MS_NOATIME | c.MS_NODIRATIME | c.MS_STRICTATIME | c.MS_LAZYTIME
    assert p.clear == c.MS_RELATIME


def test_plan_bind_rbind():
    assert MountPlan(["bind"], "w").flags == c.MS_BIND
    p = MountPlan(["rbind", "ro"], "w")
    assert p.flags == c.MS_BIND | c.MS_REC | c.MS_RDONLY and p.is_bind


def test_plan_propagation_is_an_ordered_list():
    p = MountPlan(["rprivate", "shared", "rslave", "unbindable"], "w")
    assert p.propagation == [c.MS_PRIVATE | c.MS_REC, c.MS_SHARED, c.MS_SLAVE | c.MS_REC,
                             c.MS_UNBINDABLE]
    assert p.flags == 0 and p.data is None


def test_plan_recursive_attrs():
    p = MountPlan(["rro", "rnosuid", "rnodev", "rexec"], "w")
    assert p.rec_set == c.MOUNT_ATTR_RDONLY | c.MOUNT_ATTR_NOSUID | c.MOUNT_ATTR_NODEV
    assert p.rec_clr == c.MOUNT_ATTR_NOEXEC
    assert p.flags == 0 and p.data is None


def test_plan_recursive_attr_last_one_wins():
    p = MountPlan(["rro", "rrw"], "w")
    assert p.rec_set & c.MOUNT_ATTR_RDONLY == 0


def test_plan_ignored_options_are_not_data():
    assert MountPlan(["tmpcopyup", "notmpcopyup", "copy-symlink"], "w").data is None


@pytest.mark.parametrize("opt", ["idmap", "ridmap"])
def test_plan_idmap_rejected(opt):
    with pytest.raises(HawserError, match=rf"^mounts\[2\] \(/data\): option '{opt}': idmapped"):
        MountPlan(["rbind", opt], "mounts[2] (/data)")


def test_mount_entry_idmap_names_the_entry(fake):
    m = Mount({"destination": "/data", "type": "bind", "source": "/", "options": ["idmap"]})
    with pytest.raises(HawserError, match=r"^mounts\[3\] \(/data\): option 'idmap'"):
        mount_entry(-1, m, 3, None)
    assert fake.calls == []


# --- paths: the real openat2 on a tmp dir ----------------------------------------------------------

def _where(fd):
    try:
        return os.readlink(paths.fd_path(fd))
    finally:
        os.close(fd)


def test_ensure_in_root_creates_dirs_and_file(real_syscalls, rootdir):
    root, rfd = rootdir
    assert _where(paths.ensure_in_root(rfd, "/a/b/c")) == str(root / "a/b/c")
    assert (root / "a/b/c").is_dir()
    assert _where(paths.ensure_in_root(rfd, "/etc/hosts", directory=False)) == str(root / "etc/hosts")
    assert (root / "etc/hosts").is_file() and (root / "etc/hosts").stat().st_size == 0
    # existing paths are just opened
    assert _where(paths.ensure_in_root(rfd, "a/b")) == str(root / "a/b")
    assert _where(paths.open_in_root(rfd, "/")) == str(root)


def test_ensure_in_root_absolute_symlink_stays_inside(real_syscalls, rootdir, tmp_path):
    root, rfd = rootdir
    outside = tmp_path / "outside"          # exists on the host ...
    outside.mkdir()
    (root / str(outside).lstrip("/")).mkdir(parents=True)   # ... and at the same path in the root
    (root / "evil").symlink_to(outside)
    (root / "dotdot").symlink_to("../../../../..")
    assert _where(paths.ensure_in_root(rfd, "/evil/sub")) == str(root) + str(outside) + "/sub"
    assert not (outside / "sub").exists()
    assert _where(paths.ensure_in_root(rfd, "/dotdot/x")) == str(root / "x")


def test_open_in_root_missing_raises(real_syscalls, rootdir):
    _, rfd = rootdir
    with pytest.raises(FileNotFoundError):
        paths.open_in_root(rfd, "/nope")


def test_ensure_in_root_nested_absolute_symlink(real_syscalls, rootdir):
    root, rfd = rootdir
    (root / "var").mkdir()
    (root / "run").mkdir()
    (root / "var/run").symlink_to("/run")
    assert _where(paths.ensure_in_root(rfd, "/var/run/secrets/x")) == str(root / "run/secrets/x")


# --- mount_entry: real path resolution, recorded mounts --------------------------------------------

def test_bind_ro_mounts_then_remounts(pfake, rootdir, tmp_path):
    root, rfd = rootdir
    src = tmp_path / "src"
    src.mkdir()
    m = Mount({"destination": "/data", "type": "bind", "source": str(src), "options": ["rbind", "ro"]})
    mount_entry(rfd, m, 0, None)
    dest = root / "data"
    assert dest.is_dir()
    keep = current_flags(str(dest))
    calls = _mounts(pfake)
    assert [call[:2] + call[3:] for call in calls] == [
        ("mount", str(src), None, c.MS_BIND | c.MS_REC, None),
        ("mount", None, None, c.MS_REMOUNT | c.MS_BIND | keep | c.MS_RDONLY, None),
    ]
    assert all(call[2].startswith("/proc/self/fd/") for call in calls)
    assert pfake.resolved == [str(dest), str(dest)]
    # the targets were resolved in the root (openat2 RESOLVE_IN_ROOT, no magic links)
    resolves = {call[3] for call in pfake.calls if call[0] == "openat2"}
    assert resolves == {c.RESOLVE_IN_ROOT | c.RESOLVE_NO_MAGICLINKS}


def test_bind_type_without_option_and_no_remount(pfake, rootdir, tmp_path):
    root, rfd = rootdir
    src = tmp_path / "hosts"
    src.write_text("127.0.0.1 localhost\n")
    m = Mount({"destination": "/etc/hosts", "type": "bind", "source": str(src), "options": []})
    mount_entry(rfd, m, 0, None)
    assert (root / "etc/hosts").is_file()     # a file source gets a file mount point
    assert [call[:2] + call[3:] for call in _mounts(pfake)] == [
        ("mount", str(src), None, c.MS_BIND, None)]
    assert pfake.resolved == [str(root / "etc/hosts")]


def test_bind_rw_clears_rdonly_keeps_other_flags(pfake, rootdir, tmp_path):
    root, rfd = rootdir
    m = Mount({"destination": "/d", "source": str(tmp_path), "options": ["bind", "rw", "nosuid"]})
    mount_entry(rfd, m, 0, None)
    keep = current_flags(str(root / "d")) & ~c.MS_RDONLY
    assert _mounts(pfake)[1][4] == c.MS_REMOUNT | c.MS_BIND | keep | c.MS_NOSUID


def test_bind_propagation_and_recursive_attrs(pfake, rootdir, tmp_path):
    root, rfd = rootdir
    m = Mount({"destination": "/d", "type": "bind", "source": str(tmp_path),
               "options": ["rbind", "rprivate", "rro", "rnosuid"]})
    mount_entry(rfd, m, 0, None)
    calls = _mounts(pfake)
    assert [call[0] for call in calls] == ["mount", "mount", "mount_setattr"]
    assert calls[1][1:2] + calls[1][3:] == (None, None, c.MS_PRIVATE | c.MS_REC, None)
    assert calls[2][2:] == (c.AT_RECURSIVE, c.MOUNT_ATTR_RDONLY | c.MOUNT_ATTR_NOSUID, 0, 0)
    assert pfake.resolved == [str(root / "d")] * 3


def test_fs_mount_flags_and_data(pfake, rootdir):
    root, rfd = rootdir
    m = Mount({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
               "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]})
    mount_entry(rfd, m, 0, None)
    assert [call[:2] + call[3:] for call in _mounts(pfake)] == [
        ("mount", "tmpfs", "tmpfs", c.MS_NOSUID | c.MS_NODEV, "mode=1777,size=65536k")]
    assert pfake.resolved == [str(root / "tmp")]


def test_fs_mount_without_source_uses_type(pfake, rootdir):
    _, rfd = rootdir
    mount_entry(rfd, Mount({"destination": "/proc", "type": "proc"}), 0, None)
    assert _mounts(pfake)[0][1] == "proc"


def test_sysfs_falls_back_to_readonly_bind(pfake, rootdir):
    _, rfd = rootdir
    pfake.fail["mount"] = errno.EPERM
    m = Mount({"destination": "/sys", "type": "sysfs", "source": "sysfs",
               "options": ["nosuid", "noexec", "nodev", "ro"]})
    mount_entry(rfd, m, 0, None)
    flags = c.MS_NOSUID | c.MS_NOEXEC | c.MS_NODEV | c.MS_RDONLY
    assert [call[:2] + call[3:] for call in _mounts(pfake)] == [
        ("mount", "sysfs", "sysfs", flags, None),
        ("mount", "/sys", None, c.MS_BIND | c.MS_REC, None),
        ("mount", None, None, c.MS_REMOUNT | c.MS_BIND | c.MS_RDONLY | flags, None)]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_mount_error_names_the_entry(pfake, rootdir):
    _, rfd = rootdir
    pfake.fail["mount"] = errno.EPERM
    before = _open_fds()
    with pytest.raises(HawserError, match=r"^mounts\[4\] \(/proc\): .*Operation not permitted"):
        mount_entry(rfd, Mount({"destination": "/proc", "type": "proc"}), 4, None)
    assert _open_fds() == before


def test_mount_entry_closes_its_fds(pfake, rootdir, tmp_path):
    _, rfd = rootdir
    before = _open_fds()
    mount_entry(rfd, Mount({"destination": "/a/b", "type": "bind", "source": str(tmp_path),
                            "options": ["rbind", "ro", "rprivate", "rro"]}), 0, None)
    mount_entry(rfd, Mount({"destination": "/a/b", "type": "tmpfs"}), 1, None)
    assert _open_fds() == before


def test_missing_bind_source(pfake, rootdir, tmp_path):
    _, rfd = rootdir
    m = Mount({"destination": "/d", "type": "bind", "source": str(tmp_path / "nope")})
    with pytest.raises(HawserError, match=r"^mounts\[1\] \(/d\): mount source .*nope does not exist"):
        mount_entry(rfd, m, 1, None)
    assert pfake.calls == []


def test_cgroup_entry_goes_to_the_callback(pfake, rootdir):
    root, rfd = rootdir
    seen = []
    m = Mount({"destination": "/sys/fs/cgroup", "type": "cgroup", "options": ["ro"]})
    mount_entry(rfd, m, 0, lambda target, plan, phase: seen.append(
        (os.readlink(target), plan.flags, phase)))
    target = str(root / "sys/fs/cgroup")
    assert seen == [(target, c.MS_RDONLY, "mount"), (target, c.MS_RDONLY, "finish")]
    assert _mounts(pfake) == []


def test_mount_all_reports_dev_bind(pfake, rootdir, tmp_path):
    _, rfd = rootdir
    spec = Spec({"ociVersion": "1.0.2", "mounts": [
        {"destination": "/proc", "type": "proc"},
        {"destination": "/dev", "type": "bind", "source": str(tmp_path), "options": ["rbind"]}]})
    assert rootfs.mount_all(spec, rfd, {}) is True
    spec = Spec({"ociVersion": "1.0.2", "mounts": [{"destination": "/dev", "type": "tmpfs"}]})
    assert rootfs.mount_all(spec, rfd, {}) is False


# --- rootfs call sequences -------------------------------------------------------------------------

@pytest.mark.parametrize("prop, flags", [
    ("", c.MS_SLAVE | c.MS_REC), ("private", c.MS_PRIVATE | c.MS_REC),
    ("rslave", c.MS_SLAVE | c.MS_REC), ("shared", c.MS_SHARED | c.MS_REC),
    ("rshared", c.MS_SHARED | c.MS_REC), ("unbindable", c.MS_UNBINDABLE | c.MS_REC)])
def test_make_root_private(fake, monkeypatch, prop, flags):
    monkeypatch.setattr(rootfs, "_mount_of", lambda path: ("/b", False))
    rootfs.make_root_private(Spec({"ociVersion": "1.0.2", "linux": {"rootfsPropagation": prop}}),
                             "/b/rootfs")
    assert fake.calls == [("mount", None, "/", None, flags, None)]


def test_make_root_private_unshares_the_rootfs_parent(fake, monkeypatch):
    """runc's rootfsParentMountPrivate: a shared mount holding the rootfs is made private, so the
    rootfs bind is not shared (pivot_root refuses that)."""
    monkeypatch.setattr(rootfs, "_mount_of", lambda path: ("/b", True))
    rootfs.make_root_private(Spec({"ociVersion": "1.0.2",
                                   "linux": {"rootfsPropagation": "rshared"}}), "/b/rootfs")
    assert fake.calls == [("mount", None, "/", None, c.MS_SHARED | c.MS_REC, None),
                          ("mount", None, "/b", None, c.MS_PRIVATE, None)]


def test_mount_of_finds_the_longest_mount_point():
    point, _ = rootfs._mount_of("/proc/self")
    assert point == "/proc"
    assert rootfs._mount_of("/")[0] == "/"


def test_apply_root_propagation(fake):
    rootfs.apply_root_propagation(Spec({"ociVersion": "1.0.2"}))
    assert fake.calls == []
    rootfs.apply_root_propagation(Spec({"ociVersion": "1.0.2",
                                        "linux": {"rootfsPropagation": "shared"}}))
    assert fake.calls == [("mount", None, "/", None, c.MS_SHARED | c.MS_REC, None)]


def test_bind_rootfs(fake):
    rootfs.bind_rootfs("/b/rootfs")
    assert fake.calls == [("mount", "/b/rootfs", "/b/rootfs", None, c.MS_BIND | c.MS_REC, None)]


def test_pivot(fake, monkeypatch):
    monkeypatch.setattr(rootfs, "os", OsProxy(fake.calls, record=("chdir", "chroot", "fchdir",
                                                                    "close")))
    monkeypatch.setattr(rootfs.os, "open", lambda *a: 99, raising=False)
    rootfs.pivot("/b/rootfs", no_pivot=False)
    # The old root is entered by the fd opened before pivot_root, as runc does: "." alone can
    # be the new root, and making that rslave would break rshared bind mounts.
    assert fake.calls == [("chdir", "/b/rootfs"), ("pivot_root", ".", "."), ("fchdir", 99),
                          ("mount", None, ".", None, c.MS_SLAVE | c.MS_REC, None),
                          ("umount2", ".", c.MNT_DETACH), ("close", 99), ("chdir", "/")]


def test_no_pivot_moves_and_chroots(fake, monkeypatch):
    monkeypatch.setattr(rootfs, "os", OsProxy(fake.calls, record=("chdir", "chroot")))
    rootfs.pivot("/b/rootfs", no_pivot=True)
    assert fake.calls == [("chdir", "/b/rootfs"), ("mount", "/b/rootfs", "/", None, c.MS_MOVE, None),
                          ("chroot", "."), ("chdir", "/")]


def test_mask_paths(fake, tmp_path):
    (tmp_path / "dir").mkdir()
    (tmp_path / "file").write_text("x")
    d, f = str(tmp_path / "dir"), str(tmp_path / "file")
    rootfs.mask_paths([d, str(tmp_path / "missing"), f, f + "/under-a-file"])
    # /dev/null is bound through an fd checked to be the null device (1:3)
    assert fake.calls[0] == ("mount", "tmpfs", d, "tmpfs", c.MS_RDONLY, None)
    assert len(fake.calls) == 2 and fake.calls[1][0] == "mount"
    assert fake.calls[1][1].startswith("/proc/self/fd/") and fake.calls[1][2:] == (f, None,
                                                                                   c.MS_BIND, None)


def test_readonly_paths(fake, tmp_path):
    present = str(tmp_path)
    fake.fail["mount"] = errno.ENOENT      # the first path's bind: missing, skipped
    rootfs.readonly_paths(["/missing", present])
    assert fake.calls == [
        ("mount", "/missing", "/missing", None, c.MS_BIND | c.MS_REC, None),
        ("mount", present, present, None, c.MS_BIND | c.MS_REC, None),
        ("mount", None, present, None,
         c.MS_REMOUNT | c.MS_BIND | c.MS_REC | c.MS_RDONLY | current_flags(present), None)]


def test_readonly_paths_other_errors_propagate(fake):
    fake.fail["mount"] = errno.EPERM
    with pytest.raises(PermissionError):
        rootfs.readonly_paths(["/x"])


def test_readonly_root(fake):
    rootfs.readonly_root()
    assert fake.calls == [("mount", None, "/", None,
                           c.MS_REMOUNT | c.MS_BIND | c.MS_RDONLY | current_flags("/"), None)]


def test_current_flags_maps_statvfs_bits(monkeypatch):
    class St:
        f_flag = 1 | 2 | 8 | 1024 | 4096
    monkeypatch.setattr(mounts.os, "statvfs", lambda p: St)
    assert current_flags("/x") == c.MS_RDONLY | c.MS_NOSUID | c.MS_NOEXEC | c.MS_NOATIME | c.MS_RELATIME


# --- process: capabilities, user, env, executable --------------------------------------------------

@pytest.fixture
def cap_last(monkeypatch):
    """Pin cap_last_cap to CAP_CHECKPOINT_RESTORE (40) whatever the kernel says."""
    monkeypatch.setattr(process, "_CAP_LAST", [40])


def _proc(**d) -> Process:
    return Process(d)


def test_cap_mask(cap_last):
    warns = []
    mask = process.cap_mask(["CAP_CHOWN", "CAP_KILL", "CAP_BOGUS", "CAP_SYSLOG", "cap_kill"],
                            warns.append)
    assert mask == (1 << 0) | (1 << 5) | (1 << 34)
    assert len(warns) == 2 and "'CAP_BOGUS'" in warns[0] and "'cap_kill'" in warns[1]


def test_cap_mask_beyond_kernel_last_cap(monkeypatch):
    monkeypatch.setattr(process, "_CAP_LAST", [39])
    warns = []
    assert process.cap_mask(["CAP_BPF", "CAP_CHECKPOINT_RESTORE"], warns.append) == 1 << 39
    assert len(warns) == 1 and "CAP_CHECKPOINT_RESTORE" in warns[0]


def test_cap_last_reads_kernel(monkeypatch):
    monkeypatch.setattr(process, "_CAP_LAST", [])
    with open("/proc/sys/kernel/cap_last_cap") as f:
        assert process._cap_last() == int(f.read())


def test_drop_bounding_set(fake, cap_last):
    keep = ["CAP_CHOWN", "CAP_NET_BIND_SERVICE", "CAP_SYSLOG", "CAP_NOPE"]
    warns = []
    process.drop_bounding_set(_proc(capabilities={"bounding": keep}), warns.append)
    assert fake.calls == [("capbset_drop", n) for n in range(41) if n not in (0, 10, 34)]
    assert len(warns) == 1


def test_drop_bounding_set_without_capabilities(fake, cap_last):
    process.drop_bounding_set(_proc(), None)
    assert fake.calls == []


def test_apply_caps(fake, cap_last):
    caps = {"effective": ["CAP_SYSLOG", "CAP_CHOWN"],
            "permitted": ["CAP_SYSLOG", "CAP_CHOWN", "CAP_BPF"],
            "inheritable": ["CAP_CHOWN"],
            "ambient": ["CAP_CHOWN", "CAP_BOGUS", "CAP_SYSLOG"]}
    process.apply_caps(_proc(capabilities=caps), pytest.fail, pytest.fail)
    assert fake.calls == [("capset", (1 << 34) | 1, (1 << 34) | 1 | (1 << 39), 1),
                          ("ambient_clear",), ("ambient_raise", 0), ("ambient_raise", 34)]


def test_apply_caps_ambient_failure_is_debug_only(fake, cap_last):
    fake.fail["ambient_raise"] = errno.EPERM
    debug = []
    process.apply_caps(_proc(capabilities={"ambient": ["CAP_CHOWN", "CAP_KILL"]}), pytest.fail,
                       debug.append)
    assert fake.names() == ["capset", "ambient_clear", "ambient_raise", "ambient_raise"]
    assert len(debug) == 1 and "CAP_CHOWN" in debug[0]


def test_apply_caps_without_capabilities_clears_all(fake):
    process.apply_caps(_proc(), pytest.fail, pytest.fail)
    assert fake.calls == [("capset", 0, 0, 0)]


def test_linux_capset_splits_64_bit_masks():
    """The real LinuxSyscalls.capset, with the raw syscall replaced: two 32-bit words, v3 header."""
    sc = LinuxSyscalls()
    seen = {}

    def fake_syscall(nr, hdr_ref, data):
        hdr = hdr_ref._obj
        seen.update(version=hdr.version, pid=hdr.pid,
                    words=[(d.effective, d.permitted, d.inheritable) for d in data])
        return 0
    sc._syscall = fake_syscall
    sc.capset((1 << 34) | 1, (1 << 40) | (1 << 31), 1 << 32)
    assert seen == {"version": c.CAP_VERSION_3, "pid": 0,
                    "words": [(1, 1 << 31, 0), (1 << 2, 1 << 8, 1)]}


@pytest.fixture
def umasks(monkeypatch):
    seen = []
    monkeypatch.setattr(process, "os", OsProxy(seen, record=("umask",)))
    return seen


def test_set_user_order(fake, umasks):
    p = _proc(user={"uid": 1000, "gid": 1001, "additionalGids": [10, 20], "umask": 0o077})
    process.set_user(p, allow_setgroups=True)
    assert fake.calls == [("set_keepcaps", True), ("setgroups", [10, 20]), ("setresgid", 1001),
                          ("setresuid", 1000), ("set_keepcaps", False)]
    assert umasks == [("umask", 0o077)]


def test_set_user_clears_groups_and_default_umask(fake, umasks):
    process.set_user(_proc(user={"uid": 0, "gid": 0}), allow_setgroups=True)
    assert ("setgroups", []) in fake.calls
    assert umasks == [("umask", 0o022)]


def test_set_user_without_setgroups(fake, umasks):
    process.set_user(_proc(user={"uid": 5, "gid": 6, "additionalGids": [7]}), allow_setgroups=False)
    assert fake.names() == ["set_keepcaps", "setresgid", "setresuid", "set_keepcaps"]


def test_set_user_error(fake, umasks):
    fake.fail["setresuid"] = errno.EPERM
    with pytest.raises(HawserError, match=r"^process.user: cannot become uid 1000 gid 1000: .*"
                                          r"Operation not permitted"):
        process.set_user(_proc(user={"uid": 1000, "gid": 1000}), allow_setgroups=True)
    assert umasks == []


PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "user:x:1000:1000:user:/home/user:/bin/sh\n"
          "nohome:x:1001:1001::\n"
          "short:x:1002\n")


@pytest.fixture
def passwd(tmp_path, monkeypatch):
    """home_of() opens the absolute /etc/passwd (it runs after pivot_root): redirect that one path
    through a module-level `open` so no chroot is needed."""
    path = tmp_path / "passwd"
    path.write_text(PASSWD)
    opened = []

    def fake_open(name, *a, **kw):
        opened.append(name)
        return open(path if name == "/etc/passwd" else name, *a, **kw)
    monkeypatch.setattr(process, "open", fake_open, raising=False)
    return path, opened


def test_env_dict_parses_and_adds_home(passwd):
    env = process.env_dict(_proc(env=["PATH=/bin", "A=b=c", "EMPTY=", "A2=x", "A2=y"],
                                 user={"uid": 1000}))
    assert env == {"PATH": "/bin", "A": "b=c", "EMPTY": "", "A2": "y", "HOME": "/home/user"}


@pytest.mark.parametrize("uid, home", [(0, "/root"), (1000, "/home/user"), (1001, "/"),
                                       (1002, "/"), (4242, "/")])
def test_home_of(passwd, uid, home):
    assert process.home_of(uid) == home


def test_env_dict_keeps_home_without_reading_passwd(passwd):
    _, opened = passwd
    assert process.env_dict(_proc(env=["HOME=/h"], user={"uid": 0}))["HOME"] == "/h"
    assert opened == []


def test_home_without_passwd(passwd):
    path, _ = passwd
    path.unlink()
    assert process.env_dict(_proc(user={"uid": 0})) == {"HOME": "/"}


@pytest.fixture
def bindirs(tmp_path):
    d1, d2, d3 = (tmp_path / n for n in ("d1", "d2", "d3"))
    for d in (d1, d2, d3):
        d.mkdir()
    (d1 / "prog").write_text("not executable")
    (d2 / "prog").mkdir()                               # a directory is not an executable
    (d3 / "prog").write_text("#!/bin/sh\n")
    (d3 / "prog").chmod(0o755)
    return d1, d2, d3


def test_find_executable_in_path(bindirs, tmp_path):
    d1, d2, d3 = bindirs
    path = ":".join(map(str, (tmp_path / "missing", d1, d2, d3)))
    assert process.find_executable("prog", {"PATH": path}) == f"{d3}/prog"


def test_find_executable_empty_path_entry_is_cwd(bindirs, monkeypatch):
    d1, _, d3 = bindirs
    monkeypatch.chdir(d3)
    assert process.find_executable("prog", {"PATH": f"{d1}::"}) == "./prog"


def test_find_executable_with_slash(bindirs, monkeypatch):
    d1, _, d3 = bindirs
    assert process.find_executable(f"{d3}/prog", {"PATH": ""}) == f"{d3}/prog"
    monkeypatch.chdir(d3.parent)
    assert process.find_executable("d3/prog", {}) == "d3/prog"
    with pytest.raises(HawserError, match=r'^process.args\[0\]: exec: ".*/d1/prog": permission denied'):
        process.find_executable(f"{d1}/prog", {})
    with pytest.raises(HawserError, match=r'^process.args\[0\]: exec: ".*/d1/absent": no such file'):
        process.find_executable(f"{d1}/absent", {})


def test_find_executable_not_found(bindirs):
    d1, d2, _ = bindirs
    with pytest.raises(HawserError, match=r'^process.args\[0\]: exec: "prog": executable file not '
                                          r'found in \$PATH$'):
        process.find_executable("prog", {"PATH": f"{d1}:{d2}"})


# --- namespaces ------------------------------------------------------------------------------------

def _linux(*types, **paths_) -> Linux:
    nss = [{"type": t} for t in types] + [{"type": t, "path": p} for t, p in paths_.items()]
    return Linux({"namespaces": nss})


def test_create_namespaces_user_first(fake, monkeypatch):
    monkeypatch.setattr(namespaces, "loopback_up", lambda: fake.calls.append(("loopback_up",)))
    flags = namespaces.create_namespaces(_linux("pid", "user", "mount", "ipc", "uts"),
                                         FakeChannel(fake.calls))
    rest = c.CLONE_NEWPID | c.CLONE_NEWNS | c.CLONE_NEWIPC | c.CLONE_NEWUTS
    assert flags == rest | c.CLONE_NEWUSER
    assert fake.calls == [("unshare", c.CLONE_NEWUSER), ("send", "idmap"), ("expect", "idmap-done"),
                          ("setresgid", 0), ("setresuid", 0), ("unshare", rest)]


def test_create_namespaces_joined_user_is_not_created(fake, tmp_path):
    flags = namespaces.create_namespaces(_linux("mount", user="/proc/1/ns/user"),
                                         FakeChannel(fake.calls))
    assert flags == c.CLONE_NEWNS
    assert fake.calls == [("unshare", c.CLONE_NEWNS)]


def test_create_namespaces_nothing_to_do(fake):
    assert namespaces.create_namespaces(_linux(), FakeChannel(fake.calls)) == 0
    assert fake.calls == []


def test_create_namespaces_network_brings_lo_up(fake, monkeypatch):
    monkeypatch.setattr(namespaces, "loopback_up", lambda: fake.calls.append(("loopback_up",)))
    namespaces.create_namespaces(_linux("network"), FakeChannel(fake.calls))
    assert fake.calls == [("unshare", c.CLONE_NEWNET), ("loopback_up",)]


class _Writes:
    """A module-level `open` that captures writes instead of touching /proc."""

    def __init__(self, calls):
        self.calls = calls

    def __call__(self, path, mode="r", *a, **kw):
        calls = self.calls

        class W:
            def __enter__(self):
                return self

            def __exit__(self, *exc):
                return False

            def write(self, text):
                calls.append(("write", path, mode, text))
        return W()


def test_create_namespaces_time_offsets_written_after_unshare(fake, monkeypatch):
    monkeypatch.setattr(namespaces, "open", _Writes(fake.calls), raising=False)
    linux = Linux({"namespaces": [{"type": "time"}],
                   "timeOffsets": {"monotonic": {"secs": 10, "nanosecs": 5},
                                   "boottime": {"secs": -3}}})
    namespaces.create_namespaces(linux, FakeChannel(fake.calls))
    assert fake.calls == [("unshare", c.CLONE_NEWTIME),
                          ("write", "/proc/self/timens_offsets", "w",
                           "monotonic 10 5\nboottime -3 0\n")]


def test_time_namespace_without_offsets_writes_nothing(fake, monkeypatch):
    monkeypatch.setattr(namespaces, "open", _Writes(fake.calls), raising=False)
    namespaces.create_namespaces(_linux("time"), FakeChannel(fake.calls))
    assert fake.calls == [("unshare", c.CLONE_NEWTIME)]


def test_create_namespaces_error(fake):
    fake.fail["unshare"] = errno.EPERM
    with pytest.raises(HawserError, match=r"^linux.namespaces: creating namespaces: .*"
                                          r"Operation not permitted"):
        namespaces.create_namespaces(_linux("pid", "mount"), FakeChannel(fake.calls))


def test_create_user_namespace_error(fake):
    fake.fail["unshare"] = errno.EPERM
    with pytest.raises(HawserError, match=r"^linux.namespaces: "):
        namespaces.create_namespaces(_linux("user", "pid"), FakeChannel(fake.calls))


@pytest.fixture
def ns_files(tmp_path):
    """Regular files stand in for /proc/PID/ns/* (only setns would tell the difference)."""
    files = {}
    for name in ("net", "ipc", "user"):
        files[name] = str(tmp_path / name)
        (tmp_path / name).write_text("")
    return files


def test_join_namespaces_opens_all_then_joins_user_first(fake, ns_files, monkeypatch):
    monkeypatch.setattr(namespaces, "os", OsProxy(fake.calls, record=("open", "close"),
                                                  passthrough=("open", "close")))
    linux = Linux({"namespaces": [{"type": "network", "path": ns_files["net"]},
                                  {"type": "ipc", "path": ns_files["ipc"]},
                                  {"type": "mount"},
                                  {"type": "user", "path": ns_files["user"]}]})
    namespaces.join_namespaces(linux)
    assert [call[0] for call in fake.calls] == ["open"] * 3 + ["setns"] * 3 + ["close"] * 3
    fd = {call[1]: call[-1] for call in fake.calls if call[0] == "open"}
    assert [call[1] for call in fake.calls[:3]] == [ns_files["user"], ns_files["net"],
                                                     ns_files["ipc"]]
    assert fake.calls[3:6] == [("setns", fd[ns_files["user"]], c.CLONE_NEWUSER),
                               ("setns", fd[ns_files["net"]], c.CLONE_NEWNET),
                               ("setns", fd[ns_files["ipc"]], c.CLONE_NEWIPC)]
    assert sorted(call[1] for call in fake.calls[6:]) == sorted(fd.values())


def test_join_namespaces_missing_path(fake, ns_files, tmp_path, monkeypatch):
    monkeypatch.setattr(namespaces, "os", OsProxy(fake.calls, record=("open", "close"),
                                                  passthrough=("open", "close")))
    missing = str(tmp_path / "gone")
    linux = Linux({"namespaces": [{"type": "network", "path": ns_files["net"]},
                                  {"type": "ipc", "path": missing}]})
    with pytest.raises(HawserError, match=rf"^linux.namespaces: ipc namespace path {missing}: "
                                          r"No such file or directory$"):
        namespaces.join_namespaces(linux)
    assert "setns" not in fake.names()
    assert fake.names().count("close") == 1          # the fd opened before the failure


def test_join_namespaces_setns_error(fake, ns_files, monkeypatch):
    monkeypatch.setattr(namespaces, "os", OsProxy(fake.calls, record=("open", "close"),
                                                  passthrough=("open", "close")))
    fake.fail["setns"] = errno.EINVAL
    linux = Linux({"namespaces": [{"type": "network", "path": ns_files["net"]},
                                  {"type": "user", "path": ns_files["user"]}]})
    with pytest.raises(HawserError, match=r"^linux.namespaces: joining user namespace .*/user: "
                                          r".*Invalid argument"):
        namespaces.join_namespaces(linux)
    assert fake.names() == ["open", "open", "setns", "close", "close"]


def test_new_namespace_flags():
    assert namespaces.new_namespace_flags(_linux("pid", "cgroup", network="/x")) == \
        c.CLONE_NEWPID | c.CLONE_NEWCGROUP
