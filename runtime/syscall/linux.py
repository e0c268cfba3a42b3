"""The raw system calls of runtime.syscall.base through ctypes: the fallback when the C module
(runtime.syscall.native) was not built. Numbers that differ per architecture come from _NR; the
newer calls (openat2, close_range, mount_setattr) share one number on every architecture."""
import ctypes
import os

from runtime.syscall.base import SyscallsBase
from runtime.syscall.consts import CAP_VERSION_3

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


def _r(ret: int) -> int:
    return ret if ret >= 0 else -ctypes.get_errno()


class LinuxSyscalls(SyscallsBase):

    def __init__(self):
        self._libc = ctypes.CDLL(None, use_errno=True)
        self._syscall = self._libc.syscall
        self._syscall.restype = ctypes.c_long

    def _r_unshare(self, flags):
        return _r(self._libc.unshare(ctypes.c_int(flags)))

    def _r_setns(self, fd, nstype):
        return _r(self._libc.setns(fd, nstype))

    def _r_mount(self, source, target, fstype, flags, data):
        return _r(self._libc.mount(source, target, fstype, ctypes.c_ulong(flags), data))

    def _r_umount2(self, target, flags):
        return _r(self._libc.umount2(target, flags))

    def _r_pivot_root(self, new_root, put_old):
        return _r(self._syscall(_NR["pivot_root"], new_root, put_old))

    def _r_mount_setattr(self, dirfd, path, flags, attr_set, attr_clr, propagation):
        attr = _MountAttr(attr_set, attr_clr, propagation, 0)
        return _r(self._syscall(_NR_MOUNT_SETATTR, dirfd, path, flags, ctypes.byref(attr),
                                ctypes.c_size_t(ctypes.sizeof(attr))))

    def _r_openat2(self, dirfd, path, flags, mode, resolve):
        how = _OpenHow(flags, mode, resolve)
        return _r(self._syscall(_NR_OPENAT2, dirfd, path, ctypes.byref(how),
                                ctypes.c_size_t(ctypes.sizeof(how))))

    def _r_close_range(self, first, last, flags):
        return _r(self._syscall(_NR_CLOSE_RANGE, ctypes.c_uint(first), ctypes.c_uint(last),
                                ctypes.c_uint(flags)))

    def _r_sethostname(self, name):
        return _r(self._libc.sethostname(name, len(name)))

    def _r_setdomainname(self, name):
        return _r(self._libc.setdomainname(name, len(name)))

    def _r_personality(self, persona):
        return _r(self._syscall(_NR["personality"], ctypes.c_ulong(persona)))

    def _r_join_session_keyring(self, name):
        return _r(self._syscall(_NR["keyctl"], KEYCTL_JOIN_SESSION_KEYRING, name))

    def _r_prctl(self, option, arg2, arg3, arg4, arg5):
        return _r(self._libc.prctl(option, ctypes.c_ulong(arg2), ctypes.c_ulong(arg3),
                                   ctypes.c_ulong(arg4), ctypes.c_ulong(arg5)))

    def _r_capset(self, effective, permitted, inheritable):
        hdr = _CapHeader(CAP_VERSION_3, 0)
        data = (_CapData * 2)(
            _CapData(effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF),
            _CapData(effective >> 32, permitted >> 32, inheritable >> 32))
        return _r(self._syscall(_NR["capset"], ctypes.byref(hdr), data))
