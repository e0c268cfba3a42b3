"""Differential tests: the same bundle run under runc and under hawser must show the container the
same world. `tests/probe.sh` prints what the container sees (ids, capabilities, NoNewPrivs,
seccomp, id maps, rlimits, env, cwd, umask, hostname, fds, mounts, /dev, masked and read-only
paths, network interfaces); each runtime runs it with `RT --root PRIVATE run --bundle B ID` on its
own copy of the bundle, and the normalised sections must be equal (a readable diff otherwise).

`HAWSER_DIFF_REFERENCE` / `HAWSER_DIFF_CANDIDATE` override the two runtimes (e.g. runc vs runc to
check the harness itself); `test_probe_is_stable` does that for the default config."""
from __future__ import annotations

import difflib
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

from paths import HAWSER

HERE = Path(__file__).resolve().parent
PROBE = HERE / "probe.sh"
RUNC = shutil.which("runc") or "/usr/sbin/runc"
REFERENCE = os.environ.get("HAWSER_DIFF_REFERENCE", RUNC)
CANDIDATE = os.environ.get("HAWSER_DIFF_CANDIDATE", HAWSER)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

USERNS_BASE = 100000
USERNS_SIZE = 65536


# --------------------------------------------------------------------------------------------
# Normalisation of the probe output

def _sections(out: str) -> dict[str, list[str]]:
    sections: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("=== "):
            current = line[4:].strip()
            sections[current] = []
        elif current is not None:
            sections[current].append(line)
    return sections


KEPT_MOUNT_OPTS = ("nosuid", "nodev", "noexec")
DROPPED_SUPER_OPTS = re.compile(r"^(size|nr_inodes|nr_blocks)=")


def _unescape(path: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def normalise_mountinfo(lines: list[str]) -> list[str]:
    """mount point, fs type, ro/rw + nosuid/nodev/noexec, propagation, super options without
    sizes; mount ids, device numbers, roots and sources are dropped. Sorted by mount point,
    keeping the stacking order of mounts on the same point."""
    out = []
    for line in lines:
        fields = line.split()
        if "-" not in fields:
            out.append(("?", line))
            continue
        sep = fields.index("-")
        point = _unescape(fields[4])
        opts = fields[5].split(",")
        flags = [o for o in opts if o in ("ro", "rw")] + [o for o in KEPT_MOUNT_OPTS if o in opts]
        propagation = sorted(re.sub(r":\d+$", "", f) for f in fields[6:sep]) or ["private"]
        fstype = fields[sep + 1]
        superopts = [o for o in (fields[sep + 3].split(",") if len(fields) > sep + 3 else [])
                     if not DROPPED_SUPER_OPTS.match(o)]
        out.append((point, f"{point} {fstype} {','.join(flags)} [{','.join(propagation)}] "
                           f"{','.join(superopts)}"))
    out.sort(key=lambda item: item[0])   # stable: same point keeps its order
    return [text for _, text in out]


def normalise_fds(lines: list[str]) -> list[str]:
    return [re.sub(r"^(\d+ -> (pipe|socket|anon_inode:[^\[]*)):\[\d+\]$", r"\1", l)
            .replace("pipe:[", "pipe[") for l in lines]


def normalise_net(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        line = re.sub(r"\s+", " ", line.replace("\\", " ")).strip()
        out.append(line)
    return out


def normalise(out: str) -> dict[str, list[str]]:
    sections = _sections(out)
    if "mountinfo" in sections:
        sections["mountinfo"] = normalise_mountinfo(sections["mountinfo"])
    if "fds" in sections:
        sections["fds"] = normalise_fds(sections["fds"])
    if "net" in sections:
        sections["net"] = normalise_net(sections["net"])
    if "limits" in sections:
        sections["limits"] = [re.sub(r"\s{2,}", "  ", l).strip() for l in sections["limits"]]
    return sections


def diff_report(ref_name: str, ref: dict, cand_name: str, cand: dict) -> str:
    parts = []
    for section in list(dict.fromkeys(list(ref) + list(cand))):
        a, b = ref.get(section), cand.get(section)
        if a == b:
            continue
        if a is None or b is None:
            parts.append(f"--- section {section!r} missing under "
                         f"{ref_name if a is None else cand_name}")
            continue
        parts.append(f"--- section {section!r}:")
        parts.extend(difflib.unified_diff(a, b, fromfile=ref_name, tofile=cand_name, lineterm="",
                                          n=2))
    return "\n".join(parts)


# --------------------------------------------------------------------------------------------
# Running a bundle under one runtime

def runtime_name(binary: str) -> str:
    return Path(binary).name


class Run:
    def __init__(self, binary, proc, sections):
        self.binary, self.proc, self.sections = binary, proc, sections


def run_probe(binary: str, bundle: Path, state_root: Path, cid: str, timeout=60) -> Run:
    # stdin is an empty pipe, not /dev/null: a foreground `runc run` puts pipes of its own on the
    # container's 0-2 whatever it was given, so only pipes everywhere compare equal.
    cmd = [binary, "--root", str(state_root), "run", "--bundle", str(bundle), cid]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, input="",
                              cwd=bundle)
    finally:
        # Whatever happened, no container may survive the test.
        subprocess.run([binary, "--root", str(state_root), "delete", "--force", cid],
                       capture_output=True, timeout=60)
    return Run(binary, proc, normalise(proc.stdout))


def make_bundle(parent: Path, rootfs: Path, config: dict) -> Path:
    bundle = parent / "bundle"
    bundle.mkdir(parents=True)
    shutil.copytree(rootfs, bundle / "rootfs", symlinks=True)
    shutil.copy2(PROBE, bundle / "rootfs" / "probe.sh")
    os.chmod(bundle / "rootfs" / "probe.sh", 0o755)
    (bundle / "config.json").write_text(json.dumps(config, indent=2))
    return bundle


def base_config(tmp: Path) -> dict:
    d = tmp / "spec"
    d.mkdir()
    subprocess.run([HAWSER, "spec", "--bundle", str(d)], check=True, capture_output=True)
    config = json.loads((d / "config.json").read_text())
    config["process"]["terminal"] = False
    config["process"]["args"] = ["sh", "/probe.sh"]
    return config


# --------------------------------------------------------------------------------------------
# The configurations. Each takes (config, bundle_dir, ctx) and edits config in place; it runs
# once per runtime, so host paths it makes are private to that runtime's bundle.

def cfg_default(config, bdir, ctx):
    pass


def cfg_user(config, bdir, ctx):
    proc = config["process"]
    proc["user"] = {"uid": 1000, "gid": 1000, "additionalGids": [10, 65534, 1000], "umask": 0o077}
    proc["cwd"] = "/tmp"
    proc["env"] = proc["env"] + ["FOO=bar baz", "EMPTY=", "HOME=/home/user", "PROBE_UTF8=h\u00e9"]


SECCOMP_ARCHES = {"x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                  "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"]}


def cfg_caps(config, bdir, ctx):
    proc = config["process"]
    proc["capabilities"] = {
        "bounding": ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_RAW", "CAP_SETUID"],
        "effective": ["CAP_SYS_ADMIN", "CAP_CHOWN"],
        "permitted": ["CAP_SYS_ADMIN", "CAP_CHOWN", "CAP_NET_RAW"],
        "inheritable": ["CAP_SYS_ADMIN", "CAP_NET_RAW"],
        "ambient": ["CAP_SYS_ADMIN"],
    }
    proc["noNewPrivileges"] = False
    # A seccomp filter too (Seccomp: 2 in /proc/self/status): mkdir fails with EPERM.
    config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": SECCOMP_ARCHES.get(platform.machine(), []),
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
    }


def cfg_mounts(config, bdir, ctx):
    config["root"]["readonly"] = False
    ro_dir = bdir / "host-ro"
    rw_dir = bdir / "host-rw"
    for d in (ro_dir, rw_dir):
        d.mkdir()
    (ro_dir / "hello").write_text("from the host\n")
    config["mounts"] += [
        {"destination": "/scratch", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "noexec", "mode=1770", "size=1m", "uid=1000", "gid=10"]},
        {"destination": "/hostdir", "type": "bind", "source": str(ro_dir),
         "options": ["rbind", "ro", "nosuid"]},
        {"destination": "/hostdir-rw", "type": "bind", "source": str(rw_dir),
         "options": ["bind", "rw", "nodev", "noexec"]},
        {"destination": "/etc/hostname", "type": "bind", "source": str(ro_dir / "hello"),
         "options": ["bind", "ro"]},
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=755"]},
    ]


def _lower(limit: int, want: int) -> int:
    return want if limit == resource.RLIM_INFINITY else min(limit, want)


def cfg_rlimits_hostname(config, bdir, ctx):
    rl = []
    for name, soft, hard in (("NOFILE", 512, 1024), ("NPROC", 300, 400), ("CORE", 0, 0),
                             ("STACK", 4 << 20, 8 << 20), ("MEMLOCK", 32768, 65536),
                             ("MSGQUEUE", 4096, 8192)):
        cur_hard = resource.getrlimit(getattr(resource, "RLIMIT_" + name))[1]
        h = _lower(cur_hard, hard)
        rl.append({"type": "RLIMIT_" + name, "soft": min(soft, h), "hard": h})
    config["process"]["rlimits"] = rl
    config["hostname"] = "probe-host.example"
    config["linux"]["sysctl"] = {"kernel.domainname": "probe.domain", "net.ipv4.ip_forward": "1"}


def cfg_userns(config, bdir, ctx):
    linux = config["linux"]
    linux["namespaces"].append({"type": "user"})
    linux["uidMappings"] = [{"containerID": 0, "hostID": USERNS_BASE, "size": USERNS_SIZE}]
    linux["gidMappings"] = [{"containerID": 0, "hostID": USERNS_BASE, "size": USERNS_SIZE}]


def cfg_netns(config, bdir, ctx):
    for ns in config["linux"]["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/run/netns/{ctx['netns']}"


CONFIGS = {
    "default": cfg_default,
    "user": cfg_user,
    "caps": cfg_caps,
    "mounts": cfg_mounts,
    "rlimits-hostname": cfg_rlimits_hostname,
    "userns": cfg_userns,
    "netns": cfg_netns,
}

# Checks that the configuration took effect (on the reference runtime too), so two runtimes that
# both ignore a setting cannot agree by accident.
EXPECT = {
    "default": [("id", "uid=0 gid=0 groups=0"), ("net", "lo: <LOOPBACK,UP,LOWER_UP>"),
                ("readonly", "write /proc/sys/kernel/hostname: rc=1 ")],
    "user": [("id", "uid=1000 gid=1000 groups=1000 10 65534"), ("cwd", "/tmp"),
             ("umask", "0077"), ("env", "FOO=bar baz")],
    "caps": [("status", "CapAmb:\t0000000000200000"), ("status", "NoNewPrivs:\t0"),
             ("status", "Seccomp:\t2"),
             ("readonly", "mkdir in /dev/shm: rc=1 mkdir: can't create directory "
                          "'/dev/shm/probe-dir': Operation not permitted")],
    "mounts": [("files", "/hostdir/hello: from the host"), ("readonly", "create in /hostdir: rc=1 "), ("readonly", "create in /hostdir-rw: rc=0")],
    "rlimits-hostname": [("hostname", "hostname=probe-host.example"),
                         ("hostname", "domainname=probe.domain"),
                         ("hostname", "net.ipv4.ip_forward=1"),
                         ("limits", "Max open files  512  ")],
    "userns": [("idmap", f"uid_map: 0 {USERNS_BASE} {USERNS_SIZE}"), ("id", "uid=0 gid=0")],
    "netns": [("net", "hwv0@hwv1")],
}


# --------------------------------------------------------------------------------------------
# Fixtures

@pytest.fixture
def netns():
    """A named network namespace with lo up and a veth pair inside (deleted in a finalizer)."""
    name = f"hwdiff-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
    try:
        subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True,
                       capture_output=True)
        subprocess.run(["ip", "-n", name, "link", "add", "hwv0", "type", "veth", "peer", "name",
                        "hwv1"], check=True, capture_output=True)
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
def world_dir():
    """A work dir every uid can traverse (a userns container's root must reach its rootfs):
    pytest's own tmp dirs are 0700."""
    d = Path(tempfile.mkdtemp(prefix="hwdiff-", dir="/tmp"))
    os.chmod(d, 0o711)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def chown_tree(root: Path, offset: int) -> None:
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [dirpath] + [os.path.join(dirpath, n) for n in dirnames + filenames]:
            st = os.lstat(name)
            os.lchown(name, st.st_uid + offset, st.st_gid + offset)


def run_both(config_name: str, base: Path, rootfs: Path, ctx: dict, runtimes) -> list[Run]:
    runs = []
    for i, binary in enumerate(runtimes):
        rdir = base / f"{i}-{runtime_name(binary)}"
        rdir.mkdir()
        os.chmod(rdir, 0o711)
        config = base_config(rdir)
        CONFIGS[config_name](config, rdir, ctx)
        bundle = make_bundle(rdir, rootfs, config)
        if config_name == "userns":
            chown_tree(bundle / "rootfs", USERNS_BASE)
        cid = f"hwdiff-{config_name}-{i}-{uuid.uuid4().hex[:8]}"
        runs.append(run_probe(binary, bundle, rdir / "state", cid))
    return runs


def check_ran(config_name: str, runs: list[Run]) -> tuple[str, str]:
    ref, cand = runs
    rn, cn = runtime_name(ref.binary), runtime_name(cand.binary)
    if ref.binary == cand.binary:
        cn += " (2nd run)"
    for r, name in ((ref, rn), (cand, cn)):
        assert r.proc.returncode == 0 and "end" in r.sections, (
            f"{name} run failed for config {config_name!r}: exit {r.proc.returncode}\n"
            f"stderr: {r.proc.stderr}\nstdout (tail): {r.proc.stdout[-2000:]}")
    for section, needle in EXPECT.get(config_name, []):
        text = "\n".join(ref.sections.get(section, []))
        assert needle in text, (f"config {config_name!r} did not take effect under {rn}: "
                                f"{needle!r} not in section {section!r}:\n{text}")
    return rn, cn


def check_runs(config_name: str, runs: list[Run], ignore=()) -> None:
    """Both runs succeeded, the config took effect, and the sections are equal once the lines of
    the known divergences in `ignore` are taken out (exactly those, nothing else)."""
    rn, cn = check_ran(config_name, runs)
    ref, cand = (dict(r.sections) for r in runs)
    for known in ignore:
        known.remove(ref, cand)
    report = diff_report(rn, ref, cn, cand)
    assert not report, (f"config {config_name!r}: what the container sees differs between "
                        f"{rn} and {cn}:\n{report}")


class Known:
    """A known divergence of hawser from runc: in `section`, a reference line matching `ref` and
    a candidate line matching `cand` (taken out in pairs). Each one is tracked by a strict xfail
    test (test_known_divergence), so the entry must go once hawser is fixed; meanwhile the
    differential tests keep checking everything else."""

    def __init__(self, name, reason, configs, *pairs):
        self.name, self.reason, self.configs = name, reason, configs
        self.pairs = [(section, re.compile(ref), re.compile(cand)) for section, ref, cand in pairs]

    def remove(self, ref: dict, cand: dict) -> None:
        for section, ref_re, cand_re in self.pairs:
            a, b = list(ref.get(section, [])), list(cand.get(section, []))
            ia = next((i for i, line in enumerate(a) if ref_re.search(line)), None)
            ib = next((i for i, line in enumerate(b) if cand_re.search(line)), None)
            if ia is not None and ib is not None:
                del a[ia], b[ib]
                ref[section], cand[section] = a, b


KNOWN = [
    Known("userns-mqueue-owner",
          "kept on purpose: in a user namespace runc 1.1.5 mounts mqueue before its gid is "
          "mapped, so /dev/mqueue is owned by 0:65534 (the overflow gid); hawser mounts it as "
          "the namespace's root, 0:0, which is what the container's root expects",
          ["userns"],
          ("dev", r"^/dev/mqueue\|directory\|1777\|0\|65534\|", r"^/dev/mqueue\|directory\|1777\|0\|0\|")),
]
KNOWN_IN = {name: [k for k in KNOWN if name in k.configs] for name in CONFIGS}


# --------------------------------------------------------------------------------------------
# Tests

@pytest.mark.parametrize("config_name", list(CONFIGS))
def test_differential(config_name, busybox_rootfs, world_dir, request):
    ctx = {}
    if config_name == "netns":
        ctx["netns"] = request.getfixturevalue("netns")
    runs = run_both(config_name, world_dir, busybox_rootfs, ctx, (REFERENCE, CANDIDATE))
    check_runs(config_name, runs, ignore=KNOWN_IN.get(config_name, ()))


@pytest.mark.parametrize("known", [
    pytest.param(k, id=k.name, marks=pytest.mark.xfail(strict=True, reason=k.reason))
    for k in KNOWN])
def test_known_divergence(known, busybox_rootfs, world_dir):
    """Each known divergence on its own: fails while hawser still shows it (xfail); once fixed
    this XPASSes, which strict mode turns into a failure: then delete the entry from KNOWN."""
    if Path(CANDIDATE).resolve() != Path(HAWSER).resolve():
        pytest.skip("the known divergences are hawser's")
    config_name = known.configs[0]
    runs = run_both(config_name, world_dir, busybox_rootfs, {}, (REFERENCE, CANDIDATE))
    rn, cn = check_ran(config_name, runs)
    ref, cand = runs[0].sections, runs[1].sections
    lines = []
    for section, ref_re, cand_re in known.pairs:
        a = [l for l in ref.get(section, []) if ref_re.search(l)]
        b = [l for l in cand.get(section, []) if cand_re.search(l)]
        if a and b and a != b:
            lines.append(f"{section}: {rn}: {a[0]!r}\n{' ' * len(section)}  {cn}: {b[0]!r}")
    assert not lines, f"{known.name} still differs:\n" + "\n".join(lines)


def test_probe_is_stable(busybox_rootfs, world_dir):
    """The reference runtime against itself: the normalisation leaves nothing run-specific."""
    runs = run_both("default", world_dir, busybox_rootfs, {}, (REFERENCE, REFERENCE))
    check_runs("default", runs)
