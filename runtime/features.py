"""`hawser features`: what this runtime recognises (runtime-spec features.md), not what the host
has. Listed from the same tables the runtime uses, so it cannot claim more than is implemented."""
from runtime import OCI_VERSION, VERSION, jsonlite
from runtime.spec import HOOK_KINDS
from runtime.init.mounts import FLAGS, PROPAGATION, RECURSIVE
from runtime.syscall.consts import CAPABILITIES, NAMESPACES


def features() -> dict:
    return {
        "ociVersionMin": "1.0.0",
        "ociVersionMax": OCI_VERSION,
        "hooks": list(HOOK_KINDS),
        "mountOptions": sorted(set(FLAGS) | set(PROPAGATION) | set(RECURSIVE)),
        "linux": {
            "namespaces": list(NAMESPACES),
            "capabilities": list(CAPABILITIES),
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False,
                       "rdma": False},
            "seccomp": seccomp_features(),
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
        },
        "annotations": {"run.hawser.version": VERSION},
    }


def seccomp_features() -> dict:
    try:
        from runtime import seccomp
    except ImportError:
        return {"enabled": False}
    return seccomp.features()


def features_json() -> str:
    return jsonlite.dumps(features(), indent="    ")
