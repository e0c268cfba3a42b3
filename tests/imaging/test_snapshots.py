"""The overlayfs snapshotter on a real ext4 and real overlay mounts: what a container sees
through its snapshot's mounts, what each kind of snapshot costs on disk, what is refused, and
what cleanup() makes of the state a crash (a real os._exit in a child process) leaves."""
import errno
import json
import os
import sqlite3
import subprocess
import sys
import threading

import pytest

import layers
from layers import dir, file
from supervisor.snapshots.overlay import MOUNT_DATA_MAX, AlreadyExists, InUse, NotFound, \
    SnapshotError, Snapshotter

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def entries(snaps) -> list[str]:
    return sorted(os.listdir(snaps.dir))


def two_layers(snaps) -> None:
    layers.commit_layer(snaps, "base", layers.tar_bytes(
        dir("etc"), file("etc/os-release", b"base\n"), file("etc/hostname", b"old\n")))
    layers.commit_layer(snaps, "top", layers.tar_bytes(
        file("etc/hostname", b"new\n"), file("app", b"app\n", mode=0o755)), parent="base")


def test_kinds_their_mounts_and_only_the_dirs_overlayfs_needs(snaps):
    two_layers(snaps)
    base, top = snaps.stat("base"), snaps.stat("top")
    assert (base.kind, base.parent, top.kind, top.parent) == ("committed", "", "committed",
                                                               "base")
    # a committed layer keeps its files' dir only: no workdir
    assert entries(snaps) == sorted([base.id, top.id])

    assert snaps.prepare("plain") == [{"type": "bind", "source": snaps.upper("plain"),
                                       "options": ["rw", "rbind"]}]
    mounts = snaps.prepare("c1", "top", labels={"hawser/container": "c1"})
    c1 = snaps.stat("c1")
    assert mounts == snaps.mounts("c1") == [{"type": "overlay", "source": "overlay", "options": [
        "index=off", f"workdir={snaps.dir}/{c1.id}.work", f"upperdir={snaps.dir}/{c1.id}",
        f"lowerdir={snaps.dir}/{top.id}:{snaps.dir}/{base.id}"]}]
    assert (c1.kind, c1.parent, c1.labels) == ("active", "top", {"hawser/container": "c1"})
    assert snaps.upper("c1") == f"{snaps.dir}/{c1.id}"
    assert snaps.lowers("c1") == [snaps.upper("top"), snaps.upper("base")]

    assert snaps.view("v1", "base") == [{"type": "bind", "source": snaps.upper("base"),
                                         "options": ["ro", "rbind"]}]
    assert snaps.view("v2", "top") == [{"type": "overlay", "source": "overlay", "options": [
        f"lowerdir={snaps.dir}/{top.id}:{snaps.dir}/{base.id}"]}]
    with pytest.raises(SnapshotError, match="is a view"):
        snaps.upper("v2")
    # views of layers have no directory; the parentless active one has its files' dir only
    plain = snaps.stat("plain")
    assert entries(snaps) == sorted([base.id, top.id, plain.id, c1.id, f"{c1.id}.work"])
    assert [i.key for i in snaps.list()] == ["base", "top", "plain", "c1", "v1", "v2"]
    assert snaps.stat("nope") is None


def test_a_container_sees_its_layers_and_writes_only_to_its_upper(snaps, tmp_path):
    two_layers(snaps)
    os.chmod(snaps.upper("top"), 0o750)       # the image's / (its top layer's root)
    rootfs = tmp_path / "rootfs"
    with layers.mounted(snaps.prepare("c1", "top"), rootfs):
        assert sorted(os.listdir(rootfs)) == ["app", "etc"]
        assert (rootfs / "etc/hostname").read_text() == "new\n"      # the top layer wins
        assert (rootfs / "etc/os-release").read_text() == "base\n"
        assert os.stat(rootfs).st_mode & 0o777 == 0o750
        (rootfs / "etc/hostname").write_text("mine\n")
        (rootfs / "new").write_text("x")
    assert sorted(os.listdir(snaps.upper("c1"))) == ["etc", "new"]
    assert open(os.path.join(snaps.upper("top"), "etc/hostname")).read() == "new\n"
    # views are read-only, of one layer (a bind) or of several (an overlay without upper)
    for key, parent in (("v1", "base"), ("v2", "top")):
        target = tmp_path / key
        with layers.mounted(snaps.view(key, parent), target):
            assert (target / "etc/os-release").read_text() == "base\n"
            with pytest.raises(OSError) as e:
                (target / "etc/x").write_text("x")
            assert e.value.errno == errno.EROFS
    assert str(rootfs) not in layers.mount_points()


def test_commit_makes_an_immutable_layer_others_build_on(snaps, tmp_path):
    two_layers(snaps)
    snaps.prepare("work", "top")
    with open(os.path.join(snaps.upper("work"), "added"), "w") as f:
        f.write("added\n")
    work_id = snaps.stat("work").id
    snaps.commit("mine", "work", labels={"k": "v"})
    mine = snaps.stat("mine")
    assert snaps.stat("work") is None
    assert (mine.kind, mine.parent, mine.id, mine.labels) == ("committed", "top", work_id,
                                                              {"k": "v"})
    assert f"{work_id}.work" not in entries(snaps)         # a layer keeps no workdir
    with layers.mounted(snaps.prepare("c", "mine"), tmp_path / "r"):
        assert (tmp_path / "r/added").read_text() == "added\n"
        assert (tmp_path / "r/etc/hostname").read_text() == "new\n"


def test_remove_is_refused_while_children_or_mounts_use_a_snapshot(snaps, tmp_path):
    two_layers(snaps)
    mounts = snaps.prepare("c1", "top")
    with pytest.raises(InUse, match="top: in use by c1"):
        snaps.remove("top")
    with layers.mounted(mounts, tmp_path / "r"):
        with pytest.raises(InUse, match="upperdir of the overlay on"):
            snaps.remove("c1")
        with pytest.raises(InUse, match="mounted"):
            snaps.commit("x", "c1")
        assert snaps.stat("c1") is not None
    c1 = snaps.stat("c1")
    snaps.remove("c1")
    snaps.remove("top")
    assert snaps.stat("c1") is None and snaps.stat("top") is None
    assert entries(snaps) == [snaps.stat("base").id]
    assert c1.id not in entries(snaps)


def test_bad_calls_are_refused_and_leave_nothing(snaps):
    two_layers(snaps)
    snaps.prepare("c1", "top")
    before = (entries(snaps), snaps.list())
    cases = [
        (NotFound, "parent snapshot nope: not found", lambda: snaps.prepare("x", "nope")),
        (NotFound, "snapshot nope: not found", lambda: snaps.remove("nope")),
        (NotFound, "snapshot nope: not found", lambda: snaps.mounts("nope")),
        (NotFound, "snapshot nope: not found", lambda: snaps.commit("x", "nope")),
        (AlreadyExists, "c1: already exists", lambda: snaps.prepare("c1", "top")),
        (AlreadyExists, "base: already exists", lambda: snaps.commit("base", "c1")),
        (SnapshotError, "c1 is active: only a committed", lambda: snaps.prepare("x", "c1")),
        (SnapshotError, "c1 is active: only a committed", lambda: snaps.view("x", "c1")),
        (SnapshotError, "base is committed: only an active", lambda: snaps.commit("y", "base")),
        (SnapshotError, "invalid snapshot key ''", lambda: snaps.prepare("", "top")),
        (SnapshotError, "labels map strings", lambda: snaps.prepare("x", "", {"a": 1})),
        (NotFound, "parent snapshot gone: not found",
         lambda: snaps.commit("x", "c1", parent="gone")),
    ]
    for error, message, call in cases:
        with pytest.raises(error, match=message):
            call()
    assert (entries(snaps), snaps.list()) == before


def test_too_many_layers_for_one_page_of_mount_options(snaps, tmp_path):
    """Layers are added until the overlay's options would pass a page: every chain below the
    limit mounts and shows its bottom layer; the first one past it is refused, leaving no
    row and no dir."""
    layers.commit_layer(snaps, "l0", layers.tar_bytes(file("bottom", b"0")))
    parent, n = "l0", 1
    while True:
        before = (entries(snaps), snaps.list())
        try:
            mounts = snaps.prepare(f"c{n}", parent)
        except SnapshotError as e:
            assert f"{n} layers are too many for one overlay mount" in str(e)
            assert f"at most {MOUNT_DATA_MAX} (one page)" in str(e)
            assert (entries(snaps), snaps.list()) == before
            break
        size = len(",".join(mounts[0]["options"]))
        assert size <= MOUNT_DATA_MAX
        snaps.remove(f"c{n}")
        layers.commit_layer(snaps, f"l{n}", layers.tar_bytes(file(f"f{n}", b"x")), parent)
        parent, n = f"l{n}", n + 1
    # the largest chain that fits was the one before
    assert size + len(snaps.upper(parent)) + 1 > MOUNT_DATA_MAX
    snaps.prepare("fits", f"l{n - 2}")
    with layers.mounted(snaps.mounts("fits"), tmp_path / "r"):
        assert (tmp_path / "r/bottom").read_text() == "0"
        assert len(os.listdir(tmp_path / "r")) == n - 1


def test_the_kernel_takes_one_page_of_options_less_its_nul(tmp_path):
    """Why MOUNT_DATA_MAX is 4095: one more byte and the kernel cuts the last option."""
    for d in ("a", "b", "t"):
        (tmp_path / d).mkdir()
    (tmp_path / "b/f").write_text("b")
    head = f"lowerdir={tmp_path}/a:{tmp_path}"

    def options(total):
        pad = total - len(head) - 2
        return head + "/." * (pad // 2) + "/" * (pad % 2) + "/b"
    try:
        layers.shim_mount.mount_all([layers.SimpleNamespace(
            type="overlay", source="overlay", options=[options(MOUNT_DATA_MAX)])],
            str(tmp_path / "t"))
        assert os.listdir(tmp_path / "t") == ["f"]
        layers.unmount(tmp_path / "t")
        with pytest.raises(OSError):
            layers.shim_mount.mount_all([layers.SimpleNamespace(
                type="overlay", source="overlay", options=[options(MOUNT_DATA_MAX + 1)])],
                str(tmp_path / "t"))
    finally:
        layers.unmount_under(tmp_path)


def test_usage_counts_each_inode_once(snaps):
    snaps.prepare("c")
    up = snaps.upper("c")
    with open(os.path.join(up, "big"), "wb") as f:
        f.write(os.urandom(100_000))
    os.link(os.path.join(up, "big"), os.path.join(up, "link"))
    os.mkdir(os.path.join(up, "d"))
    size, inodes = snaps.usage("c")
    assert inodes == 3                       # the root, big (twice linked), d
    assert 100_000 + 2 * 4096 <= size <= 100_000 + 4 * 4096


def test_100_containers_of_one_image_cost_little_disk(snaps, tmp_path):
    two_layers(snaps)

    def used():
        out = subprocess.run(["du", "-sk", snaps.dir], capture_output=True, text=True,
                             check=True).stdout
        return int(out.split()[0])
    before = used()
    for i in range(100):
        snaps.prepare(f"c{i}", "top")
    prepared = used() - before
    # an upper and a workdir each (4 KiB blocks on ext4), and the snapshots dir's growth
    assert prepared <= 100 * 8 + 16, prepared
    assert prepared < 1024


def test_threads_prepare_mount_and_remove_at_once(snaps, tmp_path):
    two_layers(snaps)
    errors = []

    def worker(n):
        try:
            for i in range(15):
                key = f"t{n}-{i}"
                target = tmp_path / "m" / key
                with layers.mounted(snaps.prepare(key, "top"), target):
                    (target / "mine").write_text(key)
                assert open(os.path.join(snaps.upper(key), "mine")).read() == key
                snaps.remove(key)
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [i.key for i in snaps.list()] == ["base", "top"]
    assert entries(snaps) == sorted([snaps.stat("base").id, snaps.stat("top").id])


# -- crashes ------------------------------------------------------------------------------------
CRASH = """
import os, shutil, sys
sys.path.insert(0, {root!r})
from supervisor.snapshots.overlay import Snapshotter
s = Snapshotter({base!r}, {db!r})
point, op = sys.argv[1], sys.argv[2:]
real = {{"mkdir": os.mkdir, "rmtree": shutil.rmtree, "rename": os.rename}}
def crash(name):
    def hook(*a, **k):
        if name == point:
            os._exit(9)           # a SIGKILL's effect: no finally, no rollback
        return real[name](*a, **k)
    return hook
os.mkdir, shutil.rmtree, os.rename = crash("mkdir"), crash("rmtree"), crash("rename")
getattr(s, op[0])(*op[1:])
os._exit(0)
"""


def crash_during(tmp_path, point: str, *op: str) -> int:
    code = CRASH.format(root=ROOT_DIR, base=str(tmp_path / "root"), db=str(tmp_path / "meta.db"))
    return subprocess.run([sys.executable, "-c", code, point, *op]).returncode


def consistent(snaps) -> None:
    """Every row has its directories and every directory a row."""
    expected = set()
    for info in snaps.list():
        names = {"active": [info.id] + ([f"{info.id}.work"] if info.parent else []),
                 "committed": [info.id], "view": [] if info.parent else [info.id]}[info.kind]
        expected.update(names)
    assert set(entries(snaps)) == expected


@pytest.mark.parametrize("point, op, survivors", [
    ("mkdir", ("prepare", "c2", "top"), {"base", "top", "c1"}),      # row made, no dir
    ("rename", ("remove", "c1"), {"base", "top", "c1"}),               # nothing done yet
    ("rmtree", ("remove", "c1"), {"base", "top"}),                     # renamed, row gone
    ("rmtree", ("commit", "mine", "c1"), {"base", "top", "mine"}),    # workdir left
])
def test_cleanup_after_a_crash_at_any_point(snaps, tmp_path, point, op, survivors):
    two_layers(snaps)
    snaps.prepare("c1", "top")
    assert crash_during(tmp_path, point, *op) == 9
    snaps.cleanup()
    assert {i.key for i in snaps.list()} == survivors
    consistent(snaps)
    for key in survivors - {"base", "top"}:     # what survives still works
        info = snaps.stat(key)
        mounts = snaps.mounts(key) if info.kind == "active" else snaps.prepare("after", key)
        with layers.mounted(mounts, tmp_path / "r"):
            assert (tmp_path / "r/etc/hostname").read_text() == "new\n"


def test_cleanup_takes_unfinished_unpacks_strays_and_broken_rows(snaps, tmp_path):
    two_layers(snaps)
    snaps.prepare("c1", "top")
    snaps.view("v1", "top")
    # an unpack a crash interrupted: an active extract snapshot with half a layer
    snaps.prepare("extract-x", "", labels={"hawser/extract": "1"})
    open(os.path.join(snaps.upper("extract-x"), "half"), "w").close()
    # a layer whose dir went (by hand): it goes, and what was on it
    layers.commit_layer(snaps, "gone", layers.tar_bytes(file("g")), parent="base")
    snaps.prepare("on-gone", "gone")
    os.rename(snaps.upper("gone"), snaps.upper("gone") + ".x")
    # directories no row has, and a workdir c1 lost
    for stray in ("999", "999.work", "12.removing", "junk"):
        os.makedirs(os.path.join(snaps.dir, stray, "sub"))
    c1 = snaps.stat("c1")
    os.rmdir(f"{snaps.dir}/{c1.id}.work")
    # a stray with a mount under it is not deleted through the mount
    (tmp_path / "precious").mkdir()
    (tmp_path / "precious/keep").write_text("keep")
    mounted_stray = os.path.join(snaps.dir, "888")
    os.makedirs(mounted_stray + "/m")
    layers.shim_mount.mount_all([layers.SimpleNamespace(
        type="bind", source=str(tmp_path / "precious"), options=["rbind"])], mounted_stray + "/m")

    removed = Snapshotter(os.path.dirname(snaps.dir), str(tmp_path / "meta.db")).cleanup()
    assert removed == ["extract-x", "gone", "on-gone"]
    assert {i.key for i in snaps.list()} == {"base", "top", "c1", "v1"}
    assert (tmp_path / "precious/keep").read_text() == "keep"
    layers.unmount(mounted_stray + "/m")
    Snapshotter(os.path.dirname(snaps.dir), str(tmp_path / "meta.db")).cleanup()
    consistent(snaps)
    with layers.mounted(snaps.mounts("c1"), tmp_path / "r"):       # its workdir is back
        assert (tmp_path / "r/etc/hostname").read_text() == "new\n"


def test_the_table_lives_beside_other_services_tables(snaps, tmp_path):
    two_layers(snaps)
    db = sqlite3.connect(tmp_path / "meta.db")
    try:
        db.execute("CREATE TABLE images (name TEXT)")
        db.commit()
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        rows = db.execute("SELECT key, kind, labels FROM snapshots ORDER BY id").fetchall()
    finally:
        db.close()
    assert [(k, kind) for k, kind, _ in rows] == [("base", "committed"), ("top", "committed")]
    assert all(json.loads(labels) == {} for _, _, labels in rows)
    again = Snapshotter(os.path.dirname(snaps.dir), str(tmp_path / "meta.db"))
    assert [i.key for i in again.list()] == ["base", "top"]
    again.close()


UNPACK = """
import sys
sys.path.insert(0, {root!r})
from supervisor.snapshots import apply
from supervisor.snapshots.overlay import Snapshotter
s = Snapshotter({base!r}, {db!r})
s.prepare("extract-1", "", labels={{"hawser/extract": "1"}})
print("ready", flush=True)
apply.apply_layer(sys.stdin.buffer, s.upper("extract-1"))
s.commit("layer", "extract-1")
"""


def test_an_unpack_killed_half_way_is_gone_after_cleanup(snaps, tmp_path):
    two_layers(snaps)
    before = entries(snaps)
    tar = layers.tar_bytes(*[file(f"d/f{i}", os.urandom(4096)) for i in range(2000)])
    code = UNPACK.format(root=ROOT_DIR, base=str(tmp_path / "root"), db=str(tmp_path / "meta.db"))
    child = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout.readline() == b"ready\n"
        child.stdin.write(tar[:len(tar) // 2])
        child.stdin.flush()
        upper = snaps.upper("extract-1")
        written = 0
        for _ in range(250):               # until the child is half-way through
            written = len(os.listdir(upper + "/d")) if os.path.isdir(upper + "/d") else 0
            if written > 100:
                break
            threading.Event().wait(0.02)
        os.kill(child.pid, 9)
        assert written > 100
    finally:
        child.kill()
        child.wait()
        child.stdin.close()
        child.stdout.close()
    assert child.returncode == -9
    assert snaps.stat("extract-1").kind == "active" and snaps.stat("layer") is None
    assert Snapshotter(os.path.dirname(snaps.dir), str(tmp_path / "meta.db")).cleanup() == \
        ["extract-1"]
    assert [i.key for i in snaps.list()] == ["base", "top"] and entries(snaps) == before
