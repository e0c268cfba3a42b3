"""Unit tests of runtime.state: ids, timestamps, /proc start times, derived status, the state dir.

No containers: the "init" of a fake container is the test process itself (or a forked child)."""
from __future__ import annotations

import fcntl
import os
import time

import pytest

from runtime import jsonlite, state
from runtime.errors import HawserError, NotExist
from runtime.state import Container, check_id, proc_start_time, rfc3339


# --- ids -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("cid", ["a", "abc", "A1", "a.b_c+d-e", "a..", "-x", "+",
                                 "0", "x" * 255])
def test_valid_ids(cid):
    check_id(cid)


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "/a", "a b", "a\n", "a\0", "ä", "a:b",
                                 "a*", "x" * 256, "../x",
                                 # a leading dot is refused: .validated and .seccomp are caches
                                 "...", ".a", ".validated"])
def test_invalid_ids(cid):
    with pytest.raises(HawserError, match=r"^invalid container id "):
        check_id(cid)


# --- rfc3339 (Go's time.RFC3339Nano: trailing zeros of the fraction trimmed) -----------------------

@pytest.mark.parametrize("ns, text", [
    (0, "1970-01-01T00:00:00Z"),
    (1_500_000_000, "1970-01-01T00:00:01.5Z"),
    (123_000_000, "1970-01-01T00:00:00.123Z"),
    (1_000_000_001, "1970-01-01T00:00:01.000000001Z"),
    (1_700_000_000_000_000_000, "2023-11-14T22:13:20Z"),
    (1_700_000_000_123_456_789, "2023-11-14T22:13:20.123456789Z"),
    (1_700_000_000_120_000_000, "2023-11-14T22:13:20.12Z"),
])
def test_rfc3339(ns, text):
    assert rfc3339(ns) == text


def test_rfc3339_is_utc(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time.tzset()
    try:
        assert rfc3339(0) == "1970-01-01T00:00:00Z"
    finally:
        monkeypatch.undo()
        time.tzset()


# --- proc_start_time -------------------------------------------------------------------------------

def _stat_field_22(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return int(text[text.rindex(")") + 2:].split()[19])


def test_proc_start_time_of_self():
    st = proc_start_time(os.getpid())
    assert isinstance(st, int) and st > 0
    assert st == _stat_field_22(os.getpid())
    assert proc_start_time(os.getpid()) == st           # stable


def test_proc_start_time_no_such_pid():
    with open("/proc/sys/kernel/pid_max") as f:
        assert proc_start_time(int(f.read()) + 1) is None


def _state_of(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    return text[text.rindex(")") + 2]


def test_proc_start_time_of_zombie():
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    try:
        deadline = time.monotonic() + 5
        while _state_of(pid) != "Z":
            assert time.monotonic() < deadline, "child did not become a zombie"
            time.sleep(0.001)
        assert proc_start_time(pid) is None
        assert Container("/nonexistent", "z", {"pid": pid, "pidStart": 1}).status() == "stopped"
    finally:
        os.waitpid(pid, 0)


def test_proc_start_time_with_parenthesis_in_comm():
    """comm may hold ") Z 1 (": the fields start after the *last* ')'."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r1)
            os.close(w2)
            before = proc_start_time(os.getpid())
            with open("/proc/self/comm", "w") as f:
                f.write("x) Z 1 (")
            os.write(w1, str(before).encode())
            os.read(r2, 1)              # until the parent is done
        finally:
            os._exit(0)
    os.close(w1)
    os.close(r2)
    try:
        before = int(os.read(r1, 64))
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "x) Z 1 ("
        assert proc_start_time(pid) == before
    finally:
        os.close(w2)
        os.close(r1)
        os.waitpid(pid, 0)


# --- Container.status ------------------------------------------------------------------------------

@pytest.fixture
def me():
    return {"pid": os.getpid(), "pidStart": proc_start_time(os.getpid())}


@pytest.fixture
def root(tmp_path):
    return str(tmp_path / "root")


def _saved(root: str, cid: str, data: dict) -> Container:
    c = state.new_container(root, cid)
    c.data = data
    c.save()
    c.unlock()
    return state.load(root, cid, lock=False)


def test_status_created(root, me):
    c = _saved(root, "c1", me)
    open(f"{c.dir}/{state.START_SOCKET}", "w").close()
    assert c.status() == "created"
    assert c.oci_state()["pid"] == os.getpid()


def test_status_running(root, me):
    assert _saved(root, "c1", me).status() == "running"


@pytest.mark.parametrize("change", [{"pidStart": -1}, {"pid": 0}, {"pidStart": None}])
def test_status_stopped(root, me, change):
    c = _saved(root, "c1", {**me, **change})
    open(f"{c.dir}/{state.START_SOCKET}", "w").close()
    assert c.status() == "stopped"
    assert c.oci_state()["pid"] == 0 and c.oci_state()["status"] == "stopped"


def test_status_stopped_with_no_pid(root):
    assert _saved(root, "c1", {}).status() == "stopped"


def test_status_paused_v1_freezer(root, me, tmp_path):
    freezer = tmp_path / "freezer"
    freezer.mkdir()
    (freezer / "freezer.state").write_text("FROZEN\n")
    c = _saved(root, "c1", {**me, "cgroup": {"paths": {"freezer": str(freezer), "cpu": "/x"}}})
    open(f"{c.dir}/{state.START_SOCKET}", "w").close()
    assert c.status() == "paused"                       # paused wins over created
    (freezer / "freezer.state").write_text("THAWED\n")
    assert c.status() == "created"
    (freezer / "freezer.state").write_text("FREEZING\n")
    assert c.status() == "created"
    (freezer / "freezer.state").unlink()
    assert c.status() == "created"                      # unreadable freezer: not frozen


def test_status_paused_v2_freeze(root, me, tmp_path):
    cg = tmp_path / "cg"
    cg.mkdir()
    (cg / "cgroup.freeze").write_text("1\n")
    c = _saved(root, "c1", {**me, "cgroup": {"paths": {"": str(cg)}}})
    assert c.status() == "paused"
    (cg / "cgroup.freeze").write_text("0\n")
    assert c.status() == "running"


def test_frozen_dead_container_is_stopped(root, tmp_path):
    (tmp_path / "freezer.state").write_text("FROZEN\n")
    c = _saved(root, "c1", {"pid": 0, "cgroup": {"paths": {"freezer": str(tmp_path)}}})
    assert c.status() == "stopped"


def test_oci_state_document(root, me):
    c = _saved(root, "c1", {**me, "bundle": "/b", "rootfs": "/b/rootfs", "created": "T",
                            "annotations": {"a": "b"}, "ociVersion": "1.2.0"})
    assert c.oci_state() == {"ociVersion": "1.2.0", "id": "c1", "pid": os.getpid(),
                             "status": "running", "bundle": "/b", "rootfs": "/b/rootfs",
                             "created": "T", "owner": "", "annotations": {"a": "b"}}
    assert c.hook_state("creating") == {"ociVersion": "1.2.0", "id": "c1", "status": "creating",
                                        "pid": os.getpid(), "bundle": "/b",
                                        "annotations": {"a": "b"}}


# --- new / load / save / remove --------------------------------------------------------------------

def test_save_and_load_roundtrip(root):
    c = state.new_container(root, "c1")
    c.data = {"id": "c1", "pid": 42, "nested": {"l": [1, "two"]}, "u": "é"}
    c.save()
    c.unlock()
    assert os.listdir(c.dir) == [state.STATE_FILE]       # no temporary file left
    with open(f"{c.dir}/{state.STATE_FILE}", "rb") as f:
        assert jsonlite.loads(f.read()) == c.data
    loaded = state.load(root, "c1")
    try:
        assert loaded.data == c.data and loaded.id == "c1" and loaded.dir == f"{root}/c1"
    finally:
        loaded.unlock()
    assert os.stat(root).st_mode & 0o777 == 0o700
    assert os.stat(c.dir).st_mode & 0o777 == 0o700
    assert os.stat(f"{c.dir}/{state.STATE_FILE}").st_mode & 0o777 == 0o600


def test_load_missing(root, tmp_path):
    for r in (root, str(tmp_path)):                      # no root at all / no such id
        with pytest.raises(NotExist) as e:
            state.load(r, "nope")
        assert str(e.value) == "container nope does not exist"
        with pytest.raises(NotExist):
            state.load(r, "nope", lock=False)


def test_load_dir_without_state_file_releases_the_lock(root):
    c = state.new_container(root, "half")
    c.unlock()
    with pytest.raises(NotExist, match="^container half does not exist$"):
        state.load(root, "half")
    _assert_unlocked(c.dir)


def test_load_root_is_a_file(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(NotExist):
        state.load(str(tmp_path / "file"), "c1")


def test_load_invalid_id(root):
    with pytest.raises(HawserError, match="invalid container id"):
        state.load(root, "../etc")


def test_new_container_twice(root):
    c = state.new_container(root, "dup")
    try:
        with pytest.raises(HawserError, match=r"^container with id dup already exists$"):
            state.new_container(root, "dup")
    finally:
        c.unlock()


def test_new_container_invalid_id(root):
    with pytest.raises(HawserError, match="invalid container id"):
        state.new_container(root, "a/b")
    assert not os.path.exists(root)


def _lock_nb(path: str) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def _assert_unlocked(path: str) -> None:
    assert _lock_nb(path), f"{path} is still locked"


def test_new_container_and_load_hold_the_lock(root):
    c = state.new_container(root, "c1")
    assert not _lock_nb(c.dir)
    c.save()
    c.unlock()
    _assert_unlocked(c.dir)
    c2 = state.load(root, "c1")
    assert not _lock_nb(c2.dir)
    c2.unlock()
    c2.unlock()                                          # idempotent
    _assert_unlocked(c2.dir)
    state.load(root, "c1", lock=False)
    _assert_unlocked(c2.dir)


def test_remove(root):
    c = state.new_container(root, "gone")
    c.data = {"pid": 0}
    c.save()
    for name in (state.START_SOCKET, "exec.fifo", ".hidden"):
        open(f"{c.dir}/{name}", "w").close()
    state.remove(c)
    assert not os.path.exists(c.dir)
    assert c._lock_fd is None
    assert state.list_ids(root) == []
    with pytest.raises(NotExist):
        state.load(root, "gone")


def test_list_ids(root):
    for cid in ("b", "a", "c"):
        state.new_container(root, cid).unlock()
    open(f"{root}/file", "w").close()
    os.mkdir(f"{root}/.tmp")
    assert state.list_ids(root) == ["a", "b", "c"]
    assert state.list_ids(root + "/none") == []


def test_ensure_root_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(HawserError, match=r"^cannot create state root .*/file/root: Not a directory"):
        state.ensure_root(str(tmp_path / "file" / "root"))
