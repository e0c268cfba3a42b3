"""Layer unpack into snapshots, checked through real overlay mounts of them (what a container
sees), for gzip, zstd and plain blobs; every escape attempt and every broken stream refused
with nothing written outside dest (a canary dir beside it) and nothing left in dest."""
import copy
import gzip
import hashlib
import io
import os
import stat
import subprocess
import sys
import tarfile
import threading

import pytest

import layers
from layers import device, dir, fifo, file, hardlink, opaque, symlink, whiteout
from supervisor.snapshots import apply, diff
from supervisor.snapshots.apply import LayerError, MissingLinkTarget

CAP_NET_RAW = bytes.fromhex("0100000200200000000000000000000000000000")   # cap_net_raw+ep
LONG = "deep/" + "d" * 120 + "/" + "n" * 150


BASE = layers.tar_bytes(
    dir("etc", mtime=1_500_000_000), file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n"),
    file("etc/motd", b"hello\n"), dir("etc/ssl", mode=0o750, uid=0, gid=0),
    file("etc/ssl/cert", b"CERT"), dir("var"), dir("var/cache"), file("var/cache/a", b"a"),
    dir("var/cache/sub"), file("var/cache/sub/b", b"b"),
    dir("bin"), file("bin/busybox", b"\x7fELF" + b"x" * 5000, mode=0o755),
    symlink("bin/sh", "busybox"), file("bin/ping", b"ping", mode=0o755,
                                       xattrs={"security.capability": CAP_NET_RAW}),
    file("bin/su", b"su", mode=0o4755), dir("tmp", mode=0o1777),
    file("home/user/.profile", b"export A=1\n", mode=0o600, uid=1000, gid=1000,
         xattrs={"user.note": "hi"}),
    hardlink("bin/busybox-link", "bin/busybox", mode=0o755),
    device("dev/null", tarfile.CHRTYPE, 1, 3), device("dev/loop0", tarfile.BLKTYPE, 7, 0,
                                                      mode=0o660, gid=6),
    fifo("run/initctl", 0o600), file(LONG, b"long"),
    file("sneaky", b"s", xattrs={"trusted.overlay.opaque": "y", "user.ok": "1"}),
)
TOP = layers.tar_bytes(
    whiteout("etc/motd"),                   # a file deleted
    whiteout("etc/ssl"),                    # a directory deleted
    dir("var/cache"), opaque("var/cache"),  # emptied, then refilled
    file("var/cache/new", b"new"),
    file("etc/passwd", b"root:x:0:0::/root:/bin/ash\n", mtime=1_650_000_000),
    hardlink("bin/sh-again", "bin/busybox", mode=0o755),   # to a file of the layer below
    file("opt/app/run", b"#!/bin/sh\n", mode=0o2755, uid=33, gid=33),
)


def blob(tmp_path, name: str, tar: bytes, compression: str) -> str:
    data = {"gzip": layers.gz, "zstd": layers.zst, "plain": lambda b: b}[compression](tar)
    return layers.write(tmp_path / name, data)


def unpack_chain(snaps, tmp_path, compression: str):
    """BASE then TOP, each unpacked from its blob into an extract snapshot and committed."""
    media = {"gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
             "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
             "plain": "application/vnd.oci.image.layer.v1.tar"}[compression]
    results = []
    for name, tar, parent in (("base", BASE, ""), ("top", TOP, "base")):
        key = "extract-" + name
        snaps.prepare(key, "", labels={"hawser/extract": "1"})
        lowers = [snaps.upper(parent)] + snaps.lowers(parent) if parent else ()
        results.append(apply.unpack(blob(tmp_path, name, tar, compression),
                                    snaps.upper(key), media, lowers))
        snaps.commit(name, key, parent=parent)
    return results


@pytest.mark.parametrize("compression", ["gzip", "zstd", "plain"])
def test_a_container_sees_the_layers_as_the_tars_say(snaps, tmp_path, compression):
    base, top = unpack_chain(snaps, tmp_path, compression)
    assert base.diff_id == layers.diff_id(BASE) and top.diff_id == layers.diff_id(TOP)
    assert base.size == sum(len(b) for b in (b"root:x:0:0::/root:/bin/sh\n", b"hello\n",
                                             b"CERT", b"a", b"b", b"\x7fELF" + b"x" * 5000,
                                             b"ping", b"su", b"export A=1\n", b"long", b"s"))
    r = tmp_path / "rootfs"
    with layers.mounted(snaps.prepare("c", "top"), r):
        # the top layer's changes
        assert not os.path.lexists(r / "etc/motd") and not os.path.lexists(r / "etc/ssl")
        assert sorted(os.listdir(r / "etc")) == ["passwd"]
        assert (r / "etc/passwd").read_text().endswith("/bin/ash\n")
        assert os.stat(r / "etc/passwd").st_mtime == 1_650_000_000
        assert sorted(os.listdir(r / "var/cache")) == ["new"]     # opaque: the lower gone
        st = os.stat(r / "opt/app/run")
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o2755, 33, 33)
        # the base layer through it
        assert os.readlink(r / "bin/sh") == "busybox"
        busybox = os.stat(r / "bin/busybox")
        assert busybox.st_size == 5004 and stat.S_IMODE(busybox.st_mode) == 0o755
        # the top layer's link to a base file: copied up into the top layer first (the base
        # layer's own link to it is then another file, as with containerd's applier)
        assert os.stat(r / "bin/sh-again").st_ino == busybox.st_ino
        assert (r / "bin/busybox-link").read_bytes() == (r / "bin/busybox").read_bytes()
        in_base = snaps.upper("base") + "/bin/"
        assert os.stat(in_base + "busybox").st_ino == os.stat(in_base + "busybox-link").st_ino
        assert stat.S_IMODE(os.stat(r / "bin/su").st_mode) == 0o4755
        assert os.getxattr(r / "bin/ping", "security.capability") == CAP_NET_RAW
        assert stat.S_IMODE(os.stat(r / "tmp").st_mode) == 0o1777
        home = os.stat(r / "home/user/.profile")
        assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1000, 0o600)
        assert os.getxattr(r / "home/user/.profile", "user.note") == b"hi"
        null, loop = os.stat(r / "dev/null"), os.stat(r / "dev/loop0")
        assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1 and \
            os.minor(null.st_rdev) == 3 and stat.S_IMODE(null.st_mode) == 0o666
        assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 0) and \
            loop.st_gid == 6
        assert stat.S_ISFIFO(os.stat(r / "run/initctl").st_mode)
        assert (r / LONG).read_bytes() == b"long"
        assert os.stat(r / "etc").st_mtime == 1_500_000_000     # set after its contents
        assert os.stat(r / "bin/busybox").st_mtime == layers.MTIME
        # a layer cannot make overlayfs metadata of its own
        assert "trusted.overlay.opaque" not in os.listxattr(snaps.upper("base") + "/sneaky")
        assert os.getxattr(r / "sneaky", "user.ok") == b"1"


def test_formats_names_and_compressions(tmp_path):
    entries = [file("a" * 99 + "/" + "b" * 150, b"x"), dir("c" * 200), symlink("s", "t" * 300),
               file("üñí/ç", b"u")]
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        tar = layers.tar_bytes(*entries, format=fmt)
        two = gzip.compress(tar[:3000]) + gzip.compress(tar[3000:]) + b"\0" * 10
        frames = layers.zst(tar[:1000]) + layers.zst(tar[1000:])
        for i, data in enumerate((tar, layers.gz(tar), layers.zst(tar), two, frames)):
            dest = tmp_path / f"{fmt}-{i}"
            dest.mkdir()
            # media types are not trusted for the compression: the magic bytes are
            applied = apply.unpack(layers.write(tmp_path / f"b{fmt}{i}", data), str(dest),
                                   "application/vnd.docker.image.rootfs.diff.tar.gzip")
            assert applied.diff_id == layers.diff_id(tar)
            assert (dest / ("a" * 99) / ("b" * 150)).read_bytes() == b"x"
            assert (dest / ("c" * 200)).is_dir()
            assert os.readlink(dest / "s") == "t" * 300
            assert (dest / "üñí/ç").read_bytes() == b"u"
    with pytest.raises(LayerError, match="media type 'application/json' is not a layer's"):
        apply.unpack(layers.write(tmp_path / "j", b"{}"), str(tmp_path / "x"),
                     "application/json")


def canary(tmp_path):
    """A directory beside dest that layers try to reach; returns a snapshot of it."""
    c = tmp_path / "canary"
    c.mkdir()
    (c / "secret").write_text("secret")
    os.utime(c, (1000, 1000))
    return c


def listing(path) -> list:
    out = []
    for dirpath, dirnames, filenames in os.walk(path):
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            st = os.lstat(full)
            out.append((full, st.st_mode, st.st_size, st.st_mtime_ns, os.listxattr(full)))
    st = os.lstat(path)
    return out + [(str(path), st.st_mode, st.st_mtime_ns, os.listxattr(path))]


ESCAPES = {
    "dotdot": ([file("../canary/evil", b"x")], "'..' component"),
    "dotdot inside": ([file("a/../../canary/evil", b"x")], "'..' component"),
    "absolute": ([file("/abs/evil", b"x")], "is absolute"),
    "symlink parent": ([symlink("link", "../canary"), file("link/evil", b"x")],
                       "'link' on its way is a symlink"),
    "absolute symlink parent": ([symlink("link", "CANARY"), file("link/evil", b"x")],
                                "'link' on its way is a symlink"),
    "dir through symlink": ([symlink("link", "../canary"), dir("link/sub")],
                            "on its way is a symlink"),
    "deep symlink parent": ([dir("a"), symlink("a/b", "../../canary"), file("a/b/c/d", b"x")],
                            "'a/b' on its way is a symlink"),
    "hard link outside": ([hardlink("stolen", "../canary/secret")], "'..' component"),
    "hard link absolute": ([hardlink("stolen", "CANARY/secret")], "is absolute"),
    "hard link through symlink": ([symlink("l", "CANARY"), hardlink("stolen", "l/secret")],
                                  "'l' on its way is a symlink"),
    "whiteout through symlink": ([symlink("l", "CANARY"), whiteout("l/secret")],
                                 "on its way is a symlink"),
    "opaque through symlink": ([symlink("l", "CANARY"), opaque("l")], "on its way is a symlink"),
    "device through symlink": ([symlink("l", "CANARY"), device("l/null")],
                               "on its way is a symlink"),
    "symlink through symlink": ([symlink("l", "CANARY"), symlink("l/x", "/etc")],
                                "on its way is a symlink"),
    "file as a parent": ([file("f", b"x"), file("f/g", b"y")], "'f' on its way is not a dir"),
    "whiteout of the parent": ([file(".wh...")], "a whiteout of '..' is no whiteout"),
    "whiteout of the dir": ([dir("d"), file("d/.wh..")], "a whiteout of '.' is no whiteout"),
    "whiteout of nothing": ([file(".wh.")], "a whiteout of '' is no whiteout"),
}


def _resolve(entries, tmp_path):
    target = str(tmp_path / "canary")
    out = []
    for info, data in entries:
        info = copy.copy(info)
        info.name = info.name.replace("CANARY", target)
        info.linkname = info.linkname.replace("CANARY", target)
        out.append((info, data))
    return out


@pytest.mark.parametrize("case", sorted(ESCAPES))
def test_every_escape_is_refused_and_nothing_is_written(tmp_path, case):
    entries, message = ESCAPES[case]
    entries = _resolve(entries, tmp_path)
    before = listing(canary(tmp_path))
    dest = tmp_path / "dest"
    dest.mkdir()
    os.chmod(dest, 0o700)
    dest_before = os.stat(dest)
    tar = layers.tar_bytes(file("ok", b"fine"), *entries, file("after", b"x"))
    with pytest.raises(LayerError, match=message) as e:
        apply.apply_layer(io.BytesIO(tar), str(dest))
    assert "layer entry" in str(e.value)
    assert listing(tmp_path / "canary") == before
    assert os.listxattr(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ["canary", "dest"]
    assert os.listdir(dest) == [] and os.listxattr(dest) == []
    st = os.stat(dest)
    assert (st.st_mode, st.st_uid, st.st_mtime_ns) == \
        (dest_before.st_mode, dest_before.st_uid, dest_before.st_mtime_ns)


def test_a_symlink_in_a_lower_layer_is_no_way_out_either(tmp_path):
    before = listing(canary(tmp_path))
    lower, dest = tmp_path / "lower", tmp_path / "dest"
    lower.mkdir()
    dest.mkdir()
    os.symlink(str(tmp_path / "canary"), lower / "lib")
    for tar, message in ((layers.tar_bytes(file("lib/evil", b"x")), "'lib' on its way is a sym"),
                         (layers.tar_bytes(hardlink("x", "lib/secret")), "'lib' on its way")):
        with pytest.raises(LayerError, match=message):
            apply.apply_layer(io.BytesIO(tar), str(dest), [str(lower)])
        assert os.listdir(dest) == []
    assert listing(tmp_path / "canary") == before


def test_replacing_entries_never_writes_through_a_symlink(tmp_path):
    before = listing(canary(tmp_path))
    c = str(tmp_path / "canary")
    dest = tmp_path / "dest"
    dest.mkdir()
    tar = layers.tar_bytes(
        symlink("f", c + "/secret"), file("f", b"mine"),          # the symlink is replaced
        symlink("d", c), dir("d"), file("d/x", b"x"),             # a dir replaces a symlink
        dir("e"), file("e/1", b"1"), file("e", b"now a file"),    # a file replaces a dir
        file("g", b"1"), file("g", b"2"),                          # the last entry wins
        symlink("h", c + "/secret"), hardlink("h2", "h"))          # a link to the symlink
    apply.apply_layer(io.BytesIO(tar), str(dest))
    assert listing(tmp_path / "canary") == before
    assert (dest / "f").read_bytes() == b"mine" and not (dest / "f").is_symlink()
    assert (dest / "d").is_dir() and not (dest / "d").is_symlink()
    assert (dest / "d/x").read_bytes() == b"x"
    assert (dest / "e").read_bytes() == b"now a file"
    assert (dest / "g").read_bytes() == b"2"
    assert os.readlink(dest / "h2") == c + "/secret"
    assert os.lstat(dest / "h2").st_ino == os.lstat(dest / "h").st_ino


def plain_tar():
    return layers.tar_bytes(file("a", b"A" * 3000), file("b", b"B" * 10), dir("c"))


BROKEN = {
    # entries: a's header at 0 and data at 512, b's header at 3584, c's at 4608, the end at 5120
    "cut in a header": (lambda t: t[:3700], "unexpected end of layer at byte 3584"),
    "cut in data": (lambda t: t[:1500], "unexpected end of layer at byte 1500"),
    "no end marker": (lambda t: t[:5120], "at byte 5120: no end-of-archive marker"),
    "bad header checksum": (lambda t: _flip(t, 3590), "byte 3584: checksum mismatch"),
    "not a tar": (lambda t: b"hello world, this is no tar" * 40, "checksum mismatch"),
    "empty": (lambda t: b"", "no end-of-archive marker"),
    "gzip cut": (lambda t: layers.gz(t)[:-20], "the gzip stream is truncated"),
    "gzip corrupt": (lambda t: _flip(layers.gz(t), -6), "bad gzip data"),
    "gzip trailing junk": (lambda t: layers.gz(t) + b"junk", "trailing garbage"),
    "zstd cut": (lambda t: layers.zst(t)[:-5], "the zstd stream is truncated"),
    "zstd corrupt": (lambda t: _flip(layers.zst(t), -2), "bad zstd data"),
    "xz": (lambda t: b"\xfd7zXZ\x00" + t, "xz-compressed layers are not supported"),
    "sparse": (lambda t: _typed(b"S"), "sparse files are not supported"),
    "unknown type": (lambda t: _typed(b"Q"), "unsupported tar entry type 'Q'"),
}


def _flip(data: bytes, at: int) -> bytes:
    b = bytearray(data)
    b[at] ^= 0xff
    return bytes(b)


def _typed(kind: bytes) -> bytes:
    info = tarfile.TarInfo("odd")
    info.type = kind
    return layers.tar_bytes((info, None), format=tarfile.GNU_FORMAT)


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_truncated_and_corrupt_streams_fail_cleanly(tmp_path, case):
    make, message = BROKEN[case]
    dest = tmp_path / "dest"
    dest.mkdir()
    path = layers.write(tmp_path / "blob", make(plain_tar()))
    with pytest.raises(LayerError, match=message):
        apply.unpack(path, str(dest))
    assert os.listdir(dest) == []


def test_a_link_header_sets_the_owner_and_mode_of_the_inode_it_shares(tmp_path):
    """containerd's and docker's appliers chown and chmod the path of a hard link as its
    header says, which changes the one inode both names share; its times are not set."""
    dest = tmp_path / "dest"
    dest.mkdir()
    apply.apply_layer(io.BytesIO(layers.tar_bytes(
        file("a", b"data", mode=0o600, uid=1, gid=1, mtime=1_400_000_000),
        hardlink("b", "a", mode=0o4711, uid=7, gid=8, mtime=1_500_000_000))), str(dest))
    a, b = os.stat(dest / "a"), os.stat(dest / "b")
    assert a.st_ino == b.st_ino
    assert (stat.S_IMODE(a.st_mode), a.st_uid, a.st_gid, a.st_mtime) == \
        (0o4711, 7, 8, 1_400_000_000)


def test_hard_links_to_lower_files_are_copied_up(tmp_path):
    lower1, lower2, dest = (tmp_path / n for n in ("l1", "l2", "dest"))
    for d in (lower1, lower2, dest):
        d.mkdir()
    apply.apply_layer(io.BytesIO(layers.tar_bytes(
        dir("usr", mode=0o750, uid=2, gid=3, mtime=1_400_000_000),
        dir("usr/bin", mode=0o711, mtime=1_400_000_001),
        file("usr/bin/tool", b"tool", mode=0o4750, uid=5, gid=6, mtime=1_300_000_000,
             xattrs={"user.a": "b"}),
        file("gone", b"g"))), str(lower2))
    apply.apply_layer(io.BytesIO(layers.tar_bytes(whiteout("gone"))), str(lower1), [str(lower2)])
    tar = layers.tar_bytes(hardlink("tool2", "usr/bin/tool", mode=0o4750, uid=5, gid=6))
    with pytest.raises(MissingLinkTarget, match="neither earlier in the layer nor in it"):
        apply.apply_layer(io.BytesIO(tar), str(dest))
    assert os.listdir(dest) == []
    applied = apply.apply_layer(io.BytesIO(tar), str(dest), [str(lower1), str(lower2)])
    assert applied.size == 4
    copy, link = os.stat(dest / "usr/bin/tool"), os.stat(dest / "tool2")
    assert copy.st_ino == link.st_ino and copy.st_nlink == 2
    assert (stat.S_IMODE(copy.st_mode), copy.st_uid, copy.st_gid, copy.st_mtime) == \
        (0o4750, 5, 6, 1_300_000_000)
    assert os.getxattr(dest / "usr/bin/tool", "user.a") == b"b"
    # the parents made for the copy have the lower dirs' metadata, as the merged view shows
    usr = os.stat(dest / "usr")
    assert (stat.S_IMODE(usr.st_mode), usr.st_uid, usr.st_gid, usr.st_mtime) == \
        (0o750, 2, 3, 1_400_000_000)
    assert os.stat(dest / "usr/bin").st_mtime == 1_400_000_001
    assert os.stat(lower2 / "usr/bin/tool").st_nlink == 1        # the lower is untouched
    # a file a layer in between deleted is no link target
    dest2 = tmp_path / "dest2"
    dest2.mkdir()
    with pytest.raises(MissingLinkTarget, match="hard link to 'gone'.*nor in its lowers"):
        apply.apply_layer(io.BytesIO(layers.tar_bytes(hardlink("x", "gone"))), str(dest2),
                          [str(lower1), str(lower2)])


def test_whiteouts_follow_the_oci_rules(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    apply.apply_layer(io.BytesIO(layers.tar_bytes(
        whiteout("x"), dir("x"), file("x/new", b"n"),      # deleted below, made again here
        dir("y"), file("y/f", b"f"), whiteout("y"),        # a whiteout hides only what's below
        file("z", b"z"), whiteout("z"),
        file(".wh..wh.plnk/123.456", b"aufs"), whiteout("gone"))), str(dest))
    assert os.getxattr(dest / "x", "trusted.overlay.opaque") == b"y"
    assert (dest / "x/new").read_bytes() == b"n"
    assert os.getxattr(dest / "y", "trusted.overlay.opaque") == b"y"
    assert (dest / "y/f").exists() and (dest / "z").read_bytes() == b"z"
    gone = os.lstat(dest / "gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert sorted(os.listdir(dest)) == ["gone", "x", "y", "z"]      # no AUFS metadata


def test_dest_must_be_an_empty_directory(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full/keep").write_text("keep")
    with pytest.raises(LayerError, match="not empty"):
        apply.apply_layer(io.BytesIO(plain_tar()), str(tmp_path / "full"))
    assert (tmp_path / "full/keep").read_text() == "keep"


def test_layers_unpack_in_threads_at_once(tmp_path):
    tars = [layers.tar_bytes(*[file(f"d{i}/f{j}", os.urandom(j * 100)) for j in range(200)])
            for i in range(4)]
    results, errors = {}, []

    def work(i):
        try:
            dest = tmp_path / f"dest{i}"
            dest.mkdir()
            results[i] = apply.unpack(layers.write(tmp_path / f"b{i}", layers.gz(tars[i])),
                                      str(dest))
        except BaseException as e:
            errors.append(e)
    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, tar in enumerate(tars):
        assert results[i].diff_id == layers.diff_id(tar)
        with tarfile.open(fileobj=io.BytesIO(tar)) as t:
            for m in t:
                data = t.extractfile(m).read()
                assert hashlib.sha256((tmp_path / f"dest{i}" / m.name).read_bytes()).digest() \
                    == hashlib.sha256(data).digest()


# -- GNU tar as the peer ---------------------------------------------------------------------------
def a_real_tree(top):
    """Files of every kind an image has, made with the real syscalls."""
    top.mkdir()
    (top / "etc").mkdir()
    (top / "etc/passwd").write_text("root:x:0:0\n")
    (top / "bin").mkdir()
    (top / "bin/busybox").write_bytes(os.urandom(70_000))
    os.chmod(top / "bin/busybox", 0o755)
    os.link(top / "bin/busybox", top / "bin/ls")
    os.symlink("busybox", top / "bin/sh")
    os.symlink("/nonexistent/absolute", top / "bin/dangling")
    (top / "bin/su").write_bytes(b"su")
    os.chown(top / "bin/su", 0, 42)
    os.chmod(top / "bin/su", 0o6755)
    (top / "bin/ping").write_bytes(b"ping")
    os.setxattr(top / "bin/ping", "security.capability", CAP_NET_RAW)
    os.setxattr(top / "etc/passwd", "user.origin", b"test")
    (top / "dev").mkdir()
    os.mknod(top / "dev/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(top / "dev/sda", stat.S_IFBLK | 0o660, os.makedev(8, 0))
    os.mkfifo(top / "dev/fifo", 0o620)
    os.chmod(top / "dev/null", 0o666)
    deep = top / ("x" * 90) / ("y" * 90) / ("z" * 90)
    deep.mkdir(parents=True)
    (deep / ("f" * 200)).write_text("deep")
    (top / "home/user").mkdir(parents=True)
    os.chown(top / "home/user", 1000, 1000)
    (top / "home/user/.rc").write_text("rc")
    os.chown(top / "home/user/.rc", 1000, 1000)
    (top / "ro").mkdir()
    (top / "ro/inside").write_text("in a read-only dir")
    os.chmod(top / "ro", 0o555)
    (top / "tmp").mkdir()
    os.chmod(top / "tmp", 0o1777)
    os.mkdir(os.path.join(os.fsencode(top), b"latin1-\xe9"))
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            os.utime(os.path.join(dirpath, name), ns=(1_000_000_000, 1_234_567_890_123_456_789),
                     follow_symlinks=False)
    return top


@pytest.mark.parametrize("fmt", ["posix", "gnu"])
def test_layers_gnu_tar_makes_unpack_to_the_same_tree(tmp_path, fmt):
    src = a_real_tree(tmp_path / "src")
    xattrs = ["--xattrs", "--xattrs-include=*"] if fmt == "posix" else []
    tar = subprocess.run(["tar", f"--format={fmt}", "--numeric-owner", *xattrs, "-C", str(src),
                          "-cf", "-", "."], check=True, capture_output=True).stdout
    dest = tmp_path / "dest"
    dest.mkdir()
    applied = apply.apply_layer(io.BytesIO(tar), str(dest))
    assert applied.diff_id == layers.diff_id(tar)
    want, got = layers.tree(src), layers.tree(dest)
    if fmt == "gnu":                  # GNU's own format has no xattrs
        want = {k: v[:7] + ({},) + v[8:] for k, v in want.items()}
    assert got == want
    assert os.stat(dest / "etc/passwd").st_mtime_ns == (
        1_234_567_890_123_456_789 if fmt == "posix" else 1_234_567_890_000_000_000)


def test_layers_written_here_are_read_by_gnu_tar(tmp_path):
    src = a_real_tree(tmp_path / "src")
    out = io.BytesIO()
    diff_id = diff.write_layer(str(src), [], out)
    assert diff_id == layers.diff_id(out.getvalue())
    dest = tmp_path / "dest"
    dest.mkdir()
    subprocess.run(["tar", "--xattrs", "--xattrs-include=*", "--numeric-owner", "-xpf", "-",
                    "-C", str(dest)], input=out.getvalue(), check=True, capture_output=True)
    assert layers.tree(dest) == layers.tree(src)


def test_many_directories_and_links_across_them(tmp_path):
    """More directories than the applier keeps open, and links that need two of them at once:
    each link lands where its entry says."""
    n = 600
    entries = [file(f"d{i:03d}/f", f"{i}".encode()) for i in range(n)]
    # links at depths that vary: which lookup finds the cache full varies too
    where = [f"d{i:03d}/" + "s/" * (i % 3) for i in range(n)]
    entries += [hardlink(where[i] + "link", f"d{n - 1 - i:03d}/f") for i in range(n)]
    entries += [dir(f"d{i:03d}", mtime=1_000_000 + i) for i in range(n)]
    dest = tmp_path / "dest"
    dest.mkdir()
    apply.apply_layer(io.BytesIO(layers.tar_bytes(*entries)), str(dest))
    for i in range(n):
        d = dest / f"d{i:03d}"
        assert sorted(os.listdir(d)) == (["f", "link"] if i % 3 == 0 else ["f", "s"])
        assert (dest / where[i] / "link").read_text() == str(n - 1 - i)
        assert os.stat(d).st_mtime == 1_000_000 + i
    assert len(os.listdir(f"/proc/{os.getpid()}/fd")) < 64     # none left open


def test_a_link_cannot_replace_what_holds_its_target(tmp_path):
    dest = tmp_path / "dest"
    dest.mkdir()
    tar = layers.tar_bytes(dir("a"), file("a/f", b"x"), hardlink("a", "a/f"))
    with pytest.raises(LayerError, match="'a': a hard link to 'a/f', inside what it replaces"):
        apply.apply_layer(io.BytesIO(tar), str(dest))
    assert os.listdir(dest) == []


# -- the end of a layer, sparse files, fds -------------------------------------------------------
def gnu_layer(tmp_path, name: str, *opts) -> bytes:
    """A GNU tar (posix format) of a directory holding one file, name.txt."""
    src = tmp_path / f"src-{name}"
    src.mkdir()
    (src / f"{name}.txt").write_bytes(name.encode() * 3000)
    return subprocess.run(["tar", "--format=posix", *opts, "-C", str(src), "-cf", "-", "."],
                          check=True, capture_output=True).stdout


def without_end(tar: bytes) -> bytes:
    end = len(tar.rstrip(b"\0"))
    return tar[:end + -end % 512]


def test_a_lone_zero_block_is_no_end_of_the_layer(tmp_path):
    """Go's archive/tar (containerd's) takes a header after one zero block for a corrupt
    archive: the end would hide b.txt while the diff_id, over every byte, still matched."""
    a, b = gnu_layer(tmp_path, "a"), gnu_layer(tmp_path, "b")
    dest = tmp_path / "dest"
    dest.mkdir()
    blob = layers.write(tmp_path / "blob", layers.gz(without_end(a) + bytes(512) + b))
    with pytest.raises(LayerError, match=f"bad tar header at byte {len(without_end(a)) + 512}: "
                                         "invalid tar header.*after entry './a.txt'"):
        apply.unpack(blob, str(dest))
    assert os.listdir(dest) == []
    # two zero blocks, or one and the end of the stream, end it; what follows still counts
    for tar in (without_end(a) + bytes(1024) + b"after the end" * 99, without_end(a) + bytes(512)):
        dest = tmp_path / f"dest{len(tar)}"
        dest.mkdir()
        applied = apply.unpack(layers.write(tmp_path / "blob", layers.zst(tar)), str(dest))
        assert applied.diff_id == layers.diff_id(tar)
        assert os.listdir(dest) == ["a.txt"]


@pytest.mark.parametrize("version", ["0.0", "0.1", "1.0"])
def test_posix_sparse_files_are_refused(tmp_path, version):
    """`tar --sparse --format=posix` marks a sparse file with GNU.sparse.* records on a
    regular entry: unpacked as one, the file would be its sparse map and pieces."""
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "holes", "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"data")
    tar = subprocess.run(["tar", "--format=posix", "--sparse", f"--sparse-version={version}",
                          "-C", str(src), "-cf", "-", "holes"], check=True,
                         capture_output=True).stdout
    dest = tmp_path / "dest"
    dest.mkdir()
    with pytest.raises(LayerError, match="layer entry 'holes'.*sparse files are not supported"):
        apply.apply_layer(io.BytesIO(tar), str(dest))
    assert os.listdir(dest) == []


FD_LIMITED = """
import io, os, resource, sys, threading
import layers
from supervisor.snapshots import apply
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (160, hard))
deep = "/".join(["d"] * 300)
tar = layers.tar_bytes(layers.file(deep + "/f", b"x"),
                       *[layers.file(f"w{i}/f", b"y") for i in range(200)])
lower_link = layers.tar_bytes(layers.hardlink(deep + "/link", deep + "/f"))
base, errors = sys.argv[1], []
def run(n):
    try:
        dest = os.path.join(base, str(n))
        os.mkdir(dest)
        apply.apply_layer(io.BytesIO(tar), dest)
        os.mkdir(dest + "-up")       # a link to a file of the lower, 300 dirs down
        apply.apply_layer(io.BytesIO(lower_link), dest + "-up", [dest])
    except BaseException as e:
        errors.append(repr(e)[:300])
threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors or "ok")
"""


def test_deep_layers_unpack_two_at_once_under_a_small_fd_limit(tmp_path):
    """A walk past the applier's dir cache closes what it passes: two unpacks of a path 300
    directories deep (and of a link to a file that deep in a lower layer), in threads, under a
    soft limit of 160 fds; each used to hold an fd per directory on the way."""
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(os.path.dirname(here)),
                                                       here]))
    p = subprocess.run([sys.executable, "-c", FD_LIMITED, str(tmp_path)], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.stdout.strip() == "ok", p.stdout + p.stderr
    for n in "01":
        assert (tmp_path / f"{n}-up" / "/".join(["d"] * 300) / "link").read_bytes() == b"x"
