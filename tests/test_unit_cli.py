"""Unit tests of the command line (runtime.cli) and signal parsing (runtime.signals): no containers.

main() reports errors through runtime.log, which writes to fd 2 with os.write: those tests use
capfd; --version/--help go through sys.stdout (capsys would do, capfd captures both)."""
from __future__ import annotations

import os

import pytest

from runtime import VERSION, OCI_VERSION, cli, log
from runtime.cli import COMMANDS, GLOBAL, UsageError, dispatch, main, parse_flags
from runtime.errors import HawserError
from runtime.signals import parse_signal

TABLE = {"bundle": ("value", "bundle"), "b": ("value", "bundle"),
         "detach": ("bool", "detach"), "d": ("bool", "detach")}


@pytest.fixture(autouse=True)
def _restore_log():
    """main() reconfigures runtime.log's module state: put it back after each test."""
    saved = (log._fd, log._json, log._debug, log._file)
    yield
    log._fd, log._json, log._debug, log._file = saved


# --- parse_flags: Go flag package semantics --------------------------------------------------------

@pytest.mark.parametrize("args, opts, rest", [
    ([], {}, []),
    (["id"], {}, ["id"]),
    (["-d", "id"], {"detach": True}, ["id"]),
    (["--detach", "id"], {"detach": True}, ["id"]),
    (["--detach=false", "id"], {"detach": False}, ["id"]),
    (["-d=0", "id"], {"detach": False}, ["id"]),
    (["--detach=FALSE"], {"detach": False}, []),
    (["--detach=true"], {"detach": True}, []),
    (["--detach=1"], {"detach": True}, []),
    (["--bundle=/b", "id"], {"bundle": "/b"}, ["id"]),
    (["--bundle", "/b", "id"], {"bundle": "/b"}, ["id"]),
    (["-b", "/b", "id"], {"bundle": "/b"}, ["id"]),
    (["-b=/b", "id"], {"bundle": "/b"}, ["id"]),
    (["--bundle=", "id"], {"bundle": ""}, ["id"]),
    (["--bundle=a=b"], {"bundle": "a=b"}, []),
    (["--bundle", "-d"], {"bundle": "-d"}, []),                    # the next arg, whatever it is
    (["-b", "/x", "--bundle", "/y"], {"bundle": "/y"}, []),        # the last one wins
    (["--detach", "false"], {"detach": True}, ["false"]),          # a bool never takes the next arg
    (["id", "--detach"], {}, ["id", "--detach"]),                  # stops at the first positional
    (["-d", "id", "-b", "/b"], {"detach": True}, ["id", "-b", "/b"]),
    (["--", "-d"], {}, ["-d"]),                                    # `--` ends flags, is consumed
    (["-d", "--", "--", "x"], {"detach": True}, ["--", "x"]),
    (["-"], {}, ["-"]),                                            # `-` is a positional
    (["-d", "-", "x"], {"detach": True}, ["-", "x"]),
])
def test_parse_flags(args, opts, rest):
    assert parse_flags(args, TABLE, "create") == (opts, rest)


def test_parse_flags_does_not_modify_its_input():
    args = ["-d", "id"]
    parse_flags(args, TABLE, "x")
    assert args == ["-d", "id"]


@pytest.mark.parametrize("args, flag", [(["--nope"], "nope"), (["-nope=1", "id"], "nope"),
                                        (["-d", "-x", "id"], "x")])
def test_unknown_flag(args, flag):
    with pytest.raises(UsageError) as e:
        parse_flags(args, TABLE, "create")
    assert str(e.value) == f"create: flag provided but not defined: -{flag}"
    assert isinstance(e.value, HawserError)


@pytest.mark.parametrize("args", [["--bundle"], ["-d", "-b"]])
def test_missing_value(args):
    with pytest.raises(UsageError, match=r"^create: flag needs an argument: -b(undle)?$"):
        parse_flags(args, TABLE, "create")


@pytest.mark.parametrize("value", ["f", "F"])
def test_bool_flag_go_false_spellings(value):
    assert parse_flags([f"--detach={value}"], TABLE, "run")[0] == {"detach": False}


def test_bool_flag_invalid_value():
    with pytest.raises(UsageError):
        parse_flags(["--detach=maybe"], TABLE, "run")


def test_global_table():
    opts, rest = parse_flags(["--root", "/r", "--log=/l", "--log-format", "json", "--debug",
                              "create", "--bundle", "/b", "id"], GLOBAL, "hawser")
    assert opts == {"root": "/r", "log": "/l", "log_format": "json", "debug": True}
    assert rest == ["create", "--bundle", "/b", "id"]
    assert parse_flags(["-v"], GLOBAL, "hawser")[0] == {"version": True}
    assert parse_flags(["-h"], GLOBAL, "hawser")[0] == {"help": True}


def test_command_tables():
    opts, rest = parse_flags(["-b", "/b", "--pid-file=/p", "--console-socket", "/s", "--no-pivot",
                              "--no-new-keyring", "--preserve-fds", "2", "id"],
                             COMMANDS["create"][0], "create")
    assert opts == {"bundle": "/b", "pid_file": "/p", "console_socket": "/s", "no_pivot": True,
                    "no_new_keyring": True, "preserve_fds": "2"}
    assert rest == ["id"]
    assert parse_flags(["-d", "--keep", "id"], COMMANDS["run"][0], "run")[0] == \
        {"detach": True, "keep": True}
    assert parse_flags(["-a", "id", "KILL"], COMMANDS["kill"][0], "kill") == \
        ({"all": True}, ["id", "KILL"])
    assert parse_flags(["-f", "id"], COMMANDS["delete"][0], "delete")[0] == {"force": True}
    assert parse_flags(["-f", "json", "-q"], COMMANDS["list"][0], "list")[0] == \
        {"format": "json", "quiet": True}


# --- argument counts -------------------------------------------------------------------------------

@pytest.mark.parametrize("cmd, args, message", [
    ("create", [], '"create" requires 1 argument(s), got 0'),
    ("create", ["a", "b"], '"create" requires 1 argument(s), got 2'),
    ("start", [], '"start" requires 1 argument(s), got 0'),
    ("state", ["a", "b"], '"state" requires 1 argument(s), got 2'),
    ("kill", [], '"kill" requires 1 to 2 argument(s), got 0'),
    ("kill", ["a", "KILL", "x"], '"kill" requires 1 to 2 argument(s), got 3'),
    ("delete", ["-f"], '"delete" requires 1 argument(s), got 0'),
    ("spec", ["x"], '"spec" requires 0 argument(s), got 1'),
    ("list", ["x"], '"list" requires 0 argument(s), got 1'),
    ("features", ["x"], '"features" requires 0 argument(s), got 1'),
])
def test_argument_count(tmp_path, cmd, args, message):
    with pytest.raises(UsageError) as e:
        dispatch(cmd, args, str(tmp_path))
    assert str(e.value) == message


def test_dispatch_unknown_command(tmp_path):
    with pytest.raises(UsageError, match=r"^no such command: 'bogus'"):
        dispatch("bogus", [], str(tmp_path))


def test_dispatch_calls_the_command_with_an_absolute_root(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setattr(cli, "cmd_start", lambda root, opts, pos: seen.append((root, opts, pos)) or 7,
                        raising=True)
    monkeypatch.chdir(tmp_path)
    assert dispatch("start", ["c1"], "rel") == 7
    assert seen == [(str(tmp_path / "rel"), {}, ["c1"])]


# --- main: exit codes and output -------------------------------------------------------------------

@pytest.mark.parametrize("flag", ["--version", "-v", "-version"])
def test_version(capfd, flag):
    assert main([flag]) == 0
    out, err = capfd.readouterr()
    assert out == f"hawser version {VERSION}\nspec: {OCI_VERSION}\n" and err == ""


@pytest.mark.parametrize("args", [["--help"], ["-h"], ["create", "--help"], ["kill", "-h", "x"]])
def test_help(capfd, args):
    assert main(args) == 0
    out, err = capfd.readouterr()
    assert out == cli.USAGE and err == ""


def test_no_command_prints_usage_and_fails(capfd):
    assert main([]) == 1
    out, _ = capfd.readouterr()
    assert out == cli.USAGE


def test_unknown_command(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "bogus"]) == 1
    out, err = capfd.readouterr()
    assert out == "" and err == "hawser: no such command: 'bogus' (see hawser --help)\n"


def test_unknown_global_flag(capfd):
    assert main(["--bogus", "state", "x"]) == 1
    assert "flag provided but not defined: -bogus" in capfd.readouterr().err


def test_unknown_global_flag_message_once(capfd):
    main(["--bogus"])
    assert capfd.readouterr().err == "hawser: flag provided but not defined: -bogus\n"


def test_unknown_command_flag(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "create", "--bogus", "id"]) == 1
    assert capfd.readouterr().err == "hawser: create: flag provided but not defined: -bogus\n"


def test_argument_count_exit_code(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "create"]) == 1
    assert capfd.readouterr().err == 'hawser: "create" requires 1 argument(s), got 0\n'


def test_bad_log_format(capfd):
    assert main(["--log-format", "xml", "state", "x"]) == 1
    assert "invalid --log-format 'xml'" in capfd.readouterr().err


def test_systemd_cgroup_refused(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "--systemd-cgroup", "state", "x"]) == 1
    assert "--systemd-cgroup is not supported" in capfd.readouterr().err


def test_state_of_missing_container(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "state", "nope"]) == 1
    assert capfd.readouterr().err == "hawser: container nope does not exist\n"


def test_bad_preserve_fds(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "create", "--preserve-fds", "x", "id"]) == 1
    assert "--preserve-fds: 'x' is not a number" in capfd.readouterr().err


def test_list_bad_format(capfd, tmp_path):
    assert main(["--root", str(tmp_path), "list", "--format", "yaml"]) == 1
    assert "invalid --format 'yaml'" in capfd.readouterr().err


def test_list_empty_root(capfd, tmp_path):
    assert main(["--root", str(tmp_path / "none"), "list", "-q"]) == 0
    assert capfd.readouterr().out == ""


def test_json_log_error_goes_to_the_log_file(capfd, tmp_path):
    logfile = tmp_path / "log.json"
    assert main(["--root", str(tmp_path), "--log", str(logfile), "--log-format", "json",
                 "state", "nope"]) == 1
    # (the log fd main() opened is left to the process: close it so the test leaks nothing)
    os.close(log._fd)
    line = logfile.read_text().strip().splitlines()[-1]
    assert '"level":"error"' in line.replace(" ", "") and "container nope does not exist" in line
    assert "container nope does not exist" in capfd.readouterr().err


# --- signals ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, num", [
    ("9", 9), ("1", 1), ("64", 64), ("15", 15),
    ("KILL", 9), ("SIGKILL", 9), ("sigkill", 9), ("kill", 9), ("SigTerm", 15), ("TERM", 15),
    ("HUP", 1), ("USR1", 10), ("USR2", 12), ("CHLD", 17), ("WINCH", 28), ("IOT", 6), ("POLL", 29),
    ("RTMIN", 34), ("SIGRTMIN", 34), ("RTMIN+3", 37), ("SIGRTMIN+3", 37), ("rtmin+30", 64),
    ("RTMAX", 64), ("RTMAX-1", 63), ("SIGRTMAX-30", 34),
])
def test_parse_signal(text, num):
    assert parse_signal(text) == num


@pytest.mark.parametrize("text", ["0", "65", "100"])
def test_invalid_signal_number(text):
    with pytest.raises(HawserError, match=rf"^invalid signal number {text}$"):
        parse_signal(text)


@pytest.mark.parametrize("text", ["", "SIG", "BOGUS", "SIGBOGUS", "-9", " 9", "RTMIN-1", "RTMAX+1",
                                  "RTMIN+31", "RTMAX-31", "RTMIN+", "RTMIN+x", "KILL9"])
def test_unknown_signal(text):
    with pytest.raises(HawserError, match=r"^unknown signal "):
        parse_signal(text)


@pytest.mark.parametrize("text", ["²", "RTMIN+²"])
def test_signal_unicode_digits(text):
    with pytest.raises(HawserError):
        parse_signal(text)
