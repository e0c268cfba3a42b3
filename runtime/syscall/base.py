"""The system calls Python's os module lacks, written once over a raw layer: each `_r_NAME`
returns the call's result or -errno (runtime.syscall.native: a small C module; .linux: ctypes,
the fallback). Every wrapper raises OSError(errno, message naming the call) on failure."""
import os

from runtime.syscall.consts import (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, PR_CAP_AMBIENT_RAISE,
                                    PR_CAPBSET_DROP, PR_SET_CHILD_SUBREAPER, PR_SET_DUMPABLE,
                                    PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS, PR_SET_PDEATHSIG)


def _enc(s):
    return None if s is None else os.fsencode(s)


class SyscallsBase:
    """The real kernel. runtime.syscall.fake.FakeSyscalls records the same calls for unit tests."""

    @staticmethod
    def _check(ret: int, what: str) -> int:
        if ret < 0:
            raise OSError(-ret, f"{what}: {os.strerror(-ret)}")
        return ret

    # namespaces
    def unshare(self, flags: int) -> None:
        self._check(self._r_unshare(flags), f"unshare({flags:#x})")

    def setns(self, fd: int, nstype: int) -> None:
        self._check(self._r_setns(fd, nstype), f"setns({nstype:#x})")

    # mounts
    def mount(self, source, target, fstype, flags: int = 0, data=None) -> None:
        ret = self._r_mount(_enc(source), _enc(target), _enc(fstype), flags, _enc(data))
        self._check(ret, f"mount {source or fstype} on {target} (flags {flags:#x}, {data or ''})")

    def umount2(self, target, flags: int = 0) -> None:
        self._check(self._r_umount2(_enc(target), flags), f"umount {target}")

    def pivot_root(self, new_root, put_old) -> None:
        self._check(self._r_pivot_root(_enc(new_root), _enc(put_old)), "pivot_root")

    def mount_setattr(self, dirfd: int, path, flags: int, attr_set: int, attr_clr: int = 0,
                      propagation: int = 0) -> None:
        ret = self._r_mount_setattr(dirfd, _enc(path), flags, attr_set, attr_clr, propagation)
        self._check(ret, f"mount_setattr {path}")

    # files
    def openat2(self, dirfd: int, path, flags: int, mode: int = 0, resolve: int = 0) -> int:
        return self._check(self._r_openat2(dirfd, _enc(path), flags, mode, resolve), f"open {path}")

    def close_range(self, first: int, last: int, flags: int = 0) -> None:
        self._check(self._r_close_range(first, last, flags), "close_range")

    # identity
    def sethostname(self, name: str) -> None:
        self._check(self._r_sethostname(name.encode()), "sethostname")

    def setdomainname(self, name: str) -> None:
        self._check(self._r_setdomainname(name.encode()), "setdomainname")

    def setgroups(self, gids) -> None:
        os.setgroups(list(gids))

    def setresgid(self, gid: int) -> None:
        os.setresgid(gid, gid, gid)

    def setresuid(self, uid: int) -> None:
        os.setresuid(uid, uid, uid)

    def personality(self, persona: int) -> None:
        self._check(self._r_personality(persona), "personality")

    def join_session_keyring(self, name=None) -> None:
        self._check(self._r_join_session_keyring(_enc(name)), "keyctl(JOIN_SESSION_KEYRING)")

    # prctl and capabilities
    def prctl(self, option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
        return self._check(self._r_prctl(option, arg2, arg3, arg4, arg5), f"prctl({option})")

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
        self._check(self._r_capset(effective, permitted, inheritable), "capset")

    def ambient_clear(self) -> None:
        self.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)

    def ambient_raise(self, cap: int) -> None:
        self.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap)
