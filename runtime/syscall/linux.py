"""The Linux system calls Python's os module lacks, through ctypes.

Every wrapper raises OSError(errno, message naming the call) on failure. Numbers that differ per
architecture come from _NR; the newer calls (openat2, close_range, mount_setattr) share one number
on every architecture.
"""
import ctypes
import os

from runtime.syscall.consts import (CAP_VERSION_3, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL,
                                    PR_CAP_AMBIENT_RAISE, PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER,
                                    PR_SET_DUMPABLE, PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS,
                                    PR_SET_PDEATHSIG)

_NR = {
    "x86_64": {"pivot_root": 155, "keyctl": 250, "capget": 125, "capset": 126, "personality": 135},
    "aarch64": {"pivot_root": 41, "keyctl": 219, "capget": 90, "capset": 91, "personality": 92},
}[os.uname().machine]
_NR_OPENAT2 = 437
_NR_CLOSE_RANGE = 436
_NR_MOUNT_SETATTR = 442
KEYCTL_JOIN_SESSION_KEYRING = 1


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


def _enc(s):
    return None if s is None else os.fsencode(s)


class LinuxSyscalls:
    """The real kernel. runtime.syscall.fake.FakeSyscalls records the same calls for unit tests."""

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = self._libc.syscall
        self._syscall.restype = ctypes.c_long

    def _check(self, ret: int, what: str) -> int:
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return ret

    # namespaces
    def unshare(self, flags: int) -> None:
        self._check(self._libc.unshare(ctypes.c_int(flags)), f"unshare({flags:#x})")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._libc.setns(fd, nstype), f"setns({nstype:#x})")

    # mounts
    def mount(self, source, target, fstype, flags: int = 0, data=None) -> None:
        ret = self._libc.mount(_enc(source), _enc(target), _enc(fstype), ctypes.c_ulong(flags),
                               _enc(data))
        self._check(ret, f"mount {source or fstype} on {target} (flags {flags:#x}, {data or ''})")

    def umount2(self, target, flags: int = 0) -> None:
        self._check(self._libc.umount2(_enc(target), flags), f"umount {target}")

    def pivot_root(self, new_root, put_old) -> None:
        self._check(self._syscall(_NR["pivot_root"], _enc(new_root), _enc(put_old)), "pivot_root")

    def mount_setattr(self, dirfd: int, path, flags: int, attr_set: int, attr_clr: int = 0,
                      propagation: int = 0) -> None:
        attr = _MountAttr(attr_set, attr_clr, propagation, 0)
        ret = self._syscall(_NR_MOUNT_SETATTR, dirfd, _enc(path), flags, ctypes.byref(attr),
                            ctypes.c_size_t(ctypes.sizeof(attr)))
        self._check(ret, f"mount_setattr {path}")

    # files
    def openat2(self, dirfd: int, path, flags: int, mode: int = 0, resolve: int = 0) -> int:
        how = _OpenHow(flags, mode, resolve)
        ret = self._syscall(_NR_OPENAT2, dirfd, _enc(path), ctypes.byref(how),
                            ctypes.c_size_t(ctypes.sizeof(how)))
        return self._check(ret, f"open {path}")

    def close_range(self, first: int, last: int, flags: int = 0) -> None:
        self._check(self._syscall(_NR_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last),
                                  ctypes.c_uint(flags)), "close_range")

    # identity
    def sethostname(self, name: str) -> None:
        b = name.encode()
        self._check(self._libc.sethostname(b, len(b)), "sethostname")

    def setdomainname(self, name: str) -> None:
        b = name.encode()
        self._check(self._libc.setdomainname(b, len(b)), "setdomainname")

    def setgroups(self, gids) -> None:
        os.setgroups(list(gids))

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def personality(self, persona: int) -> None:
        self._check(self._syscall(_NR["personality"], ctypes.c_ulong(persona)), "personality")

    def join_session_keyring(self, name=None) -> None:
        self._check(self._syscall(_NR["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, _enc(name)),
                    "keyctl(JOIN_SESSION_KEYRING)")

    # prctl and capabilities
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        ret = self._libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                               ctypes.c_ulong(arg4), ctypes.c_ulong(arg5))
        return self._check(ret, f"prctl({option})")

    def set_dumpable(self, on: bool) -> None:
        self.prctl(PR_SET_DUMPABLE, 1 if on else 0)

    def set_no_new_privs(self) -> None:
        self.prctl(PR_SET_NO_NEW_PRIVS, 1)

    def set_child_subreaper(self) -> None:
        self.prctl(PR_SET_CHILD_SUBREAPER, 1)

    def set_pdeathsig(self, sig: int) -> None:
        self.prctl(PR_SET_PDEATHSIG, sig)

    def set_keepcaps(self, on: bool) -> None:
        self.prctl(PR_SET_KEEPCAPS, 1 if on else 0)

    def capbset_drop(self, cap: int) -> None:
        self.prctl(PR_CAPBSET_DROP, cap)

    def capset(self, effective: int, permitted: int, inheritable: int) -> None:
        hdr = _CapHeader(CAP_VERSION_3, 0)
        data = (_CapData * 2)(
            _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
            _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
        self._check(self._syscall(_NR["capset"], ctypes.byref(hdr), data), "capset")

    def ambient_clear(self) -> None:
        self.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    def ambient_raise(self, cap: int) -> None:
        self.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
