"""hawserd and a real registry (Debian's docker-registry on loopback): an image pushed there by
skopeo is pulled and run by hawserctl (run pulls what is missing), a committed image is pushed
and read back by skopeo, token auth through hawserctl login, a platform the registry lacks."""
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "imaging"))
from images import rootfs_tar_bytes  # noqa: E402
from registry_harness import (Image, Registry, TokenServer, gzip_bytes, gzip_tar,  # noqa: E402
                              push_layout, skopeo, write_layout)

USERS = {"alice": "secret"}


@pytest.fixture(scope="module")
def busybox(busybox_rootfs):
    return Image([gzip_bytes(rootfs_tar_bytes(busybox_rootfs)),
                  gzip_tar({"etc/motd": b"pulled from a registry\n"})])


@pytest.fixture(scope="module")
def registry(tmp_path_factory, busybox):
    work = tmp_path_factory.mktemp("registry")
    reg = Registry(work / "reg").start()
    try:
        write_layout(work / "busybox", "1", [busybox], False)
        push_layout(work / "busybox", "1", reg.netloc, "tests/busybox:1")
        arm = Image([gzip_tar({"hello": b"arm64"})], arch="arm64")
        write_layout(work / "arm", "1", [arm], True)
        push_layout(work / "arm", "1", reg.netloc, "tests/arm-only:1")
        yield reg
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def token_registry(tmp_path_factory, busybox):
    work = tmp_path_factory.mktemp("token-registry")
    tokens = TokenServer(work / "tokens", USERS, {})
    reg = None
    try:
        reg = Registry(work / "reg", token=tokens).start()
        write_layout(work / "busybox", "1", [busybox], False)
        push_layout(work / "busybox", "1", reg.netloc, "private/busybox:1",
                    creds="alice:secret")
        yield reg
    finally:
        if reg is not None:
            reg.stop()
        tokens.stop()


def test_pull_run_commit_push_and_read_back(hawserd, registry, busybox, tmp_path):
    ref = f"{registry.netloc}/tests/busybox:1"
    p = hawserd.ctl("pull", ref)
    assert p.stdout.splitlines()[-1] == ref
    assert f"Digest: {busybox.digest}" in p.stdout
    assert hawserd.ctl("run", "--rm", ref, "cat", "/etc/motd").stdout == \
        "pulled from a registry\n"
    [img] = json.loads(hawserd.ctl("inspect", ref).stdout)
    assert img["RepoDigests"] == [f"{registry.netloc}/tests/busybox@{busybox.digest}"]
    again = hawserd.ctl("pull", ref).stdout
    assert "Status: Image is up to date" in again

    hawserd.ctl("run", "-d", "--name", "w", ref, "sh", "-c", "echo mine > /mine; sleep 300")
    from hawserd_harness import wait_until
    assert wait_until(lambda: "A /mine" in hawserd.ctl("diff", "w").stdout)
    pushed = f"{registry.netloc}/tests/committed:2"
    hawserd.ctl("commit", "w", pushed)
    out = hawserd.ctl("push", pushed).stdout
    assert out.count("Pushed") == 1 and out.count("Mounted from tests/busybox") == 2, out
    raw = json.loads(skopeo("inspect", "--raw", "--tls-verify=false", f"docker://{pushed}"))
    base = json.loads(busybox.manifest)
    assert [d["digest"] for d in raw["layers"]][:2] == [d["digest"] for d in base["layers"]]
    assert len(raw["layers"]) == 3
    skopeo("copy", "--src-tls-verify=false", f"docker://{pushed}", f"oci:{tmp_path / 'back'}:x")
    index = json.loads((tmp_path / "back" / "index.json").read_text())
    [pushed_img] = json.loads(hawserd.ctl("inspect", pushed).stdout)
    assert pushed_img["RepoDigests"] == [
        f"{registry.netloc}/tests/committed@{index['manifests'][0]['digest']}"]


def test_run_pulls_what_is_missing(hawserd, registry):
    ref = f"{registry.netloc}/tests/busybox:1"
    p = hawserd.ctl("run", "--rm", ref, "echo", "ran")
    assert p.stdout == "ran\n"
    assert f"Unable to find image '{ref}' locally" in p.stderr
    p = hawserd.ctl("run", "--rm", "--pull", "never", f"{registry.netloc}/tests/nope:1", "true",
                    check=False)
    assert p.returncode == 125 and "no such image" in p.stderr


def test_a_platform_the_registry_lacks_is_refused(hawserd, registry):
    p = hawserd.ctl("pull", f"{registry.netloc}/tests/arm-only:1", check=False)
    assert p.returncode == 125 and "linux/arm64" in p.stderr and "amd64" in p.stderr
    p = hawserd.ctl("pull", f"{registry.netloc}/tests/unknown:1", check=False)
    assert p.returncode == 125 and "(NOT_FOUND)" in p.stderr
    assert hawserd.ctl("images", "-aq").stdout == ""
    assert list((hawserd.root / "content" / "blobs" / "sha256").iterdir()) == []


def test_token_auth_with_login(hawserd, token_registry, tmp_path):
    ref = f"{token_registry.netloc}/private/busybox:1"
    env = {"HAWSER_CONFIG": str(tmp_path / "config.json")}
    p = hawserd.ctl("pull", ref, check=False, env=env)
    assert p.returncode == 125 and "(UNAUTHENTICATED)" in p.stderr
    p = hawserd.ctl("login", "-u", "alice", "-p", "wrong", token_registry.netloc, check=False,
                    env=env)
    assert p.returncode != 0 and not (tmp_path / "config.json").exists()
    assert hawserd.ctl("login", "-u", "alice", "-p", "secret", token_registry.netloc,
                       env=env).stdout == "Login Succeeded\n"
    assert hawserd.ctl("pull", ref, env=env).stdout.splitlines()[-1] == ref
    assert hawserd.ctl("run", "--rm", ref, "echo", "authed").stdout == "authed\n"
    hawserd.ctl("logout", token_registry.netloc, env=env)
    hawserd.ctl("rmi", ref)
    p = hawserd.ctl("pull", ref, check=False, env=env)
    assert p.returncode == 125 and "(UNAUTHENTICATED)" in p.stderr


def test_pull_on_a_terminal_shows_progress_in_place(hawserd, registry):
    from clients_harness import PtyProcess
    from hawserd_harness import HAWSERCTL
    ref = f"{registry.netloc}/tests/busybox:1"
    term = PtyProcess([HAWSERCTL, "--address", hawserd.address, "pull", ref], cols=100)
    try:
        assert term.wait(60) == 0, term.text()
    finally:
        term.close()
    out = term.text()
    assert "\x1b[" in out                   # lines rewritten in place (cursor up, erase)
    assert "Pull complete" in out and out.rstrip().endswith(ref)
    import re
    visible = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out).replace("\r", "\n")
    assert max(len(line) for line in visible.split("\n")) < 100    # no line wraps
