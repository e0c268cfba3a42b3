"""A container's /etc/hosts, /etc/hostname and /etc/resolv.conf (supervisor/networks/etcfiles.py):
the exact texts docker 20.10 writes, and the host's resolvers read from resolv.conf files of the
test's own."""
from __future__ import annotations

import re

import pytest

from supervisor.networks.etcfiles import Link, host_resolvers, hostname, hosts, resolv_conf

DOCKER_DEFAULTS = (
    "127.0.0.1\tlocalhost\n"
    "::1\tlocalhost ip6-localhost ip6-loopback\n"
    "fe00::0\tip6-localnet\n"
    "ff00::0\tip6-mcastprefix\n"
    "ff02::1\tip6-allnodes\n"
    "ff02::2\tip6-allrouters\n"
)


def test_hosts_of_a_container_on_one_network():
    assert hosts("0123456789ab", ["172.18.0.2"]) == DOCKER_DEFAULTS + "172.18.0.2\t0123456789ab\n"


def test_hosts_without_network_has_docker_defaults_only():
    assert hosts("0123456789ab", []) == DOCKER_DEFAULTS


def test_hosts_add_host_then_links_then_own_addresses_as_docker_orders_them():
    text = hosts(
        "web.example.test", ["172.17.0.2", "10.5.0.7"],
        links=[Link("172.17.0.3", "db", "f00dfeed1234", "mydb"),
               ("172.17.0.4", "cache", "c0ffee000000", "cache")],
        extra=["foo:1.2.3.4", "v6host:2001:db8::1", ("bar.example", "5.6.7.8")])
    assert text == DOCKER_DEFAULTS + (
        "1.2.3.4\tfoo\n"
        "2001:db8::1\tv6host\n"             # split on the first ':' only
        "5.6.7.8\tbar.example\n"
        "172.17.0.3\tdb f00dfeed1234 mydb\n"  # alias, its hostname, its name
        "172.17.0.4\tcache c0ffee000000\n"    # the name is left out when it is the alias
        "172.17.0.2\tweb.example.test web\n"  # an FQDN, then the bare host name
        "10.5.0.7\tweb.example.test web\n")


@pytest.mark.parametrize("extra, message", [
    ("foo", "bad format for add-host: 'foo'"),
    (":1.2.3.4", "bad format for add-host: ':1.2.3.4'"),
    ("foo:", "invalid IP address in add-host 'foo': ''"),
    ("foo:1.2.3", "invalid IP address in add-host 'foo': '1.2.3'"),
    ("foo:host-gateway", "invalid IP address in add-host 'foo': 'host-gateway'"),
    ("two words:1.2.3.4", "invalid host name in add-host: 'two words'"),
    ("a#b:1.2.3.4", "invalid host name in add-host: 'a#b'"),
    (("foo\n", "1.2.3.4"), "invalid host name in add-host: 'foo\\n'"),
])
def test_a_bad_add_host_is_refused_naming_it(extra, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        hosts("web", ["172.17.0.2"], extra=[extra])


@pytest.mark.parametrize("name", ["", "bad host", "-web", "web-", "a" * 65, "web..x", "wéb",
                                  "web\n", "x.", None])
def test_a_bad_hostname_is_refused(name):
    with pytest.raises(ValueError, match="hostname .* is not valid"):
        hostname(name)
    with pytest.raises(ValueError, match="hostname .* is not valid"):
        hosts(name, ["172.17.0.2"])


def test_bad_addresses_and_links_are_refused():
    with pytest.raises(ValueError, match="container address '999.1.1.1' is not an IP address"):
        hosts("web", ["999.1.1.1"])
    with pytest.raises(ValueError, match="invalid link alias 'my db'"):
        hosts("web", [], links=[Link("172.17.0.3", "my db", "f00dfeed1234", "mydb")])
    with pytest.raises(ValueError, match="'nowhere' of linked container 'mydb'"):
        hosts("web", [], links=[Link("nowhere", "db", "f00dfeed1234", "mydb")])


def test_hostname_file():
    assert hostname("0123456789ab") == "0123456789ab\n"
    assert hostname("web.example.test") == "web.example.test\n"
    assert hostname("a" * 63) == "a" * 63 + "\n"


def test_resolv_conf_as_docker_builds_it():
    assert resolv_conf(["10.0.0.1", "2001:db8::53"], ["example.test", "corp.example."],
                       ["ndots:0", "timeout:2"]) == (
        "search example.test corp.example.\n"
        "nameserver 10.0.0.1\n"
        "nameserver 2001:db8::53\n"
        "options ndots:0 timeout:2\n")
    assert resolv_conf(["172.18.0.1"]) == "nameserver 172.18.0.1\n"
    # --dns-search . is docker's "no search domain": no search line at all.
    assert resolv_conf(["172.18.0.1"], ["."], []) == "nameserver 172.18.0.1\n"
    assert resolv_conf([], [], []) == ""


def test_resolv_conf_refuses_bad_values():
    with pytest.raises(ValueError, match="nameserver 'dns.example' is not an IP address"):
        resolv_conf(["dns.example"])
    with pytest.raises(ValueError, match="search domain 'bad_domain!' is not a valid domain"):
        resolv_conf(["10.0.0.1"], ["bad_domain!"])
    with pytest.raises(ValueError, match="dns option 'ndots: 1' must be one word"):
        resolv_conf(["10.0.0.1"], [], ["ndots: 1"])


@pytest.fixture
def resolv(tmp_path):
    """Writes a resolv.conf of the test's own; returns its path."""
    def write(text, name="resolv.conf"):
        path = tmp_path / name
        path.write_text(text)
        return str(path)
    return write


HOST_FILE = """# a host's resolv.conf
nameserver 127.0.0.53
nameserver 10.0.0.1
nameserver ::1
nameserver 2001:db8::1
search old.example
# nameserver 9.9.9.9
nameserver 1.1.1.1  # the second one
nameserver 127.1.2.3
search a.example b.example
options ndots:2 edns0
"""


def test_host_resolvers_leave_loopback_and_ipv6_out(resolv, tmp_path):
    path = resolv(HOST_FILE)
    none = str(tmp_path / "no-resolved.conf")
    assert host_resolvers(path, resolved_path=none) == (
        ["10.0.0.1", "1.1.1.1"], ["a.example", "b.example"], ["ndots:2", "edns0"])
    assert host_resolvers(path, ipv6=True, resolved_path=none)[0] == \
        ["10.0.0.1", "2001:db8::1", "1.1.1.1"]
    # For a resolver in the host's namespace (hawserd's DNS server) loopback ones work.
    assert host_resolvers(path, keep_loopback=True, ipv6=True, resolved_path=none)[0] == \
        ["127.0.0.53", "10.0.0.1", "::1", "2001:db8::1", "1.1.1.1", "127.1.2.3"]


def test_host_resolvers_fall_back_to_dockers_defaults(resolv, tmp_path):
    only_local = resolv("nameserver 127.0.0.1\nnameserver ::1\nsearch lan\n")
    assert host_resolvers(only_local) == (["8.8.8.8", "8.8.4.4"], ["lan"], [])
    assert host_resolvers(only_local, ipv6=True)[0] == \
        ["8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844"]
    assert host_resolvers(str(tmp_path / "missing")) == (["8.8.8.8", "8.8.4.4"], [], [])
    assert host_resolvers(resolv("nameserver nowhere\n", "bad.conf"))[0] == ["8.8.8.8", "8.8.4.4"]


def test_host_resolvers_behind_systemd_resolved(resolv):
    stub = resolv("nameserver 127.0.0.53\noptions edns0 trust-ad\nsearch .\n")
    upstream = resolv("nameserver 10.2.3.4\nnameserver 10.2.3.5\nsearch lan\n", "resolved.conf")
    assert host_resolvers(stub, resolved_path=upstream) == (["10.2.3.4", "10.2.3.5"], ["lan"], [])
    gone = upstream + ".gone"
    assert host_resolvers(stub, resolved_path=gone) == (["8.8.8.8", "8.8.4.4"], ["."],
                                                        ["edns0", "trust-ad"])
