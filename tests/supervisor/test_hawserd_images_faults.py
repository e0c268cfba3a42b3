"""Images under faults, through a real hawserd: hawserd SIGKILLed in the middle of a load, a
full disk (its --root on a small tmpfs), a layer entry that would escape its snapshot, an
archive for another platform. Each: a clear error, no image listed that is not whole, the store
consistent (no ingest, blob or snapshot nothing uses), no leaked mount."""
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging"))
from hawserd_harness import HAWSERCTL, Hawserd, wait_until  # noqa: E402
from images import rootfs_tar_bytes, write_docker_archive  # noqa: E402
from registry_harness import Image, gzip_bytes, gzip_tar, write_layout  # noqa: E402


def store_state(d: Hawserd) -> dict:
    """What the store holds on disk, for the checks."""
    def names(p: Path) -> list[str]:
        return sorted(os.listdir(p)) if p.is_dir() else []
    return {"blobs": names(d.root / "content" / "blobs" / "sha256"),
            "ingest": names(d.root / "content" / "ingest"),
            "snapshots": names(d.root / "snapshots")}


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def assert_empty_and_clean(d: Hawserd) -> None:
    assert d.ctl("images", "-aq").stdout == ""
    assert store_state(d) == {"blobs": [], "ingest": [], "snapshots": []}
    assert mounts_under(d.state) == []


def layout_archive(dest: Path, images: list, as_index: bool, tag: str = "1") -> Path:
    """An OCI archive (a tar of an image layout) of these registry_harness Images."""
    layout = dest.with_suffix(".layout")
    write_layout(layout, tag, images, as_index)
    with tarfile.open(dest, "w") as tar:
        for name in ("oci-layout", "index.json", "blobs"):
            tar.add(layout / name, arcname=name)
    return dest


def big_rootfs(busybox_rootfs: Path, dest: Path, mib: int) -> Path:
    subprocess.run(["cp", "-a", f"{busybox_rootfs}/.", str(dest)], check=True)
    with open(dest / "big.bin", "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(1 << 20))
    return dest


def test_sigkill_during_a_load(hawserd, busybox_rootfs, tmp_path):
    rootfs = big_rootfs(busybox_rootfs, tmp_path / "rootfs", 48)
    archive = write_docker_archive(rootfs, tmp_path / "big.tar", "big:1").read_bytes()
    ctl = subprocess.Popen([HAWSERCTL, "--address", hawserd.address, "load"],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE)
    try:
        ctl.stdin.write(archive[:len(archive) * 2 // 3])
        ctl.stdin.flush()
        assert wait_until(lambda: store_state(hawserd)["ingest"] or
                          store_state(hawserd)["blobs"], 20)
        hawserd.sigkill()
        ctl.stdin.close()
        assert ctl.wait(30) != 0
    finally:
        if ctl.poll() is None:
            ctl.kill()
            ctl.wait()
    hawserd.start()
    assert_empty_and_clean(hawserd)
    small = write_docker_archive(busybox_rootfs, tmp_path / "small.tar", "small:1")
    hawserd.ctl("load", "-i", small)        # and the store is usable
    assert hawserd.ctl("run", "--rm", "small:1", "echo", "ok").stdout == "ok\n"


@pytest.fixture
def small_root(tmp_path):
    """A hawserd whose --root is a 24 MiB tmpfs: a full disk on demand."""
    d = Hawserd()
    d.root.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m,mode=0711", "tmpfs", str(d.root)],
                   check=True)
    try:
        d.start()
        yield d
    finally:
        try:
            d.cleanup()
        finally:
            if os.path.ismount(d.root):
                subprocess.run(["umount", "-l", str(d.root)], check=False)


def test_a_full_disk(small_root, busybox_rootfs, tmp_path):
    rootfs = big_rootfs(busybox_rootfs, tmp_path / "rootfs", 32)
    archive = write_docker_archive(rootfs, tmp_path / "big.tar", "big:1")
    p = small_root.ctl("load", "-i", archive, check=False)
    assert p.returncode == 125 and "No space left on device" in p.stderr, p.stderr
    assert "(RESOURCE_EXHAUSTED)" in p.stderr
    assert_empty_and_clean(small_root)
    small = write_docker_archive(busybox_rootfs, tmp_path / "small.tar", "small:1")
    small_root.ctl("load", "-i", small)
    assert small_root.ctl("run", "--rm", "small:1", "echo", "fits").stdout == "fits\n"


def test_a_layer_entry_escaping_its_snapshot(hawserd, busybox_rootfs, tmp_path):
    canary = tmp_path / "canary"
    canary.mkdir()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        data = b"escaped\n"
        info = tarfile.TarInfo("../../../../../../../../.." + str(canary / "evil"))
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    img = Image([gzip_bytes(rootfs_tar_bytes(busybox_rootfs)), gzip_bytes(buf.getvalue())])
    archive = layout_archive(tmp_path / "evil.tar", [img], False, "evil")
    p = hawserd.ctl("load", "-i", archive, check=False)
    assert p.returncode == 125 and ".." in p.stderr, p.stderr
    assert "(INVALID_ARGUMENT)" in p.stderr
    assert os.listdir(canary) == []
    assert_empty_and_clean(hawserd)


def test_an_archive_for_another_platform(hawserd, tmp_path):
    arm = Image([gzip_tar({"hello": b"arm64"})], arch="arm64")
    s390x = Image([gzip_tar({"hello": b"s390x"})], arch="s390x")
    archive = layout_archive(tmp_path / "foreign.tar", [arm, s390x], True)
    p = hawserd.ctl("load", "-i", archive, check=False)
    assert p.returncode == 125, p.stderr
    assert "linux/amd64" in p.stderr and "linux/arm64" in p.stderr and "linux/s390x" in p.stderr
    assert_empty_and_clean(hawserd)


def test_a_shim_killed_while_hawserd_is_down_leaves_no_mount(hawserd, busybox_rootfs,
                                                             tmp_path):
    archive = write_docker_archive(busybox_rootfs, tmp_path / "b.tar", "b:1")
    hawserd.ctl("load", "-i", archive)
    hawserd.ctl("run", "-d", "--name", "victim", "b:1", "sh", "-c", "echo x > /f; sleep 300")
    assert wait_until(lambda: "A /f" in hawserd.ctl("diff", "victim").stdout)
    [shim] = [r["shim_pid"] for r in hawserd.records() if r["name"] == "victim"]
    hawserd.sigkill()
    os.kill(shim, 9)
    hawserd.start()
    assert hawserd.info("victim")["status"] == "exited"
    assert mounts_under(hawserd.state) == []
    # its writable layer is still there: a container's files outlive its task, as docker's
    assert hawserd.ctl("diff", "victim").stdout == "A /f\n"
    hawserd.ctl("start", "victim")
    assert hawserd.ctl("exec", "victim", "cat", "/f").stdout == "x\n"
    hawserd.ctl("rm", "-f", "victim")
    hawserd.ctl("rmi", "b:1")
    assert_empty_and_clean(hawserd)


def test_a_root_overlayfs_could_not_name_is_refused(tmp_path):
    from hawserd_harness import HAWSERD
    root = tmp_path / "a,b"
    p = subprocess.run([HAWSERD, "--root", str(root), "--state", str(tmp_path / "state"),
                        "--address", f"unix://{tmp_path}/d.sock"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode != 0 and "','" in p.stderr and str(root) in p.stderr
    assert not root.exists() and not (tmp_path / "state").exists()
