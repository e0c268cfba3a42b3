"""Platforms ("linux/amd64", "linux/arm/v7") and the choice of one manifest in an index, the way
containerd's default matcher does it: names are normalized first (aarch64 is arm64, arm64/v8 is
plain arm64, arm alone is arm/v7), then the host's own platform is preferred, then those it can
also run (a lower arm or amd64 variant, 32-bit arm on arm64, 386 on amd64)."""
import platform as _platform
from typing import NamedTuple

KNOWN_OS = frozenset(("aix", "android", "darwin", "dragonfly", "freebsd", "illumos", "ios", "js",
                      "linux", "netbsd", "openbsd", "plan9", "solaris", "windows", "zos"))
# platform.machine() -> (architecture, variant)
MACHINES = {"x86_64": ("amd64", ""), "amd64": ("amd64", ""), "i386": ("386", ""),
            "i686": ("386", ""), "aarch64": ("arm64", ""), "arm64": ("arm64", ""),
            "armv8l": ("arm", "v8"), "armv7l": ("arm", "v7"), "armv6l": ("arm", "v6"),
            "armv5tel": ("arm", "v5"), "ppc64le": ("ppc64le", ""), "s390x": ("s390x", ""),
            "riscv64": ("riscv64", ""), "mips64": ("mips64", ""), "loongarch64": ("loong64", "")}


class PlatformError(ValueError):
    pass


class Platform(NamedTuple):
    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        return "/".join(p for p in (self.os, self.architecture, self.variant) if p)


def normalize(os_name: str, arch: str, variant: str = "") -> Platform:
    os_name, arch, variant = os_name.lower(), arch.lower(), (variant or "").lower()
    if os_name == "macos":
        os_name = "darwin"
    if arch in ("i386", "i686"):
        arch, variant = "386", ""
    elif arch in ("x86_64", "x86-64", "amd64"):
        arch = "amd64"
        variant = "" if variant == "v1" else variant
    elif arch in ("aarch64", "arm64"):
        arch = "arm64"
        variant = {"8": "", "v8": "", "v8.0": "", "9": "v9", "9.0": "v9", "v9.0": "v9"}.get(
            variant, variant)
    elif arch == "armhf":
        arch, variant = "arm", "v7"
    elif arch == "armel":
        arch, variant = "arm", "v6"
    elif arch == "arm":
        variant = {"": "v7", "7": "v7", "5": "v5", "6": "v6", "8": "v8"}.get(variant, variant)
    return Platform(os_name, arch, variant)


def host_platform() -> str:
    arch, variant = MACHINES.get(_platform.machine(), (_platform.machine().lower(), ""))
    return str(normalize("linux", arch, variant))


def parse_platform(text: str | None) -> Platform:
    """containerd's specifiers: "os/arch[/variant]", or an os alone or an arch alone (the other
    part is the host's). None or "" is the host's platform."""
    if not text:
        return parse_platform(host_platform())
    parts = text.split("/")
    if any(not p or not all(c.isalnum() or c in "._-" for c in p) for p in parts) \
            or len(parts) > 3:
        raise PlatformError(f"invalid platform {text!r}: want os/architecture[/variant], "
                            "e.g. linux/amd64 or linux/arm/v7")
    host = _platform_from(host_platform())
    if len(parts) == 1:
        if parts[0].lower() in KNOWN_OS:
            return normalize(parts[0], host.architecture,
                             host.variant if parts[0].lower() == host.os else "")
        return normalize("linux", parts[0])
    return normalize(*parts)


def _platform_from(text: str) -> Platform:
    os_name, arch, *variant = text.split("/")
    return Platform(os_name, arch, variant[0] if variant else "")


def candidates(wanted: Platform) -> list[Platform]:
    """What a host of `wanted` runs, best first (containerd's platformVector)."""
    out = [wanted]
    os_name, arch, variant = wanted
    number = variant[1:] if variant.startswith("v") and variant[1:].isdigit() else ""
    if arch == "amd64":
        for v in range(int(number or 1) - 1, 0, -1):
            out.append(Platform(os_name, arch, "" if v == 1 else f"v{v}"))
        out += candidates(Platform(os_name, "386"))
    elif arch == "arm" and number:
        out += [Platform(os_name, arch, f"v{v}") for v in range(int(number) - 1, 4, -1)]
    elif arch == "arm64":
        out += candidates(Platform(os_name, "arm", "v8"))
    return out


def of_descriptor(desc: dict) -> Platform | None:
    p = desc.get("platform")
    if not isinstance(p, dict) or not p.get("os") or not p.get("architecture"):
        return None
    return normalize(str(p["os"]), str(p["architecture"]), str(p.get("variant") or ""))


def select_platform(index: dict, platform: str | None = None, name: str = "") -> dict:
    """The descriptor (the index's own entry: mediaType, digest, size, platform) of the manifest
    for `platform` (the host's when None). An entry without a platform is taken only when no
    entry names a matching one (its config tells; the caller checks). PlatformError names the
    platform wanted and those present."""
    wanted = parse_platform(platform)
    entries = index.get("manifests")
    if not isinstance(entries, list):
        raise PlatformError(f"{name or 'index'}: no manifests list")
    order = {p: i for i, p in reversed(list(enumerate(candidates(wanted))))}
    best, best_rank, unnamed = None, len(order), None
    for desc in entries:
        if not isinstance(desc, dict):
            continue
        p = of_descriptor(desc)
        if p is None:
            unnamed = unnamed or desc
        elif order.get(p, best_rank) < best_rank:
            best, best_rank = desc, order[p]
    if best is not None or unnamed is not None:
        return best if best is not None else unnamed
    present = []
    for desc in entries:
        p = of_descriptor(desc) if isinstance(desc, dict) else None
        # attestation manifests (buildx) say unknown/unknown: not a platform anyone can pull
        if p is not None and p.os != "unknown" and str(p) not in present:
            present.append(str(p))
    raise PlatformError(f"no manifest for {wanted} in {name or 'the index'}; "
                        f"it has {', '.join(present) or 'no platform at all'}")


def matches(wanted: str | None, os_name: str, arch: str, variant: str = "") -> bool:
    """Whether an image of (os, arch, variant) runs where `wanted` is asked for."""
    return normalize(os_name, arch, variant) in candidates(parse_platform(wanted))
