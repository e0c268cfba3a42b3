"""The content store on a real file system: blobs are whole and what their name says, whatever
happens to a write (a wrong digest or size, an exception, a full disk), and a named ingest
resumes where it stopped."""
import hashlib
import os
import subprocess
import threading

import pytest

from supervisor.content.store import ContentError, ContentStore, DigestMismatch, NotFound, \
    check_digest, digest_of


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_put_read_list_delete(tmp_path):
    cs = ContentStore(str(tmp_path))
    d = cs.put(b"hello")
    assert d == sha(b"hello") == digest_of(b"hello")
    assert cs.read(d) == b"hello" and cs.size(d) == 5 and cs.exists(d)
    assert list(cs.list()) == [(d, 5)]
    assert oct(os.stat(cs.path(d)).st_mode & 0o777) == "0o444"
    assert cs.delete(d) and not cs.exists(d) and not cs.delete(d)
    with pytest.raises(NotFound):
        cs.open(d)
    assert os.listdir(cs.ingests) == []


@pytest.mark.parametrize("bad", ["", "sha256", "md5:abc", "sha256:" + "A" * 64, "sha256:12",
                                 "sha256:" + "g" * 64, "sha256:../../etc/passwd"])
def test_bad_digests_are_refused(tmp_path, bad):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(ContentError):
        check_digest(bad)
    with pytest.raises(ContentError):
        cs.writer(expected=bad)
    with pytest.raises(ContentError):
        cs.exists(bad)


def test_mismatched_digest_or_size_leaves_nothing(tmp_path):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(DigestMismatch, match="digest mismatch"):
        cs.put(b"hello", expected=sha(b"other"))
    with cs.writer(expected=sha(b"hello"), size=6) as w:
        w.write(b"hello")
        with pytest.raises(DigestMismatch, match="expected 6"):
            w.commit()
    with pytest.raises(DigestMismatch):      # a named ingest with the wrong bytes is dropped
        with cs.writer(expected=sha(b"abc"), ref="r") as w:
            w.write(b"abd")
            w.commit()
    assert list(cs.list()) == [] and os.listdir(cs.ingests) == []


def test_exception_while_writing_leaves_no_blob_nor_ingest(tmp_path):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(RuntimeError):
        with cs.writer() as w:
            w.write(b"partial")
            raise RuntimeError("interrupted")
    assert list(cs.list()) == [] and os.listdir(cs.ingests) == []


def test_named_ingest_resumes(tmp_path):
    cs = ContentStore(str(tmp_path))
    data = os.urandom(3 << 20)
    with cs.writer(expected=sha(data), size=len(data), ref="layer") as w:
        w.write(data[:1000000])
    # a new store (hawserd restarted) keeps it, a second writer appends to it
    cs = ContentStore(str(tmp_path))
    cs.clean_ingests()
    with cs.writer(expected=sha(data), size=len(data), ref="layer") as w:
        assert w.offset == 1000000 and not w.exists
        w.write(data[w.offset:])
        assert w.commit() == sha(data)
    assert cs.read(sha(data)) == data and os.listdir(cs.ingests) == []
    with cs.writer(expected=sha(data), ref="layer") as w:     # already there
        assert w.exists and w.commit() == sha(data)
    assert os.listdir(cs.ingests) == []


def test_restart_drops_what_was_written(tmp_path):
    cs = ContentStore(str(tmp_path))
    with cs.writer(ref="x") as w:
        w.write(b"garbage")
    with cs.writer(expected=sha(b"good"), ref="x") as w:
        assert w.offset == 7
        w.restart()
        w.write(b"good")
        assert w.commit() == sha(b"good")


def test_start_up_removes_unnamed_and_expired_ingests(tmp_path):
    cs = ContentStore(str(tmp_path))
    w = cs.writer()
    w.write(b"crash")        # never closed: as if hawserd was killed
    named = cs.writer(ref="keep")
    named.write(b"part")
    named.close()
    old = cs.writer(ref="old")
    old.write(b"part")
    old.close()
    os.utime(os.path.join(old.dir, "data"), (0, 0))
    cs.clean_ingests()
    assert os.listdir(cs.ingests) == [os.path.basename(named.dir)]


def test_second_writer_of_a_ref_waits_for_the_first(tmp_path):
    cs = ContentStore(str(tmp_path))
    first = cs.writer(expected=sha(b"blob"), ref="same")
    got = []
    t = threading.Thread(target=lambda: got.append(cs.writer(expected=sha(b"blob"), ref="same")))
    t.start()
    t.join(0.3)
    assert t.is_alive()
    first.write(b"blob")
    first.commit()
    t.join(5)
    assert got and got[0].exists
    got[0].close()
    with pytest.raises(ContentError, match="busy"):
        held = cs.writer(ref="held")
        try:
            cs.writer(ref="held", wait=0.1)
        finally:
            held.close()


def test_full_disk_leaves_no_blob(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], check=True)
    try:
        cs = ContentStore(str(mnt))
        with pytest.raises(OSError) as e:
            with cs.writer() as w:
                for _ in range(4):
                    w.write(os.urandom(512 << 10))
        assert e.value.errno == 28
        assert list(cs.list()) == [] and os.listdir(cs.ingests) == []
        assert cs.put(b"small") == sha(b"small")     # usable again
    finally:
        subprocess.run(["umount", str(mnt)], check=True)
