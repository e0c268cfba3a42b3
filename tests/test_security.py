"""The container process's identity and what it can reach of the host: real busybox containers run
with `hawser run` (as root), asserting on what the container prints.

User, groups, umask, cwd; capability sets and no_new_privs; rlimits; oomScoreAdj; no host file
descriptor or cwd leaking into the container (CVE-2024-21626); the runtime's init is not dumpable
while it sits in the container's namespaces (CVE-2019-5736); mount destinations that are symlinks
cannot lead a mount out of the rootfs."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

CAP = {"CAP_CHOWN": 0, "CAP_DAC_OVERRIDE": 1, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10,
       "CAP_NET_ADMIN": 12, "CAP_SYS_ADMIN": 21, "CAP_SYS_TIME": 25, "CAP_AUDIT_WRITE": 29}
STATUS_FIELDS = ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs")


# --- helpers -------------------------------------------------------------------------------------

def new_id(prefix: str = "sec") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sh_bundle(make_bundle, script: str, edit=None):
    b = make_bundle(args=["sh", "-c", script])
    if edit is not None:
        edit(b.config, b)
    return b.write()


def run(hawser, bundle, *flags, check=True, timeout=30, cid=None, **kw):
    kw.setdefault("stdin", subprocess.DEVNULL)
    return hawser("run", *flags, "--bundle", bundle.path, cid or new_id(), check=check,
                  timeout=timeout, **kw)


def mask(*names: str) -> int:
    return sum(1 << CAP[n] for n in set(names))


def status_of(stdout: str) -> dict[str, str]:
    """Fields of a /proc/PID/status dump (`grep` output, "Name:\\tvalue")."""
    out = {}
    for line in stdout.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def status_bundle(make_bundle, edit=None):
    # $$ is the process hawser exec'd: its status shows exactly what the runtime set up (the
    # trailing `true` keeps sh from exec'ing grep in its place, which would recompute the caps).
    return sh_bundle(make_bundle, "grep -E '^(Cap|NoNewPrivs)' /proc/$$/status; true", edit)


def set_caps(config: dict, **sets: list[str]) -> None:
    caps = config["process"]["capabilities"]
    for name in ("bounding", "effective", "permitted", "inheritable", "ambient"):
        caps[name] = list(sets.get(name, []))


def pids_with_cmdline(needle: bytes) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:
            pass
    return found


def create_detached(hawser, bundle, cid: str, tmp_path: Path, *flags) -> None:
    """`hawser create`: init keeps create's stdio, so give it files rather than pipes."""
    with open(tmp_path / f"{cid}.out", "w") as out, open(tmp_path / f"{cid}.err", "w") as err:
        proc = subprocess.run(hawser.cmd("create", *flags, "--bundle", bundle.path, cid),
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=30)
    assert proc.returncode == 0, (tmp_path / f"{cid}.err").read_text()


# --- user, umask, cwd -----------------------------------------------------------------------------

def test_user_group_and_additional_gids(hawser, make_bundle):
    def edit(config, _):
        config["process"]["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 65534]}

    b = sh_bundle(make_bundle, "id; grep -E '^(Uid|Gid|Groups):' /proc/$$/status", edit)
    out = run(hawser, b).stdout.splitlines()
    assert out[0] == "uid=1000(user) gid=1000(user) groups=10(wheel),65534(nogroup)"
    st = status_of("\n".join(out[1:]))
    assert st["Uid"].split() == ["1000"] * 4
    assert st["Gid"].split() == ["1000"] * 4
    assert st["Groups"].split() == ["10", "65534"]


def test_root_has_no_supplementary_groups_by_default(hawser, make_bundle):
    b = sh_bundle(make_bundle, "id -u; id -g; grep '^Groups:' /proc/$$/status")
    out = run(hawser, b).stdout.splitlines()
    assert out[:2] == ["0", "0"]
    assert out[2].split() == ["Groups:"]


@pytest.mark.parametrize("umask,expected,mode", [(0o077, "0077", "600"), (None, "0022", "644")])
def test_umask(hawser, make_bundle, umask, expected, mode):
    def edit(config, _):
        if umask is not None:
            config["process"]["user"]["umask"] = umask
        config["mounts"].append({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["size=1m"]})

    b = sh_bundle(make_bundle, "umask; touch /tmp/f; stat -c %a /tmp/f", edit)
    assert run(hawser, b).stdout.split() == [expected, mode]


def test_cwd(hawser, make_bundle):
    def edit(config, _):
        config["process"]["cwd"] = "/home/user"

    b = sh_bundle(make_bundle, "pwd; readlink /proc/self/cwd", edit)
    assert run(hawser, b).stdout.split() == ["/home/user", "/home/user"]


def test_missing_cwd_is_created(hawser, make_bundle):
    """runc (and crun) create process.cwd inside the rootfs when it does not exist."""
    def edit(config, _):
        config["process"]["cwd"] = "/work/new/dir"

    b = sh_bundle(make_bundle, "pwd", edit)
    proc = run(hawser, b, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "/work/new/dir"
    assert (b.rootfs / "work" / "new" / "dir").is_dir()


def test_cwd_through_a_symlink_stays_in_the_rootfs(hawser, make_bundle):
    def edit(config, b):
        os.symlink("../../../../../../..", b.rootfs / "up")
        config["process"]["cwd"] = "/up"

    b = sh_bundle(make_bundle, "pwd -P; ls", edit)
    out = run(hawser, b).stdout.split()
    assert out[0] == "/"
    assert "linuxrc" in out


def test_cwd_does_not_leak_the_hosts(hawser, make_bundle, tmp_path):
    """Run hawser from a host directory: the container's cwd is its own "/", not a path into the
    host (CVE-2024-21626 let a process start in a host directory)."""
    host_dir = tmp_path / "host-cwd"
    host_dir.mkdir()
    (host_dir / "host-file").write_text("x")
    b = sh_bundle(make_bundle, "readlink /proc/self/cwd; readlink /proc/1/cwd; ls; "
                               "ls .. | grep -c host-file")
    out = run(hawser, b, cwd=host_dir, check=False).stdout.split()
    assert out[:2] == ["/", "/"]
    assert "linuxrc" in out and "host-file" not in out
    assert out[-1] == "0"


def test_environment_is_exactly_the_configured_one(hawser, make_bundle):
    """Nothing of the runtime's own environment reaches the container: process.env, plus HOME
    (from the container's /etc/passwd) as runc adds it."""
    def edit(config, _):
        config["process"]["env"] = ["PATH=/bin:/usr/bin", "FOO=bar baz"]
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    b = sh_bundle(make_bundle, "tr '\\0' '\\n' < /proc/$$/environ; true", edit)  # no exec: $$ stays sh
    env = {**os.environ, "HAWSER_TEST_LEAK": "leaked"}
    lines = run(hawser, b, env=env).stdout.splitlines()
    assert sorted(lines) == ["FOO=bar baz", "HOME=/home/user", "PATH=/bin:/usr/bin"]


# --- capabilities, no_new_privs ---------------------------------------------------------------------

def test_default_capabilities_are_runcs(hawser, make_bundle):
    """`hawser spec`'s default set, as runc's: AUDIT_WRITE, KILL, NET_BIND_SERVICE = 0x20000420.
    Its ambient list comes without inheritable, so ambient stays empty (as with runc)."""
    st = status_of(run(hawser, status_bundle(make_bundle)).stdout)
    default = mask("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
    assert default == 0x20000420
    assert int(st["CapEff"], 16) == default
    assert int(st["CapPrm"], 16) == default
    assert int(st["CapBnd"], 16) == default
    assert int(st["CapInh"], 16) == 0
    assert int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "1"


def test_custom_capability_sets(hawser, make_bundle):
    def edit(config, _):
        set_caps(config, bounding=["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN", "CAP_SYS_TIME"],
                 effective=["CAP_CHOWN", "CAP_NET_ADMIN"], permitted=["CAP_CHOWN", "CAP_NET_ADMIN"],
                 inheritable=["CAP_NET_ADMIN"], ambient=["CAP_NET_ADMIN"])

    st = status_of(run(hawser, status_bundle(make_bundle, edit)).stdout)
    assert int(st["CapBnd"], 16) == mask("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_NET_ADMIN",
                                         "CAP_SYS_TIME")
    assert int(st["CapPrm"], 16) == mask("CAP_CHOWN", "CAP_NET_ADMIN")
    assert int(st["CapEff"], 16) == mask("CAP_CHOWN", "CAP_NET_ADMIN")
    assert int(st["CapInh"], 16) == mask("CAP_NET_ADMIN")
    assert int(st["CapAmb"], 16) == mask("CAP_NET_ADMIN")


def test_capabilities_are_enforced(hawser, make_bundle):
    """Without CAP_NET_ADMIN `ip link set lo down` is refused; with it, it works."""
    def without(config, _):
        set_caps(config, bounding=["CAP_KILL"], effective=["CAP_KILL"], permitted=["CAP_KILL"])

    def with_net_admin(config, _):
        set_caps(config, **{k: ["CAP_NET_ADMIN"] for k in ("bounding", "effective", "permitted")})

    script = "ip link set lo down && echo changed || echo refused"
    assert run(hawser, sh_bundle(make_bundle, script, without)).stdout.strip() == "refused"
    assert run(hawser, sh_bundle(make_bundle, script, with_net_admin)).stdout.strip() == "changed"


def test_ambient_capability_for_non_root_user(hawser, make_bundle):
    """A non-root process keeps only its ambient capabilities across execve: ambient (with
    inheritable) is how it gets NET_BIND_SERVICE."""
    def edit(config, _):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}
        set_caps(config, **{k: ["CAP_NET_BIND_SERVICE"] for k in
                            ("bounding", "effective", "permitted", "inheritable", "ambient")})

    st = status_of(run(hawser, status_bundle(make_bundle, edit)).stdout)
    want = mask("CAP_NET_BIND_SERVICE")
    assert {k: int(st[k], 16) for k in STATUS_FIELDS[:5]} == {k: want for k in STATUS_FIELDS[:5]}


def test_non_root_user_without_ambient_has_no_effective_caps(hawser, make_bundle):
    def edit(config, _):
        config["process"]["user"] = {"uid": 1000, "gid": 1000}

    st = status_of(run(hawser, status_bundle(make_bundle, edit)).stdout)
    assert int(st["CapEff"], 16) == 0
    assert int(st["CapPrm"], 16) == 0
    assert int(st["CapBnd"], 16) == 0x20000420


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(hawser, make_bundle, nnp):
    def edit(config, _):
        config["process"]["noNewPrivileges"] = nnp

    st = status_of(run(hawser, status_bundle(make_bundle, edit)).stdout)
    assert st["NoNewPrivs"] == ("1" if nnp else "0")


# --- rlimits, oom ----------------------------------------------------------------------------------

def test_rlimit_nofile(hawser, make_bundle):
    def edit(config, _):
        config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 512, "hard": 2048}]

    b = sh_bundle(make_bundle, "grep 'Max open files' /proc/$$/limits; ulimit -n", edit)
    out = run(hawser, b).stdout.splitlines()
    assert out[0].split()[3:5] == ["512", "2048"]
    assert out[1] == "512"


def test_raising_hard_rlimit_above_hosts_fails_cleanly(hawser, make_bundle, tmp_path):
    """The VM lacks CAP_SYS_RESOURCE: a hard limit above the host's cannot be set. The run must
    fail with a message naming the rlimit, never run the process, and leave nothing behind."""
    _, host_hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if host_hard == resource.RLIM_INFINITY:
        pytest.skip("the host's RLIMIT_NOFILE hard limit is unlimited")
    marker = tmp_path / "share"
    marker.mkdir()

    def edit(config, _):
        config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": 1024,
                                         "hard": host_hard + 1}]
        config["mounts"].append({"destination": "/share", "type": "bind", "source": str(marker),
                                 "options": ["rbind"]})

    cid = new_id()
    proc = run(hawser, sh_bundle(make_bundle, "touch /share/ran", edit), check=False, cid=cid)
    assert proc.returncode != 0
    assert "RLIMIT_NOFILE" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (marker / "ran").exists()
    assert hawser.ids() == []
    assert pids_with_cmdline(cid.encode()) == []


def test_oom_score_adj(hawser, make_bundle):
    def edit(config, _):
        config["process"]["oomScoreAdj"] = 500

    b = sh_bundle(make_bundle, "cat /proc/$$/oom_score_adj; true", edit)
    assert run(hawser, b).stdout.strip() == "500"


# --- file descriptors ------------------------------------------------------------------------------

# Opens a file and a socketpair, puts them on fds 3, 4 and 7 (inheritable), then execs hawser: as
# a shim that hands the runtime extra descriptors does.
LAUNCHER = r"""
import os, socket, sys
f = os.open(sys.argv[1], os.O_RDONLY)
a, b = socket.socketpair()
os.dup2(f, 3); os.dup2(a.fileno(), 4); os.dup2(b.fileno(), 7)
for fd in (3, 4, 7):
    os.set_inheritable(fd, True)
os.execv(sys.argv[2], sys.argv[2:])
"""


def run_with_extra_fds(hawser, bundle, tmp_path, *flags):
    data = tmp_path / "fd-data"
    data.write_text("fd3 content\n")
    return subprocess.run([sys.executable, "-c", LAUNCHER, str(data),
                           *hawser.cmd("run", *flags, "--bundle", bundle.path, new_id())],
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=30)


# `ls` is a child of the shell ($$), whose fds are exactly what hawser handed over (no pipe or
# command substitution in the script: the shell would hold their fds while ls runs).
FD_SCRIPT = "ls -l /proc/$$/fd/; true"


def fd_table(listing: str) -> dict[str, str]:
    """{fd: target} from `ls -l /proc/PID/fd/` output."""
    table = {}
    for line in listing.splitlines():
        if " -> " in line:
            left, target = line.split(" -> ", 1)
            table[left.split()[-1]] = target
    return table


def test_no_host_fd_reaches_the_container(hawser, make_bundle, tmp_path):
    proc = run_with_extra_fds(hawser, sh_bundle(make_bundle, FD_SCRIPT), tmp_path)
    assert proc.returncode == 0, proc.stderr
    fds = fd_table(proc.stdout)
    assert sorted(fds, key=int) == ["0", "1", "2"], fds


def test_ls_proc_self_fd_shows_only_stdio(hawser, make_bundle, tmp_path):
    """The plain `ls /proc/self/fd` view: 0, 1, 2 and the directory fd ls itself opens."""
    proc = run_with_extra_fds(hawser, make_bundle(args=["ls", "/proc/self/fd"]), tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["0", "1", "2", "3"]


def test_preserve_fds(hawser, make_bundle, tmp_path):
    b = sh_bundle(make_bundle, FD_SCRIPT + "; echo ===; cat <&3")
    proc = run_with_extra_fds(hawser, b, tmp_path, "--preserve-fds", "2")
    assert proc.returncode == 0, proc.stderr
    listing, content = proc.stdout.split("===")
    fds = fd_table(listing)
    assert sorted(fds, key=int) == ["0", "1", "2", "3", "4"], fds
    assert fds["3"].endswith("/fd-data")
    assert fds["4"].startswith("socket:[")
    assert content.strip() == "fd3 content"


def test_no_fd_points_into_the_host(hawser, make_bundle, tmp_path):
    """Every fd the container starts with is stdio: nothing open on a host directory such as
    /sys/fs/cgroup (CVE-2024-21626)."""
    b = sh_bundle(make_bundle, FD_SCRIPT)
    fds = fd_table(run(hawser, b).stdout)
    assert sorted(fds, key=int) == ["0", "1", "2"], fds
    for fd, target in fds.items():
        assert target == "/dev/null" or target.startswith(("pipe:[", "/dev/pts/")), (fd, target)


# --- the init is not dumpable while in the container ------------------------------------------------

def test_created_init_cannot_be_inspected_from_the_container(hawser, make_bundle, tmp_path):
    """CVE-2019-5736: between create and start, init is the runtime's own program (python3)
    sitting in the container's namespaces. It must be non-dumpable, so that a process of the
    container cannot open /proc/<init>/exe (and overwrite the host's binary), environ, cwd, root.

    No `exec` is available: a second container joins the first one's pid namespace by path and
    looks at /proc/1 (the first container's init). Its root has no CAP_SYS_PTRACE, so only the
    dumpable flag decides. After `start` the user's program (busybox) is dumpable again: the
    same probe then succeeds, which shows the probe itself works."""
    first = new_id("first")
    create_detached(hawser, make_bundle(args=["sleep", "60"]), first, tmp_path)
    pid = hawser.state(first)["pid"]
    assert Path(f"/proc/{pid}/exe").resolve().name.startswith("python"), "init is not hawser's"

    def edit(config, _):
        for ns in config["linux"]["namespaces"]:
            if ns["type"] == "pid":
                ns["path"] = f"/proc/{pid}/ns/pid"

    probe = sh_bundle(make_bundle,
                      "readlink /proc/1/exe || echo exe-denied; "
                      "head -c 4 /proc/1/exe >/dev/null 2>&1 && echo exe-opened || echo open-denied; "
                      "cat /proc/1/environ >/dev/null || echo environ-denied; "
                      "readlink /proc/1/root || echo root-denied", edit)
    proc = run(hawser, probe)
    assert proc.stdout.split() == ["exe-denied", "open-denied", "environ-denied", "root-denied"]
    assert "Permission denied" in proc.stderr

    hawser("start", first)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and \
            not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"):
        time.sleep(0.02)
    proc = run(hawser, probe)
    assert proc.stdout.split()[:2] == ["/bin/busybox", "exe-opened"]
    hawser("delete", "--force", first)


# --- symlinks cannot lead a mount out of the rootfs --------------------------------------------------

@pytest.fixture
def victim(tmp_path):
    """A host directory a malicious rootfs points at, and a /tmp path it points at."""
    d = tmp_path / "victim"
    d.mkdir()
    (d / "precious").write_text("host data\n")
    evil = Path(f"/tmp/hawser-evil-{uuid.uuid4().hex[:8]}")
    yield d, evil
    for p in (evil, d / "sub"):
        subprocess.run(["umount", "-l", str(p)], capture_output=True)
    if evil.is_dir():
        os.rmdir(evil)


SYMLINK_CASES = {
    # destination -> (symlink in the rootfs: name, target, or None when target is the victim dir)
    "dotdot-absolute": ("/evil", "evil", "/../../../{evil}"),
    "dotdot-relative": ("/evil2/sub", "evil2", "../../../../../../../../{evil}"),
    "host-absolute": ("/abs/sub", "abs", None),
}


@pytest.mark.parametrize("case", list(SYMLINK_CASES))
def test_symlinked_mount_destination_stays_in_rootfs(hawser, make_bundle, victim, case):
    victim_dir, evil = victim
    dest, link, target = SYMLINK_CASES[case]
    target = str(victim_dir) if target is None else target.format(evil=str(evil).lstrip("/"))
    if case == "dotdot-relative":
        evil.mkdir()  # the host path exists: a runtime following the link on the host uses it
    before = sorted(os.listdir(victim_dir))

    def edit(config, b):
        os.symlink(target, b.rootfs / link)
        config["mounts"].append({"destination": dest, "type": "tmpfs", "source": "hawser-evil",
                                 "options": ["size=1m"]})

    b = sh_bundle(make_bundle, "grep hawser-evil /proc/self/mountinfo", edit)
    proc = run(hawser, b, check=False)

    # Whatever the runtime did, the host is untouched.
    mi = Path("/proc/self/mountinfo").read_text()
    assert "hawser-evil" not in mi, "a container mount landed on the host"
    assert sorted(os.listdir(victim_dir)) == before
    assert not (evil.exists() and os.listdir(evil)), "the runtime wrote into a host directory"
    if case != "dotdot-relative":
        assert not evil.exists()

    # And the mount was made where the symlink leads inside the rootfs (as runc does).
    assert proc.returncode == 0, proc.stderr
    inside = {"dotdot-absolute": str(evil), "dotdot-relative": f"{evil}/sub",
              "host-absolute": f"{victim_dir}/sub"}[case]
    fields = proc.stdout.split()
    assert fields[4] == inside, proc.stdout
    resolved = b.rootfs / inside.lstrip("/")
    assert resolved.is_dir(), "the destination was not created inside the rootfs"


def test_symlinked_bind_file_destination_stays_in_rootfs(hawser, make_bundle, victim, tmp_path):
    victim_dir, _ = victim
    src = tmp_path / "bind-src"
    src.write_text("bound\n")
    before = sorted(os.listdir(victim_dir))

    def edit(config, b):
        os.symlink(str(victim_dir), b.rootfs / "abs")
        config["mounts"].append({"destination": "/abs/bound-file", "type": "bind",
                                 "source": str(src), "options": ["bind"]})

    b = sh_bundle(make_bundle, f"cat {victim_dir}/bound-file", edit)
    proc = run(hawser, b, check=False)
    assert sorted(os.listdir(victim_dir)) == before
    assert str(victim_dir / "bound-file") not in Path("/proc/self/mountinfo").read_text()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "bound"
