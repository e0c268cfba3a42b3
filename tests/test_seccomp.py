"""linux.seccomp: filters built with libseccomp and loaded in a forked child that then exercises
system calls, the profile validation messages, `features`, and one real container."""
from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import traceback
import uuid
from pathlib import Path

import pytest

from runtime import seccomp
from runtime.errors import HawserError

REPO = Path(__file__).resolve().parent.parent
SIGSYS = signal.SIGSYS
ALLOW, ERRNO = "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO"
X86 = ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"]
PODMAN_PROFILE = Path("/usr/share/containers/seccomp.json")

pytestmark = pytest.mark.skipif(not seccomp.available(), reason="libseccomp.so.2 is not installed")


LOADER = {"cache_dir": None}


@pytest.fixture(params=["libseccomp", "cached-bpf"])
def loader(request, tmp_path_factory):
    """Run a test twice: loading with libseccomp, and loading a cached BPF program with
    seccomp(2) (the cache is filled by the parent before the child loads)."""
    LOADER["cache_dir"] = str(tmp_path_factory.mktemp("seccomp-cache")) \
        if request.param == "cached-bpf" else None
    yield request.param
    LOADER["cache_dir"] = None


def in_child(profile, fn, no_new_privileges=False, before=None):
    """Fork; the child loads `profile` (after `before()`), runs fn() and sends back its result
    (or the exception) as JSON. Returns (result, wait status)."""
    cache_dir = LOADER["cache_dir"]
    if cache_dir and isinstance(profile, dict):
        seccomp.prepare(profile, cache_dir=cache_dir).release()
        f = seccomp.prepare(profile, no_new_privileges, cache_dir=cache_dir)
        assert f.cached
        profile = f
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(r)
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGSYS would dump core
            if before:
                before()
            if no_new_privileges:
                libc.prctl(38, 1, 0, 0, 0)  # PR_SET_NO_NEW_PRIVS, as the init does
            if profile is not None:
                profile.load() if isinstance(profile, seccomp.Filter) else \
                    seccomp.load(profile, no_new_privileges)
            out = {"result": fn()}
        except BaseException as e:  # noqa: BLE001 - the child reports whatever happened
            out = {"error": f"{type(e).__name__}: {e}", "tb": traceback.format_exc()}
            code = 3
        finally:
            try:
                os.write(w, json.dumps(out).encode())
            finally:
                os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    return (json.loads(data) if data else None), status


def result(profile, fn, **kw):
    out, status = in_child(profile, fn, **kw)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, (out, status)
    return out["result"]


def errno_of(call, *args) -> int:
    """0 if call(*args) succeeds, else the errno of the OSError it raised."""
    try:
        call(*args)
    except OSError as e:
        return e.errno
    return 0


libc = ctypes.CDLL(None, use_errno=True)


def c_errno(name: str, *args) -> int:
    """Call a libc function through ctypes: 0 on success, else errno."""
    fn = getattr(libc, name)
    ctypes.set_errno(0)
    rc = fn(*args)
    return ctypes.get_errno() if rc == -1 else 0


def mkdir_errno(tmp: str) -> int:
    return errno_of(os.mkdir, os.path.join(tmp, uuid.uuid4().hex))


def deny(names, errno_ret=None, action=ERRNO, args=None, **profile):
    rule = {"names": names, "action": action}
    if errno_ret is not None:
        rule["errnoRet"] = errno_ret
    if args:
        rule["args"] = args
    return {"defaultAction": ALLOW, "architectures": X86, "syscalls": [rule], **profile}


# ---- filters at work -------------------------------------------------------------------------

def test_errno_denies_only_the_named_call(tmp_path, loader):
    profile = deny(["mkdir", "mkdirat"], errno_ret=1)

    def probe():
        fd = os.open(tmp_path / "file", os.O_CREAT | os.O_WRONLY, 0o600)
        os.write(fd, b"x")
        os.close(fd)
        return {"mkdir": mkdir_errno(str(tmp_path)), "pid": os.getpid() > 0,
                "stat": os.stat(tmp_path / "file").st_size, "listdir": os.listdir(tmp_path)}

    assert result(profile, probe) == {"mkdir": errno.EPERM, "pid": True, "stat": 1,
                                      "listdir": ["file"]}
    # without the filter the same thing works
    assert result(None, lambda: mkdir_errno(str(tmp_path))) == 0


def test_errno_default_is_eperm_and_custom_errno_is_honoured(tmp_path, loader):
    assert result(deny(["mkdir", "mkdirat"]), lambda: mkdir_errno(str(tmp_path))) == errno.EPERM
    assert result(deny(["mkdir", "mkdirat"], errno_ret=38),
                  lambda: mkdir_errno(str(tmp_path))) == errno.ENOSYS


def test_args_condition_on_socket_family(loader):
    profile = deny(["socket"], errno_ret=errno.EACCES,
                   args=[{"index": 0, "value": socket.AF_INET, "op": "SCMP_CMP_EQ"}])

    def probe():
        return {"inet": errno_of(lambda: socket.socket(socket.AF_INET).close()),
                "inet6": errno_of(lambda: socket.socket(socket.AF_INET6).close()),
                "unix": errno_of(lambda: socket.socket(socket.AF_UNIX).close())}

    assert result(profile, probe) == {"inet": errno.EACCES, "inet6": 0, "unix": 0}


def test_args_condition_on_personality_query(loader):
    """Docker's shape: personality is fine except with the listed values."""
    profile = deny(["personality"], args=[{"index": 0, "value": 0xFFFFFFFF, "op": "SCMP_CMP_EQ"}])
    libc.personality.argtypes = [ctypes.c_ulong]

    def probe():
        return {"query": c_errno("personality", 0xFFFFFFFF), "linux": c_errno("personality", 0)}

    assert result(profile, probe) == {"query": errno.EPERM, "linux": 0}


def test_args_on_different_indexes_must_all_match(loader):
    profile = deny(["getpriority"], args=[
        {"index": 0, "value": os.PRIO_PROCESS, "op": "SCMP_CMP_EQ"},
        {"index": 1, "value": 12345, "op": "SCMP_CMP_EQ"}])

    def probe():
        return [errno_of(os.getpriority, os.PRIO_PROCESS, 0),
                errno_of(os.getpriority, os.PRIO_PROCESS, 12345),
                errno_of(os.getpriority, os.PRIO_PGRP, 12345)]

    assert result(profile, probe) == [0, errno.EPERM, errno.ESRCH]


def test_args_on_the_same_index_are_split_into_alternatives(loader):
    """As runc: two comparisons of one argument become two rules (either matches)."""
    profile = deny(["getpriority"], args=[
        {"index": 0, "value": os.PRIO_PGRP, "op": "SCMP_CMP_EQ"},
        {"index": 0, "value": os.PRIO_USER, "op": "SCMP_CMP_EQ"}])
    f = seccomp.prepare(profile)
    assert f.rules == 2
    f.release()

    def probe():
        return [errno_of(os.getpriority, which, 0)
                for which in (os.PRIO_PROCESS, os.PRIO_PGRP, os.PRIO_USER)]

    assert result(profile, probe) == [0, errno.EPERM, errno.EPERM]


@pytest.mark.parametrize("op,value,value2,denied", [
    ("SCMP_CMP_NE", 2, 0, [0, 1]),
    ("SCMP_CMP_LT", 1, 0, [0]),
    ("SCMP_CMP_LE", 1, 0, [0, 1]),
    ("SCMP_CMP_GE", 1, 0, [1, 2]),
    ("SCMP_CMP_GT", 1, 0, [2]),
    ("SCMP_CMP_MASKED_EQ", 0b10, 0b10, [2]),  # value is the mask, valueTwo the expected bits
])
def test_operators(op, value, value2, denied, loader):
    profile = deny(["getpriority"], args=[{"index": 0, "value": value, "valueTwo": value2,
                                           "op": op}])

    def probe():
        return [which for which in (0, 1, 2) if errno_of(os.getpriority, which, 0) == errno.EPERM]

    assert result(profile, probe) == denied


def test_trace_without_a_tracer_fails_with_enosys(tmp_path, loader):
    assert result(deny(["mkdir", "mkdirat"], action="SCMP_ACT_TRACE"),
                  lambda: mkdir_errno(str(tmp_path))) == errno.ENOSYS


def test_log_allows(tmp_path, loader):
    assert result(deny(["mkdir", "mkdirat"], action="SCMP_ACT_LOG"),
                  lambda: mkdir_errno(str(tmp_path))) == 0


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL",
                                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_TRAP"])
def test_kill_and_trap_end_the_process_with_sigsys(action, loader):
    out, status = in_child(deny(["getppid"], action=action), os.getppid)
    assert out is None
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == SIGSYS, status


def test_default_errno_with_an_allow_list(tmp_path, loader):
    """Docker's shape: defaultAction SCMP_ACT_ERRNO and a long allow list, a clone rule with
    SCMP_CMP_MASKED_EQ, a clone3 rule returning ENOSYS."""
    profile = {
        "defaultAction": ERRNO,
        "defaultErrnoRet": errno.EPERM,
        "architectures": X86,
        "syscalls": [
            {"names": ["accept4", "access", "arch_prctl", "brk", "close", "close_range", "dup",
                       "dup2", "dup3", "epoll_create1", "epoll_ctl", "epoll_wait", "execve",
                       "exit", "exit_group", "fcntl", "fstat", "fstatfs", "futex", "getcwd",
                       "getdents64", "getegid", "geteuid", "getgid", "getpid", "getppid",
                       "getrandom", "gettid", "getuid", "ioctl", "lseek", "lstat", "madvise",
                       "mmap", "mprotect", "mremap", "munmap", "newfstatat", "open", "openat",
                       "pipe", "pipe2", "poll", "pread64", "prlimit64", "read", "readlink",
                       "readlinkat", "rt_sigaction", "rt_sigprocmask", "rt_sigreturn",
                       "sched_getaffinity", "sched_yield", "set_robust_list", "set_tid_address",
                       "sigaltstack", "stat", "statx", "sysinfo", "uname", "wait4", "write",
                       "writev", "statfs", "socketcall"],
             "action": ALLOW},
            {"names": ["clone"], "action": ALLOW,
             "args": [{"index": 0, "value": 2114060288, "valueTwo": 0,
                       "op": "SCMP_CMP_MASKED_EQ"}]},
            {"names": ["clone3"], "action": ERRNO, "errnoRet": errno.ENOSYS},
            {"names": ["personality"], "action": ALLOW,
             "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
            {"names": ["personality"], "action": ALLOW,
             "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        ],
    }
    f = seccomp.prepare(profile)
    f.release()
    CLONE_NEWUTS = 0x04000000
    libc.personality.argtypes = [ctypes.c_ulong]
    libc.unshare.argtypes = [ctypes.c_int]

    def probe():
        pid = os.fork()  # glibc's fork: clone without CLONE_NEW* flags
        if pid == 0:
            os._exit(7)
        _, st = os.waitpid(pid, 0)
        return {"fork": os.waitstatus_to_exitcode(st),
                "mkdir": mkdir_errno(str(tmp_path)),
                "uname": os.uname().sysname,
                "unshare": c_errno("unshare", CLONE_NEWUTS),
                "clone3": c_errno("syscall", 435, 0, 0),
                "personality0": c_errno("personality", 0),
                "personality_query": c_errno("personality", 0xFFFFFFFF),
                "listdir": sorted(os.listdir(tmp_path))}

    assert result(profile, probe) == {"fork": 7, "mkdir": errno.EPERM, "uname": "Linux",
                                      "unshare": errno.EPERM, "clone3": errno.ENOSYS,
                                      "personality0": 0, "personality_query": errno.EPERM,
                                      "listdir": []}


def oci_from_containers_profile(path: Path) -> dict:
    """The containers/common (docker format) profile for x86_64 as root with the default caps:
    what docker/podman put in config.json."""
    p = json.loads(path.read_text())
    default_caps = {"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL",
                    "CAP_NET_BIND_SERVICE", "CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP",
                    "CAP_SETUID", "CAP_SYS_CHROOT"}
    calls = []
    for s in p["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if exc.get("arches") and "amd64" in exc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= default_caps:
            continue
        if exc.get("caps") and set(exc["caps"]) & default_caps:
            continue
        if inc.get("minKernel"):
            continue
        calls.append({k: v for k, v in s.items() if k in ("names", "action", "args", "errnoRet")})
    out = {"defaultAction": p["defaultAction"], "architectures": X86, "syscalls": calls}
    if p.get("defaultErrnoRet") is not None:
        out["defaultErrnoRet"] = p["defaultErrnoRet"]
    return out


@pytest.mark.skipif(not PODMAN_PROFILE.exists(), reason=f"{PODMAN_PROFILE} is not installed")
def test_the_real_default_profile_of_podman(tmp_path, loader):
    profile = oci_from_containers_profile(PODMAN_PROFILE)
    seccomp.compile_check(profile, bpf=True)

    def nr(name):
        return seccomp._lib.seccomp_syscall_resolve_name(name.encode())

    libc.syscall.restype = ctypes.c_long
    bpf, add_key = nr("bpf"), nr("add_key")

    def probe():
        out = subprocess.run(["/bin/busybox", "sh", "-c", "echo hi; mkdir -p $0/d && echo made",
                              str(tmp_path)], capture_output=True, text=True)
        return {"out": out.stdout,
                "chroot": errno_of(os.chroot, "/nonexistent"),  # CAP_SYS_CHROOT: allowed
                "bpf": c_errno("syscall", bpf, 0, 0, 0),        # needs CAP_SYS_ADMIN: errno 1
                "add_key": c_errno("syscall", add_key, 0, 0, 0, 0, 0)}  # unlisted: default

    assert result(profile, probe, no_new_privileges=True) == {
        "out": "hi\nmade\n", "chroot": errno.ENOENT, "bpf": errno.EPERM,
        "add_key": profile.get("defaultErrnoRet", errno.EPERM)}


def test_rule_with_the_default_action_is_skipped():
    f = seccomp.prepare({"defaultAction": ALLOW, "syscalls": [
        {"names": ["mkdir"], "action": ALLOW},
        {"names": ["getpid"], "action": ERRNO, "errnoRet": 1}]})
    assert f.rules == 1
    f.release()
    f = seccomp.prepare({"defaultAction": ERRNO, "defaultErrnoRet": 38, "syscalls": [
        {"names": ["mkdir"], "action": ERRNO, "errnoRet": 38},
        {"names": ["rmdir"], "action": ERRNO}]})  # EPERM differs from the default ENOSYS
    assert f.rules == 1
    f.release()


def test_a_filter_prepared_before_fork_loads_in_the_child(tmp_path):
    """What `hawser create` can do: build once before forking, load in the init."""
    f = seccomp.prepare(deny(["mkdir", "mkdirat"], errno_ret=errno.EROFS), no_new_privileges=True)
    assert result(f, lambda: mkdir_errno(str(tmp_path))) == errno.EROFS
    f.release()


def test_no_new_privileges_is_set_only_when_asked(loader):
    def nnp():
        with open("/proc/self/status") as f:
            return [line.split()[1] for line in f if line.startswith("NoNewPrivs:")][0]

    assert result(deny(["mkdirat"]), nnp) == "0"
    assert result(deny(["mkdirat"]), nnp, no_new_privileges=True) == "1"


def test_load_without_nnp_and_without_cap_sys_admin_fails_clearly(loader):
    def become_nobody():
        os.setresgid(65534, 65534, 65534)
        os.setresuid(65534, 65534, 65534)  # clears the effective capabilities

    out, status = in_child(deny(["mkdirat"]), lambda: None, before=become_nobody)
    assert os.WEXITSTATUS(status) == 3
    assert out["error"].startswith("HawserError: linux.seccomp: loading the filter: "
                                   "Permission denied"), out
    assert "CAP_SYS_ADMIN" in out["error"]
    # the same with no_new_privs works
    out, status = in_child(deny(["mkdirat"]), lambda: 1, before=become_nobody,
                           no_new_privileges=True)
    assert out == {"result": 1}


def test_flags_are_accepted_and_tsync_loads(loader):
    profile = deny(["mkdirat"], flags=["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
                                        "SECCOMP_FILTER_FLAG_SPEC_ALLOW"])
    supported = set(seccomp.features()["supportedFlags"])
    profile["flags"] = [f for f in profile["flags"] if f in supported]
    assert result(profile, lambda: 5) == 5


def test_a_name_no_architecture_has_is_an_error():
    """Names of other architectures' calls are skipped (podman's profile lists 32-bit ones); a
    name that is no system call anywhere is a mistake in the profile."""
    with pytest.raises(HawserError, match=r"^linux\.seccomp\.syscalls\[0\]\.names\[1\]: "
                                          r"unknown system call 'frobnicate'$"):
        seccomp.compile_check(deny(["mkdir", "frobnicate"]))


def test_empty_profile_and_unknown_names():
    seccomp.compile_check({"defaultAction": ALLOW})
    # mmap2 is a 32-bit call: libseccomp knows it (a pseudo number on x86_64), no error
    seccomp.compile_check(deny(["mkdir", "mmap2", "getpid"]))
    assert result({"defaultAction": ALLOW, "syscalls": []}, lambda: 1) == 1


# ---- the BPF cache ------------------------------------------------------------------------------

def test_cache_stores_the_program_and_reuses_it(tmp_path):
    cache = tmp_path / "cache"
    profile = deny(["mkdir", "mkdirat", "mmap2"], errno_ret=1)
    first = seccomp.prepare(profile, cache_dir=str(cache))
    assert not first.cached
    files = list(cache.iterdir())
    assert len(files) == 1 and files[0].suffix == ".bpf"
    assert files[0].stat().st_mode & 0o777 == 0o600 and cache.stat().st_mode & 0o777 == 0o700
    ref = seccomp.prepare(profile)
    assert first.program() == ref.program() == files[0].read_bytes()
    ref.release()
    second = seccomp.prepare(profile, cache_dir=str(cache))
    assert second.cached and second.program() == first.program()
    # another profile, or the same under another flag, is another entry
    seccomp.prepare(deny(["mkdir"], errno_ret=2), cache_dir=str(cache)).release()
    assert len(list(cache.iterdir())) == 2
    for f in (first, second):
        f.release()


def test_cache_ignores_damaged_or_foreign_entries(tmp_path):
    cache = tmp_path / "cache"
    profile = deny(["mkdirat"])
    seccomp.prepare(profile, cache_dir=str(cache)).release()
    entry = next(cache.iterdir())
    good = entry.read_bytes()
    entry.write_bytes(good[:-3])  # not a whole number of instructions
    f = seccomp.prepare(profile, cache_dir=str(cache))
    assert not f.cached and f.program() == good and entry.read_bytes() == good  # rewritten
    os.chmod(entry, 0o666)  # writable by anyone: not trusted
    f = seccomp.prepare(profile, cache_dir=str(cache))
    assert not f.cached
    f.release()


def test_cache_is_not_written_for_a_bad_profile(tmp_path):
    cache = tmp_path / "cache"
    with pytest.raises(HawserError, match="unknown action"):
        seccomp.prepare({"defaultAction": "SCMP_ACT_NOPE"}, cache_dir=str(cache))
    assert not cache.exists() or not list(cache.iterdir())


def test_an_unwritable_cache_only_costs_time(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    f = seccomp.prepare(deny(["mkdir", "mkdirat"]), cache_dir=str(blocker / "cache"))
    assert not f.cached
    assert result(f, lambda: mkdir_errno(str(tmp_path))) == errno.EPERM


# ---- validation messages -----------------------------------------------------------------------

BAD = [
    ({"defaultAction": "SCMP_ACT_FOO"},
     "linux.seccomp.defaultAction: unknown action 'SCMP_ACT_FOO'"),
    ({}, "linux.seccomp.defaultAction: required"),
    ([], "linux.seccomp: must be an object, not list"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["getpid"], "action": ERRNO}] * 3
      + [{"names": ["mkdir"], "action": "SCMP_ACT_FOO"}]},
     "linux.seccomp.syscalls[3].action: unknown action 'SCMP_ACT_FOO'"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir"]}]},
     "linux.seccomp.syscalls[0].action: required"),
    ({"defaultAction": ALLOW, "syscalls": [{"action": ERRNO}]},
     "linux.seccomp.syscalls[0].names: required"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": [], "action": ERRNO}]},
     "linux.seccomp.syscalls[0].names: must name at least one system call"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": "mkdir", "action": ERRNO}]},
     "linux.seccomp.syscalls[0].names: must be an array, not str"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir", 3], "action": ERRNO}]},
     "linux.seccomp.syscalls[0].names[1]: invalid system call name 3"),
    ({"defaultAction": ALLOW, "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_VAX"]},
     "linux.seccomp.architectures[1]: unknown architecture 'SCMP_ARCH_VAX'"),
    ({"defaultAction": ALLOW, "architectures": ["x86_64"]},
     "linux.seccomp.architectures[0]: unknown architecture 'x86_64'"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir"], "action": ERRNO}, {
        "names": ["socket"], "action": ERRNO,
        "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                 {"index": 1, "value": 1, "op": "SCMP_CMP_ABOUT"}]}]},
     "linux.seccomp.syscalls[1].args[1].op: unknown operator 'SCMP_CMP_ABOUT'"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["socket"], "action": ERRNO,
                                            "args": [{"index": 0, "value": 2}]}]},
     "linux.seccomp.syscalls[0].args[0].op: unknown operator None"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["socket"], "action": ERRNO, "args": [
        {"index": 6, "value": 2, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].index: must be an integer from 0 to 5, not 6"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["socket"], "action": ERRNO, "args": [
        {"index": 0, "value": -1, "op": "SCMP_CMP_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].value: must be an unsigned 64-bit integer, not -1"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["socket"], "action": ERRNO, "args": [
        {"index": 0, "value": 1, "valueTwo": 1 << 64, "op": "SCMP_CMP_MASKED_EQ"}]}]},
     "linux.seccomp.syscalls[0].args[0].valueTwo: must be an unsigned 64-bit integer, not "
     "18446744073709551616"),
    ({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir"], "action": ERRNO,
                                            "errnoRet": 70000}]},
     "linux.seccomp.syscalls[0].errnoRet: must be an integer from 0 to 65535, not 70000"),
    ({"defaultAction": ERRNO, "defaultErrnoRet": "EPERM"},
     "linux.seccomp.defaultErrnoRet: must be an integer from 0 to 65535, not 'EPERM'"),
    ({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_NOPE"]},
     "linux.seccomp.flags[1]: unknown flag 'SECCOMP_FILTER_FLAG_NOPE'"),
    ({"defaultAction": ALLOW, "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]},
     "linux.seccomp.flags[0]: SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV is not supported"),
    ({"defaultAction": "SCMP_ACT_NOTIFY"},
     "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY (seccomp user notification, listenerPath) "
     "is not supported by hawser"),
    ({"defaultAction": ALLOW, "listenerPath": "/run/l.sock",
      "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]},
     "linux.seccomp.syscalls[0].action: SCMP_ACT_NOTIFY (seccomp user notification, "
     "listenerPath) is not supported by hawser"),
]


@pytest.mark.parametrize("profile,message", BAD, ids=[m.split(":")[0] + f"-{i}"
                                                      for i, (_, m) in enumerate(BAD)])
def test_bad_profiles_are_rejected_with_the_field(profile, message):
    for check in (seccomp.compile_check, seccomp.prepare, lambda p: seccomp.load(p, True)):
        with pytest.raises(HawserError) as e:
            check(profile)
        assert str(e.value).startswith(message), str(e.value)


# ---- features and import hygiene ---------------------------------------------------------------

def test_features():
    f = seccomp.features()
    assert f["enabled"] is True
    assert set(f["actions"]) == {"SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD",
                                 "SCMP_ACT_TRAP", "SCMP_ACT_ERRNO", "SCMP_ACT_TRACE",
                                 "SCMP_ACT_ALLOW", "SCMP_ACT_LOG"}
    assert "SCMP_ACT_NOTIFY" not in f["actions"]
    assert len(f["operators"]) == 7 and "SCMP_CMP_MASKED_EQ" in f["operators"]
    assert {"SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32",
            "SCMP_ARCH_AARCH64"} <= set(f["archs"])
    assert set(f["supportedFlags"]) <= set(f["knownFlags"])
    assert "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" in f["knownFlags"]
    assert "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV" not in f["supportedFlags"]
    assert "SECCOMP_FILTER_FLAG_TSYNC" in f["supportedFlags"]
    # every advertised name is accepted
    for arch in f["archs"]:  # a filter cannot mix byte orders: big-endian ones are refused here
        try:
            seccomp.compile_check({"defaultAction": ALLOW, "architectures": [arch]})
        except HawserError as e:
            assert "its byte order differs from this machine's" in str(e)
            assert arch not in ("SCMP_ARCH_X86", "SCMP_ARCH_X32", "SCMP_ARCH_AARCH64",
                                "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64", "SCMP_ARCH_PPC64LE")
    for action in f["actions"]:
        seccomp.compile_check({"defaultAction": ALLOW, "syscalls": [{"names": ["mkdir"],
                                                                     "action": action}]})
    for op in f["operators"]:
        seccomp.compile_check(deny(["getpriority"], args=[{"index": 0, "value": 1, "op": op}]))
    seccomp.compile_check({"defaultAction": ALLOW, "flags": f["supportedFlags"]})


def test_import_stays_lean():
    code = ("import sys; sys.path.insert(0, %r); import runtime.seccomp; "
            "print(' '.join(m for m in ('re', 'enum', 'json', 'typing', 'dataclasses', "
            "'subprocess', 'socket', 'signal', 'threading') if m in sys.modules))" % str(REPO))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == ""


# ---- a real container ----------------------------------------------------------------------------

@pytest.fixture
def plain_run_works(make_bundle, hawser):
    bundle = make_bundle(args=["echo", "plain"])
    proc = hawser("run", "--bundle", bundle.path, "plain-probe", check=False)
    if proc.returncode != 0 or proc.stdout.strip() != "plain":
        pytest.skip(f"`hawser run` of a plain container fails in this checkout (exit "
                    f"{proc.returncode}): {proc.stderr.strip()[-300:]}")


CONTAINER_CASES = [
    pytest.param(True, "deny-mkdir", id="noNewPrivileges"),
    pytest.param(False, "deny-mkdir", id="privileged-load"),
    pytest.param(True, "podman-default", id="podman-default-profile", marks=pytest.mark.skipif(
        not PODMAN_PROFILE.exists(), reason=f"{PODMAN_PROFILE} is not installed")),
]


@pytest.mark.parametrize("nnp,profile", CONTAINER_CASES)
def test_container_with_a_profile_denying_mkdir(plain_run_works, make_bundle, hawser, nnp, profile):
    """`hawser run` of busybox: mkdir fails with EPERM under the filter, the rest works."""
    bundle = make_bundle(args=["sh", "-c",
                               "mkdir /tmp/x; echo ok; grep Seccomp: /proc/self/status"])
    bundle.process["noNewPrivileges"] = nnp
    bundle.config["root"]["readonly"] = False  # so that EPERM can only come from the filter
    if profile == "deny-mkdir":
        bundle.linux["seccomp"] = {
            "defaultAction": ALLOW,
            "architectures": X86,
            "syscalls": [{"names": ["mkdir", "mkdirat"], "action": ERRNO, "errnoRet": 1}],
        }
    else:  # the real default profile, plus mkdir denied: the init must cope with the profile
        bundle.linux["seccomp"] = oci_from_containers_profile(PODMAN_PROFILE)
        bundle.linux["seccomp"]["syscalls"].insert(
            0, {"names": ["mkdir", "mkdirat"], "action": ERRNO, "errnoRet": 1})
    bundle.write()
    proc = hawser("run", "--bundle", bundle.path, f"seccomp-{int(nnp)}", check=False)
    assert proc.stdout == "ok\nSeccomp:\t2\n", proc  # 2: SECCOMP_MODE_FILTER
    assert "Operation not permitted" in proc.stderr, proc
    assert proc.returncode == 0, proc
    assert not (bundle.rootfs / "tmp" / "x").exists()
