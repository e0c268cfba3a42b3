"""OCI device rules -> the kernel's device cgroup model.

A small emulator of the v1 devices controller (a default allow/deny plus exceptions keyed by exact
type/major/minor, whose access bits merge and subtract) lets us
  - on v1, write only the transitions from what devices.list shows now to the target, so updating a
    running container never passes through "deny all" (the runc update / dev/null bug class);
  - on v2, tell whether the rules restrict anything at all: restricting needs an eBPF program,
    which hawser does not have yet.
A state is (default_allow: bool, {(type, major, minor): access}) with major/minor -1 for "*".
"""
from runtime.errors import HawserError

from runtime.cgroups.base import P

F = P + ".devices"
ACCESS = "rwm"

# runc's AllowedDevices, appended after the config's rules: the runtime itself creates these nodes
# in the container's /dev, so a config that denies everything must still get them.
DEFAULT_RULES = [
    {"allow": True, "type": "c", "access": "m"},              # mknod of any char device
    {"allow": True, "type": "b", "access": "m"},              # mknod of any block device
    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"},   # null
    {"allow": True, "type": "c", "major": 1, "minor": 8, "access": "rwm"},   # random
    {"allow": True, "type": "c", "major": 1, "minor": 7, "access": "rwm"},   # full
    {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},   # tty
    {"allow": True, "type": "c", "major": 1, "minor": 5, "access": "rwm"},   # zero
    {"allow": True, "type": "c", "major": 1, "minor": 9, "access": "rwm"},   # urandom
    {"allow": True, "type": "c", "major": 136, "access": "rwm"},            # /dev/pts/*
    {"allow": True, "type": "c", "major": 5, "minor": 2, "access": "rwm"},   # ptmx
]


def _num(rule: dict, key: str, field: str) -> int:
    v = rule.get(key)
    if v is None or v == -1:  # OCI: unset means all; runc also takes -1
        return -1
    if type(v) is not int or v < 0:
        raise HawserError(f"{field}.{key}: {v!r} is invalid (must be a device number >= 0)")
    return v


def normalize(rules) -> list[tuple[bool, str, int, int, str]]:
    """Validate OCI rules -> [(allow, type, major, minor, access)]. A type "a" rule is a reset only
    when it covers everything (*:* rwm); otherwise it means the same rule for c and b (the kernel
    would read any "a ..." line as allow/deny-all, which is never what a narrower rule meant)."""
    if not isinstance(rules, list):
        raise HawserError(f"{F}: must be a list of rules")
    out = []
    for i, r in enumerate(rules):
        f = f"{F}[{i}]"
        if not isinstance(r, dict):
            raise HawserError(f"{f}: must be an object")
        allow = r.get("allow")
        if type(allow) is not bool:
            raise HawserError(f"{f}.allow: {allow!r} is invalid (must be true or false)")
        t = r.get("type") or "a"
        if t not in ("a", "b", "c"):
            raise HawserError(f"{f}.type: {t!r} is not a device type the cgroup knows "
                              "(a, b or c)")
        major, minor = _num(r, "major", f), _num(r, "minor", f)
        access = r.get("access") or ACCESS
        if not isinstance(access, str) or access.strip(ACCESS):
            raise HawserError(f"{f}.access: {access!r} is invalid (letters r, w, m)")
        access = "".join(c for c in ACCESS if c in access)
        if t == "a" and not (major == minor == -1 and access == ACCESS):
            out += [(allow, "c", major, minor, access), (allow, "b", major, minor, access)]
        else:
            out.append((allow, t, major, minor, access))
    return out


def emulate(rules, state=(True, None)):
    """Apply normalized rules to a state the way the kernel does; returns the new state."""
    allow, ex = state[0], dict(state[1] or {})
    for r_allow, t, major, minor, access in rules:
        if t == "a":
            allow, ex = r_allow, {}
            continue
        key = (t, major, minor)
        if r_allow != allow:   # an exception to the default: add (access bits merge)
            have = ex.get(key, "")
            ex[key] = "".join(c for c in ACCESS if c in have or c in access)
        elif key in ex:        # same as the default: remove those bits from the exact exception
            left = "".join(c for c in ex[key] if c not in access)
            if left:
                ex[key] = left
            else:
                del ex[key]
    return allow, ex


def restricts(rules) -> bool:
    """Whether rules (normalized) applied to a fresh allow-all cgroup deny anything."""
    allow, ex = emulate(rules)
    return not allow or bool(ex)


def _n(x: int) -> str:
    return "*" if x == -1 else str(x)


def line(key, access: str) -> str:
    t, major, minor = key
    return f"{t} {_n(major)}:{_n(minor)} {access}"


def parse_list(text: str):
    """devices.list -> state. "a *:* rwm" means default allow, whose deny exceptions the kernel
    does not list: exceptions None = unknown."""
    ex = {}
    for ln in text.splitlines():
        t, nums, access = ln.split()
        if t == "a":
            return True, None
        major, minor = nums.split(":")
        ex[(t, -1 if major == "*" else int(major), -1 if minor == "*" else int(minor))] = access
    return False, ex


def v1_writes(current, target) -> list[tuple[str, str]]:
    """[(file, line)] taking the devices cgroup from state current to target."""
    cur_allow, cur_ex = current
    allow, ex = target
    if not cur_allow and not allow and cur_ex is not None:
        # both default-deny: grant what is missing, then revoke what is extra; no reset.
        out = []
        for key, acc in ex.items():
            add = "".join(c for c in acc if c not in cur_ex.get(key, ""))
            if add:
                out.append(("devices.allow", line(key, add)))
        for key, have in cur_ex.items():
            extra = "".join(c for c in have if c not in ex.get(key, ""))
            if extra:
                out.append(("devices.deny", line(key, extra)))
        return out
    out = [("devices.allow" if allow else "devices.deny", "a")]
    for key, acc in ex.items():
        out.append(("devices.deny" if allow else "devices.allow", line(key, acc)))
    return out
