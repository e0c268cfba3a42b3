"""`import`: a root filesystem tarball (plain, or compressed by the real gzip/zstd/xz) becomes a
one-layer OCI image whose layer gunzips (real gzip) to the very tarball and whose diff_id is its
digest; the changes give the config dockerd's own `docker import --change` gives (a private
dockerd, the reference); the image runs in podman. Bad tarballs and bad changes are refused
with what is wrong, and leave no blob and no ingest."""
from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import time
from datetime import datetime
from pathlib import Path

import pytest

import images as testimages
from peers import Podman, private_podman  # noqa: F401 (fixture)
from test_clients_docker import dockerd  # noqa: F401 (fixture: a private dockerd 20.10)
from supervisor.content.store import ContentStore
from supervisor.images import manifest as mf
from supervisor.images.archive import write_archive
from supervisor.images.rootfs import ChangeError, apply_changes, import_rootfs

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, dockerd)")

CONFIG_KEYS = ("Cmd", "Entrypoint", "Env", "WorkingDir", "User", "ExposedPorts", "Labels",
               "Volumes", "StopSignal")
# each set as `docker import --change` takes them; docker's answer is the expected config
CHANGE_SETS = {
    "shell-forms": ["CMD echo $HOME hello", "ENTRYPOINT /bin/sh -c", "ENV HOME=/root"],
    "json-forms": ['ENTRYPOINT ["/bin/echo", "a b"]', 'CMD ["c", "d"]'],
    "entrypoint-drops-cmd": ["CMD echo hi", "ENTRYPOINT [\"/bin/true\"]"],
    "cmd-after-entrypoint": ["ENTRYPOINT [\"/bin/echo\"]", "CMD [\"kept\"]"],
    "env": ['ENV A=1 B="two words" C=$A-x', "ENV D=${A}y E=${UNSET:-dflt} F=${A:+alt}",
            "ENV LEGACY value with  spaces", "ENV A=2", "ENV G='$A' H=\\$A"],
    "workdir-user": ["WORKDIR /srv", "WORKDIR sub/dir", "ENV W=/w", "WORKDIR $W",
                     "USER 1000:1000"],
    "ports-labels-volumes": ["EXPOSE 80 53/udp 8000-8002/tcp", "EXPOSE 443/TCP",
                             'LABEL a=b "c d"=e', "LABEL legacy value here",
                             'VOLUME ["/data", "/logs"]', "VOLUME /v1 /v2"],
    "lowercase": ["cmd [\"x\"]", "user nobody", "workdir /w"],
}


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def rootfs_tar(busybox_rootfs, tmp_path_factory) -> Path:
    return testimages.write_rootfs_tar(busybox_rootfs,
                                       tmp_path_factory.mktemp("rootfs") / "rootfs.tar")


def assert_empty(cs: ContentStore) -> None:
    assert list(cs.list()) == [] and os.listdir(cs.ingests) == []


@pytest.mark.parametrize("tool", [None, ["gzip", "-c"], ["zstd", "-c", "-q"], ["xz", "-c"]],
                         ids=["plain", "gzip", "zstd", "xz"])
def test_import_makes_a_one_layer_oci_image(rootfs_tar, tmp_path, tool):
    plain = rootfs_tar.read_bytes()
    cs = ContentStore(str(tmp_path / "store"))
    before = time.time()
    # from a pipe: the tool's stdout (or cat's), never seeked
    proc = subprocess.Popen([*(tool or ["cat"]), str(rootfs_tar)], stdout=subprocess.PIPE)
    try:
        target, media_type = import_rootfs(proc.stdout, cs, message="from the busybox rootfs")
    finally:
        proc.stdout.close()
        assert proc.wait() == 0
    assert media_type == mf.OCI_MANIFEST
    res = mf.resolve(cs, target)
    assert res.manifest["mediaType"] == mf.OCI_MANIFEST and len(res.layers) == 1
    layer = res.layers[0]
    assert layer.media_type == mf.OCI_LAYER_GZIP and cs.size(layer.digest) == layer.size
    # the real gzip gives back the very tarball: the diff_id is its digest
    assert subprocess.run(["gzip", "-dc", cs.path(layer.digest)], check=True,
                          capture_output=True).stdout == plain
    assert res.diff_ids == [sha(plain)]
    os_name, arch = mf.host_platform().split("/")[:2]
    assert (res.config["os"], res.config["architecture"]) == (os_name, arch)
    created = datetime.fromisoformat(res.config["created"].replace("Z", "+00:00")).timestamp()
    assert before - 1 <= created <= time.time() + 1
    assert res.config["history"][0]["comment"] == "from the busybox rootfs"
    assert res.config["history"][0]["created"] == res.config["created"]
    assert len(list(cs.list())) == 3 and os.listdir(cs.ingests) == []


def test_import_for_another_platform(rootfs_tar, tmp_path):
    cs = ContentStore(str(tmp_path))
    with open(rootfs_tar, "rb") as f:
        target, _ = import_rootfs(f, cs, platform="linux/arm/v7")
    config = mf.resolve(cs, target, "linux/arm/v7").config
    assert (config["os"], config["architecture"], config["variant"]) == ("linux", "arm", "v7")


def ours(changes, rootfs_tar: Path, tmp_path: Path) -> dict:
    cs = ContentStore(str(tmp_path / "ours"))
    with open(rootfs_tar, "rb") as f:
        target, _ = import_rootfs(f, cs, changes=changes)
    return mf.resolve(cs, target).config.get("config") or {}


@needs_root
@pytest.mark.parametrize("case", sorted(CHANGE_SETS))
def test_changes_give_the_config_docker_import_gives(dockerd, rootfs_tar, tmp_path, case):
    changes = CHANGE_SETS[case]
    args = [a for c in changes for a in ("--change", c)]
    image_id = dockerd("import", *args, rootfs_tar).stdout.strip()
    try:
        theirs = json.loads(dockerd("image", "inspect", "--format", "{{json .Config}}",
                                    image_id).stdout)
    finally:
        dockerd("rmi", "-f", image_id, check=False)
    mine = ours(changes, rootfs_tar, tmp_path)
    assert canonical(mine) == canonical(theirs)


def canonical(config: dict) -> str:
    """The keys compared, as JSON with sorted keys: lists keep their order, objects (Go maps)
    have none; an empty value is an absent one."""
    return json.dumps({k: config.get(k) or None for k in CONFIG_KEYS}, sort_keys=True)


@needs_root
def test_an_imported_image_runs_in_podman(rootfs_tar, tmp_path, private_podman):
    pm: Podman = private_podman
    cs = ContentStore(str(tmp_path / "store"))
    with open(rootfs_tar, "rb") as f:
        target, _ = import_rootfs(f, cs, changes=["ENV GREETING=imported",
                                                  "CMD echo $GREETING from $PWD",
                                                  "WORKDIR /tmp"])
    out = tmp_path / "imported.tar"
    with open(out, "wb") as f:
        write_archive([("localhost/imported:changes", target)], cs, f)
    pm("load", "-i", out)
    proc = pm("run", "--rm", *pm.run_flags(), "localhost/imported:changes")
    assert proc.stdout == "imported from /tmp\n"


def test_stopsignal():
    # dockerd 20.10 takes no STOPSIGNAL change (later ones do): checked here, not against it
    config = {}
    apply_changes(config, ["STOPSIGNAL SIGINT"])
    assert config["config"]["StopSignal"] == "SIGINT"
    for sig in ("9", "TERM", "SIGRTMIN+3"):
        assert apply_changes({}, [f"stopsignal {sig}"])["config"]["StopSignal"] == sig


def test_apply_changes_edits_only_config_and_keeps_the_rest():
    config = {"architecture": "amd64", "config": {"Env": ["PATH=/bin", "A=old"],
                                                  "Cmd": ["sh"], "Labels": {"k": "v"}}}
    apply_changes(config, ["ENV A=new B=$A", "LABEL x=1", "ENTRYPOINT [\"/e\"]"])
    assert config == {"architecture": "amd64", "config": {
        "Env": ["PATH=/bin", "A=new", "B=old"], "Labels": {"k": "v", "x": "1"},
        "Entrypoint": ["/e"]}}          # the inherited Cmd goes with a new Entrypoint


@pytest.mark.parametrize("change, message", [
    ("RUN echo hi", "RUN is not an instruction a change can make"),
    ("FROM busybox", "FROM is not"),
    ("", r"\(empty\) is not"),
    ("CMD", "CMD needs an argument"),
    ("EXPOSE 99999", "not a port range within 1-65535"),
    ("EXPOSE 80/icmp", "'80/icmp' is not a port"),
    ("EXPOSE 90-80", "not a port range"),
    ("STOPSIGNAL SIGNOPE", "'SIGNOPE' is not a signal"),
    ("STOPSIGNAL 0", "not a signal number"),
    ("ENV A", "ENV A needs a value"),
    ("ENV A=1 B", "'B' is not KEY=value"),
    ("ENV 1A=x", "not a variable name"),
    ("ENV A=\"unterminated", 'unmatched "'),
    ("LABEL a='open", "unmatched '"),
    ("ENV A=${B", "missing }"),
    ("ENV A=${B:?x}", "bad substitution"),
    ("USER a b", "USER takes one"),
    ("CMD a\nRUN b", "one instruction a change"),
])
def test_bad_changes_are_refused_naming_them(change, message):
    config = {"config": {"Cmd": ["sh"]}}
    with pytest.raises(ValueError, match=message) as err:
        apply_changes(config, ["ENV OK=1", change])
    assert isinstance(err.value, ChangeError) and repr(change)[1:-1][:20] in str(err.value)
    assert config == {"config": {"Cmd": ["sh"]}}       # nothing applied, not even ENV OK=1


def test_a_bad_change_is_refused_before_anything_is_written(rootfs_tar, tmp_path):
    cs = ContentStore(str(tmp_path))
    with open(rootfs_tar, "rb") as f, pytest.raises(ValueError, match="RUN is not"):
        import_rootfs(f, cs, changes=["CMD ok", "RUN nope"])
    assert_empty(cs)


def tar_with(names) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name in names:
            info = tarfile.TarInfo(name)
            info.size = 1
            t.addfile(info, io.BytesIO(b"x"))
    return buf.getvalue()


@pytest.mark.parametrize("data, message", [
    (b"", "empty file, not a tar archive"),
    (b"not a tarball at all\n" * 50, "not a root filesystem tarball: not a tar archive"),
    (tar_with(["etc/passwd"])[:700], "truncated at byte 700"),
    (tar_with(["etc/passwd"])[:1024], "truncated at byte 1024 \\(no end-of-archive blocks\\)"),
    (bytes(1024), "the tarball has no entries"),
    (tar_with(["ok", "../../etc/shadow"]), "entry '../../etc/shadow' points outside"),
    (tar_with(["a/../../b"]), "entry 'a/../../b' points outside"),
])
def test_bad_tarballs_are_refused_and_leave_nothing(tmp_path, data, message):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(ValueError, match=message):
        import_rootfs(io.BytesIO(data), cs)
    assert_empty(cs)


def test_a_gzip_stream_cut_short_is_refused(rootfs_tar, tmp_path):
    cs = ContentStore(str(tmp_path))
    gz = subprocess.run(["gzip", "-c", str(rootfs_tar)], check=True, capture_output=True).stdout
    with pytest.raises(ValueError, match="compressed archive is truncated"):
        import_rootfs(io.BytesIO(gz[:len(gz) // 2]), cs)
    assert_empty(cs)
