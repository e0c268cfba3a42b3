"""The shim's command line as containerd 1.6 calls it: Go-style flags, the socket address it
computes (containerd's own scheme, under the 108-byte limit), usage errors."""
from __future__ import annotations

import hashlib
import subprocess

import pytest

from shim_harness import SHIM, cli


@pytest.mark.parametrize("argv,flags,action", [
    (["-namespace", "ns", "-address", "/a.sock", "-publish-binary", "/usr/bin/containerd",
      "-id", "c1", "start"],
     {"namespace": "ns", "address": "/a.sock", "publish-binary": "/usr/bin/containerd",
      "id": "c1"}, "start"),
    (["--namespace=ns", "-id", "c1", "-bundle", "/b", "-debug", "delete"],
     {"namespace": "ns", "id": "c1", "bundle": "/b", "debug": True}, "delete"),
    (["-namespace", "ns", "-id", "x", "-debug=false"], {"namespace": "ns", "id": "x",
                                                        "debug": False}, ""),
])
def test_flags(argv, flags, action):
    got, act = cli.parse(argv)
    assert act == action and got == {"publish-binary": "containerd", **flags}


def test_socket_address_is_containerds():
    """sha256 of filepath.Join(containerd address, namespace, id) under /run/containerd/s."""
    addr = cli.socket_address("/run/containerd/containerd.sock", "default", "redis")
    digest = hashlib.sha256(b"/run/containerd/containerd.sock/default/redis").hexdigest()
    assert addr == f"unix:///run/containerd/s/{digest}" and len(addr) <= 108
    assert cli.socket_address("/x//y/", "ns", "id") == cli.socket_address("/x/y", "ns", "id")


@pytest.mark.parametrize("argv,message", [
    ([], "namespace cannot be empty"),
    (["-namespace", "ns", "-bogus", "start"], "flag provided but not defined: -bogus"),
    (["-namespace", "ns", "-id"], "flag needs an argument: -id"),
    (["-namespace", "ns", "-id", "x", "frobnicate"], "unknown action"),
])
def test_usage_errors(argv, message):
    proc = subprocess.run([SHIM, *argv], capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert proc.returncode == 2 and message in proc.stderr, proc


def test_version():
    proc = subprocess.run([SHIM, "-v"], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0 and "io.containerd.hawser.v2" in proc.stdout
