"""What a process inside a hawser container sees of the machine: real busybox containers started
with `hawser run` (as root), asserting on what the container prints.

PID 1 and the namespaces (each one compared with the host's /proc/self/ns link, created or joined
by path), hostname/domainname, mounts and their propagation, read-only root, masked and read-only
paths, /dev, sysctl and the network namespace, and --no-pivot. Everything a test creates on the host
(network namespaces, mounts, containers) is removed by a finalizer, even when the test fails."""
from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

NAMESPACES = ("pid", "mnt", "uts", "ipc", "net", "cgroup", "user", "time")
# /proc/self/ns/<link> -> the runtime-spec's linux.namespaces type
SPEC_TYPE = {"pid": "pid", "mnt": "mount", "uts": "uts", "ipc": "ipc", "net": "network",
             "cgroup": "cgroup", "user": "user", "time": "time"}


# --- helpers -------------------------------------------------------------------------------------

def new_id(prefix: str = "iso") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def sh_bundle(make_bundle, script: str, edit=None):
    """A bundle whose process is `sh -c script`; edit(config, bundle) may change it first."""
    b = make_bundle(args=["sh", "-c", script])
    if edit is not None:
        edit(b.config, b)
    return b.write()


def make_bundle_edit(make_bundle, args, edit):
    """A bundle running `args`, changed by edit(config, bundle)."""
    b = make_bundle(args=args)
    edit(b.config, b)
    return b.write()


def run(hawser, bundle, *flags, check=True, timeout=30, **kw):
    """`hawser run [flags] --bundle B ID` in the foreground; its stdout is the container's."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    return hawser("run", *flags, "--bundle", bundle.path, new_id(), check=check, timeout=timeout,
                  **kw)


def run_detached(hawser, bundle, cid: str, tmp_path: Path) -> None:
    """`hawser run -d`: the container keeps hawser's stdio, so no pipes (they would never close)."""
    with open(tmp_path / f"{cid}.out", "w") as out, open(tmp_path / f"{cid}.err", "w") as err:
        proc = subprocess.run(hawser.cmd("run", "-d", "--bundle", bundle.path, cid),
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, timeout=30)
    assert proc.returncode == 0, (tmp_path / f"{cid}.err").read_text()


def host_mountinfo() -> str:
    with open("/proc/self/mountinfo") as f:
        return f.read()


def mountinfo_entry(mountinfo: str, target: str) -> dict | None:
    """The last (topmost) mount at `target` in a mountinfo text, parsed."""
    found = None
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 10 or fields[4] != target:
            continue
        sep = fields.index("-")
        found = {"options": set(fields[5].split(",")), "optional": fields[6:sep],
                 "fstype": fields[sep + 1], "source": fields[sep + 2],
                 "super": set(fields[sep + 3].split(","))}
    return found


def ns_link(kind: str, pid: int | str = "self") -> str:
    return os.readlink(f"/proc/{pid}/ns/{kind}")


def chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


def umount_tree(path: Path) -> None:
    subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True)


def add_caps(config: dict, *caps: str) -> None:
    for name in ("bounding", "effective", "permitted"):
        config["process"]["capabilities"][name] += list(caps)


@pytest.fixture
def shared_mount(tmp_path):
    """A tmpfs on the host made a shared mount (the VM's own mounts are all private), so that
    propagation into and out of containers can be observed. Unmounted afterwards."""
    src = tmp_path / "shared"
    src.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "hawser-test-shared", str(src)],
                   check=True)
    try:
        subprocess.run(["mount", "--make-shared", str(src)], check=True)
        yield src
    finally:
        umount_tree(src)


@pytest.fixture
def netns():
    """A named network namespace (`ip netns add`), deleted afterwards."""
    name = f"hawser-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield name
    finally:
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


# --- PID 1, hostname ------------------------------------------------------------------------------

def test_process_is_pid_1_and_sees_no_host_process(hawser, make_bundle):
    b = sh_bundle(make_bundle, "echo $$; tr '\\0' '|' < /proc/1/cmdline; echo; ls /proc")
    lines = run(hawser, b).stdout.splitlines()
    assert lines[0] == "1"
    assert lines[1] == "sh|-c|" + b.process["args"][2] + "|"
    pids = {int(x) for x in lines[2:] if x.isdigit()}
    assert 1 in pids
    assert os.getpid() not in pids, "the host's processes are visible in the container"
    assert len(pids) < 10


def test_hostname_and_domainname(hawser, make_bundle):
    before = socket.gethostname()

    def edit(config, _):
        config["hostname"] = "ctr-uts-test"
        config["domainname"] = "ctr.example.org"

    b = sh_bundle(make_bundle, "hostname; uname -n; cat /proc/sys/kernel/domainname", edit)
    assert run(hawser, b).stdout.split() == ["ctr-uts-test", "ctr-uts-test", "ctr.example.org"]
    assert socket.gethostname() == before


def test_hostname_needs_a_uts_namespace_of_its_own(hawser, make_bundle):
    """Without a uts namespace, setting the hostname would rename the host: refused (as runc)."""
    before = socket.gethostname()

    def edit(config, _):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                         if n["type"] != "uts"]
        config["hostname"] = "not-the-host"

    try:
        proc = run(hawser, make_bundle_edit(make_bundle, ["hostname"], edit), check=False)
        assert proc.returncode != 0
        assert "hostname" in proc.stderr
        assert socket.gethostname() == before
    finally:
        if socket.gethostname() != before:
            socket.sethostname(before)
    assert hawser.ids() == []


# --- namespaces -----------------------------------------------------------------------------------

def _ns_script() -> str:
    return "; ".join(f"echo {ns} $(readlink /proc/self/ns/{ns})" for ns in NAMESPACES)


def _ns_links(stdout: str) -> dict[str, str]:
    return dict(line.split(" ", 1) for line in stdout.splitlines() if line)


@pytest.mark.parametrize("ns", ["pid", "mnt", "uts", "ipc", "net", "cgroup"])
def test_default_config_namespace_is_new(hawser, make_bundle, ns):
    """`hawser spec` asks for new pid, network, ipc, uts, mount and cgroup namespaces."""
    links = _ns_links(run(hawser, sh_bundle(make_bundle, _ns_script())).stdout)
    assert links[ns].startswith(f"{ns}:[")
    assert links[ns] != ns_link(ns), f"the container shares the host's {ns} namespace"


@pytest.mark.parametrize("ns", ["user", "time"])
def test_unconfigured_namespace_is_the_hosts(hawser, make_bundle, ns):
    links = _ns_links(run(hawser, sh_bundle(make_bundle, _ns_script())).stdout)
    assert links[ns] == ns_link(ns)


@pytest.mark.parametrize("ns", ["ipc", "uts", "net", "cgroup"])
def test_namespace_left_out_of_config_is_shared_with_host(hawser, make_bundle, ns):
    def edit(config, _):
        config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                         if n["type"] != SPEC_TYPE[ns]]
        if ns == "uts":
            config.pop("hostname", None)  # a hostname needs a uts namespace of its own
        if ns == "net":  # sysfs cannot be mounted without our own netns: bind the host's
            config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys"]

    links = _ns_links(run(hawser, sh_bundle(make_bundle, _ns_script(), edit)).stdout)
    assert links[ns] == ns_link(ns)


@pytest.fixture
def userns_bundle(make_bundle):
    """make_bundle, but the bundle lives in a world-searchable directory: the container's root is
    uid 100000 on the host and could not traverse pytest's 0700 tmp directories."""
    made = []

    def factory(script: str, edit=None):
        b = sh_bundle(make_bundle, script, edit)
        dest = Path(tempfile.mkdtemp(prefix="hawser-userns-"))
        made.append(dest)
        os.chmod(dest, 0o755)
        shutil.copytree(b.path, dest / "bundle", symlinks=True)
        b.path = dest / "bundle"
        chown_tree(b.rootfs, 100000, 100000)
        return b

    yield factory
    for d in made:
        shutil.rmtree(d, ignore_errors=True)


def _userns(config, _):
    config["linux"]["namespaces"].append({"type": "user"})
    config["linux"]["uidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]
    config["linux"]["gidMappings"] = [{"containerID": 0, "hostID": 100000, "size": 65536}]


def test_user_namespace_with_mappings(hawser, userns_bundle, tmp_path):
    shared = Path(tempfile.mkdtemp(prefix="hawser-userns-share-"))
    try:
        os.chmod(shared, 0o777)

        def edit(config, b):
            _userns(config, b)
            config["mounts"].append({"destination": "/share", "type": "bind",
                                     "source": str(shared), "options": ["rbind", "rw"]})

        b = userns_bundle(
            "readlink /proc/self/ns/user; id -u; id -g; cat /proc/self/uid_map /proc/self/gid_map; "
            "echo x > /dev/null && echo devnull-ok; touch /share/made-inside", edit)
        out = run(hawser, b).stdout.splitlines()
        assert out[0] != ns_link("user")
        assert out[1:3] == ["0", "0"]
        assert out[3].split() == ["0", "100000", "65536"]
        assert out[4].split() == ["0", "100000", "65536"]
        assert out[5] == "devnull-ok"
        st = os.stat(shared / "made-inside")
        assert (st.st_uid, st.st_gid) == (100000, 100000), "container root is not uid 100000 on the host"
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_time_namespace_offsets(hawser, make_bundle):
    boot_offset, mono_offset = 10 * 86400, 3600

    def edit(config, _):
        config["linux"]["namespaces"].append({"type": "time"})
        config["linux"]["timeOffsets"] = {"boottime": {"secs": boot_offset, "nanosecs": 0},
                                          "monotonic": {"secs": mono_offset, "nanosecs": 0}}

    b = sh_bundle(make_bundle, "readlink /proc/self/ns/time; cat /proc/uptime; "
                               "cat /proc/self/timens_offsets", edit)
    host_before = float(Path("/proc/uptime").read_text().split()[0])
    out = run(hawser, b).stdout.splitlines()
    host_after = float(Path("/proc/uptime").read_text().split()[0])
    assert out[0] != ns_link("time")
    inside = float(out[1].split()[0])
    assert host_before + boot_offset - 1 <= inside <= host_after + boot_offset + 1
    offsets = {line.split()[0]: int(line.split()[1]) for line in out[2:]}
    assert offsets == {"monotonic": mono_offset, "boottime": boot_offset}


def test_join_network_namespace_by_path(hawser, make_bundle, netns):
    # Something only this netns has: an address on its loopback.
    subprocess.run(["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"], check=True)
    subprocess.run(["ip", "netns", "exec", netns, "ip", "addr", "add", "10.123.45.6/32", "dev",
                    "lo"], check=True)
    path = f"/run/netns/{netns}"

    def edit(config, _):
        for ns in config["linux"]["namespaces"]:
            if ns["type"] == "network":
                ns["path"] = path

    b = sh_bundle(make_bundle, "readlink /proc/self/ns/net; ip -o addr show dev lo", edit)
    out = run(hawser, b).stdout
    assert out.splitlines()[0] == f"net:[{os.stat(path).st_ino}]"
    assert "10.123.45.6" in out


def test_join_uts_and_ipc_namespace_of_another_container(hawser, make_bundle, tmp_path):
    first = new_id("first")
    queue = f"q{uuid.uuid4().hex[:8]}"

    def edit_first(config, _):
        config["hostname"] = "first-ctr"

    # A POSIX message queue lives in the ipc namespace: make one, then stay alive.
    a = sh_bundle(make_bundle, f"touch /dev/mqueue/{queue}; exec sleep 60", edit_first)
    run_detached(hawser, a, first, tmp_path)
    pid = hawser.state(first)["pid"]
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and \
            not Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep"):
        time.sleep(0.02)

    def edit_second(config, _):
        config.pop("hostname", None)  # a joined uts namespace keeps the first one's name
        for ns in config["linux"]["namespaces"]:
            if ns["type"] in ("uts", "ipc"):
                ns["path"] = f"/proc/{pid}/ns/{ns['type']}"

    b = sh_bundle(make_bundle, "hostname; readlink /proc/self/ns/uts; readlink /proc/self/ns/ipc; "
                               "ls /dev/mqueue", edit_second)
    out = run(hawser, b).stdout.split()
    assert out[0] == "first-ctr"
    assert out[1] == ns_link("uts", pid)
    assert out[2] == ns_link("ipc", pid)
    assert queue in out[3:]
    hawser("delete", "--force", first)


# --- mounts ---------------------------------------------------------------------------------------

def test_tmpfs_mount_with_options(hawser, make_bundle):
    def edit(config, _):
        config["mounts"].append({"destination": "/mnt/t", "type": "tmpfs", "source": "tmpfs",
                                 "options": ["nosuid", "nodev", "size=1m"]})

    b = sh_bundle(make_bundle, "cat /proc/self/mountinfo; echo ===; "
                               "dd if=/dev/zero of=/mnt/t/big bs=1k count=2048", edit)
    proc = run(hawser, b, check=False)
    mountinfo = proc.stdout.split("===")[0]
    entry = mountinfo_entry(mountinfo, "/mnt/t")
    assert entry is not None, mountinfo
    assert entry["fstype"] == "tmpfs"
    assert {"nosuid", "nodev"} <= entry["options"]
    assert "size=1024k" in entry["super"]
    assert "No space left on device" in proc.stderr  # the size limit is real


def test_bind_mounts_rw_and_ro(hawser, make_bundle, tmp_path):
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir()
    ro.mkdir()
    (ro / "existing").write_text("from the host\n")

    def edit(config, _):
        config["mounts"] += [
            {"destination": "/mnt/rw", "type": "bind", "source": str(rw), "options": ["rbind", "rw"]},
            {"destination": "/mnt/ro", "type": "bind", "source": str(ro), "options": ["rbind", "ro"]},
        ]

    b = sh_bundle(make_bundle, "echo written > /mnt/rw/new && echo rw-ok; cat /mnt/ro/existing; "
                               "echo x > /mnt/ro/new || echo ro-refused", edit)
    proc = run(hawser, b)
    assert proc.stdout.splitlines() == ["rw-ok", "from the host", "ro-refused"]
    assert "Read-only file system" in proc.stderr
    assert (rw / "new").read_text() == "written\n"
    assert sorted(os.listdir(ro)) == ["existing"]


@pytest.mark.parametrize("option", ["rbind", "bind"])
def test_rbind_brings_submounts_and_bind_does_not(hawser, make_bundle, tmp_path, option):
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hawser-test-sub", str(src / "sub")],
                   check=True)
    try:
        (src / "sub" / "marker").write_text("submount\n")

        def edit(config, _):
            config["mounts"].append({"destination": "/mnt/src", "type": "bind", "source": str(src),
                                     "options": [option]})

        b = sh_bundle(make_bundle, "cat /mnt/src/sub/marker 2>/dev/null || echo absent", edit)
        out = run(hawser, b).stdout.strip()
    finally:
        umount_tree(src / "sub")
    assert out == ("submount" if option == "rbind" else "absent")


def _propagation_bundle(make_bundle, src: Path, propagation: str | None, script: str):
    def edit(config, _):
        if propagation:
            config["linux"]["rootfsPropagation"] = propagation
        config["mounts"].append({"destination": "/mnt/prop", "type": "bind", "source": str(src),
                                 "options": ["rbind"] + ([propagation] if propagation else [])})
        add_caps(config, "CAP_SYS_ADMIN")  # so that the container can mount

    return sh_bundle(make_bundle, script, edit)


WAIT_FOR_MARKER = ("i=0; while [ ! -e /mnt/prop/later/marker ] && [ $i -lt 100 ]; do "
                   "sleep 0.05; i=$((i+1)); done; cat /mnt/prop/later/marker 2>/dev/null || "
                   "echo no-marker")


@pytest.mark.parametrize("propagation", ["rslave", None])
def test_host_mount_made_after_start_appears_inside(hawser, make_bundle, shared_mount,
                                                    propagation):
    """rslave (and the default, which is rslave too): mounts the host makes under a bind-mounted
    shared source after the container started are seen inside."""
    (shared_mount / "later").mkdir()
    b = _propagation_bundle(make_bundle, shared_mount, propagation, "echo started; " + WAIT_FOR_MARKER)
    proc = subprocess.Popen(hawser.cmd("run", "--bundle", b.path, new_id()), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hawser-test-later",
                        str(shared_mount / "later")], check=True)
        (shared_mount / "later" / "marker").write_text("from-host\n")
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "from-host", err


def test_rprivate_keeps_later_host_mounts_out(hawser, make_bundle, shared_mount):
    (shared_mount / "later").mkdir()
    script = "echo started; " + WAIT_FOR_MARKER.replace("100", "20")
    b = _propagation_bundle(make_bundle, shared_mount, "rprivate", script)
    proc = subprocess.Popen(hawser.cmd("run", "--bundle", b.path, new_id()), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "started"
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "hawser-test-later",
                        str(shared_mount / "later")], check=True)
        (shared_mount / "later" / "marker").write_text("from-host\n")
        out, _ = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.strip() == "no-marker"


@pytest.mark.parametrize("propagation", [None, "rslave", "rprivate"])
def test_container_mounts_never_reach_the_host(hawser, make_bundle, shared_mount, propagation):
    (shared_mount / "fromctr").mkdir()
    b = _propagation_bundle(make_bundle, shared_mount, propagation,
                            "mount -t tmpfs hawser-ctr /mnt/prop/fromctr && "
                            "mount -t tmpfs hawser-ctr2 /mnt && echo mounted")
    assert run(hawser, b).stdout.strip() == "mounted"
    mi = host_mountinfo()
    assert mountinfo_entry(mi, str(shared_mount / "fromctr")) is None
    assert mountinfo_entry(mi, str(b.rootfs / "mnt")) is None
    assert "hawser-ctr" not in mi


def test_rshared_container_mounts_propagate_to_the_host(hawser, make_bundle, shared_mount):
    """rootfsPropagation rshared with an rshared bind of a shared host directory is bidirectional
    (kubelet's "Bidirectional" mount propagation relies on it): a mount the container makes under
    it appears on the host, as with runc."""
    (shared_mount / "fromctr").mkdir()
    b = _propagation_bundle(make_bundle, shared_mount, "rshared",
                            "mount -t tmpfs hawser-ctr /mnt/prop/fromctr && echo mounted")
    try:
        assert run(hawser, b).stdout.strip() == "mounted"
        entry = mountinfo_entry(host_mountinfo(), str(shared_mount / "fromctr"))
        assert entry is not None and entry["source"] == "hawser-ctr", \
            "a mount made in an rshared container did not propagate to the host"
    finally:
        umount_tree(shared_mount / "fromctr")


def test_host_mounts_are_not_visible_inside(hawser, make_bundle, shared_mount):
    """After pivot_root the host's tree is detached: none of the host's own mount points (outside
    /proc, /dev, /sys, which the container mounts itself) is in the container's mountinfo."""
    host_points = {line.split()[4] for line in host_mountinfo().splitlines()}
    host_points = {p for p in host_points if p != "/" and p.split("/")[1] not in ("proc", "dev", "sys")}
    assert str(shared_mount) in host_points
    b = sh_bundle(make_bundle, "cat /proc/self/mountinfo")
    inside = {line.split()[4] for line in run(hawser, b).stdout.splitlines()}
    assert inside & host_points == set()
    assert "/" in inside and "/proc" in inside


@pytest.mark.parametrize("readonly", [True, False])
def test_root_readonly(hawser, make_bundle, readonly):
    def edit(config, _):
        config["root"]["readonly"] = readonly

    b = sh_bundle(make_bundle, "echo hi > /written && echo write-ok", edit)
    proc = run(hawser, b, check=False)
    if readonly:
        assert proc.stdout == ""
        assert "Read-only file system" in proc.stderr
        assert not (b.rootfs / "written").exists()
    else:
        assert proc.stdout.strip() == "write-ok"
        assert (b.rootfs / "written").read_text() == "hi\n"


def test_masked_paths(hawser, make_bundle):
    def edit(config, b):
        (b.rootfs / "etc" / "secret").write_text("top secret\n")
        (b.rootfs / "secretdir").mkdir()
        (b.rootfs / "secretdir" / "key").write_text("k\n")
        masked = ["/proc/timer_list", "/etc/secret", "/secretdir", "/does/not/exist"]
        if os.path.exists("/proc/kcore"):
            masked.append("/proc/kcore")
        config["linux"]["maskedPaths"] = masked

    b = sh_bundle(make_bundle, "wc -c < /proc/timer_list; wc -c < /etc/secret; "
                               "[ -e /proc/kcore ] && wc -c < /proc/kcore || echo 0; "
                               "echo \"[$(ls -A /secretdir)]\"; "
                               "touch /secretdir/x 2>/dev/null || echo dir-ro; "
                               "grep ' /secretdir ' /proc/self/mountinfo", edit)
    out = run(hawser, b).stdout.splitlines()
    assert out[:5] == ["0", "0", "0", "[]", "dir-ro"]
    assert " - tmpfs " in out[5]
    assert os.path.getsize(b.rootfs / "etc" / "secret") > 0  # masked, not emptied


def test_readonly_paths(hawser, make_bundle):
    def edit(config, b):
        (b.rootfs / "data").mkdir()
        config["root"]["readonly"] = False
        config["linux"]["readonlyPaths"] = ["/proc/sys", "/data", "/does/not/exist"]
        add_caps(config, "CAP_SYS_ADMIN")

    b = sh_bundle(make_bundle, "echo changed > /proc/sys/kernel/hostname || echo sys-ro; "
                               "touch /data/x || echo data-ro; touch /other && echo other-rw", edit)
    proc = run(hawser, b)
    assert proc.stdout.split() == ["sys-ro", "data-ro", "other-rw"]
    assert "Read-only file system" in proc.stderr


def test_proc_sys_writable_without_readonly_paths(hawser, make_bundle):
    """The control for test_readonly_paths: the same write works when /proc/sys is not listed."""
    def edit(config, _):
        config["linux"]["readonlyPaths"] = []
        add_caps(config, "CAP_SYS_ADMIN")

    b = sh_bundle(make_bundle, "echo changed > /proc/sys/kernel/hostname && hostname", edit)
    assert run(hawser, b).stdout.strip() == "changed"


# --- /dev -----------------------------------------------------------------------------------------

DEFAULT_DEVICES = {"null": (1, 3), "zero": (1, 5), "full": (1, 7), "random": (1, 8),
                   "urandom": (1, 9), "tty": (5, 0)}


def test_default_devices(hawser, make_bundle):
    names = " ".join(f"/dev/{d}" for d in DEFAULT_DEVICES)
    b = sh_bundle(make_bundle, f"stat -c '%n|%F|%t|%T|%a|%u|%g' {names}")
    seen = {}
    for line in run(hawser, b).stdout.splitlines():
        name, kind, major, minor, mode, uid, gid = line.split("|")
        seen[name.rsplit("/", 1)[1]] = (kind, int(major, 16), int(minor, 16), mode, uid, gid)
    for dev, (major, minor) in DEFAULT_DEVICES.items():
        assert seen[dev] == ("character special file", major, minor, "666", "0", "0"), dev


def test_default_devices_work(hawser, make_bundle):
    b = sh_bundle(make_bundle, "echo x > /dev/null && echo null-ok; head -c 5 /dev/zero | wc -c; "
                               "head -c 5 /dev/urandom | wc -c; echo x > /dev/full || echo full-ok")
    proc = run(hawser, b)
    assert proc.stdout.split() == ["null-ok", "5", "5", "full-ok"]
    assert "No space left on device" in proc.stderr


def test_dev_symlinks_and_mounts(hawser, make_bundle):
    b = sh_bundle(make_bundle, "for l in fd stdin stdout stderr ptmx; do echo $l $(readlink /dev/$l);"
                               " done; echo ===; cat /proc/self/mountinfo")
    links, mountinfo = run(hawser, b).stdout.split("===")
    assert dict(line.split() for line in links.strip().splitlines()) == {
        "fd": "/proc/self/fd", "stdin": "/proc/self/fd/0", "stdout": "/proc/self/fd/1",
        "stderr": "/proc/self/fd/2", "ptmx": "pts/ptmx"}
    pts, shm = mountinfo_entry(mountinfo, "/dev/pts"), mountinfo_entry(mountinfo, "/dev/shm")
    assert pts is not None and pts["fstype"] == "devpts"
    assert "ptmxmode=666" in pts["super"]
    assert shm is not None and shm["fstype"] == "tmpfs"
    assert mountinfo_entry(mountinfo, "/dev")["fstype"] == "tmpfs"


def test_linux_devices_are_created(hawser, make_bundle):
    def edit(config, _):
        config["linux"]["devices"] = [
            {"path": "/dev/fuse", "type": "c", "major": 10, "minor": 229, "fileMode": 0o600,
             "uid": 1000, "gid": 1000},
            {"path": "/dev/extra/loop-test", "type": "b", "major": 7, "minor": 200,
             "fileMode": 0o640, "uid": 0, "gid": 6},
            {"path": "/dev/test-fifo", "type": "p", "fileMode": 0o620},
        ]

    b = sh_bundle(make_bundle, "stat -c '%n|%F|%t|%T|%a|%u|%g' /dev/fuse /dev/extra/loop-test "
                               "/dev/test-fifo", edit)
    lines = run(hawser, b).stdout.splitlines()
    assert lines[0] == "/dev/fuse|character special file|a|e5|600|1000|1000"
    assert lines[1] == "/dev/extra/loop-test|block special file|7|c8|640|0|6"
    assert lines[2].startswith("/dev/test-fifo|fifo|") and lines[2].endswith("|620|0|0")


# --- sysctl, network ------------------------------------------------------------------------------

def test_sysctl_in_new_netns(hawser, make_bundle):
    host = {k: Path(f"/proc/sys/net/ipv4/{k}").read_text() for k in ("ip_forward", "ip_default_ttl")}
    new_ttl = "99" if host["ip_default_ttl"].strip() != "99" else "98"

    def edit(config, _):
        config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1",
                                     "net.ipv4.ip_default_ttl": new_ttl}

    b = sh_bundle(make_bundle, "cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/ip_default_ttl",
                  edit)
    assert run(hawser, b).stdout.split() == ["1", new_ttl]
    for k, v in host.items():
        assert Path(f"/proc/sys/net/ipv4/{k}").read_text() == v, f"host's {k} changed"


SYSCTL_OUTSIDE = {
    # key -> (what the container lacks, an edit that takes it away)
    "fs.lease-break-time": "no namespace at all: a host-wide setting",
    "net.ipv4.ip_default_ttl": "the host's network namespace",
    "kernel.shmmni": "the host's ipc namespace",
}


@pytest.mark.parametrize("key", list(SYSCTL_OUTSIDE))
def test_sysctl_outside_the_containers_namespaces_is_refused(hawser, make_bundle, key):
    """A sysctl is only written when it belongs to a namespace the container has of its own
    (net.* with a new netns, kernel.shm*/msg*/sem and fs.mqueue.* with a new ipc ns,
    kernel.hostname/domainname with a new uts ns); anything else would change the host's setting.
    runc refuses such a config ("sysctl ... is not in a separate kernel namespace")."""
    path = Path("/proc/sys") / key.replace(".", "/")
    before = path.read_text()
    value = str(int(before.split()[0]) + 1)

    def edit(config, _):
        if key.startswith("net."):
            config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                             if n["type"] != "network"]
            config["mounts"] = [m for m in config["mounts"] if m["destination"] != "/sys"]
        if key.startswith("kernel.shm"):
            config["linux"]["namespaces"] = [n for n in config["linux"]["namespaces"]
                                             if n["type"] != "ipc"]
        config["linux"]["sysctl"] = {key: value}

    try:
        proc = run(hawser, make_bundle_edit(make_bundle, ["cat", f"/proc/sys/{key.replace('.', '/')}"],
                                            edit), check=False)
        after = path.read_text()
    finally:
        if path.read_text() != before:
            path.write_text(before)  # put the host back
    assert after == before, f"the container changed the host's {key} to {after.strip()}"
    assert proc.returncode != 0, f"a {key} sysctl was accepted for {SYSCTL_OUTSIDE[key]}"
    assert key in proc.stderr
    assert hawser.ids() == []


def test_new_netns_has_only_lo_and_it_is_up(hawser, make_bundle):
    b = sh_bundle(make_bundle, "ip -o link; echo ===; ls /sys/class/net; cat /sys/class/net/lo/flags;"
                               " ping -c 1 -W 2 127.0.0.1 >/dev/null && echo ping-ok",
                  lambda config, _: add_caps(config, "CAP_NET_RAW"))
    links, rest = run(hawser, b).stdout.split("===")
    links = links.strip().splitlines()
    assert len(links) == 1, links
    name, flags = re.match(r"\d+: (\S+): <([^>]*)>", links[0]).groups()
    assert name == "lo"
    assert "UP" in flags.split(",")
    rest = rest.split()
    assert rest[0] == "lo"
    assert int(rest[1], 16) & 0x1  # IFF_UP
    assert rest[2] == "ping-ok"


# --- --no-pivot -----------------------------------------------------------------------------------

def test_no_pivot(hawser, make_bundle, tmp_path):
    (tmp_path / "host-only").write_text("host\n")
    b = sh_bundle(make_bundle, f"echo $$; cat /etc/hostname; readlink /proc/self/root; "
                               f"ls {tmp_path}/host-only 2>/dev/null || echo host-hidden; "
                               f"[ -e /linuxrc ] && echo busybox-root")
    assert run(hawser, b, "--no-pivot").stdout.split() == ["1", "busybox", "/", "host-hidden",
                                                           "busybox-root"]
