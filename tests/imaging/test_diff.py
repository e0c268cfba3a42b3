"""A container's changes from its upper dir: made through a real overlay mount of a snapshot
(writes, deletes, renames, rm -rf and mkdir again, chmod, links, devices, xattrs), listed as
docker diff lists them, and written as a layer that unpacked on the same layers shows the
same merged view."""
import hashlib
import io
import os
import shutil
import stat
import tarfile

import pytest

import layers
from layers import dir, file, whiteout
from supervisor.snapshots import apply, diff
from supervisor.snapshots.diff import DiffError

BASE = layers.tar_bytes(
    dir("etc"), file("etc/passwd", b"root:x:0:0\n"), file("etc/hostname", b"base\n"),
    file("etc/motd", b"hi\n"), dir("etc/ssl"), dir("etc/ssl/certs"),
    file("etc/ssl/certs/a", b"a"), file("etc/ssl/certs/b", b"b"), file("etc/ssl/openssl.cnf"),
    dir("var"), dir("var/lib"), dir("var/lib/data"), file("var/lib/data/1", b"1"),
    file("var/lib/data/2", b"2"), dir("var/log"), file("var/log/old.log", b"log"),
    dir("usr"), dir("usr/bin"), file("usr/bin/tool", b"tool", mode=0o755),
    file("usr/bin/other", b"other", mode=0o755), dir("home"),
    dir("home/user", uid=1000, gid=1000), file("home/user/.profile", b"p", uid=1000, gid=1000),
    dir("opt"), dir("opt/keep"), file("opt/keep/file", b"keep"), dir("tmp", mode=0o1777))
TOP = layers.tar_bytes(whiteout("etc/motd"), dir("srv"), dir("srv/www"),
                       file("srv/www/index.html", b"<html>"))

EXPECTED = [
    ("C", "/etc"), ("C", "/etc/hostname"), ("D", "/etc/passwd"), ("C", "/etc/ssl"),
    ("D", "/etc/ssl/certs"), ("A", "/etc/ssl/mine"), ("D", "/etc/ssl/openssl.cnf"),
    ("C", "/home"), ("C", "/home/user"),
    ("C", "/opt"), ("C", "/opt/keep"), ("C", "/opt/keep/file"),
    ("A", "/root"), ("A", "/root/new.txt"), ("A", "/run"), ("A", "/run/dev"),
    ("A", "/run/fifo"), ("C", "/srv"), ("A", "/srv/link"), ("C", "/srv/www"),
    ("C", "/srv/www/index.html"), ("C", "/tmp"),
    ("C", "/usr"), ("C", "/usr/bin"), ("C", "/usr/bin/tool"), ("A", "/usr/bin/tool2"),
    ("C", "/var"), ("C", "/var/lib"), ("D", "/var/lib/data"), ("C", "/var/log"),
    ("A", "/var/log/new.log"), ("D", "/var/log/old.log"),
]


def a_container(snaps, tmp_path):
    """A container on BASE+TOP that changed its root filesystem through its mount."""
    layers.commit_layer(snaps, "base", BASE)
    layers.commit_layer(snaps, "top", TOP, parent="base")
    r = tmp_path / "rootfs"
    with layers.mounted(snaps.prepare("c", "top"), r):
        (r / "root").mkdir(mode=0o700)
        (r / "root/new.txt").write_text("new")
        (r / "etc/hostname").write_text("container\n")
        os.unlink(r / "etc/passwd")
        shutil.rmtree(r / "var/lib/data")
        shutil.rmtree(r / "etc/ssl")                       # gone, then made again: opaque
        (r / "etc/ssl").mkdir()
        (r / "etc/ssl/mine").write_text("mine")
        os.rename(r / "var/log/old.log", r / "var/log/new.log")
        os.chmod(r / "usr/bin/tool", 0o700)
        os.link(r / "usr/bin/tool", r / "usr/bin/tool2")
        os.symlink("www", r / "srv/link")
        (r / "run").mkdir()
        os.mkfifo(r / "run/fifo", 0o600)
        os.mknod(r / "run/dev", stat.S_IFCHR | 0o600, os.makedev(10, 200))
        os.setxattr(r / "opt/keep/file", "user.tag", b"\xff\x00binary")
        os.chown(r / "srv/www/index.html", 1000, 1000)
        os.setxattr(r / "srv/www", "user.dir", b"1")
        (r / "tmp/scratch").write_text("x")                # made and deleted: only /tmp moved
        os.unlink(r / "tmp/scratch")
        os.utime(r / "home/user", (1, 1))
        # a running container's diff: while it is mounted
        assert diff.changes(snaps.upper("c"), snaps.lowers("c")) == EXPECTED
    return r


def test_changes_are_docker_diffs(snaps, tmp_path):
    a_container(snaps, tmp_path)
    assert diff.changes(snaps.upper("c"), snaps.lowers("c")) == EXPECTED
    # a container that changed nothing, and one on no image
    snaps.prepare("idle", "top")
    assert diff.changes(snaps.upper("idle"), snaps.lowers("idle")) == []
    snaps.prepare("scratch")
    os.mkdir(snaps.upper("scratch") + "/x")
    assert diff.changes(snaps.upper("scratch"), []) == [("A", "/x")]


def test_the_layer_written_from_it_gives_the_same_view(snaps, tmp_path):
    r = a_container(snaps, tmp_path)
    out = io.BytesIO()
    diff_id = diff.write_layer(snaps.upper("c"), snaps.lowers("c"), out)
    tar = out.getvalue()
    assert diff_id == "sha256:" + hashlib.sha256(tar).hexdigest()
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        members = {m.name: m for m in t}
    assert {"etc/.wh.passwd", "var/lib/.wh.data", "var/log/.wh.old.log",
            "etc/ssl/.wh..wh..opq"} <= set(members)
    assert not any(".wh." in n for n in members if n.startswith("tmp") or "motd" in n)
    link = members["usr/bin/tool2"] if members["usr/bin/tool2"].islnk() \
        else members["usr/bin/tool"]
    assert link.islnk() and link.linkname in ("usr/bin/tool", "usr/bin/tool2")
    assert members["opt/keep/file"].pax_headers["SCHILY.xattr.user.tag"].encode(
        "utf-8", "surrogateescape") == b"\xff\x00binary"
    assert not any(k.startswith("SCHILY.xattr.trusted.overlay") for m in members.values()
                   for k in m.pax_headers)
    assert members["run/dev"].ischr() and members["run/dev"].devmajor == 10
    assert members["srv/www/index.html"].uid == 1000
    assert members["srv/www"].pax_headers["SCHILY.xattr.user.dir"] == "1"

    # unpacked on the same layers: the same merged view as the container's
    key = "extract-diff"
    snaps.prepare(key, "", labels={"hawser/extract": "1"})
    applied = apply.apply_layer(io.BytesIO(tar), snaps.upper(key), snaps.lowers("c"))
    assert applied.diff_id == diff_id
    snaps.commit("committed", key, parent="top")
    with layers.mounted(snaps.mounts("c"), r):
        before = layers.tree(r)
    again = tmp_path / "again"
    with layers.mounted(snaps.prepare("c2", "committed"), again):
        after = layers.tree(again)
    assert after == before
    assert diff.changes(snaps.upper("committed"), snaps.lowers("committed")) == EXPECTED


def test_a_layer_of_nothing_and_sockets_left_out(snaps, tmp_path):
    snaps.prepare("c")
    up = snaps.upper("c")
    import socket
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(up + "/sock")
        out = io.BytesIO()
        diff.write_layer(up, [], out)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert t.getnames() == []
    assert diff.changes(up, []) == [("A", "/sock")]


def test_an_upper_with_overlay_redirects_is_refused(tmp_path):
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    (upper / "moved").mkdir(parents=True)
    (lower / "orig").mkdir(parents=True)
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/orig")
    with pytest.raises(DiffError, match="moved: has trusted.overlay.redirect"):
        diff.changes(str(upper), [str(lower)])
    with pytest.raises(DiffError, match="redirect_dir or metacopy"):
        diff.write_layer(str(upper), [str(lower)], io.BytesIO())


def test_symlinked_dirs_in_the_upper_are_not_followed(tmp_path):
    """A container can put a symlink to the host's / in its upper: the diff lists the link,
    the layer holds the link, and nothing of what it points to."""
    upper = tmp_path / "upper"
    upper.mkdir()
    (tmp_path / "host").mkdir()
    (tmp_path / "host/secret").write_text("secret")
    os.symlink(str(tmp_path / "host"), upper / "escape")
    assert diff.changes(str(upper), []) == [("A", "/escape")]
    out = io.BytesIO()
    diff.write_layer(str(upper), [], out)
    assert b"secret" not in out.getvalue().replace(str(tmp_path).encode(), b"")
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as t:
        assert [(m.name, m.issym()) for m in t] == [("escape", True)]
