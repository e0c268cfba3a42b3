"""hawserd's FIFO reader (supervisor/tasks/fifos.py) on real FIFOs: no EOF before the writer
came, everything written is read, EOF when the last writer goes, finish() drains what is left,
and many FIFOs share one thread."""
import os
import threading
import time

from supervisor.tasks import fifos


def reader_of(path):
    got, eof = [], threading.Event()
    r = fifos.read_fifo(str(path), got.append, eof.set)
    return r, got, eof


def fifo(tmp_path, name="out"):
    path = tmp_path / name
    os.mkfifo(path, 0o600)
    return path


def test_no_eof_before_a_writer_then_all_data_and_eof(tmp_path):
    path = fifo(tmp_path)
    r, got, eof = reader_of(path)
    assert not eof.wait(0.3)            # the shim has not opened its end yet
    w = os.open(path, os.O_WRONLY)
    os.write(w, b"a" * 100_000)
    os.write(w, b"end\n")
    assert not eof.wait(0.2)            # still a writer
    os.close(w)
    assert eof.wait(5) and r.done.is_set()
    assert b"".join(got) == b"a" * 100_000 + b"end\n"
    assert r.fd is None


def test_finish_reads_what_is_left_then_ends(tmp_path):
    path = fifo(tmp_path)
    r, got, eof = reader_of(path)
    w = os.open(path, os.O_WRONLY)
    fifos.REACTOR.remove(r.fd)          # stop the reactor reading: the data stays queued
    os.write(w, b"left over")
    r.finish()
    assert eof.is_set() and b"".join(got) == b"left over"
    os.close(w)
    r.finish()                          # a second finish is nothing
    assert got == [b"left over"]


def test_a_finish_without_any_writer_is_an_eof(tmp_path):
    r, got, eof = reader_of(fifo(tmp_path))
    r.finish()
    assert eof.is_set() and got == []


def test_many_fifos_one_thread(tmp_path):
    before = threading.active_count()
    readers = [reader_of(fifo(tmp_path, f"f{i}")) for i in range(50)]
    assert threading.active_count() <= max(before, 1) + 1
    writers = [os.open(tmp_path / f"f{i}", os.O_WRONLY) for i in range(50)]
    for i, w in enumerate(writers):
        os.write(w, f"{i}\n".encode())
        os.close(w)
    deadline = time.monotonic() + 5
    for i, (r, got, eof) in enumerate(readers):
        assert eof.wait(max(0.0, deadline - time.monotonic()))
        assert b"".join(got) == f"{i}\n".encode()
