"""hawserd's volumes (supervisor/volumes/manager.py and store.py) on real directories and a real
meta.db in tmp_path: create, get, delete, prune, usage and seed as docker's local driver does
them; hostile content (a symlink at a host directory, a tmpfs or bind mount inside a volume) that
a removal must not reach through; and a crash at every step of a change (VolumeManager._step
raising), after which a new manager's cleanup() leaves a consistent state. Mounts are made only
below tmp_path and unmounted by a finalizer, whatever the test did."""
from __future__ import annotations

import errno
import hashlib
import os
import re
import shutil
import stat
import subprocess
import threading
from pathlib import Path

import pytest

from supervisor.errors import ApiError
from supervisor.volumes import manager as vm
from supervisor.volumes.manager import VolumeManager

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners, devices and mounts need root")

T0 = 1_600_000_000_000_000_000             # fixed mtimes (ns) the copies must keep


class Crash(Exception):
    """What a test's _step raises: the process stopping between two steps."""


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    return d


@pytest.fixture
def open_manager(state):
    """A factory of managers on the same root and meta.db (a restart of hawserd each)."""
    made = []

    def open_() -> VolumeManager:
        m = VolumeManager(str(state), str(state / "meta.db"))
        made.append(m)
        return m

    yield open_
    for m in made:
        m.close()


@pytest.fixture
def mgr(open_manager):
    return open_manager()


def restart(old: VolumeManager, open_manager) -> VolumeManager:
    old.close()
    new = open_manager()
    new.cleanup()
    return new


def crash_at(m: VolumeManager, what: str, nth: int = 1) -> None:
    seen = []

    def step(point):
        if point == what:
            seen.append(point)
            if len(seen) == nth:
                raise Crash(point)

    m._step = step


def _mount_points_below(top) -> list[str]:
    out = []
    with open("/proc/self/mountinfo", "rb") as f:
        for line in f:
            point = re.sub(rb"\\([0-7]{3})", lambda g: bytes([int(g[1], 8)]),
                           line.split(b" ")[4])
            point = os.fsdecode(point)
            if point == str(top) or point.startswith(f"{top}/"):
                out.append(point)
    return out


@pytest.fixture
def mounts(tmp_path):
    """mount(args...): the last arg a mount point below tmp_path; every mount under tmp_path
    (wherever a rename took it) is unmounted afterwards, deepest first."""
    top = os.path.realpath(tmp_path)

    def mount(*args):
        assert os.path.realpath(args[-1]).startswith(f"{top}/")
        subprocess.run(["mount", *map(str, args)], check=True)

    yield mount
    for point in sorted(_mount_points_below(top), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], check=False)
    assert _mount_points_below(top) == []


def umount(path) -> None:
    subprocess.run(["umount", str(path)], check=True)


def entries(path) -> list[str]:
    return sorted(os.listdir(path))


def write(path, data: bytes | str = b"x") -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)


def xattrs(path) -> dict:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as e:
        if e.errno == errno.ENOTSUP:
            return {}
        raise
    return {n: os.getxattr(path, n, follow_symlinks=False) for n in sorted(names)
            if n.startswith("user.")}


def snapshot(top) -> tuple[dict, list]:
    """{relative path: what a copy must keep} for top and all below it (top as "."), and the
    groups of paths that are one inode (hard links)."""
    out, inodes = {}, {}

    def visit(path, rel):
        st = os.lstat(path)
        info = {"type": stat.S_IFMT(st.st_mode), "mode": stat.S_IMODE(st.st_mode),
                "owner": (st.st_uid, st.st_gid), "mtime": st.st_mtime_ns,
                "xattrs": xattrs(path)}
        if stat.S_ISREG(st.st_mode):
            with open(path, "rb") as f:
                info["sha"] = hashlib.sha256(f.read()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            info["link"] = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info["rdev"] = st.st_rdev
        out[rel] = info
        if not stat.S_ISDIR(st.st_mode):
            inodes.setdefault((st.st_dev, st.st_ino), []).append(rel)
        else:
            for name in sorted(os.listdir(path)):
                visit(os.path.join(path, name), name if rel == "." else f"{rel}/{name}")

    visit(str(top), ".")
    return out, sorted(sorted(g) for g in inodes.values() if len(g) > 1)


def make_tree(d) -> None:
    """Everything a seed copies: files (setuid, odd owners), a setgid directory, an empty one,
    symlinks (absolute at a host file, relative, at a directory), hard links (one across
    directories), a fifo, a device, user xattrs; fixed times, the directories' set last."""
    os.makedirs(d / "sub" / "deeper")
    (d / "empty").mkdir()
    write(d / "file", b"hello\n")
    os.chown(d / "file", 1000, 1001)
    os.chmod(d / "file", 0o640)
    write(d / "suid", b"#!/bin/sh\n")
    os.chmod(d / "suid", 0o4755)
    write(d / "sub" / "deeper" / "big", os.urandom(70_000))
    write(d / "linked", b"one inode, two names\n")
    os.link(d / "linked", d / "sub" / "linked2")
    os.link(d / "linked", d / "linked3")
    os.symlink("/etc/passwd", d / "abs-link")
    os.symlink("sub/deeper", d / "rel-link")
    os.symlink("/etc", d / "dir-link")
    os.mkfifo(d / "fifo", 0o620)
    os.mknod(d / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    try:
        os.setxattr(d / "file", "user.origin", b"image")
        os.setxattr(d / "sub", "user.kind", b"dir")
        os.setxattr(d, "user.top", b"yes")
    except OSError as e:
        if e.errno != errno.ENOTSUP:
            raise
    os.chown(d / "sub", 1000, 1000)
    os.chmod(d / "sub", 0o2750)
    os.chmod(d, 0o750)
    os.chown(d, 1000, 1000)
    for i, (dirpath, dirnames, filenames) in enumerate(sorted(os.walk(d), reverse=True)):
        for name in filenames + dirnames:
            os.utime(os.path.join(dirpath, name), ns=(T0, T0 + i), follow_symlinks=False)
    os.utime(d, ns=(T0, T0 - 7))


@pytest.fixture
def rootfs(tmp_path):
    """A container's root filesystem with an image directory /data to seed from."""
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    write(root / "etc" / "in-the-image", b"the image's /etc\n")
    make_tree(root / "data")
    return root


# -- create, get, list -------------------------------------------------------------------------
def test_create_named_keeps_labels_and_docker_layout(mgr, state):
    vol = mgr.create("web-data", labels={"com.example": "yes", "b": ""})
    assert vol["name"] == "web-data" and vol["driver"] == "local"
    assert vol["labels"] == {"com.example": "yes", "b": ""} and vol["anonymous"] is False
    assert vol["mountpoint"] == str(state / "volumes" / "web-data" / "_data")
    assert os.path.isdir(vol["mountpoint"]) and os.listdir(vol["mountpoint"]) == []
    assert mgr.get("web-data") == vol and mgr.list() == [vol]
    assert mgr.path("web-data") == vol["mountpoint"]


def test_create_anonymous_has_64_hex_name(mgr):
    vol = mgr.create()
    assert re.fullmatch(r"[0-9a-f]{64}", vol["name"]) and vol["anonymous"] is True
    assert vol["labels"] == {} and os.path.isdir(vol["mountpoint"])
    assert mgr.create()["name"] != vol["name"]


def test_create_existing_name_returned_unchanged(mgr):
    first = mgr.create("cache", labels={"a": "1"})
    write(os.path.join(first["mountpoint"], "kept"), b"data")
    again = mgr.create("cache", labels={"b": "2"}, anonymous=True)
    assert again == first
    assert entries(first["mountpoint"]) == ["kept"]


@pytest.mark.parametrize("name", ["a", "-ab", ".ab", "_ab", "a/b", "../etc", "..", "a b",
                                  "a:b", "x\n", "vé", ".trash"])
def test_create_refuses_invalid_names(mgr, state, name):
    with pytest.raises(ApiError) as e:
        mgr.create(name)
    assert e.value.code == "INVALID_ARGUMENT"
    assert "only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed" in e.value.message
    assert entries(state / "volumes") == [".trash"] and mgr.list() == []
    assert entries(state) == ["meta.db", "meta.db-shm", "meta.db-wal", "volumes"]


@pytest.mark.parametrize("name", ["ab", "A1", "0x", "a.b_c-d", "x" * 200])
def test_create_accepts_docker_names(mgr, name):
    assert mgr.create(name)["name"] == name


def test_directory_modes_and_owners_despite_umask(open_manager, state):
    old = os.umask(0o077)
    try:
        m = open_manager()
        vol = m.create("modes")
    finally:
        os.umask(old)
    for path, mode in ((state / "volumes", 0o701), (state / "volumes" / "modes", 0o755),
                       (vol["mountpoint"], 0o755)):
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, 0, 0), path


def test_rows_survive_a_new_manager(mgr, open_manager):
    made = [mgr.create("named", labels={"k": "v"}), mgr.create()]
    mgr.close()
    again = open_manager()
    assert again.list() == sorted(made, key=lambda v: v["name"])
    again.cleanup()
    assert again.list() == sorted(made, key=lambda v: v["name"])


def test_get_and_path_of_unknown_volume(mgr):
    for call in (mgr.get, mgr.path, mgr.usage):
        with pytest.raises(ApiError) as e:
            call("nothere")
        assert e.value.code == "NOT_FOUND"


# -- delete ------------------------------------------------------------------------------------
def test_delete_refused_while_in_use(mgr):
    vol = mgr.create("busy")
    with pytest.raises(ApiError) as e:
        mgr.delete("busy", ["c1", "c2"])
    assert e.value.code == "FAILED_PRECONDITION"
    assert e.value.message == "remove busy: volume is in use - [c1, c2]"
    with pytest.raises(ApiError) as e:
        mgr.delete("busy", True)
    assert e.value.code == "FAILED_PRECONDITION" and "in use" in e.value.message
    assert mgr.get("busy") == vol and os.path.isdir(vol["mountpoint"])


def test_delete_removes_directory_and_row(mgr, state):
    vol = mgr.create("gone.soon")
    write(os.path.join(vol["mountpoint"], "a", "b", "c"), b"deep")
    os.symlink("a", os.path.join(vol["mountpoint"], "link"))
    os.chmod(os.path.join(vol["mountpoint"], "a"), 0o500)
    mgr.delete("gone.soon", [])
    assert not os.path.lexists(state / "volumes" / "gone.soon")
    assert mgr.list() == [] and entries(state / "volumes" / ".trash") == []
    with pytest.raises(ApiError) as e:
        mgr.get("gone.soon")
    assert e.value.code == "NOT_FOUND"


def test_delete_unknown_is_not_found(mgr):
    with pytest.raises(ApiError) as e:
        mgr.delete("never", [])
    assert e.value.code == "NOT_FOUND"


# -- usage and prune ---------------------------------------------------------------------------
def fill(mountpoint) -> int:
    """Files in a volume: the bytes docker's `system df` counts (a hard link once, a symlink
    its own length, directories nothing)."""
    write(os.path.join(mountpoint, "one"), b"1" * 1000)
    write(os.path.join(mountpoint, "d", "two"), b"2" * 234)
    os.link(os.path.join(mountpoint, "one"), os.path.join(mountpoint, "d", "one-again"))
    os.symlink("d/two", os.path.join(mountpoint, "six"))      # 5 bytes of target
    os.mkdir(os.path.join(mountpoint, "empty"))
    return 1000 + 234 + 5


def test_usage_counts_files_once(mgr, tmp_path):
    vol = mgr.create("used")
    assert mgr.usage("used") == 0
    want = fill(vol["mountpoint"])
    write(tmp_path / "host-big", b"h" * 50_000)              # a link at it counts its own size
    os.symlink(str(tmp_path / "host-big"), os.path.join(vol["mountpoint"], "L"))
    assert mgr.usage("used") == want + len(str(tmp_path / "host-big"))


def test_prune_anonymous_only_unless_all(mgr, state):
    anon, busy = mgr.create(), mgr.create()
    named = mgr.create("named")
    size = fill(anon["mountpoint"])
    fill(named["mountpoint"])
    names, reclaimed = mgr.prune({busy["name"]})
    assert (names, reclaimed) == ([anon["name"]], size)
    assert [v["name"] for v in mgr.list()] == sorted([busy["name"], "named"])
    assert not os.path.lexists(os.path.dirname(anon["mountpoint"]))

    names, reclaimed = mgr.prune({busy["name"]}, all_=True)
    assert (names, reclaimed) == (["named"], size)
    assert [v["name"] for v in mgr.list()] == [busy["name"]]
    assert mgr.prune(set(), all_=True) == ([busy["name"]], 0)
    assert mgr.list() == [] and entries(state / "volumes") == [".trash"]
    assert entries(state / "volumes" / ".trash") == []


def test_prune_of_a_volume_whose_directory_was_removed_by_hand(mgr):
    vol = mgr.create()
    shutil.rmtree(os.path.dirname(vol["mountpoint"]))
    assert mgr.prune(set()) == ([vol["name"]], 0)
    assert mgr.list() == []


# -- seed --------------------------------------------------------------------------------------
def test_seed_copies_everything_as_it_is(mgr, rootfs):
    vol = mgr.create("seeded")
    assert mgr.seed("seeded", "/data", root=str(rootfs)) is True
    want, want_links = snapshot(rootfs / "data")
    got, got_links = snapshot(vol["mountpoint"])
    assert got == want
    assert got_links == want_links == [["linked", "linked3", "sub/linked2"]]
    src_ino = os.lstat(rootfs / "data" / "linked").st_ino
    assert os.lstat(os.path.join(vol["mountpoint"], "linked")).st_ino != src_ino
    assert os.readlink(os.path.join(vol["mountpoint"], "dir-link")) == "/etc"
    assert entries(os.path.dirname(vol["mountpoint"])) == ["_data"]
    assert mgr.usage("seeded") > 70_000


def test_seed_without_root_takes_a_host_path(mgr, tmp_path):
    make_tree(tmp_path / "src")
    vol = mgr.create("plain")
    assert mgr.seed("plain", str(tmp_path / "src")) is True
    assert snapshot(vol["mountpoint"]) == snapshot(tmp_path / "src")


def test_seed_only_into_an_empty_volume(mgr, rootfs, tmp_path):
    vol = mgr.create("once")
    assert mgr.seed("once", "/data", root=str(rootfs))
    first = snapshot(vol["mountpoint"])
    write(rootfs / "data" / "new-in-image", b"later")
    assert mgr.seed("once", "/data", root=str(rootfs)) is False
    assert snapshot(vol["mountpoint"]) == first

    mgr.create("has-data")
    mine = os.path.join(mgr.path("has-data"), "file")
    write(mine, b"the user's")
    assert mgr.seed("has-data", "/data", root=str(rootfs)) is False
    assert entries(mgr.path("has-data")) == ["file"]
    with open(mine, "rb") as f:
        assert f.read() == b"the user's"


def test_seed_resolves_a_symlinked_source_inside_the_root(mgr, rootfs):
    """rootfs/vdata -> /etc names the image's /etc, never the host's."""
    os.symlink("/etc", rootfs / "vdata")
    os.symlink("../../../../../../../etc", rootfs / "climb")
    (rootfs / "d").mkdir()
    os.symlink("/etc", rootfs / "d" / "e")
    for i, source in enumerate(("/vdata", "/climb", "/d/e", "/d/e/../etc")):
        name = f"through{i}"
        vol = mgr.create(name)
        assert mgr.seed(name, source, root=str(rootfs)) is True, source
        assert entries(vol["mountpoint"]) == ["in-the-image"], source


def test_seed_of_a_missing_source_does_nothing(mgr, rootfs):
    vol = mgr.create("nosrc")
    write(rootfs / "a-file", b"not a dir")
    os.symlink("/nonexistent", rootfs / "dangling")
    for source in ("/nonexistent", "/a-file", "/dangling", "/etc/in-the-image/x"):
        assert mgr.seed("nosrc", source, root=str(rootfs)) is False, source
    assert entries(vol["mountpoint"]) == []
    assert entries(os.path.dirname(vol["mountpoint"])) == ["_data"]
    assert stat.S_IMODE(os.stat(vol["mountpoint"]).st_mode) == 0o755


def test_seed_of_an_empty_directory_takes_its_owner_and_mode(mgr, rootfs):
    (rootfs / "hollow").mkdir()
    os.chown(rootfs / "hollow", 123, 456)
    os.chmod(rootfs / "hollow", 0o1777)
    vol = mgr.create("hollow")
    assert mgr.seed("hollow", "/hollow", root=str(rootfs)) is True
    st = os.stat(vol["mountpoint"])
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (123, 456, 0o1777)


def test_seed_of_unknown_volume(mgr, rootfs):
    with pytest.raises(ApiError) as e:
        mgr.seed("nothere", "/data", root=str(rootfs))
    assert e.value.code == "NOT_FOUND"


# -- what a removal must not reach -------------------------------------------------------------
@pytest.fixture
def host_dir(tmp_path):
    d = tmp_path / "host"
    write(d / "keep", b"host file\n")
    write(d / "inner" / "keep2", b"host file 2\n")
    return d


def host_intact(d) -> bool:
    return os.path.isfile(d / "keep") and os.path.isfile(d / "inner" / "keep2")


@pytest.mark.parametrize("how", ["delete", "prune"])
def test_removal_unlinks_symlinks_not_their_targets(mgr, host_dir, how):
    vol = mgr.create()
    data = vol["mountpoint"]
    os.symlink(str(host_dir), os.path.join(data, "to-dir"))
    os.symlink(str(host_dir / "keep"), os.path.join(data, "to-file"))
    os.symlink(str(host_dir / "inner"), os.path.join(data, "to-inner"))
    os.link(host_dir / "keep", os.path.join(data, "hard"))
    os.mkdir(os.path.join(data, "sub"))
    os.symlink("../../../../host", os.path.join(data, "sub", "climb"))
    # the volume's own _data replaced by a link at the host directory
    other = mgr.create()
    os.rmdir(other["mountpoint"])
    os.symlink(str(host_dir), other["mountpoint"])
    if how == "delete":
        mgr.delete(vol["name"], [])
        mgr.delete(other["name"], [])
    else:
        assert sorted(mgr.prune(set())[0]) == sorted([vol["name"], other["name"]])
    assert mgr.list() == [] and host_intact(host_dir)
    assert os.stat(host_dir / "keep").st_nlink == 1


@pytest.mark.parametrize("kind", ["tmpfs", "bind"])
def test_a_mount_inside_a_volume_is_never_emptied(mgr, mounts, tmp_path, host_dir, kind):
    vol = mgr.create("mounted")
    data = vol["mountpoint"]
    write(os.path.join(data, "own"), b"12345")
    sub = os.path.join(data, "sub")
    os.mkdir(sub)
    if kind == "tmpfs":
        mounts("-t", "tmpfs", "-o", "size=1m", "tmpfs", sub)
        write(os.path.join(sub, "keep"), b"on the tmpfs")
        write(os.path.join(sub, "inner", "keep2"), b"on the tmpfs too")
        shown = Path(sub)
    else:
        mounts("--bind", host_dir, sub)
        shown = host_dir

    assert mgr.usage("mounted") == 5                        # the mount's files are not its own
    with pytest.raises(ApiError) as e:
        mgr.delete("mounted", [])
    assert e.value.code == "FAILED_PRECONDITION" and sub in e.value.message
    assert mgr.prune(set(), all_=True) == ([], 0)
    assert host_intact(shown) and os.path.isfile(os.path.join(data, "own"))
    assert mgr.get("mounted") == vol

    umount(sub)
    if kind == "tmpfs":
        assert entries(sub) == []
    mgr.delete("mounted", [])
    assert mgr.list() == [] and host_intact(host_dir)


def test_a_mount_that_appears_mid_delete_is_left_for_the_next_start(mgr, open_manager,
                                                                    mounts, state,
                                                                    monkeypatch):
    """The check before the rename raced: the walk itself stops at the mount (EXDEV), the
    volume is gone, its files wait in the trash; a start-up with the mount still there goes
    on, the one after the unmount empties the trash."""
    vol = mgr.create("racy")
    sub = os.path.join(vol["mountpoint"], "sub")
    os.mkdir(sub)
    mounts("-t", "tmpfs", "-o", "size=1m", "tmpfs", sub)
    write(os.path.join(sub, "keep"), b"on the tmpfs")
    monkeypatch.setattr(vm, "_mount_points", lambda: [])
    with pytest.raises(ApiError) as e:
        mgr.delete("racy", [])
    assert e.value.code == "INTERNAL"
    assert mgr.list() == []
    monkeypatch.undo()
    [left] = entries(state / "volumes" / ".trash")
    moved = state / "volumes" / ".trash" / left / "_data" / "sub"
    assert entries(moved) == ["keep"]

    again = restart(mgr, open_manager)                      # does not fail
    assert entries(moved) == ["keep"] and again.list() == []
    umount(moved)
    again = restart(again, open_manager)
    assert entries(state / "volumes" / ".trash") == []


# -- a crash at every step, then a restart ------------------------------------------------------
def test_crash_in_create(mgr, open_manager, state):
    crash_at(mgr, "directory made")
    with pytest.raises(Crash):
        mgr.create("half")
    m = restart(mgr, open_manager)
    assert m.list() == [] and entries(state / "volumes") == [".trash"]
    assert m.create("half")["name"] == "half"


@pytest.mark.parametrize("how", ["delete", "prune"])
@pytest.mark.parametrize("point", ["directory renamed", "row removed"])
def test_crash_in_delete(mgr, open_manager, state, point, how):
    mgr.create("a.b.c")
    keep = mgr.create("a.b")
    fill(mgr.path("a.b.c"))
    crash_at(mgr, point)
    with pytest.raises(Crash):
        if how == "delete":
            mgr.delete("a.b.c", [])
        else:
            mgr.prune({"a.b"}, all_=True)
    m = restart(mgr, open_manager)
    assert m.list() == [keep]
    assert entries(state / "volumes") == [".trash", "a.b"]
    assert entries(state / "volumes" / ".trash") == []
    assert m.create("a.b.c")["anonymous"] is False
    assert entries(m.path("a.b.c")) == []


@pytest.mark.parametrize("point, nth", [("copied", 1), ("complete", 1), ("entry moved", 1),
                                        ("entry moved", 5)])
def test_crash_in_seed(mgr, open_manager, rootfs, point, nth):
    vol = mgr.create("seed-me")
    crash_at(mgr, point, nth)
    with pytest.raises(Crash):
        mgr.seed("seed-me", "/data", root=str(rootfs))
    m = restart(mgr, open_manager)
    assert m.list() == [vol]
    assert entries(os.path.dirname(vol["mountpoint"])) == ["_data"]
    if point == "copied":                                # not complete: undone, done again
        assert entries(vol["mountpoint"]) == []
        assert m.seed("seed-me", "/data", root=str(rootfs)) is True
    assert snapshot(vol["mountpoint"]) == snapshot(rootfs / "data")


def test_crash_while_cleanup_finishes_a_seed(mgr, open_manager, rootfs):
    vol = mgr.create("twice")
    crash_at(mgr, "entry moved", 2)
    with pytest.raises(Crash):
        mgr.seed("twice", "/data", root=str(rootfs))
    mgr.close()
    m = open_manager()
    crash_at(m, "entry moved", 3)
    with pytest.raises(Crash):
        m.cleanup()
    m = restart(m, open_manager)
    assert entries(os.path.dirname(vol["mountpoint"])) == ["_data"]
    assert snapshot(vol["mountpoint"]) == snapshot(rootfs / "data")


def test_crash_leftover_staging_does_not_block_the_next_seed(mgr, rootfs):
    """Without a restart (an error, not a crash): the next seed starts afresh."""
    vol = mgr.create("retry")
    crash_at(mgr, "copied")
    with pytest.raises(Crash):
        mgr.seed("retry", "/data", root=str(rootfs))
    mgr._step = lambda what: None
    assert mgr.seed("retry", "/data", root=str(rootfs)) is True
    assert entries(os.path.dirname(vol["mountpoint"])) == ["_data"]
    assert snapshot(vol["mountpoint"]) == snapshot(rootfs / "data")


def test_cleanup_adopts_data_drops_empty_dirs_and_remakes_missing_ones(mgr, open_manager,
                                                                      state):
    vols = state / "volumes"
    write(vols / "adopted" / "_data" / "file", b"found")
    (vols / "empty-leftover" / "_data").mkdir(parents=True)
    (vols / "no-data-dir").mkdir()
    (vols / "not a volume").mkdir()                      # not a name hawserd makes: left
    write(vols / "stray-file", b"")
    lost = mgr.create("lost")
    shutil.rmtree(os.path.dirname(lost["mountpoint"]))
    m = restart(mgr, open_manager)
    assert [v["name"] for v in m.list()] == ["adopted", "lost"]
    assert m.get("adopted")["anonymous"] is False
    assert entries(m.path("adopted")) == ["file"]
    assert entries(vols) == [".trash", "adopted", "lost", "not a volume", "stray-file"]
    st = os.stat(m.path("lost"))
    assert stat.S_IMODE(st.st_mode) == 0o755 and entries(m.path("lost")) == []


def test_concurrent_creates_and_seeds_of_one_volume(mgr, rootfs):
    """hawserd's gRPC threads: one row for one name, one copy into one volume."""
    results, errors = [], []

    def run(fn, *args):
        try:
            results.append(fn(*args))
        except Exception as e:              # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=run, args=(mgr.create, "shared")) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len({r["created"] for r in results}) == 1
    results.clear()
    threads = [threading.Thread(target=run, args=(mgr.seed, "shared", "/data", str(rootfs)))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and sorted(results) == [False, False, False, True]
    assert snapshot(mgr.path("shared")) == snapshot(rootfs / "data")
