"""Differential test: hawser's v1.3 schemas against the official runtime-spec schemas shipped by
Debian (golang-github-opencontainers-specs-dev, a v1.0.2+118-commits snapshot, draft-04).

Every corpus config must get the same verdict from both, except the cases listed below with the
reason; for those the divergence itself is asserted, so a change on either side shows up."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from jsonschema import Draft4Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from runtime import validate
from runtime.errors import HawserError

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "schema_corpus"
OFFICIAL = Path("/usr/share/gocode/src/github.com/opencontainers/runtime-spec/schema")
HAWSER = Path(os.environ.get("HAWSER_BIN", REPO / ".venv" / "bin" / "hawser"))

# Fields added after the official snapshot. It has no additionalProperties: false, so it accepts
# anything inside them unchecked (invalid/), or its older enums reject the new values (valid/).
NEWER_THAN_OFFICIAL = {
    "valid/v1.2-time-namespace.json": "the time namespace (v1.2) is not in its NamespaceType",
    "invalid/timeOffsets-bad-clock.json": "linux.timeOffsets added in v1.2",
    "invalid/timeOffsets-negative-nanosecs.json": "linux.timeOffsets added in v1.2",
    "invalid/ioPriority-bad-class.json": "process.ioPriority added in v1.2",
    "invalid/scheduler-missing-policy.json": "process.scheduler added in v1.2",
    "invalid/scheduler-bad-flag.json": "process.scheduler added in v1.2",
    "invalid/execCPUAffinity-bad.json": "process.execCPUAffinity added in v1.2.1",
    "invalid/netDevices-name-not-string.json": "linux.netDevices added in v1.3",
    "invalid/memoryPolicy-missing-mode.json": "linux.memoryPolicy added in v1.3",
    "invalid/memoryPolicy-bad-flag.json": "linux.memoryPolicy added in v1.3",
    "invalid/intelRdt-schemata-not-array.json": "linux.intelRdt.schemata added in v1.3",
}
# Rules the spec states in prose that hawser's schemas encode and the official ones do not.
STRICTER_THAN_OFFICIAL = {
    "invalid/ociVersion-2.json": "ociVersion is any string there; hawser implements 1.x",
    "invalid/ociVersion-not-semver.json": "ociVersion MUST be SemVer 2.0.0",
    "invalid/cwd-relative.json": "process.cwd MUST be an absolute path",
    "invalid/hook-relative-path.json": "a hook's path MUST be absolute",
    "invalid/maskedPaths-relative.json": "maskedPaths MUST be absolute paths",
    "invalid/args-empty.json": "process.args needs at least one entry on POSIX",
    "invalid/user-missing-uid.json": "process.user.uid and gid are REQUIRED",
    "invalid/capability-without-prefix.json": "capability names are those of capabilities(7)",
    "invalid/device-char-without-major.json": "major/minor are REQUIRED unless type is p",
    "invalid/annotation-empty-key.json": "annotation keys MUST NOT be empty",
    "invalid/namespace-duplicate.json": "a namespace type listed twice MUST be an error",
    "invalid/device-cgroup-bad-type.json": "device cgroup type is a, b or c",
    "invalid/device-cgroup-bad-access.json": "device cgroup access is made of r, w, m",
    "invalid/blockio-throttle-missing-rate.json": "a throttle's rate is REQUIRED",
    "invalid/personality-missing-domain.json": "personality.domain is REQUIRED",
}
# Real configs the official snapshot rejects: (its error path, reason).
OFFICIAL_TOO_STRICT = {
    "valid/podman-privileged.json": ("linux.devices[0].fileMode", "its FileMode maximum is 512; "
                                     "the spec says uint32 and podman sets the S_IFCHR bits"),
    "valid/podman-tmpfs-shm.json": ("linux.devices[0].fileMode", "same FileMode maximum 512"),
    "valid/cri-rootfs-propagation-rslave.json": (
        "linux.rootfsPropagation", "its enum lacks rslave/rshared/..., which runc and crun "
                                   "accept and containerd's CRI sets"),
}
DIVERGENT = {**NEWER_THAN_OFFICIAL, **STRICTER_THAN_OFFICIAL, **OFFICIAL_TOO_STRICT}

CASES = sorted(f"{kind}/{p.name}" for kind in ("valid", "invalid")
               for p in (CORPUS / kind).glob("*.json"))


@pytest.fixture(scope="module")
def official():
    """The official draft-04 schema; its $refs name sibling files ("defs.json#/definitions/...")."""
    if not (OFFICIAL / "config-schema.json").exists():
        pytest.fail(f"{OFFICIAL} is missing: apt-get install golang-github-opencontainers-specs-dev"
                    " (make install does)")

    def retrieve(uri: str) -> Resource:
        return Resource.from_contents(json.loads((OFFICIAL / uri).read_text()),
                                      default_specification=DRAFT4)

    schema = json.loads((OFFICIAL / "config-schema.json").read_text())
    return Draft4Validator(schema, registry=Registry(retrieve=retrieve))


def ours_ok(raw: bytes) -> bool:
    try:
        validate.validate_config(raw, None)
        return True
    except HawserError:
        return False


def dotted(path) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def test_divergence_lists_name_real_cases():
    assert set(DIVERGENT) <= set(CASES), set(DIVERGENT) - set(CASES)
    assert len(NEWER_THAN_OFFICIAL) + len(STRICTER_THAN_OFFICIAL) + len(OFFICIAL_TOO_STRICT) \
        == len(DIVERGENT)
    # The divergence runs one way per directory: hawser rejects invalid/ ones the official
    # schema accepts, and accepts valid/ ones it rejects.
    assert all(k.startswith("invalid/") for k in STRICTER_THAN_OFFICIAL)
    assert all(k.startswith("valid/") for k in OFFICIAL_TOO_STRICT)


@pytest.mark.parametrize("case", CASES)
def test_same_verdict_as_official(case, official):
    raw = (CORPUS / case).read_bytes()
    ours = ours_ok(raw)
    assert ours == case.startswith("valid/"), f"hawser's schema misjudges {case}"
    errors = list(official.iter_errors(json.loads(raw)))
    theirs = not errors
    if case not in DIVERGENT:
        assert theirs == ours, [e.message for e in errors]
        return
    assert theirs != ours, f"{case} no longer diverges ({DIVERGENT[case]}): update the list"
    if case in OFFICIAL_TOO_STRICT:
        assert OFFICIAL_TOO_STRICT[case][0] in [dotted(e.absolute_path) for e in errors]


def _generated(cmd: list[str], tmp_path: Path) -> bytes:
    exe = shutil.which(cmd[0]) if not os.path.isabs(cmd[0]) else cmd[0]
    if not exe or not os.access(exe, os.X_OK):
        pytest.skip(f"{cmd[0]} is not installed")
    out = subprocess.run([exe, *cmd[1:]], cwd=tmp_path, capture_output=True, text=True,
                         timeout=60)
    if cmd[0] == str(HAWSER) and out.returncode != 0:
        pytest.skip(f"`hawser spec` does not work yet (the CLI is being written): {out.stderr}")
    assert out.returncode == 0, out.stderr
    return (tmp_path / "config.json").read_bytes()


@pytest.mark.parametrize("cmd", [["runc", "spec"], ["runc", "spec", "--rootless"],
                                 ["crun", "spec"], ["crun", "spec", "--rootless"],
                                 [str(HAWSER), "spec"]],
                         ids=["runc", "runc-rootless", "crun", "crun-rootless", "hawser"])
def test_generated_spec_accepted_by_both(cmd, tmp_path, official):
    """Specs generated now by the installed runtimes (and hawser itself, once its CLI exists)."""
    if cmd[0] == str(HAWSER) and not HAWSER.exists():
        pytest.skip(f"{HAWSER} does not exist yet (`make install` writes it)")
    raw = _generated(cmd, tmp_path)
    validate.validate_config(raw, None)  # raises HawserError naming the rule
    assert [e.message for e in official.iter_errors(json.loads(raw))] == []
