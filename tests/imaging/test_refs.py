"""Image references: docker's own examples (distribution/reference's normalize and reference
tests) give the same normalized name, familiar form and parts here; invalid ones are refused
with a message naming what is wrong."""
import pytest

from supervisor.images.refs import ReferenceError, is_id, parse

D256 = "sha256:" + "f" * 64
D512 = "sha512:" + "f" * 128


@pytest.mark.parametrize("text, name, familiar", [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("docker.io/library/foo/bar", "docker.io/library/foo/bar:latest", "library/foo/bar:latest"),
    ("foo/bar", "docker.io/foo/bar:latest", "foo/bar:latest"),
    ("test_com", "docker.io/library/test_com:latest", "test_com:latest"),
    ("test.com:tag", "docker.io/library/test.com:tag", "test.com:tag"),
    ("test.com:5000", "docker.io/library/test.com:5000", "test.com:5000"),
    ("test.com/repo:tag", "test.com/repo:tag", "test.com/repo:tag"),
    ("test:5000/repo", "test:5000/repo:latest", "test:5000/repo:latest"),
    ("localhost/repo", "localhost/repo:latest", "localhost/repo:latest"),
    ("localhost:5000/a/b:t", "localhost:5000/a/b:t", "localhost:5000/a/b:t"),
    ("localhost:5000/a/b@" + D256, "localhost:5000/a/b@" + D256, "localhost:5000/a/b@" + D256),
    ("test:5000/repo:tag@" + D256, "test:5000/repo:tag@" + D256, "test:5000/repo:tag@" + D256),
    ("busybox@" + D256, "docker.io/library/busybox@" + D256, "busybox@" + D256),
    ("lowercase:Uppercase", "docker.io/library/lowercase:Uppercase", "lowercase:Uppercase"),
    ("sub-dom1.foo.com/bar/baz/quux:some-long-tag", "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
     "sub-dom1.foo.com/bar/baz/quux:some-long-tag"),
    ("b.gcr.io/test.example.com/my-app:test.example.com",
     "b.gcr.io/test.example.com/my-app:test.example.com",
     "b.gcr.io/test.example.com/my-app:test.example.com"),
    ("xn--n3h.com/myimage:xn--n3h.com", "xn--n3h.com/myimage:xn--n3h.com",
     "xn--n3h.com/myimage:xn--n3h.com"),
    ("xn--7o8h.com/myimage:xn--7o8h.com@" + D512, "xn--7o8h.com/myimage:xn--7o8h.com@" + D512,
     "xn--7o8h.com/myimage:xn--7o8h.com@" + D512),
    ("foo/foo_bar.com:8080", "docker.io/foo/foo_bar.com:8080", "foo/foo_bar.com:8080"),
    ("foo--bar/a__b.c-d", "docker.io/foo--bar/a__b.c-d:latest", "foo--bar/a__b.c-d:latest"),
    ("[2001:db8::1]/repo", "[2001:db8::1]/repo:latest", "[2001:db8::1]/repo:latest"),
    ("[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag", "[2001:db8::1]:5000/repo:tag"),
    ("Foo/bar", "Foo/bar:latest", "Foo/bar:latest"),     # an uppercase first part is a host
    ("a" * 64 + ":tag", f"docker.io/library/{'a' * 64}:tag", f"{'a' * 64}:tag"),
    ("abcdef0123", "docker.io/library/abcdef0123:latest", "abcdef0123:latest"),
])
def test_docker_examples_normalize_as_docker_does(text, name, familiar):
    ref = parse(text)
    assert (ref.name, ref.familiar) == (name, familiar)
    assert parse(ref.name) == ref and parse(ref.familiar) == ref    # both forms round-trip


def test_parts():
    ref = parse("localhost:5000/a/b:t@" + D256)
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("localhost:5000", "a/b", "t", D256)
    assert ref.repository == "localhost:5000/a/b"
    ref = parse("busybox")
    assert (ref.domain, ref.path, ref.tag, ref.digest) == ("docker.io", "library/busybox",
                                                           "latest", "")
    assert ref.repository == "docker.io/library/busybox"
    assert parse("busybox@" + D256).tag == ""            # a digest alone gets no tag
    assert parse("busybox", default_tag=False).tag == ""
    assert parse("busybox").with_tag("1").name == "docker.io/library/busybox:1"


@pytest.mark.parametrize("text, message", [
    ("", "empty name"),
    ("a" * 64, "image id"),
    ("Uppercase:tag", "must be lowercase"),
    ("docker.io/Foo/bar", "must be lowercase"),
    ("test:5000/Uppercase/lowercase:tag", "must be lowercase"),
    ("busybox:-tag", "tag '-tag'"),
    ("busybox:.tag", "tag '.tag'"),
    ("busybox:ta/g@" + D256, "not a registry host"),   # a ":" before a "/" is a port
    ("busybox:t$g", "tag 't$g'"),
    ("busybox:" + "t" * 129, "1 to 128"),
    ("busybox:", "tag ''"),
    (":justtag", "no repository name"),
    ("@" + D256, "no repository name"),
    ("a//b", "empty path component"),
    ("foo/", "empty path component"),
    ("/foo", "empty path component"),
    ("aa/asdf$$^/aa", "path component 'asdf$$^'"),
    ("foo-/bar", "path component 'foo-'"),
    ("a___b", "path component"),
    ("a..b", "path component"),
    ("repo@sha256:ffffffff", "not a digest"),
    ("repo@sha256:" + "F" * 64, "lowercase hex"),
    ("repo@sha256:" + "f" * 65, "64 lowercase hex"),
    ("validname@invaliddigest:" + "f" * 64, "unsupported digest algorithm"),
    ("-host.com/repo", "not a registry host"),
    ("host_name.com/repo", "not a registry host"),
    ("a/" * 127 + "a", "255 characters"),
])
def test_invalid_references_say_what_is_wrong(text, message):
    with pytest.raises(ReferenceError, match=message.replace("$", r"\$").replace("^", r"\^")):
        parse(text)


def test_longest_name_is_accepted():
    path = "a" * (255 - len("docker.io/library/"))
    assert parse(path).path == "library/" + path
    with pytest.raises(ReferenceError, match="255"):
        parse(path + "a")


def test_ids_are_told_apart():
    assert is_id("a" * 64) and is_id("sha256:" + "a" * 64)
    assert not is_id("a" * 63) and not is_id("busybox")


# -- the image table: names as parse() makes them ------------------------------------------------
from supervisor.images.store import ImageStore   # noqa: E402

T1, T2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def test_image_table_put_get_list_delete_and_a_tag_that_moves(tmp_path):
    db = tmp_path / "meta.db"
    images = ImageStore(str(db))
    try:
        first = images.put(parse("busybox").name, T1, OCI_MANIFEST, 10, labels={"a": "b"})
        assert first["name"] == "docker.io/library/busybox:latest" and first["target"] == T1
        assert first["labels"] == {"a": "b"} and first["size"] == 10
        images.put(parse("localhost:5000/a/b:t").name, T1, OCI_MANIFEST, 10)
        assert images.names_for(T1) == ["docker.io/library/busybox:latest",
                                        "localhost:5000/a/b:t"]
        moved = images.put("docker.io/library/busybox:latest", T2, OCI_MANIFEST, 20)
        assert moved["target"] == T2 and moved["created"] == first["created"]
        assert moved["updated"] >= first["updated"] and moved["labels"] == {}
        assert images.names_for(T1) == ["localhost:5000/a/b:t"]
        assert [r["name"] for r in images.list()] == ["docker.io/library/busybox:latest",
                                                      "localhost:5000/a/b:t"]
        assert images.targets() == {T1, T2}
        images.put(T2, T2, OCI_MANIFEST, 20)           # an image without a name: its digest
        assert images.delete("localhost:5000/a/b:t") and not images.delete("localhost:5000/a/b:t")
        assert images.get("localhost:5000/a/b:t") is None
    finally:
        images.close()
    again = ImageStore(str(db))                           # committed: a restart sees it
    try:
        assert {r["name"] for r in again.list()} == {"docker.io/library/busybox:latest", T2}
        assert again.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        again.close()


@pytest.mark.parametrize("name, target, message", [
    ("busybox", T1, "not normalized"),
    ("docker.io/library/Busybox:latest", T1, "must be lowercase"),
    ("docker.io/library/busybox:latest", "sha256:12", "target"),
    ("sha256:xyz", T1, "image name"),
])
def test_image_table_refuses_rows_no_reader_could_trust(tmp_path, name, target, message):
    images = ImageStore(str(tmp_path / "meta.db"))
    try:
        with pytest.raises(ValueError, match=message):
            images.put(name, target, OCI_MANIFEST, 1)
        assert images.list() == []
    finally:
        images.close()
