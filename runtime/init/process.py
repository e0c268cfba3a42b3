"""The container process's identity: rlimits, user and groups, capabilities, and its executable."""
import os
import resource  # imported here: nothing can be imported once the root has been pivoted

from runtime import syscall
from runtime.errors import HawserError
from runtime.spec import Process
from runtime.syscall.consts import CAP_NUMBERS, RLIMITS


def apply_rlimits(process: Process) -> None:
    for r in process.rlimits:
        num = RLIMITS.get(r.type)
        if num is None:
            raise HawserError(f"process.rlimits: unknown rlimit type {r.type!r}")
        try:
            resource.setrlimit(num, (r.soft, r.hard))
        except (ValueError, OSError) as e:
            raise HawserError(f"process.rlimits: setting {r.type} to soft {r.soft} hard {r.hard}: "
                              f"{getattr(e, 'strerror', None) or e}") from None


def cap_mask(names: list[str], warn) -> int:
    mask = 0
    last = _cap_last()
    for name in names:
        num = CAP_NUMBERS.get(name)
        if num is None or num > last:
            warn(f"ignoring unknown or unsupported capability {name!r}")
            continue
        mask |= 1 << num
    return mask


_CAP_LAST = []


def _cap_last() -> int:
    if not _CAP_LAST:
        try:
            with open("/proc/sys/kernel/cap_last_cap") as f:
                _CAP_LAST.append(int(f.read()))
        except OSError:
            _CAP_LAST.append(max(CAP_NUMBERS.values()))
    return _CAP_LAST[0]


def drop_bounding_set(process: Process, warn) -> None:
    """Done while still privileged: dropping from the bounding set needs CAP_SETPCAP."""
    if process.capabilities is None:
        return
    keep = cap_mask(process.capabilities.bounding, warn)
    sc = syscall.get()
    for cap in range(_cap_last() + 1):
        if not keep & (1 << cap):
            sc.capbset_drop(cap)


def set_user(process: Process, allow_setgroups: bool) -> None:
    """Switch to the configured uid/gid keeping the permitted capabilities for apply_caps."""
    sc = syscall.get()
    user = process.user
    sc.set_keepcaps(True)
    try:
        if allow_setgroups:
            sc.setgroups(user.additional_gids)
        sc.setresgid(user.gid)
        sc.setresuid(user.uid)
    except OSError as e:
        raise HawserError(f"process.user: cannot become uid {user.uid} gid {user.gid}: "
                          f"{e.strerror}") from None
    sc.set_keepcaps(False)
    os.umask(user.umask if user.umask is not None else 0o022)


def apply_caps(process: Process, warn, debug) -> None:
    caps = process.capabilities
    sc = syscall.get()
    if caps is None:
        # No capabilities object: the process gets none (runc behaves the same).
        sc.capset(0, 0, 0)
        return
    sc.capset(cap_mask(caps.effective, warn), cap_mask(caps.permitted, warn),
              cap_mask(caps.inheritable, warn))
    sc.ambient_clear()
    for name in caps.ambient:
        num = CAP_NUMBERS.get(name)
        if num is not None and num <= _cap_last():
            try:
                sc.ambient_raise(num)
            except OSError:
                # As runc: ambient capabilities not also inheritable are skipped (runc spec's own
                # default lists ambient ones without inheritable), so this is no warning.
                debug(f"cannot raise ambient capability {name}: not permitted and inheritable")


def env_dict(process: Process) -> dict[str, str]:
    env = {}
    for item in process.env:
        key, _, value = item.partition("=")
        env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(process.user.uid)
    return env


def home_of(uid: int) -> str:
    """The home directory /etc/passwd in the container gives uid (runc sets HOME from it)."""
    try:
        with open("/etc/passwd") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def find_executable(args0: str, env: dict[str, str]) -> str:
    """Resolve args[0] as execvpe would, inside the container's root (after pivot_root)."""
    if "/" in args0:
        candidates = [args0]
    else:
        candidates = [f"{d or '.'}/{args0}" for d in env.get("PATH", "/usr/local/bin:/usr/bin:/bin").split(":")]
    denied = None
    for path in candidates:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if (st.st_mode & 0o170000) == 0o100000 and st.st_mode & 0o111:
            return path
        denied = denied or path
    if denied and "/" in args0:  # a $PATH search passes over what it cannot run, as Go's LookPath
        raise HawserError(f'process.args[0]: exec: "{denied}": permission denied')
    if "/" in args0:
        raise HawserError(f'process.args[0]: exec: "{args0}": no such file or directory')
    raise HawserError(f'process.args[0]: exec: "{args0}": executable file not found in $PATH')
