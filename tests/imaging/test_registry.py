"""Pull and push against Debian's docker-registry on loopback, with images pushed there by
skopeo and read back by skopeo; token auth against a token server of the test's own; resumed,
redirected, cut and corrupted downloads through a recording proxy."""
import io
import json
import os
import time
import types

import pytest

from images import rootfs_tar_bytes
from registry_harness import (BlobStorage, Image, Proxy, Registry, TokenServer, free_port,
                              gzip_bytes, gzip_tar, push_layout, sha, skopeo, write_layout)
from supervisor.content.store import ContentStore
from supervisor.images import refs
from supervisor.images.manifest import ManifestError
from supervisor.registry import RegistryError
from supervisor.registry.auth import EXPIRY_MARGIN, parse_challenges
from supervisor.registry.client import RegistryClient
from supervisor.registry.pull import pull, short_id
from supervisor.registry.push import push

USERS = {"alice": "secret"}
REFRESH = {"refresh-alice": "alice"}


@pytest.fixture(scope="module")
def images(busybox_rootfs):
    """busybox (five layers: more than pull fetches at once) and tiny images of other
    platforms."""
    base = gzip_bytes(rootfs_tar_bytes(busybox_rootfs))
    extra = [gzip_tar({f"etc/layer{i}": os.urandom(2000 + i)}) for i in range(4)]
    return types.SimpleNamespace(
        busybox=Image([base] + extra),
        arm64=Image([gzip_tar({"hello": b"arm64"})], arch="arm64"),
        s390x=Image([gzip_tar({"hello": b"s390x"})], arch="s390x"))


@pytest.fixture(scope="module")
def registry(tmp_path_factory, images):
    """A plain-http registry with busybox:1, multi:1 (amd64 + arm64) and foreign:1 (arm64 +
    s390x), pushed by skopeo."""
    work = tmp_path_factory.mktemp("registry")
    reg = Registry(work / "reg").start()
    try:
        for name, members, as_index in (("busybox", [images.busybox], False),
                                        ("multi", [images.busybox, images.arm64], True),
                                        ("foreign", [images.arm64, images.s390x], True)):
            layout = work / name
            write_layout(layout, "1", members, as_index)
            push_layout(layout, "1", reg.netloc, f"{name}:1")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, images):
    """A registry with `auth: token` trusting our token server's certificate; busybox:1 pushed
    there by skopeo with alice's credentials."""
    work = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(work / "tokens", USERS, REFRESH)
    reg = None
    try:
        reg = Registry(work / "reg", token=tokens).start()
        write_layout(work / "busybox", "1", [images.busybox], False)
        push_layout(work / "busybox", "1", reg.netloc, "busybox:1", creds="alice:secret")
        reg.tokens = tokens
        yield reg
    finally:
        if reg is not None:
            reg.stop()
        tokens.stop()


@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory, images):
    """A registry behind htpasswd (Basic auth); busybox:1 pushed by skopeo as alice."""
    work = tmp_path_factory.mktemp("basic-registry")
    reg = Registry(work / "reg", users=USERS).start()
    try:
        write_layout(work / "busybox", "1", [images.busybox], False)
        push_layout(work / "busybox", "1", reg.netloc, "busybox:1", creds="alice:secret")
        yield reg
    finally:
        reg.stop()


@pytest.fixture
def proxy(registry):
    p = Proxy(registry.netloc)
    yield p
    p.stop()


@pytest.fixture
def store(tmp_path):
    return ContentStore(str(tmp_path / "root"))


class Recorder:
    def __init__(self):
        self.lines = []

    def __call__(self, ident, status, current, total):
        self.lines.append((ident, status, current, total))

    def statuses(self, ident):
        return [s for i, s, _, _ in self.lines if i == ident]


def assert_all_verified(store, digests):
    have = dict(store.list())
    for d in digests:
        assert d in have, f"{d} not in the store"
        with open(store.path(d), "rb") as f:
            assert sha(f.read()) == d
    assert os.listdir(store.ingests) == []


def test_pull_stores_every_blob_verified(registry, images, store):
    ref = refs.parse(f"{registry.netloc}/busybox:1")
    rec = Recorder()
    with RegistryClient(ref.domain) as client:
        result = pull(ref, store, client, progress=rec)
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.netloc}/busybox:1")
    assert result.target == result.manifest_digest == sha(raw.encode()) == images.busybox.digest
    assert result.media_type == "application/vnd.oci.image.manifest.v1+json"
    assert result.size == len(images.busybox.manifest)
    assert_all_verified(store, images.busybox.blobs())
    assert len(dict(store.list())) == 7
    for layer in images.busybox.layers:
        statuses = rec.statuses(short_id(sha(layer)))
        assert statuses[0] == "Pulling fs layer"
        assert statuses[-3:] == ["Downloading", "Verifying Checksum", "Download complete"]
    assert sum("Waiting" in rec.statuses(short_id(sha(x))) for x in images.busybox.layers) == 2
    assert rec.lines[0] == ("1", "Pulling from busybox", 0, 0)
    assert rec.lines[-1] == ("", f"Digest: {result.target}", 0, 0)
    big = short_id(sha(images.busybox.layers[0]))
    sizes = [(c, t) for i, s, c, t in rec.lines if i == big and s == "Downloading"]
    assert sizes[-1] == (len(images.busybox.layers[0]),) * 2

    again = Recorder()
    with RegistryClient(ref.domain) as client:
        assert pull(ref, store, client, progress=again) == result
    for layer in images.busybox.layers:
        assert again.statuses(short_id(sha(layer))) == ["Already exists"]


def test_pull_of_an_index_takes_the_hosts_platform_only(registry, images, store):
    ref = types.SimpleNamespace(domain=registry.netloc, path="multi", tag="1", digest="")
    with RegistryClient(ref.domain) as client:
        result = pull(ref, store, client, platform="linux/amd64")
    index = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{registry.netloc}/multi:1")
    assert result.target == sha(index.encode())
    assert result.media_type == "application/vnd.oci.image.index.v1+json"
    assert result.manifest_digest == images.busybox.digest
    assert_all_verified(store, [result.target, *images.busybox.blobs()])
    for digest in images.arm64.blobs():
        assert not store.exists(digest), "another platform's blob was fetched"

    with RegistryClient(ref.domain) as client:
        arm = pull(ref, store, client, platform="linux/arm64/v8")
    assert arm.target == result.target and arm.manifest_digest == images.arm64.digest
    assert_all_verified(store, images.arm64.blobs())


def test_an_index_without_the_platform_is_refused_naming_those_it_has(registry, store):
    ref = refs.parse(f"{registry.netloc}/foreign:1")
    with RegistryClient(ref.domain) as client, pytest.raises(ManifestError) as e:
        pull(ref, store, client, platform="linux/amd64")
    assert "linux/amd64" in str(e.value) and "linux/arm64, linux/s390x" in str(e.value)
    assert list(store.list()) == [] and os.listdir(store.ingests) == []


def test_a_single_manifest_of_another_platform_is_refused(registry, images, store):
    ref = refs.parse(f"{registry.netloc}/busybox:1")
    with RegistryClient(ref.domain) as client, pytest.raises(ManifestError) as e:
        pull(ref, store, client, platform="linux/arm64")
    assert "linux/amd64, not linux/arm64" in str(e.value)
    assert list(store.list()) == []


@pytest.mark.parametrize("name", ["busybox:nope", "nothere:1"])
def test_unknown_tag_or_repository_is_not_found(registry, store, name):
    ref = refs.parse(f"{registry.netloc}/{name}")
    with RegistryClient(ref.domain) as client, pytest.raises(RegistryError) as e:
        pull(ref, store, client)
    # distribution 2.8 says MANIFEST_UNKNOWN for an unknown repository too
    assert e.value.status == 404 and e.value.grpc_code == "NOT_FOUND"
    assert str(e.value) == "manifest unknown: manifest unknown"
    assert list(store.list()) == []


def test_nothing_listening_is_unavailable(store):
    ref = refs.parse(f"127.0.0.1:{free_port()}/busybox:1")
    with RegistryClient(ref.domain, timeout=5) as client, pytest.raises(RegistryError) as e:
        pull(ref, store, client)
    assert e.value.grpc_code == "UNAVAILABLE" and "connection refused" in str(e.value)


def test_push_back_under_a_new_tag_reads_back_with_skopeo(registry, images, store, tmp_path):
    src = refs.parse(f"{registry.netloc}/busybox:1")
    with RegistryClient(src.domain) as client:
        pulled = pull(src, store, client)
        rec = Recorder()
        dest = refs.parse(f"{registry.netloc}/copies/busybox:2")
        digest = push(dest, pulled.target, store, client, progress=rec)
    assert digest == pulled.target
    raw = skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{dest.name}")
    assert sha(raw.encode()) == digest
    for layer in images.busybox.layers:
        statuses = rec.statuses(short_id(sha(layer)))
        assert statuses[0] == "Preparing" and statuses[1] == "Pushing"
        assert statuses[-1] == "Pushed"
    big = images.busybox.layers[0]
    sent = [(c, t) for i, st, c, t in rec.lines if i == short_id(sha(big)) and st == "Pushing"]
    assert sent[0] == (0, len(big)) and sent[-1] == (len(big), len(big)) and len(sent) > 2
    assert rec.lines[0][1] == f"The push refers to repository [{registry.netloc}/copies/busybox]"
    assert rec.lines[-1] == ("", f"2: digest: {digest} size: {len(images.busybox.manifest)}", 0, 0)

    skopeo("copy", "--src-tls-verify=false", f"docker://{dest.name}", f"oci:{tmp_path / 'out'}:x")
    index = json.loads((tmp_path / "out" / "index.json").read_text())
    manifest = json.loads((tmp_path / "out" / "blobs" / "sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_bytes())
    assert [x["digest"] for x in manifest["layers"]] == [sha(x) for x in images.busybox.layers]
    for x in images.busybox.layers:
        assert (tmp_path / "out" / "blobs" / "sha256" / sha(x).split(":")[1]).read_bytes() == x

    again = Recorder()
    with RegistryClient(dest.domain) as client:
        assert push(dest, pulled.target, store, client, progress=again) == digest
    for layer in images.busybox.layers:
        assert again.statuses(short_id(sha(layer)))[-1] == "Layer already exists"


def test_push_mounts_blobs_from_another_repository(registry, images, store):
    with RegistryClient(registry.netloc) as client:
        pulled = pull(refs.parse(f"{registry.netloc}/busybox:1"), store, client)
        rec = Recorder()
        dest = refs.parse(f"{registry.netloc}/mounted/busybox:1")
        push(dest, pulled.target, store, client, progress=rec, mount_from="busybox")
        for layer in images.busybox.layers:
            assert rec.statuses(short_id(sha(layer)))[-1] == "Mounted from busybox"
            assert client.blob_exists("mounted/busybox", sha(layer)) == len(layer)
        # a blob the source repository lacks is uploaded after all
        extra = gzip_tar({"only-here": b"new"})
        assert client.upload_blob("mounted/busybox", sha(extra), len(extra), io.BytesIO(extra),
                                  mount_from="busybox") is False
        assert client.blob_exists("mounted/busybox", sha(extra)) == len(extra)


def test_push_of_a_pulled_index_sends_the_platform_manifest(registry, images, store):
    with RegistryClient(registry.netloc) as client:
        pulled = pull(refs.parse(f"{registry.netloc}/multi:1"), store, client)
        dest = refs.parse(f"{registry.netloc}/multi-copy:1")
        digest = push(dest, pulled.target, store, client)
        assert digest == images.busybox.digest
        body, media_type, got = client.get_manifest("multi-copy", "1")
    assert got == digest and body == images.busybox.manifest


def test_token_auth_pull_and_push_reuse_one_token(token_registry, images, store):
    tokens = token_registry.tokens
    ref = refs.parse(f"{token_registry.netloc}/busybox:1")
    before = len(tokens.requests)
    with RegistryClient(ref.domain, auth={"username": "alice", "password": "secret"}) as client:
        result = pull(ref, store, client)
        asked = tokens.requests[before:]
        assert len(asked) == 1, asked       # 7 registry requests, one token
        assert asked[0]["scope"] == ["repository:busybox:pull"]
        assert asked[0]["service"] == "hawser-test-registry"
        assert asked[0]["authorization"].startswith("Basic ")
        before = len(tokens.requests)
        digest = push(refs.parse(f"{token_registry.netloc}/pushed:1"), result.target, store,
                      client)
    assert [r["scope"] for r in tokens.requests[before:]] == [["repository:pushed:pull,push"]]
    assert digest == images.busybox.digest
    assert_all_verified(store, images.busybox.blobs())
    with RegistryClient(ref.domain, auth=("", "", "refresh-alice")) as client:
        body, _, got = client.get_manifest("pushed", "1")
    assert got == digest and tokens.requests[-1]["grant_type"] == "refresh_token"


def test_a_token_is_kept_until_it_expires(token_registry):
    tokens = token_registry.tokens
    tokens.lifetime = int(EXPIRY_MARGIN) + 1    # kept for 1 s
    try:
        with RegistryClient(token_registry.netloc, auth=("alice", "secret")) as client:
            before = len(tokens.requests)
            for _ in range(3):
                client.get_manifest("busybox", "1")
            assert len(tokens.requests) == before + 1
            time.sleep(1.2)
            client.get_manifest("busybox", "1")
            assert len(tokens.requests) == before + 2
    finally:
        tokens.lifetime = 300


@pytest.mark.parametrize("auth", [None, {"username": "alice", "password": "wrong"}],
                         ids=["anonymous", "wrong-password"])
def test_token_auth_without_the_right_credentials_is_unauthenticated(token_registry, store,
                                                                      auth):
    ref = refs.parse(f"{token_registry.netloc}/busybox:1")
    with RegistryClient(ref.domain, auth=auth) as client, pytest.raises(RegistryError) as e:
        pull(ref, store, client)
    assert e.value.grpc_code == "UNAUTHENTICATED" and e.value.status == 401
    if auth is None:
        assert str(e.value).startswith("unauthorized: authentication required")
    else:
        assert "refused the credentials for user 'alice'" in str(e.value)
    assert list(store.list()) == []


@pytest.mark.parametrize("auth, works", [(("alice", "secret"), True), (None, False),
                                         (("alice", "nope"), False)],
                         ids=["right", "anonymous", "wrong"])
def test_basic_auth(basic_registry, images, store, auth, works):
    ref = refs.parse(f"{basic_registry.netloc}/busybox:1")
    with RegistryClient(ref.domain, auth=auth) as client:
        if works:
            assert pull(ref, store, client).target == images.busybox.digest
            assert_all_verified(store, images.busybox.blobs())
            return
        with pytest.raises(RegistryError) as e:
            pull(ref, store, client)
    assert e.value.status == 401 and e.value.grpc_code == "UNAUTHENTICATED"
    assert list(store.list()) == []


def test_https_checks_the_certificate(tmp_path, images, store):
    reg = Registry(tmp_path / "tls", tls=True).start()
    try:
        write_layout(tmp_path / "busybox", "1", [images.busybox], False)
        (tmp_path / "ca").mkdir()
        (tmp_path / "ca" / "ca.crt").write_bytes(reg.cert.read_bytes())
        skopeo("copy", "--dest-cert-dir", str(tmp_path / "ca"), "--preserve-digests",
               f"oci:{tmp_path / 'busybox'}:1", f"docker://{reg.netloc}/busybox:1")
        ref = refs.parse(f"{reg.netloc}/busybox:1")
        with RegistryClient(ref.domain, insecure=False) as client, \
                pytest.raises(RegistryError) as e:
            pull(ref, store, client)
        assert e.value.grpc_code == "UNAVAILABLE" and "certificate verify failed" in str(e.value)
        with RegistryClient(ref.domain, insecure=False, ca_file=str(reg.cert)) as client:
            assert client.base.startswith("https://")
            assert pull(ref, store, client).target == images.busybox.digest
        assert_all_verified(store, images.busybox.blobs())
    finally:
        reg.stop()


@pytest.mark.parametrize("which", ["basic_registry", "token_registry"])
def test_login_checks_the_credentials(request, which):
    reg = request.getfixturevalue(which)
    with RegistryClient(reg.netloc, auth=("alice", "secret")) as client:
        client.login()
    with RegistryClient(reg.netloc, auth=("alice", "wrong")) as client, \
            pytest.raises(RegistryError) as e:
        client.login()
    assert e.value.grpc_code == "UNAUTHENTICATED"


def test_a_cut_download_resumes_with_range(registry, images, proxy, store):
    proxy.cut_after = 100_000
    with RegistryClient(proxy.netloc) as client:
        pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    assert_all_verified(store, images.busybox.blobs())
    big = sha(images.busybox.layers[0])
    gets = [r for r in proxy.blob_gets() if big in r["path"]]
    assert gets[0].get("cut") == 100_000
    assert gets[1]["headers"].get("Range") == "bytes=100000-" and gets[1]["status"] == 206


def test_an_ingest_left_by_a_broken_pull_is_resumed(registry, images, proxy, store):
    layer = images.busybox.layers[0]
    with store.writer(expected=sha(layer), size=len(layer), ref=sha(layer)) as w:
        w.write(layer[:123_456])     # closed without a commit: kept for a resume
    with RegistryClient(proxy.netloc) as client:
        pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    assert_all_verified(store, images.busybox.blobs())
    gets = [r for r in proxy.blob_gets() if sha(layer) in r["path"]]
    assert [r["headers"].get("Range") for r in gets] == ["bytes=123456-"]


def test_an_ingest_that_is_not_the_blobs_start_is_downloaded_again(registry, images, proxy,
                                                                  store):
    layer = images.busybox.layers[0]
    with store.writer(expected=sha(layer), size=len(layer), ref=sha(layer)) as w:
        w.write(b"x" * 5000)         # a resume appends to it: the whole is wrong
    with RegistryClient(proxy.netloc) as client:
        pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    assert_all_verified(store, images.busybox.blobs())
    gets = [r for r in proxy.blob_gets() if sha(layer) in r["path"]]
    assert [r["headers"].get("Range") for r in gets] == ["bytes=5000-", None]


def test_a_registry_ignoring_range_sends_it_all_again(registry, images, proxy, store):
    layer = images.busybox.layers[0]
    with store.writer(expected=sha(layer), size=len(layer), ref=sha(layer)) as w:
        w.write(b"x" * 5000)         # not even the blob's bytes: must not survive
    proxy.ignore_range = True
    with RegistryClient(proxy.netloc) as client:
        pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    assert_all_verified(store, images.busybox.blobs())


def test_blob_redirect_goes_without_the_registrys_token(token_registry, images, store):
    storage = BlobStorage()
    proxy = Proxy(token_registry.netloc)
    try:
        proxy.redirect_to = storage
        with RegistryClient(proxy.netloc, auth=("alice", "secret")) as client:
            pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    finally:
        proxy.stop()
        storage.stop()
    assert_all_verified(store, images.busybox.blobs())
    assert {r["status"] for r in proxy.blob_gets()} == {307}
    assert all(r["headers"]["Authorization"].startswith("Bearer ") for r in proxy.blob_gets())
    assert len(storage.requests) == len(images.busybox.layers) + 1
    assert not any("Authorization" in r["headers"] for r in storage.requests)


def test_a_corrupt_blob_is_refused_and_not_kept(registry, images, proxy, store):
    proxy.corrupt = True
    with RegistryClient(proxy.netloc) as client, pytest.raises(RegistryError) as e:
        pull(refs.parse(f"{proxy.netloc}/busybox:1"), store, client)
    assert e.value.grpc_code == "INVALID_ARGUMENT" and "digest mismatch" in str(e.value)
    assert list(store.list()) == [] and os.listdir(store.ingests) == []


def test_schema1_is_refused_by_name(registry, proxy, store):
    body = json.dumps({"schemaVersion": 1, "name": "busybox", "tag": "old",
                       "fsLayers": [], "history": []}).encode()
    proxy.override["/v2/busybox/manifests/old"] = (
        200, {"Content-Type": "application/vnd.docker.distribution.manifest.v1+prettyjws"}, body)
    with RegistryClient(proxy.netloc) as client, pytest.raises(ManifestError) as e:
        pull(refs.parse(f"{proxy.netloc}/busybox:old"), store, client)
    assert "schema 1 is not supported" in str(e.value)
    assert list(store.list()) == []


def test_a_manifest_that_is_not_the_digest_asked_for_is_refused(registry, images, proxy):
    wanted = "sha256:" + "ab" * 32
    proxy.override[f"/v2/busybox/manifests/{wanted}"] = (
        200, {"Content-Type": "application/vnd.oci.image.manifest.v1+json"},
        images.busybox.manifest)
    with RegistryClient(proxy.netloc) as client, pytest.raises(RegistryError) as e:
        client.get_manifest("busybox", wanted)
    assert e.value.grpc_code == "INVALID_ARGUMENT" and images.busybox.digest in str(e.value)


def test_blob_exists_answers_size_or_none(registry, images):
    layer = images.busybox.layers[1]
    with RegistryClient(registry.netloc) as client:
        assert client.blob_exists("busybox", sha(layer)) == len(layer)
        assert client.blob_exists("busybox", sha(b"nothing")) is None


def test_hosts_schemes_and_challenges():
    assert RegistryClient("docker.io").base == "https://registry-1.docker.io"
    for local in ("localhost:5000", "127.0.0.1:5000", "127.1.2.3", "[::1]:5000"):
        assert RegistryClient(local).scheme == "http", local
    assert RegistryClient("registry.example.com").scheme == "https"
    assert RegistryClient("registry.example.com:5000",
                          insecure=["registry.example.com:5000"]).scheme == "http"
    assert RegistryClient("localhost:5000", insecure=False).scheme == "https"
    assert parse_challenges('Bearer realm="https://auth.docker.io/token",service="registry.'
                            'docker.io",scope="repository:library/busybox:pull,push"') == [
        ("bearer", {"realm": "https://auth.docker.io/token", "service": "registry.docker.io",
                    "scope": "repository:library/busybox:pull,push"})]
    assert parse_challenges('Basic realm="Registry Realm", Bearer realm="https://x/t"') == [
        ("basic", {"realm": "Registry Realm"}), ("bearer", {"realm": "https://x/t"})]


def test_threads_share_one_client(registry, images):
    """Pull's three downloads share a client's pool: connections are reused, not leaked."""
    from concurrent.futures import ThreadPoolExecutor
    with RegistryClient(registry.netloc) as client:
        def head(layer):
            return client.blob_exists("busybox", sha(layer))
        with ThreadPoolExecutor(4) as pool:
            sizes = list(pool.map(head, images.busybox.layers * 4))
        assert sizes == [len(x) for x in images.busybox.layers] * 4
        assert sum(len(v) for v in client._idle.values()) <= 4
    assert client._idle == {}
