"""hawser's own runtime-spec v1.3 schemas (oci-specs/), the validator (runtime.validate) with its
digest cache, and runtime.jsonlite (JSON on the C `_json` module) checked against the stdlib."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

from runtime import jsonlite, validate
from runtime.errors import HawserError

REPO = Path(__file__).resolve().parent.parent
SPECS = REPO / "oci-specs"
CORPUS = Path(__file__).resolve().parent / "schema_corpus"
VALID = sorted(p.name for p in (CORPUS / "valid").glob("*.json"))
INVALID_FILES = sorted(p.name for p in (CORPUS / "invalid").glob("*.json"))
# Where jsonschema lives: the fast launcher appends its site-packages the same way (`-I -S`).
SITE = str(Path(jsonschema.__file__).resolve().parent.parent)

# The exact one-line error for every invalid corpus file: the JSON path, then the rule.
INVALID = {
    "annotation-empty-key.json": "annotations: keys must not be empty",
    "annotation-value-number.json": "annotations[\"org.example.n\"]: 1 is not of type 'string'",
    "args-empty.json": "process.args: [] should be non-empty",
    "blockio-throttle-missing-rate.json":
        "linux.resources.blockIO.throttleReadBpsDevice[0]: 'rate' is a required property",
    "blockio-weight-above-uint16.json":
        "linux.resources.blockIO.weight: 70000 is greater than the maximum of 65535",
    "capability-without-prefix.json":
        "process.capabilities.bounding[1]: 'NET_ADMIN' does not match '^CAP_[A-Z_]+$'",
    "config-not-object.json": "['ociVersion', '1.0.2'] is not of type 'object'",
    "consoleSize-missing-width.json": "process.consoleSize: 'width' is a required property",
    "cpu-idle-string.json": "linux.resources.cpu.idle: '1' is not of type 'integer'",
    "cwd-relative.json": "process.cwd: 'tmp' is not an absolute path",
    "device-bad-type.json": "linux.devices[0].type: 'x' is not one of ['c', 'b', 'u', 'p']",
    "device-cgroup-bad-access.json":
        "linux.resources.devices[0].access: 'rwx' does not match '^[rwm]*$'",
    "device-cgroup-bad-type.json":
        "linux.resources.devices[0].type: 'x' is not one of ['a', 'b', 'c']",
    "device-cgroup-missing-allow.json":
        "linux.resources.devices[0]: 'allow' is a required property",
    "device-char-without-major.json": "linux.devices[0]: 'major' is a required property",
    "env-not-array.json": "process.env: 'PATH=/bin' is not of type 'array'",
    "execCPUAffinity-bad.json":
        "process.execCPUAffinity.initial: '0-3;5' does not match '^[0-9, -]*$'",
    "gid-above-uint32.json":
        "process.user.gid: 4294967296 is greater than the maximum of 4294967295",
    "hook-missing-path.json": "hooks.prestart[0]: 'path' is a required property",
    "hook-relative-path.json": "hooks.createRuntime[0].path: 'bin/hook' is not an absolute path",
    "hook-timeout-zero.json": "hooks.poststop[0].timeout: 0 is less than the minimum of 1",
    "hugepage-bad-pagesize.json": "linux.resources.hugepageLimits[0].pageSize: '2MiB' does not "
                                  "match '^[1-9][0-9]*[KMG]B$'",
    "intelRdt-memBwSchema-bad.json":
        "linux.intelRdt.memBwSchema: 'L3:0=ff' does not match '^MB:[^\\\\n]*$'",
    "intelRdt-schemata-not-array.json":
        "linux.intelRdt.schemata: 'L3:0=ff' is not of type 'array'",
    "ioPriority-bad-class.json": "process.ioPriority.class: 'IOPRIO_CLASS_FAST' is not one of "
                                 "['IOPRIO_CLASS_RT', 'IOPRIO_CLASS_BE', 'IOPRIO_CLASS_IDLE']",
    "maskedPaths-relative.json": "linux.maskedPaths[1]: 'proc/keys' is not an absolute path",
    "memory-checkBeforeUpdate-string.json":
        "linux.resources.memory.checkBeforeUpdate: 'true' is not of type 'boolean'",
    "memory-limit-string.json": "linux.resources.memory.limit: '64m' is not of type 'integer'",
    "memoryPolicy-bad-flag.json": "linux.memoryPolicy.flags[0]: 'MPOL_F_FAST' is not one of "
                                  "['MPOL_F_NUMA_BALANCING', 'MPOL_F_RELATIVE_NODES', "
                                  "'MPOL_F_STATIC_NODES']",
    "memoryPolicy-missing-mode.json": "linux.memoryPolicy: 'mode' is a required property",
    "missing-ociVersion.json": "'ociVersion' is a required property",
    "mount-idmap-missing-hostID.json":
        "mounts[0].uidMappings[0]: 'hostID' is a required property",
    "mount-missing-destination.json": "mounts[1]: 'destination' is a required property",
    "namespace-duplicate.json": "linux.namespaces: namespace type 'pid' appears more than once",
    "namespace-unknown-type.json": "linux.namespaces[1].type: 'foo' is not one of ['mount', "
                                   "'pid', 'network', 'uts', 'ipc', 'user', 'cgroup', 'time']",
    "netDevices-name-not-string.json": "linux.netDevices.eth0.name: 0 is not of type 'string'",
    "network-classID-negative.json":
        "linux.resources.network.classID: -1 is less than the minimum of 0",
    "ociVersion-2.json": "ociVersion: '2.0.0' is not a runtime-spec 1.x version "
                         "(SemVer 1.MINOR.PATCH[-PRE][+BUILD])",
    "ociVersion-not-semver.json": "ociVersion: '1.0' is not a runtime-spec 1.x version "
                                  "(SemVer 1.MINOR.PATCH[-PRE][+BUILD])",
    "ociVersion-number.json": "ociVersion: 1.0 is not of type 'string'",
    "personality-bad-domain.json":
        "linux.personality.domain: 'LINUX64' is not one of ['LINUX', 'LINUX32']",
    "personality-missing-domain.json": "linux.personality: 'domain' is a required property",
    "pids-missing-limit.json": "linux.resources.pids: 'limit' is a required property",
    "process-missing-cwd.json": "process: 'cwd' is a required property",
    "rdma-handles-string.json":
        "linux.resources.rdma.mlx5_1.hcaHandles: '3' is not of type 'integer'",
    "rlimit-bad-type.json":
        "process.rlimits[0].type: 'RLIMIT_nofile' does not match '^RLIMIT_[A-Z]+$'",
    "rlimit-missing-soft.json": "process.rlimits[0]: 'soft' is a required property",
    "root-missing-path.json": "root: 'path' is a required property",
    "rootfsPropagation-bogus.json": "linux.rootfsPropagation: 'bogus' is not one of ['private', "
                                    "'shared', 'slave', 'unbindable', 'rprivate', 'rshared', "
                                    "'rslave', 'runbindable']",
    "scheduler-bad-flag.json": "process.scheduler.flags[0]: 'SCHED_FLAG_TURBO' is not one of "
                               "['SCHED_FLAG_RESET_ON_FORK', 'SCHED_FLAG_RECLAIM', "
                               "'SCHED_FLAG_DL_OVERRUN', 'SCHED_FLAG_KEEP_POLICY', "
                               "'SCHED_FLAG_KEEP_PARAMS', 'SCHED_FLAG_UTIL_CLAMP_MIN', "
                               "'SCHED_FLAG_UTIL_CLAMP_MAX']",
    "scheduler-missing-policy.json": "process.scheduler: 'policy' is a required property",
    "seccomp-arg-missing-op.json":
        "linux.seccomp.syscalls[0].args[0]: 'op' is a required property",
    "seccomp-bad-action.json": "linux.seccomp.syscalls[0].action: 'SCMP_ACT_MAYBE' is not one of "
                               "['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', "
                               "'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', "
                               "'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']",
    "seccomp-bad-arch.json": "linux.seccomp.architectures[0]: 'SCMP_ARCH_Z80' is not one of [",
    "seccomp-bad-default-action.json":
        "linux.seccomp.defaultAction: 'ALLOW' is not one of ['SCMP_ACT_KILL', ",
    "seccomp-bad-flag.json": "linux.seccomp.flags[0]: 'SECCOMP_FILTER_FLAG_FAST' is not one of "
                             "['SECCOMP_FILTER_FLAG_TSYNC', 'SECCOMP_FILTER_FLAG_LOG', "
                             "'SECCOMP_FILTER_FLAG_SPEC_ALLOW', "
                             "'SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV']",
    "seccomp-bad-operator.json": "linux.seccomp.syscalls[0].args[0].op: 'SCMP_CMP_LIKE' is not "
                                 "one of ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', "
                                 "'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', "
                                 "'SCMP_CMP_MASKED_EQ']",
    "seccomp-empty-names.json": "linux.seccomp.syscalls[0].names: [] should be non-empty",
    "seccomp-missing-defaultAction.json":
        "linux.seccomp: 'defaultAction' is a required property",
    "sysctl-value-number.json":
        "linux.sysctl[\"net.ipv4.ip_forward\"]: 1 is not of type 'string'",
    "terminal-not-bool.json": "process.terminal: 'yes' is not of type 'boolean'",
    "timeOffsets-bad-clock.json":
        "linux.timeOffsets: 'realtime' is not one of ['monotonic', 'boottime']",
    "timeOffsets-negative-nanosecs.json":
        "linux.timeOffsets.monotonic.nanosecs: -1 is less than the minimum of 0",
    "uid-negative.json": "process.user.uid: -1 is less than the minimum of 0",
    "uid-string.json": "process.user.uid: 'x' is not of type 'integer'",
    "uidMappings-missing-size.json": "linux.uidMappings[0]: 'size' is a required property",
    "user-missing-uid.json": "process.user: 'uid' is a required property",
}
# Long enum lists are compared by prefix (the enum itself is checked by the full entries above).
PREFIX_ONLY = {"seccomp-bad-arch.json", "seccomp-bad-default-action.json"}


def corpus(kind: str, name: str) -> bytes:
    return (CORPUS / kind / name).read_bytes()


def error_of(raw: bytes, cache_dir=None) -> str:
    with pytest.raises(HawserError) as exc:
        validate.validate_config(raw, cache_dir)
    return str(exc.value)


# ---------------------------------------------------------------- the schema files themselves

SCHEMA_FILES = sorted(p.name for p in SPECS.glob("*.json"))


def test_schema_files_present():
    for name in ("config-schema.json", "config-linux.json", "defs.json", "defs-linux.json",
                 "state-schema.json", "features-schema.json", "features-linux.json"):
        assert name in SCHEMA_FILES
    # The cache key must cover every file a config validation can reach.
    assert set(validate.CONFIG_SCHEMAS) == {"config-schema.json", "config-linux.json",
                                            "defs.json", "defs-linux.json"}


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_schema_is_valid_2020_12(name):
    Draft202012Validator.check_schema(json.loads((SPECS / name).read_text()))


def _refs(node):
    if isinstance(node, dict):
        for k, v in node.items():
            if k == "$ref":
                yield v
            else:
                yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


@pytest.mark.parametrize("name", SCHEMA_FILES)
def test_every_ref_resolves_from_the_directory(name):
    """A typo in a $ref only fails when data reaches that branch: resolve them all up front."""
    docs = {n: json.loads((SPECS / n).read_text()) for n in SCHEMA_FILES}
    registry = Registry().with_resources((n, DRAFT202012.create_resource(d))
                                         for n, d in docs.items())
    resolver = registry.resolver(base_uri=name)
    refs = list(_refs(docs[name]))
    assert refs or name in ("defs.json",)
    for ref in refs:
        assert not ref.startswith(("http:", "https:", "file:", "/")), ref  # relative only
        resolved = resolver.lookup(ref).contents
        assert isinstance(resolved, dict), ref


# ---------------------------------------------------------------- config corpus

def test_corpus_and_expectations_match():
    assert len(VALID) >= 20 and len(INVALID_FILES) >= 60
    assert set(INVALID_FILES) == set(INVALID), "every invalid file needs its expected message"


@pytest.mark.parametrize("name", VALID)
def test_valid_corpus_accepted(name):
    raw = corpus("valid", name)
    assert validate.validate_config(raw, None) == json.loads(raw)


@pytest.mark.parametrize("name", INVALID_FILES)
def test_invalid_corpus_rejected_with_path_and_rule(name):
    msg = error_of(corpus("invalid", name))
    want = "config.json: " + INVALID[name]
    if name in PREFIX_ONLY:
        assert msg.startswith(want), msg
    else:
        assert msg == want
    assert "\n" not in msg


def test_most_relevant_error_is_reported():
    """Several errors: best_match picks the shallowest one, deterministically."""
    doc = json.loads(corpus("valid", "runc-spec.json"))
    doc["process"]["user"]["uid"] = "x"
    doc["linux"]["namespaces"].append({"type": "bogus"})
    del doc["root"]["path"]
    raw = json.dumps(doc).encode()
    assert error_of(raw) == "config.json: root: 'path' is a required property"
    assert error_of(raw) == error_of(raw)


def test_str_input_and_error_type():
    assert validate.validate_config('{"ociVersion": "1.3.0"}') == {"ociVersion": "1.3.0"}
    with pytest.raises(HawserError):  # the CLI turns HawserError into one line and exit 1
        validate.validate_config(b'{"ociVersion": "3.0.0"}')


@pytest.mark.parametrize("raw, reason", [
    (b'{"ociVersion": ', "Expecting value: line 1 column 16 (char 15)"),
    (b'{"ociVersion": "1.0.0",\n "root": {"path": "rootfs"}}}',
     "Extra data: line 2 column 29 (char 52)"),
    (b'{"ociVersion" "1.0.0"}', "Expecting ':' delimiter: line 1 column 15 (char 14)"),
    (b'', "Expecting value: line 1 column 1 (char 0)"),
    (b'{"ociVersion": "1.0.0", "x": NaN}', "NaN is not valid JSON"),
    (b'{"ociVersion": "1.0.0", "x": -Infinity}', "-Infinity is not valid JSON"),
    (b'{"ociVersion": "\xff"}', "'utf-8' codec can't decode byte 0xff in position 16: "
                                "invalid start byte"),
])
def test_malformed_json(raw, reason, tmp_path):
    assert error_of(raw) == f"config.json: invalid JSON: {reason}"
    assert error_of(raw, str(tmp_path / "c")) == f"config.json: invalid JSON: {reason}"


# ---------------------------------------------------------------- the validated-digest cache

def entries(cache: Path) -> list[str]:
    return sorted(os.listdir(cache)) if cache.exists() else []


def test_cache_records_valid_configs_only(tmp_path):
    cache = tmp_path / "root" / ".validated"
    raw = corpus("valid", "podman-default.json")
    assert validate.validate_config(raw, str(cache)) == json.loads(raw)
    (entry,) = entries(cache)
    assert len(entry) == 64 and int(entry, 16) >= 0
    assert (cache / entry).stat().st_size == 0
    assert cache.stat().st_mode & 0o777 == 0o700
    # A hit returns the same parse.
    assert validate.validate_config(raw, str(cache)) == json.loads(raw)
    assert entries(cache) == [entry]
    # Invalid configs are never recorded, and fail the same way every time.
    bad = corpus("invalid", "uid-string.json")
    first = error_of(bad, str(cache))
    assert error_of(bad, str(cache)) == first
    assert entries(cache) == [entry]
    # Another byte sequence is another digest, even for the same document.
    validate.validate_config(raw + b"\n", str(cache))
    assert len(entries(cache)) == 2


def test_cache_hit_still_parses(tmp_path):
    """The parse is done on every call: what is returned is this call's document."""
    cache = str(tmp_path / "c")
    a = b'{"ociVersion": "1.0.0", "hostname": "a"}'
    validate.validate_config(a, cache)
    assert validate.validate_config(a, cache)["hostname"] == "a"
    doc = validate.validate_config(a, cache)
    doc["hostname"] = "mutated"
    assert validate.validate_config(a, cache)["hostname"] == "a"


def test_schema_change_invalidates(tmp_path, monkeypatch):
    specs = tmp_path / "oci-specs"
    shutil.copytree(SPECS, specs)
    monkeypatch.setattr(validate, "SCHEMA_DIR", str(specs))
    cache = tmp_path / "c"
    raw = b'{"ociVersion": "1.0.0", "hostname": "hh"}'
    validate.validate_config(raw, str(cache))
    before = entries(cache)
    # Tighten the schema: hostname must now be short. The old entry must not be trusted.
    schema = json.loads((specs / "config-schema.json").read_text())
    schema["properties"]["hostname"]["maxLength"] = 1
    (specs / "config-schema.json").write_text(json.dumps(schema))
    assert error_of(raw, str(cache)) == "config.json: hostname: 'hh' is too long"
    assert entries(cache) == before
    # Every config schema file is part of the key.
    for name in validate.CONFIG_SCHEMAS:
        v1 = validate._schema_version()
        p = specs / name
        p.write_text(p.read_text() + " ")
        assert validate._schema_version() != v1, name


def test_cache_is_capped_least_recently_used_first(tmp_path, monkeypatch):
    monkeypatch.setattr(validate, "CACHE_MAX", 5)
    cache = tmp_path / "c"
    names = []
    for i in range(5):
        validate.validate_config(f'{{"ociVersion": "1.0.{i}"}}'.encode(), str(cache))
        (new,) = set(entries(cache)) - set(names)
        os.utime(cache / new, ns=(i * 10**9, i * 10**9))  # distinct, increasing ages
        names.append(new)
    # A hit on the oldest marks it recently used...
    validate.validate_config(b'{"ociVersion": "1.0.0"}', str(cache))
    assert (cache / names[0]).stat().st_mtime_ns > 10**18
    # ...so the next insertion evicts the second oldest instead.
    validate.validate_config(b'{"ociVersion": "1.0.9"}', str(cache))
    left = entries(cache)
    assert len(left) == 5
    assert names[0] in left and names[1] not in left


def test_unusable_cache_dir_only_costs_time(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    raw = corpus("valid", "runc-spec.json")
    assert validate.validate_config(raw, str(blocker / "c")) == json.loads(raw)


def _probe(code: str, cache: Path) -> list[str]:
    """Run `code` like the fast launcher does: python -I -S, the repo first, site-packages last."""
    prog = (f"import sys; sys.path[0:0] = [{str(REPO)!r}]; sys.path.append({SITE!r})\n"
            f"from runtime.validate import validate_config\n"
            f"raw = open({str(CORPUS / 'valid' / 'podman-default.json')!r}, 'rb').read()\n"
            f"cache = {str(cache)!r}\n" + code +
            "\nprint(' '.join(m for m in ('jsonschema', 'json', 're', 'enum', 'hashlib')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-I", "-S", "-c", prog], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_jsonschema_imported_only_when_the_quick_check_is_not_sure(tmp_path):
    cache = tmp_path / "c"
    # Miss of a valid config: runtime.quickcheck vouches for it, nothing heavy is imported.
    assert _probe("assert validate_config(raw, cache)['ociVersion']", cache) == []
    assert len(entries(cache)) == 1
    # Hit: nothing heavy is imported at all.
    assert _probe("assert validate_config(raw, cache)['ociVersion']", cache) == []
    # A config the quick check is not sure of (here: invalid) goes to jsonschema.
    assert "jsonschema" in _probe(
        "import runtime.errors as e\ntry:\n validate_config(raw.replace(b'\"uid\":0', "
        "b'\"uid\":\"x\"', 1), cache)\nexcept e.HawserError as x:\n assert 'uid' in str(x)", cache)
    # Malformed JSON fails before any schema work.
    assert _probe("import runtime.errors as e\ntry:\n validate_config(b'{', cache)\n"
                  "except e.HawserError as x:\n assert 'invalid JSON' in str(x)", cache) == []


# ---------------------------------------------------------------- state and features

@pytest.mark.parametrize("doc", [
    {"ociVersion": "1.3.0", "id": "c1", "status": "creating", "bundle": "/b"},
    {"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": 42, "bundle": "/b"},
    {"ociVersion": "1.0.2-dev", "id": "c1", "status": "running", "pid": 42, "bundle": "/b",
     "annotations": {"a": "b"}, "rootfs": "/b/rootfs", "owner": ""},
    {"ociVersion": "1.3.0", "id": "c1", "status": "paused", "pid": 42, "bundle": "/b"},
    {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "pid": 0, "bundle": "/b"},
    {"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "/b"},
])
def test_valid_state(doc):
    assert validate.validate_state(doc) is doc


@pytest.mark.parametrize("doc, msg", [
    ({"ociVersion": "1.3.0", "id": "c1", "status": "exited", "bundle": "/b"},
     "state: status: 'exited' is not one of ['creating', 'created', 'running', 'stopped', "
     "'paused']"),
    ({"ociVersion": "1.3.0", "id": "c1", "status": "running", "bundle": "/b"},
     "state: 'pid' is a required property"),
    ({"ociVersion": "1.3.0", "id": "c1", "status": "created", "pid": -1, "bundle": "/b"},
     "state: pid: -1 is less than the minimum of 0"),
    ({"ociVersion": "1.3.0", "status": "stopped", "bundle": "/b"},
     "state: 'id' is a required property"),
    ({"ociVersion": "1.3.0", "id": "c1", "status": "stopped", "bundle": "b"},
     "state: bundle: 'b' is not an absolute path"),
    ({"ociVersion": "1.3.0", "id": "", "status": "stopped", "bundle": "/b"},
     "state: id: '' should be non-empty"),
])
def test_invalid_state(doc, msg):
    with pytest.raises(HawserError) as exc:
        validate.validate_state(doc)
    assert str(exc.value) == msg


FEATURES_MIN = {"ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0"}
FEATURES_FULL = {
    "ociVersionMin": "1.0.0", "ociVersionMax": "1.3.0",
    "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop"],
    "mountOptions": ["bind", "rbind", "ro", "idmap"],
    "annotations": {"org.opencontainers.runtime.name": "hawser"},
    "potentiallyUnsafeConfigAnnotations": ["run.oci.hawser."],
    "linux": {
        "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts", "time"],
        "capabilities": ["CAP_CHOWN", "CAP_SYS_ADMIN"],
        "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False, "rdma": None},
        "seccomp": {"enabled": True, "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_NOTIFY"],
                    "operators": ["SCMP_CMP_EQ"], "archs": ["SCMP_ARCH_X86_64"],
                    "knownFlags": ["SECCOMP_FILTER_FLAG_LOG"], "supportedFlags": []},
        "apparmor": {"enabled": False}, "selinux": {"enabled": None},
        "intelRdt": {"enabled": False},
        "memoryPolicy": {"modes": ["MPOL_DEFAULT", "MPOL_BIND"], "flags": ["MPOL_F_STATIC_NODES"]},
        "mountExtensions": {"idmap": {"enabled": True}},
        "netDevices": {"enabled": True}}}


@pytest.mark.parametrize("doc", [FEATURES_MIN, FEATURES_FULL])
def test_valid_features(doc):
    assert validate.validate_features(doc) is doc


@pytest.mark.parametrize("patch, msg", [
    ({"ociVersionMax": None}, "features: ociVersionMax: None is not of type 'string'"),
    ({"linux": {"namespaces": ["pid", "mnt"]}},
     "features: linux.namespaces[1]: 'mnt' is not one of ['mount', 'pid', 'network', 'uts', "
     "'ipc', 'user', 'cgroup', 'time']"),
    ({"linux": {"seccomp": {"actions": ["SCMP_ACT_MAYBE"]}}},
     "features: linux.seccomp.actions[0]: 'SCMP_ACT_MAYBE' is not one of ['SCMP_ACT_KILL', "
     "'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', "
     "'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG', 'SCMP_ACT_NOTIFY']"),
    ({"linux": {"cgroup": {"v2": "yes"}}},
     "features: linux.cgroup.v2: 'yes' is not of type 'boolean', 'null'"),
    ({"linux": {"mountExtensions": {"idmap": {"enabled": 1}}}},
     "features: linux.mountExtensions.idmap.enabled: 1 is not of type 'boolean', 'null'"),
    ({"hooks": "prestart"}, "features: hooks: 'prestart' is not of type 'array', 'null'"),
    ({"linux": {"capabilities": ["SYS_ADMIN"]}},
     "features: linux.capabilities[0]: 'SYS_ADMIN' does not match '^CAP_[A-Z_]+$'"),
])
def test_invalid_features(patch, msg):
    with pytest.raises(HawserError) as exc:
        validate.validate_features({**FEATURES_MIN, **patch})
    assert str(exc.value) == msg


def test_features_requires_version_range():
    with pytest.raises(HawserError) as exc:
        validate.validate_features({"ociVersionMin": "1.0.0"})
    assert str(exc.value) == "features: 'ociVersionMax' is a required property"


def test_runc_features_document_is_valid():
    runc = shutil.which("runc")
    if not runc:
        pytest.skip("runc is not installed (Debian package runc)")
    out = subprocess.run([runc, "features"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    validate.validate_features(json.loads(out.stdout))


def test_hawser_features_document_is_valid():
    hawser = Path(os.environ.get("HAWSER_BIN", REPO / ".venv" / "bin" / "hawser"))
    if not hawser.exists():
        pytest.skip(f"{hawser} does not exist yet (`make install` writes it)")
    out = subprocess.run([str(hawser), "features"], capture_output=True, text=True, timeout=30)
    if out.returncode != 0:
        pytest.skip(f"`hawser features` does not work yet (the CLI is being written): {out.stderr}")
    doc = validate.validate_features(json.loads(out.stdout))
    assert doc["ociVersionMax"].startswith("1.")


# ---------------------------------------------------------------- jsonlite vs the stdlib

SAMPLES = [
    None, True, False, 0, -1, 1 << 70, -(1 << 63), 3.5, -0.0, 1e-7, 1e300, 0.1 + 0.2,
    "", "plain", "quote\" backslash\\ slash/", "\x00\x1f\x7f control", "tab\tnl\ncr\r",
    "é ü ß 中文 😀", "\ud800 lone surrogate", [], {}, [[]], [{}], {"": ""},
    {"a": [1, 2, {"b": None}], "c": {"d": [True, False]}, "e": "f"},
    [1, [2, [3, [4, [5, []]]]]], {"z": 1, "a": 2, "m": {"y": [], "b": {}}},
    json.loads((CORPUS / "valid" / "podman-privileged.json").read_text()),
]


@pytest.mark.parametrize("obj", SAMPLES, ids=range(len(SAMPLES)))
def test_jsonlite_matches_stdlib(obj):
    for kw in ({}, {"indent": 2}, {"indent": 4}, {"indent": 0}, {"indent": "\t"},
               {"sort_keys": True}, {"indent": 2, "sort_keys": True}, {"ensure_ascii": False},
               {"indent": 1, "ensure_ascii": False}, {"separators": (",", ":")},
               {"indent": 2, "separators": (",", " = ")}):
        text = jsonlite.dumps(obj, **kw)
        assert text == json.dumps(obj, **kw), kw
        if "separators" in kw and kw["separators"][1] != ":":
            continue  # " = " is not JSON any more
        assert jsonlite.loads(text) == json.loads(text)
        assert jsonlite.loads(text.encode("utf-8", "surrogatepass")) == obj


@pytest.mark.parametrize("text", [
    "0", "-0", "1.5e10", "-2.5E-3", "123456789012345678901234567890", '"\\u00e9\\ud83d\\ude00"',
    '"\\n\\t\\"\\\\\\/\\b\\f\\r"', " \t\n\r[1, 2]\n ", '{"a": 1, "a": 2}',
    "[NaN, Infinity, -Infinity]",
    '{"x": [{"y": {"z": [null, true, false]}}]}', '"' + "x" * 10000 + '"', "[" * 200 + "]" * 200,
])
def test_jsonlite_loads_matches_stdlib(text):
    got, want = jsonlite.loads(text), json.loads(text)
    assert repr(got) == repr(want)  # repr: NaN != NaN, and int vs float must match
    for enc in ("utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32",
                "utf-32-le", "utf-32-be"):
        assert repr(jsonlite.loads(text.encode(enc))) == repr(json.loads(text.encode(enc))), enc


def test_jsonlite_hooks_match_stdlib():
    text = '{"b": 1.5, "a": [2, NaN], "c": {"d": 3}}'
    for kw in ({"object_pairs_hook": list}, {"object_hook": lambda d: sorted(d)},
               {"parse_float": str}, {"parse_int": float},
               {"parse_constant": lambda c: "const:" + c}):
        assert repr(jsonlite.loads(text, **kw)) == repr(json.loads(text, **kw)), kw
    assert jsonlite.loads('"a\tb"', strict=False) == "a\tb"


BAD = ['', ' ', '[1,', '[1 2]', '{"a" 1}', '{"a": 1,}', '{1: 2}', '"abc', '"\\x"', '"\\u12"',
       '"a\tb"', 'nul', 'tru', '[1]  x', '\n\n  [1,\n  ]', '{"a": [1, 2, {"b": }]}', '-',
       '01', '1.', '[1, 2', '{"a": 1', "'single'", '\ufeff[1]', '[1]\n\n\nxyz', '"\ud800"x']


@pytest.mark.parametrize("text", BAD)
def test_jsonlite_errors_match_stdlib(text, monkeypatch):
    with pytest.raises(json.JSONDecodeError) as want:
        json.loads(text)
    # With json loaded (the C scanner raises json's error) and without it (jsonlite's stand-in).
    for loaded in (True, False):
        if not loaded:
            monkeypatch.delitem(sys.modules, "json.decoder")
        with pytest.raises(ValueError) as got:
            jsonlite.loads(text)
        assert type(got.value) is jsonlite.JSONDecodeError
        assert str(got.value) == str(want.value)
        e, w = got.value, want.value
        assert (e.msg, e.pos, e.lineno, e.colno) == (w.msg, w.pos, w.lineno, w.colno)
        if not loaded:  # the stand-in is gone again
            assert "json.decoder" not in sys.modules


def test_jsonlite_dumps_errors_match_stdlib():
    loop = []
    loop.append(loop)
    for kw in ({}, {"indent": 2}):
        for obj, exc in ((loop, ValueError), ({(1, 2): 3}, TypeError), ({1j}, TypeError),
                         (object(), TypeError)):
            with pytest.raises(exc):
                json.dumps(obj, **kw)
            with pytest.raises(exc):
                jsonlite.dumps(obj, **kw)
        with pytest.raises(ValueError):
            jsonlite.dumps([math.nan], allow_nan=False, **kw)
        assert jsonlite.dumps({(1, 2): 3, "a": 1}, skipkeys=True, **kw) == \
            json.dumps({(1, 2): 3, "a": 1}, skipkeys=True, **kw)
        obj = {1: "int", 2.5: "float", True: "t", None: "n"}
        assert jsonlite.dumps(obj, **kw) == json.dumps(obj, **kw)
        assert jsonlite.dumps({"s": {1, 2}}, default=sorted, **kw) == \
            json.dumps({"s": {1, 2}}, default=sorted, **kw)
    with pytest.raises(TypeError):
        jsonlite.loads(None)


def test_jsonlite_imports_nothing_heavy():
    """The reason jsonlite exists: parse, fail and dump without importing json, re or enum."""
    prog = ("import sys; sys.path[0:0] = [%r]\n"
            "from runtime import jsonlite\n"
            "assert jsonlite.loads(b'{\"a\": [1, 2.5, null]}') == {'a': [1, 2.5, None]}\n"
            "try:\n jsonlite.loads('{\"a\":\\n [1,]}')\n"
            "except ValueError as e:\n assert str(e) == "
            "'Expecting value: line 2 column 5 (char 10)', str(e)\n"
            "else:\n raise SystemExit('no error')\n"
            "jsonlite.dumps({'a': [1]}, indent=2); jsonlite.dumps({'a': [1]})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('json', 're', 'enum', 'hashlib', 'typing')))" % str(REPO))
    out = subprocess.run([sys.executable, "-I", "-S", "-c", prog], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_format_error_paths():
    class E:  # the attributes of a jsonschema ValidationError format_error reads
        def __init__(self, path):
            self.absolute_path, self.message, self.validator, self.schema = path, "m", "type", {}
    assert validate.format_error("x", E([])) == "x: m"
    assert validate.format_error("x", E(["mounts", 2, "destination"])) == \
        "x: mounts[2].destination: m"
    assert validate.format_error("x", E(["annotations", "io.k8s/x", 0])) == \
        'x: annotations["io.k8s/x"][0]: m'
    assert validate.format_error("x", E(["a", "", "b[1]"])) == 'x: a[""]["b[1]"]: m'
