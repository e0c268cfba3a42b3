"""hawserctl's side of pull/push: the progress display rendered to a real pty (what a user's
terminal shows once the escape sequences are applied) and to a pipe, and the credentials in
docker's config.json; both modules lean at import."""
import fcntl
import os
import select
import struct
import subprocess
import sys
import termios

import pytest

from supervisor.client import credentials
from supervisor.client.progress import Display, human_size

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture
def pty(request):
    """(stream for Display, read_all()) over a real pseudo-terminal of 100 columns."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    stream = open(slave, "w", closefd=True)

    def read_all() -> str:
        stream.flush()
        out = b""
        while select.select([master], [], [], 0.2)[0]:
            chunk = os.read(master, 65536)
            if not chunk:
                break
            out += chunk
        return out.decode()
    try:
        yield stream, read_all
    finally:
        stream.close()
        os.close(master)


def screen(output: str) -> list[str]:
    """What a terminal shows after `output`: lines, \\r, ESC[nA/ESC[nB, ESC[2K."""
    lines, row, col, i = [""], 0, 0, 0
    while i < len(output):
        c = output[i]
        if c == "\x1b" and output[i + 1] == "[":
            j = i + 2
            while not output[j].isalpha():
                j += 1
            arg, op = output[i + 2:j], output[j]
            n = int(arg or 1)
            if op == "A":
                row = max(0, row - n)
            elif op == "B":
                row += n
            elif op == "K" and arg == "2":
                lines[row] = ""
            i = j + 1
            while len(lines) <= row:
                lines.append("")
            continue
        if c == "\n":
            row += 1
            while len(lines) <= row:
                lines.append("")
        elif c == "\r":
            col = 0
        else:
            line = lines[row].ljust(col)
            lines[row] = line[:col] + c + line[col + 1:]
            col += 1
        i += 1
    return [line.rstrip() for line in lines]


def pull_messages(d: Display) -> None:
    d.update("1", "Pulling from library/busybox")
    d.update("", "Pulling from library/busybox")
    for layer in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", "cccccccccccc"):
        d.update(layer, "Pulling fs layer")
    d.update("cccccccccccc", "Waiting")
    d.update("aaaaaaaaaaaa", "Downloading", 0, 45_678_901)
    d.update("aaaaaaaaaaaa", "Downloading", 12_345_678, 45_678_901)
    d.update("bbbbbbbbbbbb", "Already exists")
    d.update("aaaaaaaaaaaa", "Downloading", 12_400_000, 45_678_901)


def test_terminal_lines_are_updated_in_place_with_a_bar(pty):
    stream, read_all = pty
    d = Display(stream)
    assert d.tty
    pull_messages(d)
    out = read_all()
    shown = screen(out)
    assert shown[0] == "1: Pulling from library/busybox"
    assert shown[1] == "Pulling from library/busybox"
    assert shown[2].startswith("aaaaaaaaaaaa: Downloading [") and \
        shown[2].endswith("]   12.4MB/45.68MB")   # docker's %8v
    bar = shown[2][shown[2].index("[") + 1:shown[2].index("]")]
    done = bar.index(">")   # 12.4 of 45.68 MB: 27 %
    assert bar[:done] == "=" * done and 0.25 < done / (len(bar) - 1) < 0.29
    assert bar[done + 1:].strip() == "" and len(bar) <= 51
    assert shown[3] == "bbbbbbbbbbbb: Already exists"
    assert shown[4] == "cccccccccccc: Waiting"
    assert all(len(line) < 100 for line in shown)
    assert "\x1b[3A" in out and "\x1b[2A" in out    # up to a's and b's lines, then down
    d.update("", "Digest: sha256:" + "0" * 64)
    d.finish()
    shown = screen(out + read_all())
    assert shown[5] == "Digest: sha256:" + "0" * 64


def test_narrow_terminal_lines_do_not_wrap(pty):
    stream, read_all = pty
    fcntl.ioctl(stream.fileno(), termios.TIOCSWINSZ, struct.pack("HHHH", 30, 40, 0, 0))
    d = Display(stream)
    d.update("aaaaaaaaaaaa", "Downloading", 1_000, 2_000_000)
    d.update("aaaaaaaaaaaa", "Downloading with a status much longer than forty columns", 5, 9)
    shown = screen(read_all())
    assert shown[0].startswith("aaaaaaaaaaaa: Downloading with")
    assert len(shown[0]) == 39 and len([x for x in shown if x]) == 1


def test_a_pipe_gets_one_line_per_status_change_without_bytes(tmp_path):
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    try:
        d = Display(stream)
        assert not d.tty
        pull_messages(d)
        d.finish()
    finally:
        stream.close()
    with os.fdopen(r) as f:
        out = f.read()
    assert "\x1b" not in out and "MB" not in out
    assert out.splitlines() == [
        "1: Pulling from library/busybox", "Pulling from library/busybox",
        "aaaaaaaaaaaa: Pulling fs layer", "bbbbbbbbbbbb: Pulling fs layer",
        "cccccccccccc: Pulling fs layer", "cccccccccccc: Waiting",
        "aaaaaaaaaaaa: Downloading", "bbbbbbbbbbbb: Already exists"]


def test_human_sizes_are_dockers():
    assert [human_size(n) for n in (0, 999, 1000, 1_500, 12_345_678, 45_678_901_234)] == \
        ["0B", "999B", "1kB", "1.5kB", "12.35MB", "45.68GB"]


# -- credentials ---------------------------------------------------------------------------
@pytest.fixture
def config(tmp_path, monkeypatch):
    path = tmp_path / "docker" / "config.json"
    monkeypatch.setenv("HAWSER_CONFIG", str(path))
    return path


def test_docker_config_entries_are_found_as_docker_keys_them(config):
    config.parent.mkdir()
    config.write_text("""{
        "auths": {
            "https://index.docker.io/v1/": {"auth": "aHViOnNlY3JldDpwYXJ0"},
            "https://localhost:5000/v2/": {"auth": "bG9jYWw6cHc="},
            "ghcr.io": {"auth": "Ym90Og==", "identitytoken": "refresh-me"}
        },
        "HttpHeaders": {"X-Meta": "kept"}
    }""")
    for hub in ("docker.io", "index.docker.io", "registry-1.docker.io"):
        assert credentials.lookup(hub) == ("hub", "secret:part", "")
    assert credentials.lookup("localhost:5000") == ("local", "pw", "")
    assert credentials.lookup("ghcr.io") == ("bot", "", "refresh-me")
    assert credentials.lookup("quay.io") is None


def test_store_and_erase_write_atomically_0600_keeping_other_settings(config):
    config.parent.mkdir()
    config.write_text('{"auths": {"quay.io": {"auth": "cTpx"}}, "HttpHeaders": {"X": "y"}}')
    os.chmod(config, 0o644)
    assert credentials.store("docker.io", "alice", "s3cret") == str(config)
    assert credentials.store("127.0.0.1:5000", "bob", "pw:with:colons") == str(config)
    assert oct(os.stat(config).st_mode & 0o777) == "0o600"
    import json    # the test may: only the module under test must stay lean
    doc = json.loads(config.read_text())
    assert doc["HttpHeaders"] == {"X": "y"}
    assert set(doc["auths"]) == {"quay.io", "https://index.docker.io/v1/", "127.0.0.1:5000"}
    assert credentials.lookup("docker.io") == ("alice", "s3cret", "")
    assert credentials.lookup("127.0.0.1:5000") == ("bob", "pw:with:colons", "")
    assert credentials.erase("docker.io") is True
    assert credentials.erase("docker.io") is False
    assert credentials.lookup("docker.io") is None
    assert credentials.lookup("quay.io") == ("q", "q", "")
    assert sorted(os.listdir(config.parent)) == ["config.json"]


def test_a_symlinked_config_is_replaced_not_followed(config, tmp_path):
    config.parent.mkdir()
    victim = tmp_path / "elsewhere"
    victim.write_text('{"auths": {}}')
    config.symlink_to(victim)
    credentials.store("localhost:5000", "u", "p")
    assert victim.read_text() == '{"auths": {}}'
    assert not config.is_symlink() and credentials.lookup("localhost:5000") == ("u", "p", "")


def test_a_new_config_dir_is_private(tmp_path, monkeypatch):
    monkeypatch.delenv("HAWSER_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    credentials.store("docker.io", "u", "p")
    assert oct(os.stat(tmp_path / ".docker").st_mode & 0o777) == "0o700"
    assert credentials.lookup("docker.io") == ("u", "p", "")


@pytest.mark.parametrize("text, why", [("{not json", "not valid JSON"),
                                       ('{"auths": []}', '"auths" must be an object'),
                                       ('{"auths": {"docker.io": {"auth": "!!"}}}', "base64")])
def test_a_broken_config_is_named(config, text, why):
    config.parent.mkdir()
    config.write_text(text)
    with pytest.raises(credentials.CredentialsError) as e:
        credentials.lookup("docker.io")
    assert str(config) in str(e.value) and why in str(e.value)
    if why == "base64":     # a login replaces a broken entry
        credentials.store("docker.io", "u", "p")
        assert credentials.lookup("docker.io") == ("u", "p", "")
        return
    with pytest.raises(credentials.CredentialsError):
        credentials.store("docker.io", "u", "p")
    assert config.read_text() == text and os.listdir(config.parent) == ["config.json"]


def test_hawserctl_modules_stay_lean_at_import():
    code = ("import sys; before = set(sys.modules); "
            "import supervisor.client.progress, supervisor.client.credentials; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    r = subprocess.run([sys.executable, "-X", "importtime", "-c", code], cwd=ROOT,
                       capture_output=True, text=True, check=True)
    new = set(r.stdout.split())
    assert {"supervisor.client.progress", "supervisor.client.credentials"} <= new
    assert not new & {"re", "json", "enum", "datetime", "base64", "typing"}, new
