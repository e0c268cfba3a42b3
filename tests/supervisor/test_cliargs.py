"""supervisor/client/cliargs.py against argparse itself: hawserctl's parser (supervisor/client/ctl.py) built
once through cliargs and once as the real argparse parser replayed from the same calls. Wherever
cliargs parses a command line on its own, argparse must give the same namespace; the usual
command lines must not need argparse; whatever cliargs is unsure of goes to argparse."""
from __future__ import annotations

import argparse
import contextlib
import io
import random

import pytest

import hawserd_harness  # noqa: F401  (puts the repository first on sys.path)
from supervisor.client import cliargs, ctl

COMMON = [
    "version", "--address unix:///x.sock ps -a", "ps -aq", "ps --format json",
    "ps -f status==running -f name==x",
    "run --rm --rootfs /r true", "run -d --name web -e A=1 -e B=2 -w /tmp -u 1000:1000 "
    "--memory 64m --cpus 0.5 --pids-limit 20 -v /a:/b:ro --restart on-failure:3 --rootfs /r "
    "sh -c 'echo hi' -x --rm", "run --rootfs=/r -dt sh", "run -h box --rootfs /r -- sh",
    "create --rootfs /r --label a=b -l c=d sleep 10", "run --rootfs /r --cpus -1 true",
    "exec c1 sh -c x", "exec -d -i -e K=V -u 0 -w / c1 ls -l", "exec -it c1 sh", "exec c1",
    "logs c", "logs -f --tail 10 c", "logs --tail -1 c", "logs --tail=0 c", "top c",
    "stats", "stats --no-stream --format json a b", "events -f /tasks/ --format json",
    "start a b", "stop -t 3 a", "stop -t -1 a", "kill -s USR1 a", "kill -sKILL a", "rm -f a b c",
    "pause a", "unpause a", "wait a b", "inspect a", "run", "run true",
    "run --rm busybox echo hi", "run -d --entrypoint sh busybox -c x", "create busybox",
    "inspect --type image -f '{{.Id}}' a b", "images", "images -aq --digests busybox",
    "images --format '{{.ID}}' -f dangling=true", "rmi -f a b", "tag a b:1", "load -i x.tar",
    "load", "save -o x.tar a b", "import -c 'CMD [\"sh\"]' -m msg x.tar name:1", "import - n",
    "pull busybox", "pull --platform linux/amd64 -q localhost:5000/a/b:1", "push a:1",
    "commit -c 'CMD sh' -a me -m msg c n:1", "commit c", "diff c", "image ls -a",
    "image inspect a", "login -u u -p p localhost:5000", "logout", "ps --no-trunc -s -n 3",
]
UNSURE = [      # argparse decides: errors, help, abbreviations, `--`
    "", "bogus", "-h", "ps -h", "run --rootfs", "run --rootfs /r --name",
    "run --det --rootfs /r true", "ps --form json", "logs", "logs a b", "rm", "stop -t x a",
    "kill a -s 9", "ps -a=1", "exec -dw/tmp c sh", "--addr x ps", "wait -- a", "ps x",
]


def parsers():
    return ctl.parser(), ctl.parser()._materialize()


def real_parse(real, argv):
    """The namespace, or how it exits: code and what it printed (help, usage and error)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out):
        try:
            return vars(real.parse_args(argv))
        except SystemExit as e:
            return ("exit", e.code, out.getvalue())


def lite_parse(lite, argv):
    values: dict = {}
    try:
        lite._parse(list(argv), values)
    except cliargs._Fallback:
        return None
    return values


def split(line: str) -> list[str]:
    import shlex
    return shlex.split(line)


def test_the_real_parser_is_argparse():
    lite, real = parsers()
    assert isinstance(real, argparse.ArgumentParser) and not lite._root._unsupported


@pytest.mark.parametrize("line", COMMON)
def test_common_command_lines_parse_without_argparse_as_argparse_would(line):
    lite, real = parsers()
    mine = lite_parse(lite, split(line))
    assert mine is not None, f"{line!r} fell back to argparse"
    assert mine == real_parse(real, split(line))


@pytest.mark.parametrize("line", UNSURE)
def test_the_rest_goes_to_argparse(line):
    lite, real = parsers()
    assert lite_parse(lite, split(line)) is None
    assert real_parse(ctl.parser(), split(line)) == real_parse(real, split(line))


def test_random_command_lines_agree_with_argparse():
    """Where cliargs answers, argparse must answer the same (5000 shuffled command lines)."""
    lite, real = parsers()
    rnd = random.Random(7)
    commands = sorted(lite._commands[2])
    values = ["x", "/r", "-1", "-1.5", "-.5", "-1.", "-", "--", "a b", "-x y", "K=V", "0", "2.5",
              "=", "-dit", "-wfoo", "--name=x", "-e", "-f", "--rm", "-t", "--tail", "-q"]
    answered = 0
    for _ in range(5000):
        cmd = rnd.choice(commands)
        sub = lite._commands[2][cmd]
        opts = sorted(sub._options) + ["--bogus", "--ro", "-Z"]
        argv = ([] if rnd.random() < 0.8 else ["--address", rnd.choice(values)]) + [cmd]
        for _ in range(rnd.randrange(0, 7)):
            argv.append(rnd.choice(opts) if rnd.random() < 0.5 else rnd.choice(values))
        if cmd in ("run", "create") and rnd.random() < 0.7:
            at = rnd.randrange(1, len(argv) + 1)
            argv[at:at] = ["--rootfs", "/r"]
        mine = lite_parse(lite, argv)
        if mine is not None:
            answered += 1
            assert mine == real_parse(real, argv), argv
    assert answered > 400


def test_what_cliargs_does_not_know_goes_to_argparse():
    p = cliargs.ArgumentParser(prog="t")
    p.add_argument("-v", action="count", default=0)
    p.add_argument("name", nargs="?")
    assert p._unsupported
    ns = p.parse_args(["-vv"])
    assert (ns.v, ns.name) == (2, None) and isinstance(ns, argparse.Namespace)
    assert cliargs.SUPPRESS == argparse.SUPPRESS and cliargs.REMAINDER == argparse.REMAINDER
    assert cliargs.HelpFormatter is argparse.HelpFormatter
    q = cliargs.ArgumentParser(prog="t")
    q.add_argument("--n", type=int, default=1)
    q.set_defaults(extra=5)            # an argparse method: the real parser from here on
    q.add_argument("--m", default="y")
    assert vars(q.parse_args(["--n", "3"])) == {"n": 3, "extra": 5, "m": "y"}
