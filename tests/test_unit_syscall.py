"""The two implementations of runtime.syscall: the C module's (runtime.syscall.native, built by
`make install`) and ctypes' (runtime.syscall.linux, the fallback) must behave alike: the same
results, and the same OSError (errno and message) on failure. Unprivileged calls only."""
import errno
import os

import pytest

from runtime import syscall
from runtime.syscall import consts as c
from runtime.syscall.linux import LinuxSyscalls

native = pytest.importorskip("runtime.syscall.native", reason="the C module was not built")


@pytest.fixture(params=["native", "ctypes"])
def sc(request):
    return native.NativeSyscalls() if request.param == "native" else LinuxSyscalls()


def test_get_prefers_the_c_module():
    previous = syscall.install(None)
    try:
        assert isinstance(syscall.get(), native.NativeSyscalls)
    finally:
        syscall.install(previous)


def _error(call):
    with pytest.raises(OSError) as e:
        call()
    return e.value.errno, str(e.value)


@pytest.mark.parametrize("call", [
    lambda s: s.setns(-1, c.CLONE_NEWNS),
    lambda s: s.unshare(-1),
    lambda s: s.mount("none", "/nonexistent/hawser-test", "tmpfs", 0, "mode=755"),
    lambda s: s.umount2("/nonexistent/hawser-test"),
    lambda s: s.pivot_root("/nonexistent/a", "/nonexistent/b"),
    lambda s: s.openat2(-1, "x", os.O_RDONLY),
    lambda s: s.mount_setattr(-100, "/nonexistent/hawser-test", 0, 1),
    lambda s: s.close_range(5, 4),
    lambda s: s.prctl(-1),
    lambda s: s.capbset_drop(1000),
], ids=["setns", "unshare", "mount", "umount2", "pivot_root", "openat2", "mount_setattr",
        "close_range", "prctl", "capbset_drop"])
def test_failures_are_the_same(call):
    n, py = _error(lambda: call(native.NativeSyscalls())), _error(lambda: call(LinuxSyscalls()))
    assert n == py
    assert n[0] != 0 and os.strerror(n[0]) in n[1]


def test_openat2_resolves_in_root(sc, tmp_path):
    """An absolute symlink is resolved below the root fd: d/up -> /etc is root/etc, absent."""
    (tmp_path / "d").mkdir()
    os.symlink("/etc", tmp_path / "d" / "up")
    root = os.open(tmp_path, os.O_PATH | os.O_DIRECTORY)
    try:
        with pytest.raises(OSError) as e:
            os.close(sc.openat2(root, "d/up", os.O_PATH | os.O_CLOEXEC, 0, c.RESOLVE_IN_ROOT))
        assert e.value.errno == errno.ENOENT
        assert str(e.value) == "[Errno 2] open d/up: No such file or directory"
        (tmp_path / "etc").mkdir()
        fd = sc.openat2(root, "d/up", os.O_PATH | os.O_CLOEXEC, 0, c.RESOLVE_IN_ROOT)
        try:
            assert os.readlink(f"/proc/self/fd/{fd}") == str(tmp_path / "etc")
        finally:
            os.close(fd)
    finally:
        os.close(root)


def test_prctl_returns_the_value(sc):
    PR_GET_DUMPABLE = 3
    assert sc.prctl(PR_GET_DUMPABLE) == 1


def test_capset_of_the_current_sets_roundtrips():
    from runtime.syscall import _native
    eff, perm, inh = _native.capget()
    for s in (native.NativeSyscalls(), LinuxSyscalls()):
        s.capset(eff, perm, inh)  # no change: allowed to any process
    assert _native.capget() == (eff, perm, inh)


def test_native_rejects_str_paths():
    from runtime.syscall import _native
    with pytest.raises(TypeError):
        _native.umount2("/x", 0)  # the wrappers encode: the raw layer takes bytes or None
