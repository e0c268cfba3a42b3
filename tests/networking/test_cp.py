"""docker cp (supervisor/containers/cp.py) in and out of a real root filesystem (a copy of the
busybox rootfs), including hostile ones: /etc a symlink to /, links that name the host's files,
tar entries that climb out. Host files next to the rootfs are the canaries: never read, never
written. Every test works in its own tmp_path; host paths a bad copy could reach are checked,
and removed by a finalizer if one ever appears."""
from __future__ import annotations

import gzip
import io
import os
import shutil
import stat
import tarfile
import uuid

import pytest

from supervisor.containers.cp import tar_in, tar_out, tar_stream
from supervisor.errors import ApiError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="owners and devices need root")


@pytest.fixture
def rootfs(tmp_path, busybox_rootfs):
    root = tmp_path / "rootfs"
    shutil.copytree(busybox_rootfs, root, symlinks=True)
    return root


@pytest.fixture
def host(tmp_path):
    """Host files beside the rootfs: a secret and an empty directory."""
    d = tmp_path / "host"
    (d / "dir").mkdir(parents=True)
    (d / "secret").write_text("host secret\n")
    return d


@pytest.fixture
def host_etc_name():
    """A name no file in the host's / or /etc has; removed from there if a copy ever wrote it."""
    name = f"hawser-cp-{uuid.uuid4().hex[:10]}"
    yield name
    for where in (f"/etc/{name}", f"/{name}"):
        if os.path.lexists(where):
            os.unlink(where)
            pytest.fail(f"a copy wrote the host's {where}")


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def read_tar(root, path) -> dict[str, tuple[tarfile.TarInfo, bytes | None]]:
    before = fds()
    buf = io.BytesIO()
    tar_out(str(root), path, buf)
    assert fds() == before
    buf.seek(0)
    out = {}
    with tarfile.open(fileobj=buf, mode="r:") as tf:
        for m in tf:
            f = tf.extractfile(m) if m.isreg() else None
            out[m.name] = (m, f.read() if f else None)
    return out


def make_tar(*entries) -> io.BytesIO:
    """entries: (name, kind, extra) with kind file (extra: bytes), dir, symlink/hardlink
    (extra: the link's target)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for name, kind, extra in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_600_000_000
            if kind == "file":
                info.size = len(extra)
                tf.addfile(info, io.BytesIO(extra))
                continue
            info.type = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                         "hardlink": tarfile.LNKTYPE}[kind]
            info.mode = 0o755
            info.linkname = extra or ""
            tf.addfile(info)
    buf.seek(0)
    return buf


def tree(path) -> dict[str, tuple]:
    """Every entry under path with its type, size, mode, link target (what a bad copy would
    change)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            out[os.path.relpath(p, path)] = (stat.S_IFMT(st.st_mode), st.st_size, st.st_mode,
                                             os.readlink(p) if stat.S_ISLNK(st.st_mode) else "")
    return out


# -- out ------------------------------------------------------------------------------------------
def test_a_file_comes_out_named_like_its_last_component(rootfs):
    got = read_tar(rootfs, "/etc/hostname")
    assert list(got) == ["hostname"]
    info, data = got["hostname"]
    assert info.isreg() and data == b"busybox\n"
    assert info.mode == stat.S_IMODE(os.stat(rootfs / "etc/hostname").st_mode)


def test_a_directory_comes_out_with_everything_in_it(rootfs):
    d = rootfs / "srv"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "file").write_bytes(b"x" * 70000)
    os.chown(d / "sub" / "file", 1000, 1000)
    os.chmod(d / "sub" / "file", 0o4750)
    os.utime(d / "sub" / "file", (1_500_000_000, 1_500_000_000))
    os.link(d / "sub" / "file", d / "hard")
    os.symlink("/etc/shadow", d / "abs-link")
    os.mkfifo(d / "fifo")
    os.mknod(d / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.setxattr(d / "sub" / "file", "user.origin", b"from the image")
    got = read_tar(rootfs, "/srv")
    assert sorted(got) == ["srv", "srv/abs-link", "srv/fifo", "srv/hard", "srv/null", "srv/sub",
                           "srv/sub/file"]
    assert got["srv"][0].isdir()
    # the hard link comes first in the walk (a directory's files before its subdirectories)
    first, second = got["srv/hard"][0], got["srv/sub/file"][0]
    assert first.isreg() and got["srv/hard"][1] == b"x" * 70000
    assert second.islnk() and second.linkname == "srv/hard"
    assert (first.uid, first.gid, first.mode, first.mtime) == (1000, 1000, 0o4750, 1_500_000_000)
    assert first.pax_headers.get("SCHILY.xattr.user.origin") == "from the image"
    assert got["srv/abs-link"][0].issym() and got["srv/abs-link"][0].linkname == "/etc/shadow"
    assert got["srv/fifo"][0].isfifo()
    null = got["srv/null"][0]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3)


def test_a_symlink_comes_out_as_a_symlink_and_a_trailing_slash_follows_it(rootfs):
    os.symlink("/etc", rootfs / "conf")
    got = read_tar(rootfs, "/conf")
    assert list(got) == ["conf"] and got["conf"][0].linkname == "/etc"
    got = read_tar(rootfs, "/conf/")
    assert got["conf"][0].isdir() and got["conf/hostname"][1] == b"busybox\n"


def test_dir_dot_gives_the_content_only(rootfs):
    got = read_tar(rootfs, "/home/.")
    assert sorted(got) == ["user"]


@pytest.mark.parametrize("path, code, message", [
    ("/nope", "NOT_FOUND", "no such file or directory: /nope in the container"),
    ("/etc/nope/x", "NOT_FOUND", "no such file or directory: /etc/nope/x in the container"),
    ("/etc/hostname/", "INVALID_ARGUMENT", "not a directory: /etc/hostname/ in the container"),
    ("/etc/hostname/x", "INVALID_ARGUMENT", "not a directory: /etc/hostname/x in the container"),
    ("", "INVALID_ARGUMENT", "no path given in the container"),
])
def test_out_errors(rootfs, path, code, message):
    before = fds()
    with pytest.raises(ApiError) as e:
        tar_out(str(rootfs), path, io.BytesIO())
    assert (e.value.code, e.value.message) == (code, message)
    assert fds() == before


def test_symlinks_in_the_container_never_read_the_host(rootfs, host):
    shutil.rmtree(rootfs / "etc")
    os.symlink("/", rootfs / "etc")                       # /etc -> /
    (rootfs / "hostname").write_text("the container's own\n")
    os.symlink(str(host / "secret"), rootfs / "leak")      # the host path, absolute
    os.symlink("../../../../../../../.." + str(host), rootfs / "up")
    (rootfs / "data").mkdir()
    os.symlink(str(host / "secret"), rootfs / "data" / "leak")
    assert read_tar(rootfs, "/etc/hostname")["hostname"][1] == b"the container's own\n"
    # the host's /etc/passwd and the secret are outside: not found inside the container
    for path in ("/etc/passwd", "/etc/etc/passwd", "/leak/", "/up/secret", "/../../etc/passwd"):
        with pytest.raises(ApiError) as e:
            tar_out(str(rootfs), path, io.BytesIO())
        assert e.value.code in ("NOT_FOUND", "INVALID_ARGUMENT"), path
    # links are stored as links, in the tree and at the top, their targets never read
    got = read_tar(rootfs, "/data")
    assert got["data/leak"][0].issym() and got["data/leak"][1] is None
    whole = io.BytesIO()
    tar_out(str(rootfs), "/", whole)
    assert b"host secret" not in whole.getvalue()


def test_tar_stream_resolves_before_the_first_piece(rootfs):
    with pytest.raises(ApiError):
        tar_stream(str(rootfs), "/nope")
    before = fds()
    pieces = tar_stream(str(rootfs), "/bin")
    next(pieces)
    pieces.close()                  # a client that goes away: the fd is closed
    assert fds() == before


# -- in -------------------------------------------------------------------------------------------
def test_a_tar_goes_in_with_owners_modes_times_links_and_xattrs(rootfs, tmp_path):
    src = tmp_path / "src"
    (src / "d" / "e").mkdir(parents=True)
    (src / "d" / "f").write_bytes(b"content")
    os.chown(src / "d" / "f", 1000, 10)
    os.chmod(src / "d" / "f", 0o2640)
    os.setxattr(src / "d" / "f", "user.k", b"v")
    os.link(src / "d" / "f", src / "d" / "e" / "g")
    os.symlink("../f", src / "d" / "e" / "rel")
    os.mkfifo(src / "d" / "p")
    os.chmod(src / "d" / "e", 0o711)
    os.utime(src / "d" / "e", (1_400_000_000, 1_400_000_000))
    os.utime(src / "d", (1_300_000_000, 1_300_000_000))
    buf = io.BytesIO()
    tar_out(str(src), "/d", buf)
    buf.seek(0)
    before = fds()
    tar_in(str(rootfs), "/tmp", buf)
    assert fds() == before
    got = rootfs / "tmp" / "d"
    assert tree(got) == tree(src / "d")
    st = os.stat(got / "f")
    assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1000, 10, 0o2640)
    assert os.stat(got / "e" / "g").st_ino == st.st_ino
    assert os.getxattr(got / "f", "user.k") == b"v"
    assert os.readlink(got / "e" / "rel") == "../f"
    assert os.stat(got / "e").st_mtime == 1_400_000_000
    assert os.stat(got).st_mtime == 1_300_000_000


def test_a_compressed_tar_goes_in_and_replaces_what_is_there(rootfs):
    (rootfs / "tmp" / "old").mkdir()
    (rootfs / "tmp" / "old" / "x").write_text("old")
    raw = make_tar(("old", "file", b"a file now"), ("new/deep/file", "file", b"parents made"))
    tar_in(str(rootfs), "/tmp/", io.BytesIO(gzip.compress(raw.getvalue())))
    assert (rootfs / "tmp" / "old").read_bytes() == b"a file now"
    assert (rootfs / "tmp" / "new" / "deep" / "file").read_bytes() == b"parents made"


@pytest.mark.parametrize("path, code, message", [
    ("/nope", "NOT_FOUND", "no such file or directory: /nope in the container"),
    ("/etc/hostname", "INVALID_ARGUMENT", "not a directory: /etc/hostname in the container"),
])
def test_in_needs_an_existing_directory(rootfs, path, code, message):
    with pytest.raises(ApiError) as e:
        tar_in(str(rootfs), path, make_tar(("x", "file", b"x")))
    assert (e.value.code, e.value.message) == (code, message)


def test_not_a_tar_is_refused(rootfs):
    with pytest.raises(ApiError) as e:
        tar_in(str(rootfs), "/tmp", io.BytesIO(b"this is no tar" * 100))
    assert e.value.code == "INVALID_ARGUMENT" and "copy into /tmp" in e.value.message
    assert os.listdir(rootfs / "tmp") == []


# ESCAPE: a name of the test's own (a bad copy would write it in the host's /, or beside the rootfs)
@pytest.mark.parametrize("entries, why", [
    ([("../ESCAPE", "file", b"x")], "'..'"),
    ([("a/../../ESCAPE", "file", b"x")], "'..'"),
    ([("/ESCAPE", "file", b"x")], "absolute"),
    ([("out", "symlink", "/"), ("out/ESCAPE", "file", b"x")], "leads out"),
    ([("out", "symlink", "../.."), ("out/ESCAPE", "file", b"x")], "leads out"),
    ([("h", "hardlink", "../etc/hostname")], "'..'"),
    ([("h", "hardlink", "/etc/hostname")], "absolute"),
    ([("out", "symlink", ".."), ("h", "hardlink", "out/etc/hostname")], "leads out"),
])
def test_entries_that_leave_the_directory_are_refused(rootfs, tmp_path, host_etc_name, entries,
                                                    why):
    entries = [(name.replace("ESCAPE", host_etc_name), kind, extra)
               for name, kind, extra in entries]
    dest = rootfs / "srv"
    dest.mkdir()
    outside = tree(rootfs)
    host_before = tree(tmp_path.parent)
    with pytest.raises(ApiError) as e:
        tar_in(str(rootfs), "/srv", make_tar(("first", "file", b"in"), *entries))
    assert e.value.code == "INVALID_ARGUMENT" and why in e.value.message, e.value.message
    # what came before the bad entry is in; nothing outside /srv changed, nor on the host
    assert (dest / "first").read_bytes() == b"in"
    now = tree(rootfs)
    assert {k: v for k, v in now.items() if not k.startswith("srv")} == \
        {k: v for k, v in outside.items() if not k.startswith("srv")}
    assert {k for k in tree(tmp_path.parent) if "rootfs" not in k} == \
        {k for k in host_before if "rootfs" not in k}


def test_symlinks_in_the_container_never_lead_a_copy_onto_the_host(rootfs, host, host_etc_name):
    shutil.rmtree(rootfs / "etc")
    os.symlink("/", rootfs / "etc")                        # /etc -> /
    os.symlink(str(host / "dir"), rootfs / "tmp" / "hostdir")
    os.symlink("../../../../../../../../..", rootfs / "tmp" / "up")
    # /etc is the container's / : the file lands there, not in the host's /etc
    tar_in(str(rootfs), "/etc", make_tar((host_etc_name, "file", b"inside")))
    assert (rootfs / host_etc_name).read_bytes() == b"inside"
    # into a link to a host directory: resolved inside the container, where it does not exist
    with pytest.raises(ApiError) as e:
        tar_in(str(rootfs), "/tmp/hostdir", make_tar(("x", "file", b"x")))
    assert e.value.code == "NOT_FOUND"
    # through links below the destination: refused
    for entry in ("hostdir/x", f"up/etc/{host_etc_name}", f"up{host}/dir/x"):
        with pytest.raises(ApiError):
            tar_in(str(rootfs), "/tmp", make_tar((entry, "file", b"x")))
    assert os.listdir(host / "dir") == []
    assert (host / "secret").read_text() == "host secret\n"
