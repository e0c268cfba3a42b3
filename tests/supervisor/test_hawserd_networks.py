"""Networks and volumes through a real hawserd and hawserctl, with busybox containers: the
default bridge, a user network whose containers find each other by name, a published port
answering on 127.0.0.1, the none, host and container: modes, volumes that outlive their
containers, and nothing left behind after removal. All traffic goes to loopback or to the
networks the test's hawserd made (its own bridge and nftables table)."""
import json
import os
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from images import write_docker_archive  # noqa: E402

from hawserd_harness import wait_until  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "networking"))
from netns_harness import link_prefix, make_netns, unique  # noqa: E402,F401 (fixtures)

IMAGE = "busybox:net"
SERVE = ("mkdir -p /www && echo hello from $(hostname) > /www/index.html && "
         "exec httpd -f -p 80 -h /www")


@pytest.fixture
def image(hawserd, busybox_rootfs, tmp_path):
    archive = write_docker_archive(busybox_rootfs, tmp_path / "busybox.tar", IMAGE)
    hawserd.ctl("load", "-i", archive)
    return IMAGE


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def nft_elements(table: str) -> str:
    p = subprocess.run(["nft", "list", "table", "ip", table], capture_output=True, text=True)
    return p.stdout


def inspect(hawserd, ref: str) -> dict:
    return json.loads(hawserd.ctl("inspect", ref).stdout)[0]


def get(url: str, timeout: float = 5) -> str:
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read().decode()


def answers(url: str) -> str | None:
    try:
        return get(url, 2)
    except OSError:
        return None


def test_default_bridge_gives_an_address_a_route_and_the_etc_files(hawserd, image):
    before = links()
    p = hawserd.ctl("run", "--name", "b1", "--hostname", "box", image, "sh", "-c",
                    "ip -o -4 addr show eth0; ip route; cat /etc/hosts; cat /etc/hostname; "
                    "cat /etc/resolv.conf")
    addr = next(w for w in p.stdout.split() if w.count(".") == 3 and "/" in w)
    ip, prefix = addr.split("/")
    assert prefix == "16"
    assert f"default via {ip.rsplit('.', 2)[0]}.0.1 dev eth0" in p.stdout
    assert f"{ip}\tbox" in p.stdout and "127.0.0.1\tlocalhost" in p.stdout
    assert "nameserver" in p.stdout
    # the mount targets are in the image's init layer, not in the container's own
    assert hawserd.ctl("diff", "b1").stdout == ""
    hawserd.ctl("rm", "b1")
    assert hawserd.bridge in links()
    # its veth went with the container
    assert wait_until(lambda: links() - before == {hawserd.bridge}, 5), links() - before
    assert hawserd.ctl("ps", "-aq").stdout == ""


def test_containers_on_a_user_network_reach_each_other_by_name_and_alias(hawserd, image):
    hawserd.ctl("network", "create", "--subnet", "10.231.7.0/24", "appnet")
    hawserd.ctl("run", "-d", "--name", "web", "--network", "appnet", "--network-alias",
                "www", image, "sh", "-c", SERVE)
    for name in ("web", "www"):
        p = hawserd.ctl("run", "--rm", "--network", "appnet", image, "sh", "-c",
                        f"for i in 1 2 3 4 5 6 7 8 9 10; do wget -q -O- http://{name}/ "
                        "&& exit 0; sleep 0.2; done; exit 1")
        assert p.stdout.startswith("hello from "), p.stdout
    p = hawserd.ctl("run", "--rm", "--network", "appnet", image, "nslookup", "web")
    web = inspect(hawserd, "web")["NetworkSettings"]["Networks"]["appnet"]
    assert web["IPAddress"].startswith("10.231.7.") and web["IPAddress"] in p.stdout
    # an unknown name is forwarded, not answered by the network: it fails here (no upstream)
    net = json.loads(hawserd.ctl("network", "inspect", "appnet").stdout)[0]
    assert net["IPAM"]["Config"][0]["Subnet"] == "10.231.7.0/24"
    assert [c["Name"] for c in net["Containers"].values()] == ["web"]
    refused = hawserd.ctl("network", "rm", "appnet", check=False)
    assert refused.returncode != 0 and "active endpoints" in refused.stderr
    hawserd.ctl("rm", "-f", "web")
    hawserd.ctl("network", "rm", "appnet")
    assert "appnet" not in hawserd.ctl("network", "ls").stdout


def test_a_published_port_answers_on_loopback_and_goes_with_the_container(hawserd, image):
    port = free_port()
    hawserd.ctl("run", "-d", "--name", "pub", "-p", f"{port}:80", image, "sh", "-c", SERVE)
    assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 10)
    assert get(f"http://127.0.0.1:{port}/").startswith("hello from ")
    ports = inspect(hawserd, "pub")["NetworkSettings"]["Ports"]
    assert ports["80/tcp"] == [{"HostIp": "0.0.0.0", "HostPort": str(port)}]
    assert hawserd.ctl("port", "pub").stdout.strip() == f"80/tcp -> 0.0.0.0:{port}"
    taken = hawserd.ctl("run", "-d", "--name", "pub2", "-p", f"{port}:80", image, "true",
                        check=False)
    assert taken.returncode != 0 and "port is already allocated" in taken.stderr
    assert "pub2" not in hawserd.ctl("ps", "-a").stdout
    hawserd.ctl("rm", "-f", "pub")
    assert str(port) not in nft_elements(hawserd.nft_table)
    assert answers(f"http://127.0.0.1:{port}/") is None


def test_publish_all_picks_free_host_ports(hawserd, image):
    hawserd.ctl("run", "-d", "--name", "pa", "-P", "--expose", "80", image, "sh", "-c", SERVE)
    port = inspect(hawserd, "pa")["NetworkSettings"]["Ports"]["80/tcp"][0]["HostPort"]
    assert 49153 <= int(port) <= 65535
    assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 10)


def test_network_none_has_only_loopback(hawserd, image):
    p = hawserd.ctl("run", "--rm", "--network", "none", image, "ls", "/sys/class/net")
    assert p.stdout.split() == ["lo"]
    p = hawserd.ctl("run", "--rm", "--network", "none", image, "ip", "-o", "link", "show", "lo")
    assert "UP" in p.stdout or "LOOPBACK,UP" in p.stdout


def test_network_host_sees_the_hosts_interfaces(hawserd, image):
    p = hawserd.ctl("run", "--rm", "--network", "host", image, "ls", "/sys/class/net")
    assert set(p.stdout.split()) == links()


def test_container_mode_shares_one_network_namespace(hawserd, image):
    hawserd.ctl("run", "-d", "--name", "owner", image, "sleep", "300")
    mine = hawserd.ctl("exec", "owner", "cat", "/sys/class/net/eth0/address").stdout
    p = hawserd.ctl("run", "--rm", "--network", "container:owner", image, "cat",
                    "/sys/class/net/eth0/address")
    assert p.stdout == mine and mine.startswith("02:42:")
    hawserd.ctl("stop", "-t", "1", "owner")
    refused = hawserd.ctl("run", "--rm", "--network", "container:owner", image, "true",
                          check=False)
    assert refused.returncode != 0 and "non running container" in refused.stderr


def test_connect_and_disconnect_a_running_container(hawserd, image):
    hawserd.ctl("network", "create", "side")
    hawserd.ctl("run", "-d", "--name", "c", image, "sleep", "300")
    hawserd.ctl("network", "connect", "side", "c")
    assert "eth1" in hawserd.ctl("exec", "c", "ls", "/sys/class/net").stdout.split()
    assert "side" in inspect(hawserd, "c")["NetworkSettings"]["Networks"]
    hawserd.ctl("network", "disconnect", "side", "c")
    assert "eth1" not in hawserd.ctl("exec", "c", "ls", "/sys/class/net").stdout.split()


def test_addresses_are_not_given_twice_across_a_restart(hawserd, image):
    hawserd.ctl("create", "--name", "one", image, "true")
    first = inspect(hawserd, "one")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    hawserd.stop()
    hawserd.start()
    hawserd.ctl("create", "--name", "two", image, "true")
    second = inspect(hawserd, "two")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert first and second and first != second


def test_removal_leaves_no_veth_rule_or_address(hawserd, image):
    before = links()
    port = free_port()
    hawserd.ctl("run", "-d", "--name", "gone", "-p", f"127.0.0.1:{port}:80", image, "sleep",
                "300")
    during = links() - before
    assert hawserd.bridge in during and len(during) == 2    # the bridge and the veth
    hawserd.ctl("rm", "-f", "gone")
    assert wait_until(lambda: links() - before == {hawserd.bridge}, 5), links() - before
    assert str(port) not in nft_elements(hawserd.nft_table)
    net = json.loads(hawserd.ctl("network", "inspect", "bridge").stdout)[0]
    assert net["Containers"] == {}


def test_a_named_volume_outlives_its_container_and_is_seeded(hawserd, image):
    hawserd.ctl("run", "--rm", "-v", "data:/data", image, "sh", "-c", "echo kept > /data/f")
    assert hawserd.ctl("run", "--rm", "-v", "data:/data:ro", image, "cat", "/data/f").stdout \
        == "kept\n"
    assert "data" in hawserd.ctl("volume", "ls", "-q").stdout.split()
    # first use of a new volume at an image path: the image's files are copied in
    p = hawserd.ctl("run", "--rm", "-v", "etcvol:/etc", image, "ls", "/etc")
    assert "passwd" in p.stdout.split()
    mountpoint = json.loads(hawserd.ctl("volume", "inspect", "etcvol").stdout)[0]["Mountpoint"]
    assert os.path.exists(os.path.join(mountpoint, "passwd"))
    hawserd.ctl("run", "-d", "--name", "user", "-v", "data:/data", image, "sleep", "300")
    refused = hawserd.ctl("volume", "rm", "data", check=False)
    assert refused.returncode != 0 and "in use" in refused.stderr
    hawserd.ctl("rm", "-f", "user")
    hawserd.ctl("volume", "rm", "data")
    assert "data" not in hawserd.ctl("volume", "ls", "-q").stdout.split()


def test_bind_mounts_and_tmpfs(hawserd, image, tmp_path):
    (tmp_path / "in.txt").write_text("from the host\n")
    p = hawserd.ctl("run", "--rm", "-v", f"{tmp_path}:/host:ro", "--tmpfs", "/scratch",
                    image, "sh", "-c", "cat /host/in.txt; grep ' /scratch ' /proc/mounts; "
                    "touch /host/x 2>&1 || echo read-only")
    assert "from the host" in p.stdout and "tmpfs" in p.stdout and "read-only" in p.stdout


def test_cp_into_and_out_of_a_container(hawserd, image, tmp_path):
    hawserd.ctl("run", "-d", "--name", "cpbox", image, "sleep", "300")
    (tmp_path / "hello.txt").write_text("copied in\n")
    hawserd.ctl("cp", str(tmp_path / "hello.txt"), "cpbox:/tmp/")
    assert hawserd.ctl("exec", "cpbox", "cat", "/tmp/hello.txt").stdout == "copied in\n"
    hawserd.ctl("cp", "cpbox:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")


def test_a_published_port_answers_other_containers_too(hawserd, image):
    port = free_port()
    hawserd.ctl("run", "-d", "--name", "srv", "-p", f"{port}:80", image, "sh", "-c", SERVE)
    gateway = inspect(hawserd, "srv")["NetworkSettings"]["Networks"]["bridge"]["Gateway"]
    assert wait_until(lambda: answers(f"http://127.0.0.1:{port}/"), 10)
    # through the host's address on the bridge: DNAT back onto the bridge (hairpin)
    p = hawserd.ctl("run", "--rm", image, "wget", "-q", "-O-", f"http://{gateway}:{port}/")
    assert p.stdout.startswith("hello from ")


def test_outgoing_traffic_is_masqueraded(hawserd, image, make_netns, link_prefix):
    """A server outside (a namespace of the test's, routed from the host by a veth) sees the
    host's address, not the container's."""
    outside = make_netns()
    host_end, ns_end = f"{link_prefix}h", f"{link_prefix}n"
    subprocess.run(["ip", "link", "add", host_end, "type", "veth", "peer", "name", ns_end,
                    "netns", str(outside.holder.pid)], check=True)
    subprocess.run(["ip", "addr", "add", "10.233.77.1/30", "dev", host_end], check=True)
    subprocess.run(["ip", "link", "set", host_end, "up"], check=True)
    outside.run("ip", "addr", "add", "10.233.77.2/30", "dev", ns_end)
    outside.run("ip", "link", "set", ns_end, "up")
    outside.serve("outside", 8080)
    p = hawserd.ctl("run", "--rm", image, "sh", "-c",
                    "ip -o -4 addr show eth0; nc 10.233.77.2 8080 </dev/null")
    assert "outside 10.233.77.1" in p.stdout, p.stdout


def test_hawserd_killed_then_its_container_gone_leaves_no_rule_or_veth(hawserd, image):
    before = links()
    port = free_port()
    hawserd.ctl("run", "-d", "--name", "orphan", "-p", f"127.0.0.1:{port}:80", image, "sleep",
                "300")
    pid = inspect(hawserd, "orphan")["State"]["Pid"]
    assert str(port) in nft_elements(hawserd.nft_table)
    hawserd.sigkill()
    os.kill(pid, 9)            # the container's init, whose pid hawserd gave us
    hawserd.start()
    assert wait_until(lambda: inspect(hawserd, "orphan")["State"]["Status"] == "exited", 10)
    assert str(port) not in nft_elements(hawserd.nft_table)
    assert wait_until(lambda: links() - before == {hawserd.bridge}, 5), links() - before


def test_cp_into_and_out_of_a_container_that_never_ran(hawserd, image, tmp_path):
    """No task has its root filesystem mounted: hawserd mounts the snapshot for the copy."""
    hawserd.ctl("create", "--name", "idle", image, "cat", "/in.txt")
    hawserd.ctl("cp", "idle:/etc/passwd", str(tmp_path / "passwd"))
    assert (tmp_path / "passwd").read_text().startswith("root:")
    (tmp_path / "in.txt").write_text("before start\n")
    hawserd.ctl("cp", str(tmp_path / "in.txt"), "idle:/in.txt")
    assert hawserd.ctl("start", "-a", "idle").stdout == "before start\n"
    assert hawserd.ctl("diff", "idle").stdout.split() == ["A", "/in.txt"]


def test_rm_v_removes_anonymous_volumes_and_keeps_named_ones(hawserd, image):
    hawserd.ctl("run", "-d", "--name", "vols", "-v", "/anon", "-v", "named:/named", image,
                "sleep", "300")
    mounts = {m["Destination"]: m for m in inspect(hawserd, "vols")["Mounts"]}
    anon = mounts["/anon"]["Name"]
    assert len(anon) == 64 and mounts["/named"]["Name"] == "named"
    assert {anon, "named"} <= set(hawserd.ctl("volume", "ls", "-q").stdout.split())
    hawserd.ctl("rm", "-f", "-v", "vols")
    assert hawserd.ctl("volume", "ls", "-q").stdout.split() == ["named"]
    hawserd.ctl("volume", "rm", "named")


def test_volume_verbs_filters_and_prune(hawserd, image):
    hawserd.ctl("volume", "create", "--label", "team=a", "tagged")
    hawserd.ctl("volume", "create", "plain")
    hawserd.ctl("create", "--name", "holder", "-v", "plain:/p", "-v", "/anon", image, "true")
    anon = next(m["Name"] for m in inspect(hawserd, "holder")["Mounts"]
                if m["Destination"] == "/anon")
    ls = lambda *f: hawserd.ctl("volume", "ls", "-q", *f).stdout.split()  # noqa: E731
    assert ls("-f", "label=team=a") == ["tagged"]
    assert ls("-f", "dangling=true") == ["tagged"]
    assert sorted(ls("-f", "dangling=false")) == sorted([anon, "plain"])
    info = json.loads(hawserd.ctl("volume", "inspect", "tagged").stdout)[0]
    assert (info["Name"], info["Driver"], info["Labels"]) == ("tagged", "local", {"team": "a"})
    assert info["Mountpoint"].endswith("/volumes/tagged/_data")
    bad = hawserd.ctl("volume", "ls", "-f", "colour=red", check=False)
    assert bad.returncode != 0 and "colour" in bad.stderr
    # prune: dangling anonymous ones only (none here: the anonymous one is held), -a named too
    assert "tagged" not in hawserd.ctl("volume", "prune", "-f").stdout
    hawserd.ctl("rm", "holder")
    out = hawserd.ctl("volume", "prune", "-f").stdout
    assert anon in out and sorted(ls()) == ["plain", "tagged"]
    hawserd.ctl("volume", "prune", "-f", "-a")
    assert ls() == []


def test_link_add_host_and_dns_options_reach_the_etc_files(hawserd, image):
    hawserd.ctl("run", "-d", "--name", "db", image, "sleep", "300")
    db_ip = inspect(hawserd, "db")["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    p = hawserd.ctl("run", "--rm", "--link", "db:database", "--add-host", "extra:192.0.2.7",
                    "--dns", "192.0.2.53", "--dns-search", "example.test", image, "sh", "-c",
                    "cat /etc/hosts /etc/resolv.conf; ping -c1 -W1 database >/dev/null 2>&1; "
                    "nc -w 1 database 9 </dev/null; echo; grep -c . /etc/hosts")
    lines = p.stdout.splitlines()
    assert f"{db_ip}\tdatabase {inspect(hawserd, 'db')['Id'][:12]} db" in lines, p.stdout
    assert "192.0.2.7\textra" in lines
    assert "nameserver 192.0.2.53" in lines and "search example.test" in lines
    # a link is refused to a container that is not running, as docker refuses it
    hawserd.ctl("stop", "-t", "1", "db")
    refused = hawserd.ctl("run", "--rm", "--link", "db", image, "true", check=False)
    assert refused.returncode != 0 and "db" in refused.stderr
