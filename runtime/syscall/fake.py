"""A recording test double for LinuxSyscalls: every call is appended to `calls` as a tuple
(name, *args); `fail` maps a call name to an errno the next such call raises."""
import os


class FakeSyscalls:
    def __init__(self):
        self.calls: list[tuple] = []
        self.fail: dict[str, int] = {}
        self._next_fd = 1000

    def _record(self, name, *args):
        self.calls.append((name, *args))
        err = self.fail.pop(name, None)
        if err is not None:
            raise OSError(err, f"{name}: {os.strerror(err)}")

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def unshare(self, flags):
        self._record("unshare", flags)

    def setns(self, fd, nstype):
        self._record("setns", fd, nstype)

    def mount(self, source, target, fstype, flags=0, data=None):
        self._record("mount", source, str(target), fstype, flags, data)

    def umount2(self, target, flags=0):
        self._record("umount2", str(target), flags)

    def pivot_root(self, new_root, put_old):
        self._record("pivot_root", new_root, put_old)

    def mount_setattr(self, dirfd, path, flags, attr_set, attr_clr=0, propagation=0):
        self._record("mount_setattr", str(path), flags, attr_set, attr_clr, propagation)

    def openat2(self, dirfd, path, flags, mode=0, resolve=0):
        self._record("openat2", str(path), flags, resolve)
        self._next_fd += 1
        return self._next_fd

    def close_range(self, first, last, flags=0):
        self._record("close_range", first, last, flags)

    def sethostname(self, name):
        self._record("sethostname", name)

    def setdomainname(self, name):
        self._record("setdomainname", name)

    def setgroups(self, gids):
        self._record("setgroups", list(gids))

    def setresgid(self, gid):
        self._record("setresgid", gid)

    def setresuid(self, uid):
        self._record("setresuid", uid)

    def personality(self, persona):
        self._record("personality", persona)

    def join_session_keyring(self, name=None):
        self._record("join_session_keyring", name)

    def prctl(self, option, arg2=0, arg3=0, arg4=0, arg5=0):
        self._record("prctl", option, arg2, arg3)
        return 0

    def set_dumpable(self, on):
        self._record("set_dumpable", on)

    def set_no_new_privs(self):
        self._record("set_no_new_privs")

    def set_child_subreaper(self):
        self._record("set_child_subreaper")

    def set_pdeathsig(self, sig):
        self._record("set_pdeathsig", sig)

    def set_keepcaps(self, on):
        self._record("set_keepcaps", on)

    def capbset_drop(self, cap):
        self._record("capbset_drop", cap)

    def capset(self, effective, permitted, inheritable):
        self._record("capset", effective, permitted, inheritable)

    def ambient_clear(self):
        self._record("ambient_clear")

    def ambient_raise(self, cap):
        self._record("ambient_raise", cap)

