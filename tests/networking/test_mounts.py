"""docker's -v, --mount and --tmpfs (supervisor/volumes/mounts.py): what docker's parser makes of
its own examples, its error messages for the mistakes (from moby's volume/mounts and docker/cli's
opts/mount.go), and OCI mounts that hawser (the project's runtime) really mounts in a busybox
container whose process checks the files, the read-only ones and the tmpfs options."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid

import pytest

from paths import REPO
from supervisor.volumes import mounts
from supervisor.volumes.mounts import MountError, oci_mounts, parse_mount, parse_tmpfs, \
    parse_volume


def rec(kind, source, destination, read_only=False, options=()):
    return {"type": kind, "source": source, "destination": destination, "read_only": read_only,
            "options": list(options)}


# -- -v ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("/data", rec("volume", "", "/data")),
    ("web-data:/srv", rec("volume", "web-data", "/srv")),
    ("web.data_1:/srv:ro", rec("volume", "web.data_1", "/srv", True)),
    ("cache:/c:nocopy", rec("volume", "cache", "/c", False, ["nocopy"])),
    ("cache:/c:z,rw,nocopy", rec("volume", "cache", "/c", False, ["nocopy"])),
    ("/etc/hostname:/h:ro", rec("bind", "/etc/hostname", "/h", True, ["create-mountpoint"])),
    ("/srv/a:/a:rshared,Z", rec("bind", "/srv/a", "/a", False, ["rshared", "create-mountpoint"])),
    ("/srv//b/../c/:/d/./e/", rec("bind", "/srv/c", "/d/e", False, ["create-mountpoint"])),
    ("/h:/x:ro,rslave,cached", rec("bind", "/h", "/x", True, ["rslave", "create-mountpoint"])),
])
def test_volume_flag(text, want):
    assert parse_volume(text) == want


NAME_ERROR = ('create {0}: "{0}" includes invalid characters for a local volume name, only '
              '"[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, '
              'use absolute path')


@pytest.mark.parametrize("text, message", [
    ("", "invalid volume specification: ''"),
    (":/x", "invalid volume specification: ':/x'"),
    ("/x:rw", "invalid volume specification: '/x:rw'"),            # a mode and no source
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/h:/x:rx", "invalid mode: rx"),
    ("/h:/x:ro,rw", "invalid mode: ro,rw"),                          # one of each kind
    ("/h:/x:shared,slave", "invalid mode: shared,slave"),
    ("/h:/", "invalid volume specification: '/h:/': invalid mount config for type \"bind\": "
             "invalid specification: destination can't be '/'"),
    ("v:/x/..", "invalid volume specification: 'v:/x/..': invalid mount config for type "
                "\"volume\": invalid specification: destination can't be '/'"),
    ("v:rel", "invalid volume specification: 'v:rel': invalid mount config for type \"volume\": "
              "invalid mount path: 'rel' mount path must be absolute"),
    ("v::ro", "invalid volume specification: 'v::ro': invalid mount config for type \"volume\": "
              "field Target must not be empty"),
    ("v:/x:rshared", "invalid volume specification: 'v:/x:rshared': invalid mount config for "
                     "type \"volume\": field BindOptions must not be specified"),
    ("/h:/x:nocopy", "invalid volume specification: '/h:/x:nocopy': invalid mount config for "
                     "type \"bind\": field VolumeOptions must not be specified"),
    # a relative host path is a volume name, and no good one (docker: use an absolute path)
    ("./data:/x", NAME_ERROR.format("./data")),
    ("data/sub:/x", NAME_ERROR.format("data/sub")),
    ("~/x:/y", NAME_ERROR.format("~/x")),
    ("a:/x", NAME_ERROR.format("a")),                # docker's rule wants two characters
])
def test_volume_flag_errors(text, message):
    with pytest.raises(MountError) as e:
        parse_volume(text)
    assert e.value.message == message
    assert e.value.code == "INVALID_ARGUMENT"


# -- --mount ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("type=bind,source=/srv,target=/app", rec("bind", "/srv", "/app")),
    ("type=bind,src=/srv,dst=/app,readonly", rec("bind", "/srv", "/app", True)),
    ("type=bind,src=/srv,destination=/app,ro=true,bind-propagation=RSLAVE",
     rec("bind", "/srv", "/app", True, ["rslave"])),
    ("type=bind,src=/srv,dst=/app,ro=0,bind-nonrecursive",
     rec("bind", "/srv", "/app", False, ["bind-nonrecursive"])),
    ("src=data,dst=/data", rec("volume", "data", "/data")),          # volume: the default type
    ("type=volume,dst=/data,volume-nocopy", rec("volume", "", "/data", False, ["nocopy"])),
    ("type=volume,src=data,dst=/data,volume-nocopy=false,readonly=1",
     rec("volume", "data", "/data", True)),
    ("type=tmpfs,dst=/run", rec("tmpfs", "", "/run")),
    ("type=tmpfs,dst=/run,tmpfs-size=64m,tmpfs-mode=1770",
     rec("tmpfs", "", "/run", False, ["mode=1770", "size=64m"])),
    ("type=TMPFS,dst=/run,tmpfs-size=1.5k,ro", rec("tmpfs", "", "/run", True, ["size=1536"])),
    ("type=tmpfs,dst=/run,tmpfs-size=2GiB", rec("tmpfs", "", "/run", False, ["size=2g"])),
    ('"type=bind","src=/a,b",dst=/x', rec("bind", "/a,b", "/x")),    # CSV quotes, as docker's CLI
    ('type=bind,"src=/say ""hi""",dst=/x', rec("bind", '/say "hi"', "/x")),
])
def test_mount_flag(text, want):
    assert parse_mount(text) == want


@pytest.mark.parametrize("text, message", [
    ("type=bind,src=/a,dst=/x,bogus", "invalid field 'bogus' must be a key=value pair"),
    ("type=bind,src=/a,dst=/x,size=1", "unexpected key 'size' in 'size=1'"),
    ("type=bind,src=/a,dst=/x,ro=maybe", "invalid value for ro: maybe"),
    ("type=bind,src=/a,dst=/x,readonly=yes", "invalid value for readonly: yes"),
    ("dst=/x,volume-nocopy=2", "invalid value for volume-nocopy: 2"),
    ("type=tmpfs,dst=/x,tmpfs-size=lots", "invalid value for tmpfs-size: lots"),
    ("type=tmpfs,dst=/x,tmpfs-size=-1", "invalid value for tmpfs-size: -1"),
    ("type=tmpfs,dst=/x,tmpfs-mode=0x1ff", "invalid value for tmpfs-mode: 0x1ff"),
    ("type=tmpfs,dst=/x,tmpfs-mode=8", "invalid value for tmpfs-mode: 8"),
    ("type=,dst=/x", "type is required"),
    ("type=bind,src=/a", "target is required"),
    ("type=bind,src=/a,dst=/x,volume-nocopy", "cannot mix 'volume-*' options with mount type 'bind'"),
    ("type=volume,dst=/x,bind-propagation=shared",
     "cannot mix 'bind-*' options with mount type 'volume'"),
    ("type=bind,src=/a,dst=/x,tmpfs-size=1m", "cannot mix 'tmpfs-*' options with mount type 'bind'"),
    ("type=bind,dst=/x", 'invalid mount config for type "bind": field Source must not be empty'),
    ("type=bind,src=rel,dst=/x",
     "invalid mount config for type \"bind\": invalid mount path: 'rel' mount path must be absolute"),
    ("type=bind,src=/a,dst=/x,bind-propagation=sideways",
     'invalid mount config for type "bind": invalid propagation mode: sideways'),
    ("type=bind,src=/a,dst=/", "invalid mount config for type \"bind\": invalid specification: "
                               "destination can't be '/'"),
    ("type=volume,dst=x", "invalid mount config for type \"volume\": invalid mount path: 'x' mount "
                          "path must be absolute"),
    ("type=volume,dst=/x,ro",
     'invalid mount config for type "volume": must not set ReadOnly mode when using anonymous '
     'volumes'),
    ("type=tmpfs,src=t,dst=/x", 'invalid mount config for type "tmpfs": field Source must not be '
                                'specified'),
    ("type=nfs,dst=/x", 'invalid mount config for type "nfs": mount type unknown'),
    ("type=volume,src=a/b,dst=/x", NAME_ERROR.format("a/b")),
    ('type=bind,src=/a"b,dst=/x', 'parse error on line 1, column 17: bare " in non-quoted field'),
    ('"type=bind', 'parse error on line 1, column 11: extraneous or missing " in quoted-field'),
])
def test_mount_flag_errors(text, message):
    with pytest.raises(MountError) as e:
        parse_mount(text)
    assert e.value.message == message


# -- --tmpfs ----------------------------------------------------------------------------------
@pytest.mark.parametrize("text, want", [
    ("/run", rec("tmpfs", "", "/run")),
    ("/run:size=64m,mode=1700", rec("tmpfs", "", "/run", False, ["size=64m", "mode=1700"])),
    ("/run:exec,ro", rec("tmpfs", "", "/run", True, ["exec", "ro"])),
    ("/run:ro,rw", rec("tmpfs", "", "/run", False, ["ro", "rw"])),
])
def test_tmpfs_flag(text, want):
    assert parse_tmpfs(text) == want


@pytest.mark.parametrize("text, message", [
    ("run", "invalid mount path: 'run' mount path must be absolute"),
    (":size=1m", "invalid mount path: '' mount path must be absolute"),
    ("/", "invalid specification: destination can't be '/'"),
    ("/run:bogus", 'invalid tmpfs option ["bogus"]'),
    ("/run:size", 'invalid tmpfs option ["size"]'),
    ("/run:color=red", 'invalid tmpfs option ["color" "red"]'),
    ("/run:bind", 'invalid tmpfs option ["bind"]'),       # a bind of "tmpfs" is no tmpfs
])
def test_tmpfs_flag_errors(text, message):
    with pytest.raises(MountError) as e:
        parse_tmpfs(text)
    assert e.value.message == message


def test_tmpfs_options_merge_as_docker_the_last_of_a_kind_wins():
    assert mounts.merge_tmpfs(["noexec", "nosuid", "nodev", "rprivate", "exec", "size=1m",
                               "rshared", "size=2m"]) == \
        ["nosuid", "nodev", "exec", "rshared", "size=2m"]


# -- OCI mounts -------------------------------------------------------------------------------
def test_oci_mounts_of_each_type(tmp_path):
    host = tmp_path / "host"
    host.mkdir()
    records = [parse_tmpfs("/run:size=1m"), parse_volume(f"{host}:/srv/h:ro,rshared"),
               parse_volume("data:/srv"), parse_mount("type=tmpfs,dst=/t,tmpfs-mode=700,ro"),
               parse_mount(f"type=bind,src={host},dst=/b,bind-nonrecursive")]
    got = oci_mounts(records, lambda name: f"/volumes/{name}/_data")
    # outer destinations before inner ones (/srv before /srv/h), in order otherwise
    assert got == [
        {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "nosuid", "nodev", "rprivate", "size=1m"]},
        {"destination": "/srv", "type": "bind", "source": "/volumes/data/_data",
         "options": ["rbind", "rw", "rprivate"]},
        {"destination": "/t", "type": "tmpfs", "source": "tmpfs",
         "options": ["noexec", "nosuid", "nodev", "rprivate", "ro", "mode=700"]},
        {"destination": "/b", "type": "bind", "source": str(host),
         "options": ["bind", "rw", "rprivate"]},
        {"destination": "/srv/h", "type": "bind", "source": str(host),
         "options": ["rbind", "ro", "rshared"]},
    ]
    assert mounts.rootfs_propagation(got) == "rshared"
    assert mounts.rootfs_propagation(got[:2]) == ""


@pytest.mark.parametrize("records, message", [
    ([rec("tmpfs", "", "/a"), rec("volume", "v", "/a/")], "Duplicate mount point: /a"),
    ([rec("tmpfs", "", "rel")], "invalid mount path: 'rel' mount path must be absolute"),
    ([rec("tmpfs", "", "/a/..")], "invalid specification: destination can't be '/'"),
    ([rec("volume", "", "/a")], "the anonymous volume at /a has no name: create it first"),
    ([rec("bind", "rel", "/a")], "invalid mount config for type \"bind\": invalid mount path: "
                                 "'rel' mount path must be absolute"),
    ([rec("image", "x", "/a")], 'invalid mount config for type "image": mount type unknown'),
])
def test_oci_mounts_refuse_bad_records(records, message):
    with pytest.raises(MountError) as e:
        oci_mounts(records, lambda name: f"/v/{name}")
    assert e.value.message == message


def test_missing_bind_source_made_for_dash_v_only_once_all_is_good(tmp_path):
    missing = tmp_path / "made" / "by" / "v"
    # --mount: docker's error; -v: made, but not when another record is refused
    with pytest.raises(MountError) as e:
        oci_mounts([parse_mount(f"type=bind,src={missing},dst=/x")], str)
    assert e.value.message == ('invalid mount config for type "bind": bind source path does not '
                               f'exist: {missing}')
    with pytest.raises(MountError):
        oci_mounts([parse_volume(f"{missing}:/x"), rec("tmpfs", "", "/x")], str)
    assert not (tmp_path / "made").exists()
    oci_mounts([parse_volume(f"{missing}:/x")], str)
    assert missing.is_dir() and (missing.stat().st_mode & 0o777) == 0o755


def test_oci_mounts_take_protobuf_mounts():
    from supervisor.api import containers_pb2
    m = containers_pb2.Mount(type="volume", source="v1", destination="/d", read_only=True)
    assert oci_mounts([m], lambda n: f"/vol/{n}") == [
        {"destination": "/d", "type": "bind", "source": "/vol/v1",
         "options": ["rbind", "ro", "rprivate"]}]


def test_hawserctl_import_cost():
    """hawserctl parses its command line with mounts.py: importing it brings no re, json, enum
    or dataclasses (nor anything else than the project's errors)."""
    code = ("import sys; before = set(sys.modules); import supervisor.volumes.mounts; "
            "print(' '.join(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         check=True).stdout.split()
    assert sorted(out) == ["supervisor", "supervisor.errors", "supervisor.volumes",
                           "supervisor.volumes.mounts"]


# -- mounted for real by hawser ----------------------------------------------------------------
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="containers need root")

CHECKS = r"""
set -u
cat /srv/vol/kept
echo new > /srv/vol/made && echo volume-writable
cat /srv/ro/hostfile
echo x > /srv/ro/nope 2>/dev/null || echo ro-refused
echo x > /srv/vol/sub/deeper 2>/dev/null && echo inner-ro-broken || echo inner-ro-refused
ls -d /made/by/v && echo x > /made/by/v/file && echo made-writable
dd if=/dev/zero of=/run/t/big bs=1k count=2048 2>/dev/null || echo tmpfs-full
stat -c '%a' /run/t
cp /bin/busybox /run/t/bb 2>/dev/null; /run/t/bb true 2>/dev/null || echo tmpfs-noexec
grep -E ' /(srv|run|made)' /proc/self/mountinfo
"""


@needs_root
def test_oci_mounts_mounted_by_hawser(hawser, make_bundle, tmp_path):
    volumes = tmp_path / "volumes"
    data = volumes / "vol1" / "_data"
    (data / "sub").mkdir(parents=True)
    (data / "kept").write_text("kept in the volume\n")
    ro_src = tmp_path / "ro"
    ro_src.mkdir()
    (ro_src / "hostfile").write_text("from the host\n")
    made = tmp_path / "made" / "by" / "v"
    records = [parse_volume("vol1:/srv/vol"), parse_volume(f"{ro_src}:/srv/ro:ro"),
               parse_mount(f"type=bind,src={ro_src},dst=/srv/vol/sub,readonly"),
               parse_volume(f"{made}:/made/by/v"), parse_tmpfs("/run/t:size=1m,mode=1770")]
    oci = oci_mounts(records, lambda name: str(volumes / name / "_data"))
    bundle = make_bundle(args=["sh", "-c", CHECKS])
    bundle.config["mounts"] += oci
    bundle.write()
    proc = hawser("run", "--bundle", bundle.path, f"mnt-{uuid.uuid4().hex[:8]}",
                  stdin=subprocess.DEVNULL, timeout=60)
    lines = proc.stdout.splitlines()
    assert lines[:10] == ["kept in the volume", "volume-writable", "from the host", "ro-refused",
                          "inner-ro-refused", "/made/by/v", "made-writable", "tmpfs-full",
                          "1770", "tmpfs-noexec"], proc.stdout + proc.stderr
    info = {line.split()[4]: line for line in lines[10:]}
    assert set(info) == {"/srv/vol", "/srv/ro", "/srv/vol/sub", "/made/by/v", "/run/t"}
    tmpfs_opts = info["/run/t"].split()[5].split(",")
    assert {"nosuid", "nodev", "noexec"} <= set(tmpfs_opts)
    assert "ro" in info["/srv/ro"].split()[5].split(",")
    # what the container wrote is on the host, in the volume and the made directory
    assert (data / "made").read_text() == "new\n"
    assert (made / "file").read_text() == "x\n"
    assert not (ro_src / "nope").exists() and sorted(os.listdir(ro_src)) == ["hostfile"]
    assert json.loads((bundle.path / "config.json").read_text())["mounts"][-len(oci):] == oci


def test_binds_of_the_daemons_directories_default_to_rslave_as_dockers():
    dirs = ("/var/lib/hawserd", "/run/hawserd")
    assert mounts.daemon_propagation("/", dirs) == "rslave"          # a parent
    assert mounts.daemon_propagation("/var/lib/", dirs) == "rslave"
    assert mounts.daemon_propagation("/run/hawserd", dirs) == "rslave"
    assert mounts.daemon_propagation("/var/lib/hawserd/volumes/x", dirs) == "rslave"  # inside
    assert mounts.daemon_propagation("/var/lib/hawserd2", dirs) == ""
    assert mounts.daemon_propagation("/srv", dirs) == ""
    out = mounts.oci_mounts([{"type": "bind", "source": "/", "destination": "/host",
                              "propagation": "rslave"},
                             {"type": "bind", "source": "/", "destination": "/h2",
                              "options": ["rshared"], "propagation": "rslave"}], None)
    assert [m["options"][-1] for m in out] == ["rslave", "rshared"]
