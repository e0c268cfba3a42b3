"""The runtime command lines real clients send (captured by the client tests: podman 4.3 + conmon in
test_clients_podman.py, containerd 1.6 in test_clients_containerd.py, dockerd 20.10 in
test_clients_docker.py; see also /work/shared/notes/facts.md), checked here fast and without any
daemon: hawser must accept every one of them as runc does (same exit status, the same kind of error
in the --log JSON that the clients parse), so a CLI change that would break a client fails here
within seconds. Also the self-tests of the harness the client tests rely on."""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import tarfile

import pytest

from clients_harness import (RUNTIMES, Captured, kills_of, option, signal_number, split_call)
from images import write_docker_archive, write_oci_archive, write_rootfs_tar

NX = "hw-no-such-container"

# (argv after the global options, stdin) as the clients send them; the id is one that does not
# exist, so each one exercises the parsing of its flags and the "does not exist" path the clients
# recognise (containerd matches "does not exist" / "container not running" in the log's msg).
CLIENT_CALLS = {
    # containerd's runc shim (ctr, dockerd)
    "shim start": (["start", NX], None),
    "shim kill": (["kill", NX, "9"], None),
    "shim kill --all": (["kill", "--all", NX, "9"], None),
    "shim exec": (["exec", "--process", "{tmp}/process.json", "--detach", "--pid-file",
                   "{tmp}/exec.pid", NX], None),
    "shim exec console": (["exec", "--process", "{tmp}/process.json", "--console-socket",
                           "{tmp}/console.sock", "--detach", "--pid-file", "{tmp}/exec.pid", NX],
                          None),
    "shim ps": (["ps", "--format", "json", NX], None),
    "shim pause": (["pause", NX], None),
    "shim resume": (["resume", NX], None),
    "shim update": (["update", "--resources", "-", NX],
                    '{"memory":{"limit":100663296},"pids":{"limit":77}}'),
    "shim delete": (["delete", NX], None),
    # podman + conmon
    "podman kill": (["kill", NX, "15"], None),
    "podman kill --all": (["kill", "--all", NX, "15"], None),
    "podman state": (["state", NX], None),
    "conmon exec": (["exec", "--pid-file", "{tmp}/exec.pid", "--process", "{tmp}/process.json",
                     "--detach", "--tty", "--console-socket", "{tmp}/console.sock",
                     "--preserve-fds", "1", NX], None),
}


def run_runtime(binary: str, root, log, args, stdin=None) -> subprocess.CompletedProcess:
    return subprocess.run([binary, "--root", str(root), "--log", str(log), "--log-format",
                           "json", *args], input=stdin if stdin is not None else "",
                          capture_output=True, text=True, timeout=30)


def last_error(log) -> str | None:
    """The msg of the last {"level":"error"} line, as every client reports it."""
    msg = None
    if os.path.exists(log):
        for line in open(log):
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if entry.get("level") == "error":
                msg = entry.get("msg")
    return msg


def _call_params():
    for call in CLIENT_CALLS:
        yield pytest.param(call, id=call)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
@pytest.mark.parametrize("call", list(_call_params()))
def test_client_call_on_missing_container(call, tmp_path):
    """Each call a client makes fails like runc's on a missing container: the same exit status (1;
    255 for exec, whose own status is the process's when it runs in the foreground), a JSON log
    whose last error says the container does not exist (which the clients match on)."""
    args, stdin = CLIENT_CALLS[call]
    (tmp_path / "process.json").write_text(json.dumps({"args": ["true"], "cwd": "/"}))
    args = [a.format(tmp=tmp_path) for a in args]
    results = {}
    for name, binary in RUNTIMES.items():
        log = tmp_path / f"{name}.log"
        proc = run_runtime(binary, tmp_path / f"root-{name}", log, args, stdin)
        results[name] = (proc.returncode, last_error(log), proc.stderr.strip())
    (rc_runc, msg_runc, _), (rc, msg, err) = results["runc"], results["hawser"]
    assert rc_runc == (255 if args[0] == "exec" else 1) and msg_runc \
        and "does not exist" in msg_runc, results
    assert rc == rc_runc and msg and "does not exist" in msg, \
        f"hawser {' '.join(args)}: exit {rc}, log error {msg!r}, stderr {err!r}; runc: {results}"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root")
def test_delete_force_of_a_missing_container_succeeds(tmp_path):
    """containerd's shim and podman call `delete --force ID` on a container that is already gone:
    it must exit 0 and log no error (as runc)."""
    for name, binary in RUNTIMES.items():
        log = tmp_path / f"{name}.log"
        proc = run_runtime(binary, tmp_path / f"root-{name}", log, ["delete", "--force", NX])
        assert proc.returncode == 0 and last_error(log) is None, (name, proc)


def test_version_for_podman():
    """podman runs `RUNTIME --version` (its `podman info`) and shows the first line."""
    for name, binary in RUNTIMES.items():
        proc = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        assert proc.returncode == 0 and proc.stdout.split()[1:2] == ["version"], (name, proc)


# --------------------------------------------------------------------------------------------
# harness self-tests

def test_captured_wrapper_logs_argv_exactly(tmp_path):
    cap = Captured(tmp_path, "/bin/true")
    weird = ["--log-format=json", "a b", "it's", 'q"uote', "new\nline", "$HOME", "", "-"]
    subprocess.run([str(cap.path), *weird], check=True, cwd=tmp_path)
    assert cap.calls() == [(str(tmp_path), weird)]
    cap.mark()
    assert cap.calls() == []
    subprocess.run([str(cap.path), "again"], check=True, cwd="/")
    assert cap.calls() == [("/", ["again"])]
    assert cap.path.name == "true"


def test_split_call_and_options():
    opts, sub, rest = split_call(["--root", "/r", "--log", "/b/log.json", "--log-format", "json",
                                  "create", "--bundle", "/b", "--pid-file", "/b/init.pid", "x"])
    assert opts == {"--root": "/r", "--log": "/b/log.json", "--log-format": "json"}
    assert sub == "create" and option(rest, "--bundle") == "/b" and rest[-1] == "x"
    opts, sub, rest = split_call(["--log-format=json", "--log", "/l", "--systemd-cgroup", "start",
                                  "id"])
    assert opts == {"--log-format": "json", "--log": "/l", "--systemd-cgroup": True}
    assert (sub, rest) == ("start", ["id"])
    assert option(["--pid-file=/p", "x"], "--pid-file") == "/p"


def test_kills_of(tmp_path):
    cap = Captured(tmp_path, "/bin/true")
    for args in (["kill", "c1", "15"], ["kill", "--all", "c1", "9"], ["kill", "c1", "SIGUSR1"],
                 ["kill", "c1", "KILL"], ["kill", "c1"], ["kill", "c2", "9"]):
        subprocess.run([str(cap.path), "--root", "/r", *args], check=True)
    assert kills_of(cap, "c1") == [(False, 15), (True, 9), (False, 10), (False, 9), (False, 15)]
    assert signal_number("TERM") == 15 and signal_number("bogus") is None


def _tar_members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}


def test_image_archives(busybox_rootfs, tmp_path):
    """The docker-save and OCI archives the client modules load are self-consistent."""
    layer = tarfile.open(write_rootfs_tar(busybox_rootfs, tmp_path / "l.tar"))
    names = layer.getnames()
    assert "bin/busybox" in names and "bin/sh" in names
    assert all(m.uid == 0 and m.gid == 0 for m in layer.getmembers())

    files = _tar_members(write_docker_archive(busybox_rootfs, tmp_path / "d.tar", "hw/bb:t"))
    manifest = json.loads(files["manifest.json"])
    assert manifest[0]["RepoTags"] == ["hw/bb:t"]
    config = json.loads(files[manifest[0]["Config"]])
    layer_bytes = files[manifest[0]["Layers"][0]]
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(layer_bytes).hexdigest()]
    assert json.loads(files["repositories"]) == {"hw/bb": {"t": manifest[0]["Layers"][0]
                                                           .split("/")[0]}}

    files = _tar_members(write_oci_archive(busybox_rootfs, tmp_path / "o.tar", "docker.io/x/y:z"))
    index = json.loads(files["index.json"])
    blob = lambda d: files["blobs/sha256/" + d.split(":")[1]]   # noqa: E731
    for digest in [index["manifests"][0]["digest"]]:
        data = blob(digest)
        assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
        manifest = json.loads(data)
        config = json.loads(blob(manifest["config"]["digest"]))
        layer_gz = blob(manifest["layers"][0]["digest"])
        diff = "sha256:" + hashlib.sha256(gzip.GzipFile(fileobj=io.BytesIO(layer_gz)).read()) \
            .hexdigest()
        assert config["rootfs"]["diff_ids"] == [diff]
    assert index["manifests"][0]["annotations"]["io.containerd.image.name"] == "docker.io/x/y:z"
