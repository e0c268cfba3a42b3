"""The system calls of runtime.syscall.base through runtime.syscall._native, a small C module
(built by `make install`): no ctypes import (~2 ms) on the CLI's path. ImportError when the
module was not built: runtime.syscall.get() then uses runtime.syscall.linux (ctypes)."""
from runtime.syscall import _native as _n
from runtime.syscall.base import SyscallsBase


class NativeSyscalls(SyscallsBase):
    _r_unshare = staticmethod(_n.unshare)
    _r_setns = staticmethod(_n.setns)
    _r_mount = staticmethod(_n.mount)
    _r_umount2 = staticmethod(_n.umount2)
    _r_pivot_root = staticmethod(_n.pivot_root)
    _r_mount_setattr = staticmethod(_n.mount_setattr)
    _r_openat2 = staticmethod(_n.openat2)
    _r_close_range = staticmethod(_n.close_range)
    _r_sethostname = staticmethod(_n.sethostname)
    _r_setdomainname = staticmethod(_n.setdomainname)
    _r_personality = staticmethod(_n.personality)
    _r_join_session_keyring = staticmethod(_n.join_session_keyring)
    _r_prctl = staticmethod(_n.prctl)
    _r_capset = staticmethod(_n.capset)
