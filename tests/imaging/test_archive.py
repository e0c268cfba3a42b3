"""Image archives with the real peers. Made by skopeo (docker-archive: and oci-archive: from an
OCI layout of three layers: gzip, plain and zstd, a whiteout among them) and by podman (save in
both formats, several images at once, an imported rootfs) with private storage, plus docker
save's layouts (a private dockerd 20.10's own save too): read_archive gets the right names,
configs, layers and diff_ids, every blob verified. Archives written by write_archive load and run
in podman and dockerd, and load in a private containerd, whose snapshot keys are our chain ids.
Bad archives (truncated, corrupt, a missing blob, bad JSON, not a tar, a blob under another
digest's name) fail with an ArchiveError naming what is wrong, and leave only verified blobs,
all listed for cleanup."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import zstandard

import images as testimages
from peers import Podman, private_containerd, private_podman, skopeo  # noqa: F401 (fixtures)
from test_clients_docker import dockerd  # noqa: F401 (fixture: a private dockerd 20.10)
from supervisor.content.store import ContentStore
from supervisor.images import manifest as mf
from supervisor.images.archive import ArchiveError, read_archive, write_archive

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (podman, containerd)")

NAME = "example.com/ns/multi:v1"
MOTD = b"hello from layer 2\n"
DATA = random.Random(9).randbytes(3 << 20)     # the same layer in every layout (same diff_id)


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def tar_of(files) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build_layout(dest: Path, rootfs: Path, zstd: bool) -> list[str]:
    """An OCI image layout (tag v1): the busybox rootfs (gzip), /etc/motd and a whiteout of
    /bin/vi (plain), /srv/data (zstd, or gzip for docker-archive which has no zstd). Its
    diff_ids."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True)

    def put(data: bytes) -> str:
        (blobs / sha(data)[7:]).write_bytes(data)
        return sha(data)

    plain = [testimages.rootfs_tar_bytes(rootfs),
             tar_of([("etc/motd", MOTD), ("bin/.wh.vi", b"")]),
             tar_of([("srv/data", DATA)])]
    stored = [(gzip.compress(plain[0], mtime=0), mf.OCI_LAYER_GZIP), (plain[1], mf.OCI_LAYER),
              (zstandard.ZstdCompressor().compress(plain[2]), mf.OCI_LAYER_ZSTD) if zstd
              else (gzip.compress(plain[2], mtime=0), mf.OCI_LAYER_GZIP)]
    config = json.dumps({"architecture": testimages._arch(), "os": "linux",
                         "created": "2024-01-01T00:00:00Z",
                         "config": {"Cmd": ["sh"], "Env": [f"PATH={testimages.DEFAULT_PATH}"]},
                         "rootfs": {"type": "layers", "diff_ids": [sha(p) for p in plain]}}
                        ).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_MANIFEST,
                           "config": {"mediaType": mf.OCI_CONFIG, "digest": put(config),
                                      "size": len(config)},
                           "layers": [{"mediaType": t, "digest": put(d), "size": len(d)}
                                      for d, t in stored]}).encode()
    (dest / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": mf.OCI_MANIFEST, "digest": put(manifest), "size": len(manifest),
         "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}))
    (dest / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return [sha(p) for p in plain]


def write_tar(dest: Path, members) -> Path:
    """members: [(name, bytes) or (name, ("symlink", target))]."""
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            info = tarfile.TarInfo(name)
            if isinstance(data, tuple):
                info.type, info.linkname = tarfile.SYMTYPE, data[1]
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return dest


def docker25(layout: Path, dest: Path) -> Path:
    """docker 25+'s `docker save`: an OCI layout plus manifest.json naming the same blobs."""
    index = json.loads((layout / "index.json").read_text())
    desc = index["manifests"][0]
    desc["annotations"] = {"io.containerd.image.name": "docker.io/library/multi:v25",
                           "org.opencontainers.image.ref.name": "v25"}
    manifest = json.loads((layout / "blobs/sha256" / desc["digest"][7:]).read_bytes())
    entry = {"Config": "blobs/sha256/" + manifest["config"]["digest"][7:],
             "RepoTags": ["multi:v25", "other/multi:extra"],
             "Layers": ["blobs/sha256/" + l["digest"][7:] for l in manifest["layers"]]}
    members = [(f"blobs/sha256/{p.name}", p.read_bytes())
               for p in sorted((layout / "blobs/sha256").iterdir())]
    members.append(("0" * 64 + "/layer.tar", ("symlink", "../" + entry["Layers"][0])))
    members += [("index.json", json.dumps(index).encode()),
                ("manifest.json", json.dumps([entry]).encode()),
                ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
                ("repositories", b"{}")]
    return write_tar(dest, members)


class Made:
    """The archives and what they hold."""

    def __init__(self, base: Path):
        self.base = base
        self.files: dict[str, Path] = {}
        self.diff_ids: list[str] = []
        self.busybox_diff_id = ""


@pytest.fixture(scope="module")
def made(busybox_rootfs, tmp_path_factory, private_podman) -> Made:
    m = Made(tmp_path_factory.mktemp("archives"))
    b = m.base
    m.diff_ids = build_layout(b / "layout-zstd", busybox_rootfs, zstd=True)
    assert build_layout(b / "layout-gzip", busybox_rootfs, zstd=False) == m.diff_ids
    f = m.files
    f["skopeo-oci"] = b / "skopeo-oci.tar"
    skopeo("copy", f"oci:{b / 'layout-zstd'}:v1", f"oci-archive:{f['skopeo-oci']}:{NAME}")
    f["skopeo-docker"] = b / "skopeo-docker.tar"
    skopeo("copy", f"oci:{b / 'layout-gzip'}:v1", f"docker-archive:{f['skopeo-docker']}:{NAME}")
    pm: Podman = private_podman
    pm("load", "-i", f["skopeo-docker"])
    rootfs_tar = testimages.write_rootfs_tar(busybox_rootfs, b / "rootfs.tar")
    m.busybox_diff_id = sha(rootfs_tar.read_bytes())
    pm("import", "--quiet", rootfs_tar, "localhost/imported:v1")
    f["podman-docker"] = b / "podman-docker.tar"
    pm("save", "-o", f["podman-docker"], NAME)
    f["podman-oci"] = b / "podman-oci.tar"
    pm("save", "--format", "oci-archive", "-o", f["podman-oci"], NAME)
    f["podman-multi"] = b / "podman-multi.tar"
    pm("save", "-m", "-o", f["podman-multi"], NAME, "localhost/imported:v1")
    f["docker-save"] = testimages.write_docker_archive(busybox_rootfs, b / "docker-save.tar",
                                                       "hawser-busybox:test")
    f["docker25"] = docker25(b / "layout-gzip", b / "docker25.tar")
    f["handmade-oci"] = testimages.write_oci_archive(busybox_rootfs, b / "oci.tar",
                                                     "docker.io/library/hawser-busybox:test")
    return m


def expected(made: Made, kind: str) -> list[tuple[list[str], list[str]]]:
    """[(names, diff_ids)] of the images in each archive."""
    multi = made.diff_ids
    busybox = [made.busybox_diff_id]
    return {
        "skopeo-oci": [([NAME], multi)],
        "skopeo-docker": [([NAME], multi)],
        "podman-docker": [([NAME], multi)],
        "podman-oci": [([NAME], multi)],
        "podman-multi": [([NAME], multi), (["localhost/imported:v1"], None)],
        "docker-save": [(["docker.io/library/hawser-busybox:test"], busybox)],
        "docker25": [(["docker.io/library/multi:v25", "docker.io/other/multi:extra"], multi)],
        "handmade-oci": [(["docker.io/library/hawser-busybox:test"], busybox)],
    }[kind]


def decompressed_digest(path: str, media_type: str) -> str:
    """The layer's diff_id by the real tools (not our decoder)."""
    tool = {"gzip": ["gzip", "-dc"], "zstd": ["zstd", "-dcq"], "": ["cat"]}[
        mf.compression(media_type)]
    out = subprocess.run([*tool, path], check=True, capture_output=True).stdout
    return sha(out)


def assert_store_verified(cs: ContentStore) -> set[str]:
    """Every blob is what its name says; no ingest is left. The digests."""
    digests = set()
    for digest, _ in cs.list():
        h = hashlib.sha256()
        with open(cs.path(digest), "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        assert "sha256:" + h.hexdigest() == digest, f"blob {digest} is not what its name says"
        digests.add(digest)
    assert os.listdir(cs.ingests) == [], "an ingest was left behind"
    return digests


KINDS = ["skopeo-oci", "skopeo-docker", "podman-docker", "podman-oci", "podman-multi",
         "docker-save", "docker25", "handmade-oci"]


@pytest.mark.parametrize("kind", KINDS)
def test_peer_archives_are_read_right(made, kind, tmp_path):
    cs = ContentStore(str(tmp_path))
    written, calls = [], []
    with open(made.files[kind], "rb") as f:
        loaded = read_archive(f, cs, progress=lambda *a: calls.append(a), written=written)
    want = expected(made, kind)
    assert [l.names for l in loaded] == [names for names, _ in want]
    for image, (_, diff_ids) in zip(loaded, want):
        res = mf.resolve(cs, image.target)
        assert image.media_type == res.media_type and image.size == cs.size(image.target)
        if diff_ids is not None:
            assert res.diff_ids == diff_ids
        assert res.config["os"] == "linux" and len(res.layers) == len(res.diff_ids)
        for layer, diff_id in zip(res.layers, res.diff_ids):
            assert cs.size(layer.digest) == layer.size
            assert decompressed_digest(cs.path(layer.digest), layer.media_type) == diff_id
    assert assert_store_verified(cs) == set(written)
    size = made.files[kind].stat().st_size
    assert calls[-1] == ("loaded", 1, 1) and all(c[2] == size for c in calls[:-1])
    assert [c[1] for c in calls[:-1]] == sorted(c[1] for c in calls[:-1])


def test_a_zstd_layer_keeps_its_media_type(made, tmp_path):
    cs = ContentStore(str(tmp_path))
    with open(made.files["skopeo-oci"], "rb") as f:
        (image,) = read_archive(f, cs)
    res = mf.resolve(cs, image.target)
    assert [mf.compression(l.media_type) for l in res.layers][2] == "zstd"


def test_loading_again_writes_nothing_new(made, tmp_path):
    cs = ContentStore(str(tmp_path))
    first, again = [], []
    for written in (first, again):
        with open(made.files["podman-multi"], "rb") as f:
            loaded = read_archive(f, cs, written=written)
    assert first and again == [] and len(loaded) == 2


@pytest.mark.parametrize("tool", [["cat"], ["gzip", "-c"], ["zstd", "-c", "-q"], ["xz", "-c"]])
def test_read_from_a_pipe_compressed_or_not(made, tmp_path, tool):
    if not shutil.which(tool[0]):
        pytest.skip(f"{tool[0]} is not installed")
    cs = ContentStore(str(tmp_path))
    # unbuffered: the pipe's short reads reach read_archive as they come
    proc = subprocess.Popen([*tool, str(made.files["podman-multi"])], stdout=subprocess.PIPE,
                            bufsize=0)
    try:
        loaded = read_archive(proc.stdout, cs)
    finally:
        proc.stdout.close()
        proc.wait()
    assert [l.names for l in loaded] == [[NAME], ["localhost/imported:v1"]]


def test_tag_only_ref_names_need_a_base_name(tmp_path, made):
    archive = layout_archive(made.base / "layout-zstd", tmp_path / "tag-only.tar")
    cs = ContentStore(str(tmp_path / "store"))
    with open(archive, "rb") as f:
        assert read_archive(f, cs)[0].names == []           # "v1" alone names nothing
    with open(archive, "rb") as f:
        assert read_archive(f, cs, base_name="localhost/base")[0].names == \
            ["localhost/base:v1"]


# -- indexes and platforms ---------------------------------------------------------------------
def index_archive(tmp_path: Path, made: Made, platforms: list[str]) -> tuple[Path, str, str]:
    """An OCI archive whose index.json names an image index: the zstd image for the first
    platform (its blobs in the archive), manifests absent from the archive for the others.
    (archive, index digest, manifest digest)."""
    layout = made.base / "layout-zstd"
    top = json.loads((layout / "index.json").read_text())["manifests"][0]
    entries = []
    for n, p in enumerate(platforms):
        os_name, arch, *variant = p.split("/")
        plat = {"os": os_name, "architecture": arch, **({"variant": variant[0]} if variant
                                                        else {})}
        digest = top["digest"] if n == 0 else sha(p.encode())
        entries.append({"mediaType": mf.OCI_MANIFEST, "digest": digest,
                        "size": top["size"] if n == 0 else 100, "platform": plat})
    index = json.dumps({"schemaVersion": 2, "mediaType": mf.OCI_INDEX,
                        "manifests": entries}).encode()
    members = [(f"blobs/sha256/{p.name}", p.read_bytes())
               for p in sorted((layout / "blobs/sha256").iterdir())]
    members += [(f"blobs/sha256/{sha(index)[7:]}", index),
                ("index.json", json.dumps({"schemaVersion": 2, "manifests": [{
                    "mediaType": mf.OCI_INDEX, "digest": sha(index), "size": len(index),
                    "annotations": {"io.containerd.image.name": "localhost/multi:index"}}]}
                ).encode()), ("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')]
    return write_tar(tmp_path / "index.tar", members), sha(index), top["digest"]


def test_an_index_with_the_hosts_platform_only_in_the_archive(made, tmp_path):
    host = mf.host_platform()
    archive, index, manifest = index_archive(tmp_path, made, [host, "linux/s390x"])
    cs = ContentStore(str(tmp_path / "store"))
    with open(archive, "rb") as f:
        (image,) = read_archive(f, cs)
    assert (image.target, image.media_type, image.names) == (index, mf.OCI_INDEX,
                                                             ["localhost/multi:index"])
    assert mf.resolve(cs, index).manifest_digest == manifest
    with open(archive, "rb") as f:
        with pytest.raises(ArchiveError, match=r"manifest sha256:\w+ is not in the archive"):
            read_archive(f, cs, platform="linux/s390x")


def test_an_index_without_the_hosts_platform(made, tmp_path):
    archive, _, _ = index_archive(tmp_path, made, ["linux/riscv64", "linux/s390x"])
    cs = ContentStore(str(tmp_path / "store"))
    with open(archive, "rb") as f, pytest.raises(ArchiveError) as err:
        read_archive(f, cs)
    assert f"no manifest for {mf.host_platform()} in localhost/multi:index; it has " \
           "linux/riscv64, linux/s390x" in str(err.value)
    assert assert_store_verified(cs) == set(err.value.written)


# -- archives we write, read by the peers ------------------------------------------------------
@pytest.fixture(scope="module")
def saved(made, tmp_path_factory) -> tuple[Path, ContentStore, dict]:
    """A store with the zstd image and busybox, and our archive of them (written to a pipe)."""
    base = tmp_path_factory.mktemp("saved")
    cs = ContentStore(str(base / "store"))
    targets = {}
    for kind in ("skopeo-oci", "handmade-oci"):
        with open(made.files[kind], "rb") as f:
            targets[kind] = read_archive(f, cs)[0].target
    images = [("example.com/ns/zstd:v1", targets["skopeo-oci"]),
              ("localhost/zstd:other", targets["skopeo-oci"]),
              ("docker.io/library/hawser-busybox:saved", targets["handmade-oci"])]
    out = base / "saved.tar"
    with open(out, "wb") as f:
        cat = subprocess.Popen(["cat"], stdin=subprocess.PIPE, stdout=f)
        try:
            write_archive(images, cs, cat.stdin)
        finally:
            cat.stdin.close()
            assert cat.wait() == 0
    return out, cs, targets


def test_our_archive_reads_back(saved, tmp_path):
    out, cs, targets = saved
    members = tarfile.open(out).getnames()
    blobs = [n for n in members if n.startswith("blobs/sha256/") and len(n) > 14]
    assert len(blobs) == len(set(blobs))                       # each blob once
    cs2 = ContentStore(str(tmp_path))
    with open(out, "rb") as f:
        loaded = read_archive(f, cs2)
    assert {tuple(l.names) for l in loaded} == {
        ("example.com/ns/zstd:v1", "localhost/zstd:other"),
        ("docker.io/library/hawser-busybox:saved",)}
    for l in loaded:
        assert mf.resolve(cs2, l.target).diff_ids in (
            mf.resolve(cs, targets["skopeo-oci"]).diff_ids,
            mf.resolve(cs, targets["handmade-oci"]).diff_ids)


def test_podman_loads_and_runs_our_archive(saved, made, private_podman):
    out, cs, targets = saved
    pm: Podman = private_podman
    pm("load", "-i", out)
    listed = pm("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    assert {"example.com/ns/zstd:v1", "localhost/zstd:other",
            "docker.io/library/hawser-busybox:saved"} <= set(listed)
    layers = json.loads(pm("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                           "example.com/ns/zstd:v1").stdout)
    assert layers == made.diff_ids
    proc = pm("run", "--rm", *pm.run_flags(), "example.com/ns/zstd:v1", "sh", "-c",
              "cat /etc/motd; test -e /bin/vi && echo vi-is-back; wc -c < /srv/data")
    assert proc.stdout.split("\n")[:2] == [MOTD.decode().strip(), str(len(DATA))]
    assert pm("run", "--rm", *pm.run_flags(), "docker.io/library/hawser-busybox:saved",
              "true").returncode == 0


def test_containerd_imports_our_archive_and_unpacks_our_chain_ids(saved, private_containerd):
    out, cs, targets = saved
    ctd = private_containerd
    ctd.ctr("images", "import", out)
    names = ctd.ids("images")
    assert {"example.com/ns/zstd:v1", "localhost/zstd:other",
            "docker.io/library/hawser-busybox:saved"} <= set(names)
    keys = {line.split()[0] for line in ctd.ctr("snapshots", "ls").stdout.splitlines()[1:]}
    for target in targets.values():
        chains = mf.chain_ids(mf.resolve(cs, target).diff_ids)
        assert set(chains) <= keys, f"containerd's snapshots {keys} lack our chain ids {chains}"


def test_save_of_an_index_writes_the_platforms_manifest(made, tmp_path, private_containerd):
    archive, index, manifest = index_archive(tmp_path, made, [mf.host_platform(), "linux/s390x"])
    cs = ContentStore(str(tmp_path / "store"))
    with open(archive, "rb") as f:
        read_archive(f, cs)
    out = tmp_path / "out.tar"
    with open(out, "wb") as f:
        write_archive([("localhost/multi:index", index)], cs, f)
    saved_index = json.load(tarfile.open(out).extractfile("index.json"))
    assert [m["digest"] for m in saved_index["manifests"]] == [manifest]
    private_containerd.ctr("images", "import", out)
    assert "localhost/multi:index" in private_containerd.ids("images")


def test_save_refuses_an_image_with_a_missing_layer_before_writing(made, tmp_path):
    cs = ContentStore(str(tmp_path / "store"))
    with open(made.files["skopeo-oci"], "rb") as f:
        (image,) = read_archive(f, cs)
    layer = mf.resolve(cs, image.target).layers[1]
    cs.delete(layer.digest)
    out = io.BytesIO()
    with pytest.raises(ArchiveError, match=f"layer 1 \\({layer.digest}\\) is not in the content"):
        write_archive([(NAME, image.target)], cs, out)
    assert out.getvalue() == b""
    with pytest.raises(ArchiveError, match="invalid reference"):
        write_archive([("Bad:Name:x", image.target)], cs, out)


# -- bad archives ------------------------------------------------------------------------------
def members_of(path: Path) -> list[list]:
    with tarfile.open(path) as t:
        return [[m, t.extractfile(m).read() if m.isfile() else None] for m in t.getmembers()]


def rewrite(src: Path, dest: Path, edit) -> Path:
    members = edit(members_of(src))
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as t:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return dest


def find(members, predicate):
    return next(m for m in members if predicate(m[0].name, m[1]))


def largest(members):
    return max((m for m in members if m[1] is not None), key=lambda m: len(m[1]))


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0x40]) + data[at + 1:]


def edit_flip_largest(ms):
    big = largest(ms)
    big[1] = flip(big[1], len(big[1]) // 2)
    return ms


def edit_drop(predicate):
    def edit(ms):
        return [m for m in ms if not predicate(m[0].name, m[1])]
    return edit


def oci_doc(ms, kind: str):
    """The member holding the manifest ("manifest") or the config ("config") of the archive."""
    index = json.loads(find(ms, lambda n, d: n == "index.json")[1])
    digest = index["manifests"][0]["digest"]
    member = find(ms, lambda n, d: n == f"blobs/sha256/{digest[7:]}")
    if kind == "manifest":
        return member
    config = json.loads(member[1])["config"]["digest"]
    return find(ms, lambda n, d: n == f"blobs/sha256/{config[7:]}")


def edit_oci_manifest_bad_json(ms):
    index_m = find(ms, lambda n, d: n == "index.json")
    man = oci_doc(ms, "manifest")
    man[1] = b"{this is not json"
    man[0].name = f"blobs/sha256/{sha(man[1])[7:]}"
    index = json.loads(index_m[1])
    index["manifests"][0].update(digest=sha(man[1]), size=len(man[1]))
    index_m[1] = json.dumps(index).encode()
    return ms


def edit_wrong_name(ms):
    layer = largest(ms)
    layer[0].name = "blobs/sha256/" + hashlib.sha256(b"another blob").hexdigest()
    return ms


def edit_index(change):
    def edit(ms):
        m = find(ms, lambda n, d: n == "index.json")
        index = json.loads(m[1])
        change(index)
        m[1] = json.dumps(index).encode()
        return ms
    return edit


def edit_docker_config_bad_json(ms):
    man = find(ms, lambda n, d: n == "manifest.json")
    entries = json.loads(man[1])
    cfg = find(ms, lambda n, d: n == entries[0]["Config"])
    cfg[1] = b"{oops"
    cfg[0].name = entries[0]["Config"] = sha(cfg[1])[7:] + ".json"
    man[1] = json.dumps(entries).encode()
    return ms


def edit_docker_config_flip(ms):
    entries = json.loads(find(ms, lambda n, d: n == "manifest.json")[1])
    cfg = find(ms, lambda n, d: n == entries[0]["Config"])
    cfg[1] = cfg[1].replace(b'"linux"', b'"Linux"')
    return ms


def edit_replace(name: str, data: bytes):
    def edit(ms):
        find(ms, lambda n, d: n == name)[1] = data
        return ms
    return edit


HEX = r"[0-9a-f]{64}"
BAD = {
    "oci-flipped-layer-byte": ("handmade-oci", edit_flip_largest,
                               rf"member blobs/sha256/{HEX}: corrupt, its content does not "
                               "match its name"),
    "docker-flipped-layer-byte": ("docker-save", edit_flip_largest,
                                  rf"layer {HEX}/layer.tar is sha256:{HEX}, but the config's "
                                  "diff_id 0 is"),
    "podman-flipped-layer-byte": ("podman-docker", edit_flip_largest,
                                  rf"layer {HEX}.tar is sha256:{HEX}, but the config's diff_id "
                                  "2 is"),
    "oci-missing-layer": ("handmade-oci", edit_drop(lambda n, d: d is not None and
                                                    len(d) > 100000),
                          rf"layer 0 \(sha256:{HEX}\) is not in the archive"),
    "docker-missing-layer": ("docker-save", edit_drop(lambda n, d: n.endswith("layer.tar")),
                             rf"layer 0: {HEX}/layer.tar is not in the archive"),
    "oci-missing-config": ("handmade-oci", lambda ms: [m for m in ms
                                                       if m is not oci_doc(ms, "config")],
                           rf"config sha256:{HEX} is not in the archive"),
    "oci-missing-manifest": ("handmade-oci", lambda ms: [m for m in ms
                                                         if m is not oci_doc(ms, "manifest")],
                             rf"image sha256:{HEX} is not in the archive"),
    "oci-bad-index-json": ("handmade-oci", edit_replace("index.json", b"{"),
                           "index.json: not valid JSON"),
    "oci-bad-manifest-json": ("handmade-oci", edit_oci_manifest_bad_json,
                              rf"sha256:{HEX}: not valid JSON"),
    "docker-bad-manifest-json": ("docker-save", edit_replace("manifest.json", b"[{]"),
                                 "manifest.json: not valid JSON"),
    "docker-manifest-json-shape": ("docker-save", edit_replace("manifest.json", b'[{"a": 1}]'),
                                   "manifest.json: image 0 needs Config"),
    "docker-bad-config-json": ("docker-save", edit_docker_config_bad_json,
                               "config .*: not valid JSON"),
    "docker-config-not-its-digest": ("docker-save", edit_docker_config_flip,
                                     rf"config {HEX}.json is corrupt"),
    "oci-blob-under-another-name": ("handmade-oci", edit_wrong_name,
                                    rf"member blobs/sha256/{HEX}: corrupt"),
    "oci-bad-blob-name": ("handmade-oci", lambda ms: [*ms, [tarfile.TarInfo("blobs/sha256/xyz"),
                                                           b"x"]],
                          "member blobs/sha256/xyz: invalid digest"),
    "oci-size-mismatch": ("handmade-oci", edit_index(
        lambda i: i["manifests"][0].update(size=i["manifests"][0]["size"] + 1)),
        "bytes, its descriptor says"),
    "oci-schema1": ("handmade-oci", edit_index(lambda i: i.update(schemaVersion=1)),
                    "schema 1 is not supported"),
    "oci-bad-layout-version": ("handmade-oci", edit_replace("oci-layout", b'{"imageLayoutVersion"'
                                                                          b': "9"}'),
                               "unsupported image layout version '9'"),
    "oci-bad-name-annotation": ("handmade-oci", edit_index(
        lambda i: i["manifests"][0]["annotations"].update(
            {"io.containerd.image.name": "lower/Upper"})), "must be lowercase"),
    "no-image-in-it": ("handmade-oci", edit_drop(lambda n, d: n in ("index.json",)),
                       "not an image archive: neither manifest.json nor index.json"),
}


def assert_clean_failure(cs: ContentStore, err: ArchiveError, written: list) -> None:
    assert err.written == written
    assert assert_store_verified(cs) == set(written), "a blob not listed for cleanup"


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_archives_say_what_is_wrong_and_leave_only_listed_blobs(made, tmp_path, case):
    kind, edit, message = BAD[case]
    archive = rewrite(made.files[kind], tmp_path / "bad.tar", edit)
    cs = ContentStore(str(tmp_path / "store"))
    written = []
    with open(archive, "rb") as f, pytest.raises(ArchiveError, match=message) as err:
        read_archive(f, cs, written=written)
    assert_clean_failure(cs, err.value, written)


def cut_points(path: Path) -> dict[str, int]:
    """Where to cut the archive: in a header, in a blob, at a member boundary, before the end."""
    with tarfile.open(path) as t:
        ms = t.getmembers()
    big = max(ms, key=lambda m: m.size)
    last = ms[-1]
    end = last.offset_data + -(-last.size // 512) * 512
    return {"in-first-header": 100, "in-a-layer": big.offset_data + big.size // 2,
            "at-a-member-boundary": last.offset, "before-the-end-blocks": end}


@pytest.mark.parametrize("kind", ["handmade-oci", "docker-save", "skopeo-oci"])
@pytest.mark.parametrize("where", ["in-first-header", "in-a-layer", "at-a-member-boundary",
                                   "before-the-end-blocks"])
def test_truncated_archives(made, tmp_path, kind, where):
    src = made.files[kind]
    at = cut_points(src)[where]
    cut = tmp_path / "cut.tar"
    with open(src, "rb") as f:
        cut.write_bytes(f.read(at))
    cs = ContentStore(str(tmp_path / "store"))
    written = []
    with open(cut, "rb") as f, pytest.raises(ArchiveError, match=f"truncated at byte {at}"):
        read_archive(f, cs, written=written)
    assert assert_store_verified(cs) == set(written)


@pytest.mark.parametrize("kind", ["handmade-oci", "docker-save", "skopeo-oci"])
def test_a_lone_zero_block_is_no_end_of_the_archive(made, tmp_path, kind):
    """A zero block between members is a damaged archive (Go's archive/tar, containerd's
    import, says "invalid tar header"), not an end that drops the members after it."""
    src = made.files[kind]
    with tarfile.open(src) as t:
        ms = t.getmembers()
    at = ms[len(ms) // 2].offset                 # a member's first header, half-way
    data = src.read_bytes()
    bad = tmp_path / "bad.tar"
    bad.write_bytes(data[:at] + bytes(512) + data[at:])
    cs = ContentStore(str(tmp_path / "store"))
    written = []
    with open(bad, "rb") as f, pytest.raises(ArchiveError, match=f"archive: header at byte "
                                             f"{at + 512}: invalid tar header") as err:
        read_archive(f, cs, written=written)
    assert_clean_failure(cs, err.value, written)


def test_a_sparse_member_is_refused(made, tmp_path):
    """GNU tar's --sparse in POSIX format: a regular entry whose data is a sparse map and
    pieces; read as it is, the blob would be wrong (and its digest fail far from the cause)."""
    (tmp_path / "blobs").mkdir()
    with open(tmp_path / "blobs/holes", "wb") as f:
        f.truncate(4 << 20)
        f.write(b"data")
    sparse = subprocess.run(["tar", "--format=posix", "--sparse", "-C", str(tmp_path), "-cf",
                             "-", "blobs/holes"], check=True, capture_output=True).stdout
    data = made.files["handmade-oci"].read_bytes()
    end = len(data.rstrip(b"\0"))
    archive = tmp_path / "sparse.tar"               # the archive's members, then the sparse one
    archive.write_bytes(data[:end + -end % 512] + sparse)
    cs = ContentStore(str(tmp_path / "store"))
    written = []
    with open(archive, "rb") as f, pytest.raises(
            ArchiveError, match=r"member blobs/holes \(at byte \d+\): .*sparse files are not "
                                "supported") as err:
        read_archive(f, cs, written=written)
    assert_clean_failure(cs, err.value, written)


@pytest.mark.parametrize("data, message", [
    (b"", "empty file, not a tar archive"),
    (b"just some text\n" * 100, "not a tar archive, or corrupt: bad header checksum at byte 0"),
    (random.Random(3).randbytes(8192), "not a tar archive"),
    (gzip.compress(random.Random(4).randbytes(8192)), "not a tar archive"),
    (gzip.compress(tar_of([("a", random.Random(5).randbytes(100000))]))[:50000],
     "compressed archive is truncated"),
    (b"\x1f\x8b" + b"\x00" * 100, "compressed archive is corrupt"),
])
def test_not_a_tar(tmp_path, data, message):
    cs = ContentStore(str(tmp_path))
    with pytest.raises(ArchiveError, match=message) as err:
        read_archive(io.BytesIO(data), cs)
    assert_clean_failure(cs, err.value, [])


# -- dockerd (a private 20.10) -------------------------------------------------------------------


def layout_archive(layout: Path, dest: Path) -> Path:
    """The OCI layout directory as an archive (ref.name "v1": a tag, no name)."""
    return write_tar(dest, [(str(p.relative_to(layout)), p.read_bytes())
                            for p in sorted(layout.rglob("*")) if p.is_file()])


def test_docker_loads_runs_and_saves(made, tmp_path, dockerd):
    """dockerd 20.10 reads no zstd layer: the gzip, plain, gzip image."""
    cs = ContentStore(str(tmp_path / "store"))
    with open(layout_archive(made.base / "layout-gzip", tmp_path / "in.tar"), "rb") as f:
        (image,) = read_archive(f, cs, base_name="localhost/gzip")
    out = tmp_path / "ours.tar"
    with open(out, "wb") as f:
        write_archive([("example.com/ns/gzip:v1", image.target)], cs, f)
    dockerd("load", "-i", out)
    try:
        layers = json.loads(dockerd("image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                    "example.com/ns/gzip:v1").stdout)
        assert layers == made.diff_ids
        proc = dockerd("run", "--rm", "--network", "none", "example.com/ns/gzip:v1", "sh", "-c",
                       "cat /etc/motd; test -e /bin/vi && echo vi-is-back; wc -c < /srv/data")
        assert proc.stdout.split("\n")[:2] == [MOTD.decode().strip(), str(len(DATA))]
        # and docker's own save (20.10: the old layout, plain layers) reads back right
        theirs = tmp_path / "docker-save.tar"
        dockerd("save", "-o", theirs, "example.com/ns/gzip:v1")
    finally:
        dockerd("rmi", "-f", "example.com/ns/gzip:v1", check=False)
    cs2 = ContentStore(str(tmp_path / "store2"))
    with open(theirs, "rb") as f:
        (back,) = read_archive(f, cs2)
    assert back.names == ["example.com/ns/gzip:v1"]
    assert mf.resolve(cs2, back.target).diff_ids == made.diff_ids
    assert_store_verified(cs2)
