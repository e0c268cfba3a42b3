"""Images through a real hawserd and hawserctl: load a docker-archive and an OCI archive, run
containers from them (the image's config merged as docker does), import a rootfs tarball with
--change, commit and diff a container, save for podman and ctr, rmi and what it frees."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging"))
from images import rootfs_tar_bytes, write_docker_archive, write_oci_archive  # noqa: E402
from peers import private_containerd, private_podman  # noqa: E402,F401 (fixtures)

from hawserd_harness import HAWSERCTL, wait_until  # noqa: E402


def blobs(hawserd) -> set[str]:
    d = hawserd.root / "content" / "blobs" / "sha256"
    return set(os.listdir(d)) if d.is_dir() else set()


def snapshot_dirs(hawserd) -> set[str]:
    d = hawserd.root / "snapshots"
    return {x for x in os.listdir(d) if x.isdigit()} if d.is_dir() else set()


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


@pytest.fixture
def loaded(hawserd, busybox_rootfs, tmp_path):
    archive = write_docker_archive(busybox_rootfs, tmp_path / "busybox.tar", "busybox:e2e")
    p = hawserd.ctl("load", "-i", archive)
    assert "Loaded image: busybox:e2e" in p.stdout
    return "busybox:e2e"


@pytest.fixture
def rootfs_tar(busybox_rootfs, tmp_path) -> Path:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(rootfs_tar_bytes(busybox_rootfs))
    return path


def test_load_lists_and_runs_an_image(hawserd, loaded):
    out = hawserd.ctl("images").stdout.splitlines()
    assert out[0].split()[:4] == ["REPOSITORY", "TAG", "IMAGE", "ID"]
    assert [line.split()[:2] for line in out[1:]] == [["busybox", "e2e"]]
    p = hawserd.ctl("run", "--rm", loaded, "sh", "-c", "echo hi from $(cat /etc/hostname "
                    "2>/dev/null || hostname); ls /bin/busybox")
    assert p.stdout.splitlines()[-1] == "/bin/busybox"
    assert hawserd.ctl("ps", "-aq").stdout == ""
    assert mounts_under(hawserd.state) == []


def test_oci_archive_from_a_pipe(hawserd, busybox_rootfs, tmp_path):
    archive = write_oci_archive(busybox_rootfs, tmp_path / "oci.tar", "ocibox:1")
    with open(archive, "rb") as f:    # streamed through the API, not read by the daemon
        p = subprocess.run([HAWSERCTL, "--address", hawserd.address, "load"], stdin=f,
                           capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ocibox:1" in hawserd.ctl("images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert hawserd.ctl("run", "--rm", "ocibox:1", "echo", "ok").stdout == "ok\n"


def test_image_config_is_merged_like_docker(hawserd, rootfs_tar):
    hawserd.ctl("import", "-c", 'ENTRYPOINT ["echo", "entry"]', "-c", 'CMD ["from-cmd"]',
                "-c", "ENV A=image B=image", "-c", "WORKDIR /tmp", "-c", "USER user",
                "-c", "LABEL team=blue", "-c", "EXPOSE 8080", "-c", "STOPSIGNAL SIGUSR1",
                rootfs_tar, "conf:1")
    assert hawserd.ctl("run", "--rm", "conf:1").stdout == "entry from-cmd\n"
    assert hawserd.ctl("run", "--rm", "conf:1", "given").stdout == "entry given\n"
    p = hawserd.ctl("run", "--rm", "--entrypoint", "sh", "-e", "B=cli", "conf:1", "-c",
                    "echo $A $B $(pwd) $(id -u) $(id -g) $(id -G)")
    assert p.stdout == "image cli /tmp 1000 1000 1000\n"
    p = hawserd.ctl("run", "--rm", "--entrypoint", "", "-u", "root", "-w", "/", "conf:1",
                    "sh", "-c", "echo $(id -u) $(pwd)")
    assert p.stdout == "0 /\n"
    hawserd.ctl("create", "--name", "c", "conf:1")
    [info] = json.loads(hawserd.ctl("inspect", "c").stdout)
    cfg = info["Config"]
    assert cfg["Entrypoint"] == ["echo", "entry"] and cfg["Cmd"] == ["from-cmd"]
    assert "A=image" in cfg["Env"] and cfg["WorkingDir"] == "/tmp" and cfg["User"] == "user"
    assert cfg["Labels"]["team"] == "blue" and "8080/tcp" in cfg["ExposedPorts"]
    assert cfg["StopSignal"] == "SIGUSR1" and cfg["Image"] == "conf:1"
    assert info["Image"].startswith("sha256:")
    assert "StartedAt" not in info["State"] and "FinishedAt" not in info["State"]
    assert hawserd.ctl("inspect", "--format", "{{.Config.User}} {{json .Config.Cmd}}",
                       "c").stdout == 'user ["from-cmd"]\n'


def test_an_image_without_a_command_needs_one(hawserd, rootfs_tar):
    hawserd.ctl("import", rootfs_tar, "bare:1")
    p = hawserd.ctl("run", "--rm", "bare:1", check=False)
    assert p.returncode != 0 and "no command" in p.stderr
    assert hawserd.ctl("ps", "-aq").stdout == ""


def test_commit_and_diff(hawserd, loaded):
    hawserd.ctl("run", "-d", "--name", "w", loaded, "sh", "-c",
                "echo new > /added; echo changed >> /etc/passwd; rm /bin/ls; mkdir /d; "
                "exec sleep 300")
    assert wait_until(lambda: "D /bin/ls" in hawserd.ctl("diff", "w").stdout)
    lines = set(hawserd.ctl("diff", "w").stdout.splitlines())
    assert {"A /added", "C /etc", "C /etc/passwd", "D /bin/ls", "A /d", "C /bin"} <= lines
    image_id = hawserd.ctl("commit", "-c", 'CMD ["cat", "/added"]', "w", "committed:1") \
        .stdout.strip()
    assert image_id.startswith("sha256:")
    assert hawserd.ctl("run", "--rm", "committed:1").stdout == "new\n"
    p = hawserd.ctl("run", "--rm", "committed:1", "sh", "-c",
                    "tail -1 /etc/passwd; ls /bin/ls 2>&1; test -d /d && echo dir")
    assert p.stdout.splitlines()[0] == "changed" and p.stdout.splitlines()[-1] == "dir"
    assert "No such file" in p.stdout
    [img] = json.loads(hawserd.ctl("inspect", "committed:1").stdout)
    [base] = json.loads(hawserd.ctl("inspect", loaded).stdout)
    assert img["RootFS"]["Layers"][:-1] == base["RootFS"]["Layers"]
    assert len(img["RootFS"]["Layers"]) == len(base["RootFS"]["Layers"]) + 1


def test_tag_rmi_and_what_it_frees(hawserd, loaded):
    hawserd.ctl("tag", loaded, "other:2")
    before = blobs(hawserd)
    assert before and snapshot_dirs(hawserd)
    p = hawserd.ctl("rmi", loaded)
    assert p.stdout == "Untagged: busybox:e2e\n"
    assert blobs(hawserd) == before          # other:2 still names it
    hawserd.ctl("run", "-d", "--name", "user", "other:2", "sleep", "300")
    p = hawserd.ctl("rmi", "other:2", check=False)
    assert p.returncode != 0 and "container" in p.stderr
    assert hawserd.ctl("rmi", "-f", "other:2").stdout.startswith("Untagged: other:2\n")
    assert blobs(hawserd)                    # the container still uses it
    assert hawserd.ctl("exec", "user", "echo", "alive").stdout == "alive\n"
    hawserd.ctl("rm", "-f", "user")
    assert blobs(hawserd) == set() and snapshot_dirs(hawserd) == set()
    assert hawserd.ctl("images", "-q").stdout == ""
    assert mounts_under(hawserd.state) == []


def test_save_then_load_elsewhere(hawserd_factory, busybox_rootfs, tmp_path):
    first = hawserd_factory()
    archive = write_docker_archive(busybox_rootfs, tmp_path / "in.tar", "round:trip")
    first.ctl("load", "-i", archive)
    first.ctl("save", "-o", tmp_path / "out.tar", "round:trip")
    second = hawserd_factory()
    assert "Loaded image: round:trip" in second.ctl("load", "-i", tmp_path / "out.tar").stdout
    ids = [json.loads(d.ctl("inspect", "round:trip").stdout)[0]["Id"] for d in (first, second)]
    assert ids[0] == ids[1]
    assert second.ctl("run", "--rm", "round:trip", "echo", "again").stdout == "again\n"


@pytest.mark.parametrize("damage", ["truncated", "flipped", "not-a-tar"])
def test_a_bad_archive_is_refused_and_leaves_nothing(hawserd, busybox_rootfs, tmp_path, damage):
    archive = write_docker_archive(busybox_rootfs, tmp_path / "a.tar", "bad:1")
    data = bytearray(archive.read_bytes())
    if damage == "truncated":
        data = data[:len(data) * 2 // 3]
    elif damage == "flipped":
        data[len(data) // 2] ^= 0xFF
    else:
        data = bytearray(b"this is not an archive\n" * 100)
    archive.write_bytes(bytes(data))
    p = hawserd.ctl("load", "-i", archive, check=False)
    assert p.returncode != 0 and p.stderr.strip()
    assert "Traceback" not in p.stderr
    assert hawserd.ctl("images", "-aq").stdout == ""
    assert blobs(hawserd) == set() and snapshot_dirs(hawserd) == set()
    assert os.listdir(hawserd.root / "content" / "ingest") == []


def test_a_saved_commit_loads_and_runs_in_podman_and_ctr(hawserd, loaded, tmp_path,
                                                         private_podman, private_containerd):
    hawserd.ctl("run", "--name", "c", loaded, "sh", "-c", "echo kept > /kept; rm /bin/vi")
    hawserd.ctl("commit", "c", "example.com/saved/commit:1")
    out = tmp_path / "saved.tar"
    hawserd.ctl("save", "-o", out, "example.com/saved/commit:1", loaded)
    pm = private_podman
    pm("load", "-i", out)
    p = pm("run", "--rm", *pm.run_flags(), "example.com/saved/commit:1", "sh", "-c",
           "cat /kept; test -e /bin/vi || echo vi-gone")
    assert p.stdout == "kept\nvi-gone\n"
    [ours] = json.loads(hawserd.ctl("inspect", "example.com/saved/commit:1").stdout)
    podmans = json.loads(pm("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                            "example.com/saved/commit:1").stdout)
    assert podmans == ours["RootFS"]["Layers"]
    ctd = private_containerd
    ctd.ctr("images", "import", out)
    assert {"example.com/saved/commit:1", "docker.io/library/busybox:e2e"} <= \
        set(ctd.ids("images"))


def test_run_it_from_an_image(hawserd, loaded):
    from clients_harness import PtyProcess, pty_conversation
    term = PtyProcess([HAWSERCTL, "--address", hawserd.address, "run", "-it", "--rm", loaded,
                       "sh"])
    try:
        pty_conversation(term)
        assert term.wait() == 5, term.text()
    finally:
        term.close()
    assert hawserd.ctl("ps", "-aq").stdout == ""
    assert mounts_under(hawserd.state) == []


def test_images_by_id_and_by_names_that_look_like_ids(hawserd, loaded):
    [img] = json.loads(hawserd.ctl("inspect", loaded).stdout)
    short = img["Id"][7:19]
    assert hawserd.ctl("images", "-q").stdout == f"{short}\n"
    assert json.loads(hawserd.ctl("inspect", short).stdout)[0]["Id"] == img["Id"]
    hawserd.ctl("tag", short, "beef")                  # a name made of hex digits
    hawserd.ctl("tag", loaded, "other:1")
    assert json.loads(hawserd.ctl("inspect", "beef").stdout)[0]["Id"] == img["Id"]
    p = hawserd.ctl("rmi", img["Id"], check=False)     # an id with several names needs -f
    assert p.returncode != 0 and "must be forced" in p.stderr
    p = hawserd.ctl("rmi", "-f", img["Id"])
    assert sorted(p.stdout.splitlines()[:3]) == ["Untagged: beef:latest", "Untagged: busybox:e2e",
                                                 "Untagged: other:1"]
    assert f"Deleted: {img['Id']}" in p.stdout
    assert hawserd.ctl("images", "-aq").stdout == ""
