"""Manifests on a real content store: resolve() reaches one platform's image through indexes and
docker manifest lists the way containerd's default matcher chooses, checks every document it
reads, and says which platform is wanted and which are there; children() for the collector;
platforms as containerd normalizes them."""
import hashlib
import json
import platform as host

import pytest

from supervisor.content.store import ContentStore
from supervisor.images import manifest as mf
from supervisor.images.platforms import PlatformError, candidates, parse_platform

OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def content(tmp_path):
    return ContentStore(str(tmp_path))


def put_json(content, doc) -> dict:
    data = json.dumps(doc).encode()
    return {"digest": content.put(data), "size": len(data)}


def image(content, arch="amd64", variant="", layers=2, docker=False, config_edit=None,
          manifest_edit=None) -> dict:
    """An image manifest in the store (layers: small real blobs); its descriptor."""
    blobs = [content.put(f"layer {arch} {i}".encode()) for i in range(layers)]
    config = {"architecture": arch, "os": "linux", "config": {"Cmd": ["sh"]},
              "rootfs": {"type": "layers", "diff_ids": [sha(f"diff {i}".encode())
                                                        for i in range(layers)]}}
    if variant:
        config["variant"] = variant
    if config_edit:
        config_edit(config)
    cfg = put_json(content, config)
    manifest = {"schemaVersion": 2,
                "mediaType": mf.DOCKER_MANIFEST if docker else mf.OCI_MANIFEST,
                "config": {"mediaType": mf.DOCKER_CONFIG if docker else mf.OCI_CONFIG, **cfg},
                "layers": [{"mediaType": mf.DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP,
                            "digest": b, "size": content.size(b)} for b in blobs]}
    if manifest_edit:
        manifest_edit(manifest)
    platform = {"os": "linux", "architecture": arch, **({"variant": variant} if variant else {})}
    return {"mediaType": manifest["mediaType"], **put_json(content, manifest),
            "platform": platform}


def index(content, entries, docker=False) -> dict:
    doc = {"schemaVersion": 2, "mediaType": mf.DOCKER_LIST if docker else mf.OCI_INDEX,
           "manifests": entries}
    return {"mediaType": doc["mediaType"], **put_json(content, doc)}


def test_resolve_a_manifest(content):
    desc = image(content, layers=3)
    res = mf.resolve(content, desc["digest"])
    assert res.target == res.manifest_digest == desc["digest"]
    assert res.media_type == res.manifest_media_type == mf.OCI_MANIFEST
    assert res.config["architecture"] == "amd64" and res.platform == "linux/amd64"
    assert res.config_digest == res.manifest["config"]["digest"]
    assert [d.digest for d in res.layers] == [l["digest"] for l in res.manifest["layers"]]
    assert [d.size for d in res.layers] == [content.size(d.digest) for d in res.layers]
    assert res.diff_ids == res.config["rootfs"]["diff_ids"] and len(res.diff_ids) == 3


@pytest.mark.parametrize("docker", [False, True], ids=["oci-index", "docker-manifest-list"])
def test_an_index_gives_the_hosts_platform(content, docker):
    amd = image(content, "amd64", docker=docker)
    arm = image(content, "arm64", "v8", docker=docker)
    top = index(content, [arm, amd], docker=docker)
    res = mf.resolve(content, top["digest"], "linux/amd64")
    assert res.target == top["digest"] and res.manifest_digest == amd["digest"]
    assert res.media_type == (mf.DOCKER_LIST if docker else mf.OCI_INDEX)
    # arm64 matches arm64/v8 (containerd normalizes v8 away)
    assert mf.resolve(content, top["digest"], "linux/arm64").manifest_digest == arm["digest"]
    assert mf.resolve(content, top["digest"], "linux/arm64/v8").manifest_digest == arm["digest"]


def test_nested_indexes_and_variant_fallback(content):
    v6 = image(content, "arm", "v6")
    v5 = image(content, "arm", "v5")
    inner = index(content, [v5, v6])
    top = index(content, [inner | {"platform": None}, image(content, "s390x")])
    # an index entry without a platform is looked into; arm/v7 takes v6 before v5
    assert mf.resolve(content, top["digest"], "linux/arm/v7").manifest_digest == v6["digest"]
    assert mf.resolve(content, top["digest"], "linux/arm/v5").manifest_digest == v5["digest"]


def test_a_missing_platform_names_the_wanted_and_those_present(content):
    top = index(content, [image(content, "arm64"), image(content, "s390x"),
                          image(content, "arm64")])
    with pytest.raises(mf.ManifestError) as err:
        mf.resolve(content, top["digest"], "linux/amd64", name="docker.io/x:y")
    assert str(err.value) == ("no manifest for linux/amd64 in docker.io/x:y; it has "
                              "linux/arm64, linux/s390x")
    # amd64 does not take an amd64/v2 image (a host of v1 cannot run it)
    top = index(content, [image(content, "amd64", "v2")])
    with pytest.raises(mf.ManifestError, match="it has linux/amd64/v2"):
        mf.resolve(content, top["digest"], "linux/amd64")


def test_select_platform_on_a_plain_dict():
    idx = {"manifests": [
        {"digest": "a", "platform": {"os": "unknown", "architecture": "unknown"}},
        {"digest": "b", "platform": {"os": "linux", "architecture": "arm", "variant": "v7"}},
        {"digest": "c", "platform": {"os": "linux", "architecture": "amd64"}}]}
    assert mf.select_platform(idx, "linux/amd64")["digest"] == "c"
    assert mf.select_platform(idx, "linux/arm64")["digest"] == "b"    # 32-bit arm on arm64
    with pytest.raises(PlatformError, match="it has linux/arm/v7, linux/amd64$"):
        mf.select_platform(idx, "linux/ppc64le")                     # attestations not listed


def test_an_unnamed_entry_is_checked_against_its_config(content):
    arm = image(content, "arm64")
    top = index(content, [{k: v for k, v in arm.items() if k != "platform"}])
    with pytest.raises(mf.ManifestError, match="no manifest for linux/amd64 .* linux/arm64"):
        mf.resolve(content, top["digest"], "linux/amd64")
    assert mf.resolve(content, top["digest"], "linux/arm64").manifest_digest == arm["digest"]


def bad(content, doc_or_bytes):
    data = doc_or_bytes if isinstance(doc_or_bytes, bytes) else json.dumps(doc_or_bytes).encode()
    return content.put(data)


@pytest.mark.parametrize("make, message", [
    (lambda c: bad(c, b"{not json"), "not valid JSON"),
    (lambda c: bad(c, b"[1, 2]"), "not a JSON object"),
    (lambda c: bad(c, {"schemaVersion": 1, "name": "x", "fsLayers": []}), "schema 1"),
    (lambda c: bad(c, {"schemaVersion": 2, "mediaType":
                       "application/vnd.docker.distribution.manifest.v1+prettyjws"}), "schema 1"),
    (lambda c: bad(c, {"schemaVersion": 3, "config": {}, "layers": []}), "schemaVersion is 3"),
    (lambda c: bad(c, {"schemaVersion": 2, "mediaType": "text/plain"}), "not an image index"),
    (lambda c: image(c, manifest_edit=lambda m: m.pop("layers"))["digest"], "no layers list"),
    (lambda c: image(c, manifest_edit=lambda m: m["layers"][0].update(digest="sha256:abc"))
     ["digest"], "layer 0: invalid digest"),
    (lambda c: image(c, manifest_edit=lambda m: m["layers"][1].update(size=-1))["digest"],
     "size -1"),
    (lambda c: image(c, manifest_edit=lambda m: m["layers"][1].update(mediaType="x/y"))
     ["digest"], "unsupported media type 'x/y'"),
    (lambda c: image(c, manifest_edit=lambda m: m["config"].update(
        mediaType="application/vnd.cncf.helm.config.v1+json"))["digest"], "not an image config"),
    (lambda c: image(c, manifest_edit=lambda m: m["config"].update(size=1))["digest"],
     "its descriptor says 1"),
    (lambda c: image(c, manifest_edit=lambda m: m["config"].update(digest=sha(b"gone")))
     ["digest"], "is not in the content store"),
    (lambda c: image(c, config_edit=lambda cfg: cfg.pop("architecture"))["digest"],
     "no architecture"),
    (lambda c: image(c, config_edit=lambda cfg: cfg.pop("os"))["digest"], "no os"),
    (lambda c: image(c, config_edit=lambda cfg: cfg["rootfs"]["diff_ids"].pop())["digest"],
     "1 diff_ids for 2 layers"),
    (lambda c: image(c, config_edit=lambda cfg: cfg["rootfs"]["diff_ids"].__setitem__(0, "x"))
     ["digest"], "diff_id"),
    (lambda c: image(c, config_edit=lambda cfg: cfg.update(rootfs={}))["digest"], "rootfs"),
    (lambda c: index(c, [{"mediaType": mf.OCI_MANIFEST, "digest": sha(b"absent"), "size": 3,
                          "platform": {"os": "linux", "architecture": "amd64"}}])["digest"],
     "is not in the content store"),
    (lambda c: index(c, [{"mediaType": mf.OCI_MANIFEST, "digest": "sha256:12", "size": 3,
                          "platform": {"os": "linux", "architecture": "amd64"}}])["digest"],
     "invalid digest"),
    (lambda c: sha(b"never stored"), "is not in the content store"),
])
def test_bad_documents_are_refused_with_what_is_wrong(content, make, message):
    with pytest.raises(mf.ManifestError, match=message):
        mf.resolve(content, make(content), "linux/amd64")


def test_indexes_nested_deeper_than_max_depth_are_refused(content):
    # an index cannot contain itself (digests), but a deep chain is refused all the same
    manifest = desc = image(content)
    for _ in range(mf.MAX_DEPTH):
        desc = index(content, [desc | {"platform": None}])
    assert mf.resolve(content, desc["digest"]).manifest_digest == manifest["digest"]
    desc = index(content, [desc | {"platform": None}])
    with pytest.raises(mf.ManifestError, match=f"nested deeper than {mf.MAX_DEPTH}"):
        mf.resolve(content, desc["digest"])


def test_chain_ids_are_ocis():
    a, b, c = (sha(x) for x in (b"a", b"b", b"c"))
    ab = sha(f"{a} {b}".encode())
    assert mf.chain_ids([]) == []
    assert mf.chain_ids([a]) == [a]
    assert mf.chain_ids([a, b, c]) == [a, ab, sha(f"{ab} {c}".encode())]
    # the end-to-end check against containerd's own snapshot keys is in test_archive.py


def test_children_for_the_collector(content):
    amd = image(content, layers=2)
    top = index(content, [amd, {"mediaType": mf.OCI_MANIFEST, "digest": sha(b"absent"),
                                "size": 5, "platform": {"os": "linux", "architecture": "s390x"}}])
    kids = mf.children(content, top["digest"])
    assert [k.digest for k in kids] == [amd["digest"], sha(b"absent")]   # absent ones too
    res = mf.resolve(content, amd["digest"])
    assert [k.digest for k in mf.children(content, amd["digest"])] == \
        [res.config_digest] + [l.digest for l in res.layers]
    assert mf.children(content, res.config_digest, mf.OCI_CONFIG) == []
    assert mf.children(content, res.layers[0].digest) == []              # not JSON: a layer
    assert mf.children(content, sha(b"absent")) == []


def test_platforms():
    machine = host.machine()
    if machine == "x86_64":
        assert mf.host_platform() == "linux/amd64"
    assert str(parse_platform("linux/aarch64")) == "linux/arm64"
    assert str(parse_platform("linux/arm64/v8")) == "linux/arm64"
    assert str(parse_platform("linux/arm")) == "linux/arm/v7"
    assert str(parse_platform("armhf")) == "linux/arm/v7"
    assert str(parse_platform("linux/x86_64")) == "linux/amd64"
    assert str(parse_platform("windows/amd64")) == "windows/amd64"
    assert str(parse_platform("")) == mf.host_platform()
    assert [str(p) for p in candidates(parse_platform("linux/arm/v7"))] == \
        ["linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]
    for text in ("linux/", "a/b/c/d", "linux/amd 64", "/amd64"):
        with pytest.raises(PlatformError, match="invalid platform"):
            parse_platform(text)
