"""The OCI runtime-spec config as typed objects, parsed once from a validated config.json dict.

Plain classes with __slots__ rather than dataclasses: `import dataclasses` costs ~14 ms here, more
than the rest of a `hawser state` call. The schema has already checked types, so parsing only
fills in the spec's defaults.
"""
from runtime.syscall.consts import NAMESPACES


class User:
    __slots__ = ("uid", "gid", "umask", "additional_gids", "username")

    def __init__(self, d: dict):
        self.uid: int = d.get("uid", 0)
        self.gid: int = d.get("gid", 0)
        self.umask: int | None = d.get("umask")
        self.additional_gids: list[int] = list(d.get("additionalGids") or ())
        self.username: str = d.get("username", "")


class Capabilities:
    __slots__ = ("bounding", "effective", "inheritable", "permitted", "ambient")

    def __init__(self, d: dict):
        self.bounding: list[str] = list(d.get("bounding") or ())
        self.effective: list[str] = list(d.get("effective") or ())
        self.inheritable: list[str] = list(d.get("inheritable") or ())
        self.permitted: list[str] = list(d.get("permitted") or ())
        self.ambient: list[str] = list(d.get("ambient") or ())


class Rlimit:
    __slots__ = ("type", "soft", "hard")

    def __init__(self, d: dict):
        self.type: str = d["type"]
        self.soft: int = d["soft"]
        self.hard: int = d["hard"]


class Process:
    __slots__ = ("terminal", "console_size", "user", "args", "env", "cwd", "capabilities",
                 "rlimits", "no_new_privileges", "oom_score_adj", "apparmor_profile",
                 "selinux_label")

    def __init__(self, d: dict):
        self.terminal: bool = d.get("terminal", False)
        cs = d.get("consoleSize")
        self.console_size: tuple[int, int] | None = (cs["height"], cs["width"]) if cs else None
        self.user = User(d.get("user") or {})
        self.args: list[str] = list(d.get("args") or ())
        self.env: list[str] = list(d.get("env") or ())
        self.cwd: str = d.get("cwd", "/")
        caps = d.get("capabilities")
        self.capabilities: Capabilities | None = Capabilities(caps) if caps is not None else None
        self.rlimits: list[Rlimit] = [Rlimit(r) for r in d.get("rlimits") or ()]
        self.no_new_privileges: bool = d.get("noNewPrivileges", False)
        self.oom_score_adj: int | None = d.get("oomScoreAdj")
        self.apparmor_profile: str = d.get("apparmorProfile", "")
        self.selinux_label: str = d.get("selinuxLabel", "")


class Mount:
    __slots__ = ("destination", "type", "source", "options")

    def __init__(self, d: dict):
        self.destination: str = d["destination"]
        self.type: str = d.get("type", "")
        self.source: str = d.get("source", "")
        self.options: list[str] = list(d.get("options") or ())


class Hook:
    __slots__ = ("path", "args", "env", "timeout")

    def __init__(self, d: dict):
        self.path: str = d["path"]
        self.args: list[str] = list(d.get("args") or (d["path"],))
        self.env: list[str] = list(d.get("env") or ())
        self.timeout: int | None = d.get("timeout")


HOOK_KINDS = ("prestart", "createRuntime", "createContainer", "startContainer", "poststart",
              "poststop")


class Namespace:
    __slots__ = ("type", "path", "flag", "proc_name")

    def __init__(self, d: dict):
        self.type: str = d["type"]
        self.path: str = d.get("path", "")
        self.flag, self.proc_name = NAMESPACES[self.type]


class IdMapping:
    __slots__ = ("container_id", "host_id", "size")

    def __init__(self, d: dict):
        self.container_id: int = d["containerID"]
        self.host_id: int = d["hostID"]
        self.size: int = d["size"]


class Device:
    __slots__ = ("type", "path", "major", "minor", "file_mode", "uid", "gid")

    def __init__(self, d: dict):
        self.type: str = d["type"]
        self.path: str = d["path"]
        self.major: int = d.get("major", 0)
        self.minor: int = d.get("minor", 0)
        self.file_mode: int | None = d.get("fileMode")
        self.uid: int | None = d.get("uid")
        self.gid: int | None = d.get("gid")


class Linux:
    __slots__ = ("namespaces", "uid_mappings", "gid_mappings", "time_offsets", "devices",
                 "cgroups_path", "resources", "sysctl", "seccomp", "rootfs_propagation",
                 "masked_paths", "readonly_paths", "mount_label", "personality")

    def __init__(self, d: dict):
        self.namespaces: list[Namespace] = [Namespace(n) for n in d.get("namespaces") or ()]
        self.uid_mappings = [IdMapping(m) for m in d.get("uidMappings") or ()]
        self.gid_mappings = [IdMapping(m) for m in d.get("gidMappings") or ()]
        self.time_offsets: dict = d.get("timeOffsets") or {}
        self.devices: list[Device] = [Device(x) for x in d.get("devices") or ()]
        self.cgroups_path: str | None = d.get("cgroupsPath")
        self.resources: dict = d.get("resources") or {}
        self.sysctl: dict[str, str] = d.get("sysctl") or {}
        self.seccomp: dict | None = d.get("seccomp")
        self.rootfs_propagation: str = d.get("rootfsPropagation", "")
        self.masked_paths: list[str] = list(d.get("maskedPaths") or ())
        self.readonly_paths: list[str] = list(d.get("readonlyPaths") or ())
        self.mount_label: str = d.get("mountLabel", "")
        self.personality: dict | None = d.get("personality")

    def namespace(self, ns_type: str) -> Namespace | None:
        for ns in self.namespaces:
            if ns.type == ns_type:
                return ns
        return None


class Spec:
    __slots__ = ("oci_version", "process", "root_path", "root_readonly", "hostname",
                 "domainname", "mounts", "hooks", "annotations", "linux", "raw")

    def __init__(self, d: dict):
        self.raw = d
        self.oci_version: str = d["ociVersion"]
        self.process: Process | None = Process(d["process"]) if "process" in d else None
        root = d.get("root") or {}
        self.root_path: str = root.get("path", "rootfs")
        self.root_readonly: bool = root.get("readonly", False)
        self.hostname: str | None = d.get("hostname")
        self.domainname: str | None = d.get("domainname")
        self.mounts: list[Mount] = [Mount(m) for m in d.get("mounts") or ()]
        hooks = d.get("hooks") or {}
        self.hooks: dict[str, list[Hook]] = {k: [Hook(h) for h in hooks.get(k) or ()]
                                             for k in HOOK_KINDS}
        self.annotations: dict[str, str] = d.get("annotations") or {}
        self.linux = Linux(d.get("linux") or {})
