"""What a container has besides its root filesystem and process: its volumes and mounts, its
network namespace and endpoints (docker's sandbox). The Supervisor calls in at each step:

- prepare() at container create: volumes made (an image's VOLUMEs anonymous ones), the OCI
  mounts, the network plan (addresses, host ports) and the /etc files, the netns mode;
- before_create() before the runtime's create: volumes seeded from the image's content
  (docker copies only into an empty volume), container: mode gets the other's netns path;
- after_create() between the runtime's create and start: the namespace's networking set up;
- stopped() at the task's end: its published ports go;
- removed() at container removal: its addresses, and its anonymous volumes when asked.
Each undoes its own part when it fails."""
import json
import os
import socket

from supervisor.errors import ApiError
from supervisor.volumes import mounts as vmounts

NETNS = "network"
NOCOPY = "nocopy"


def network_mode(config: dict, from_image: bool) -> str:
    """docker's default is the bridge network; a container from a bare rootfs directory keeps
    the runtime's own namespace with nothing in it (hawserd's API before networks), unless
    it asks for a mode."""
    return config.get("network_mode") or ("bridge" if from_image else "")


def _volume_mounts(sup, config: dict) -> list[dict]:
    """The config's mounts, an anonymous volume for each image VOLUME no mount covers; the
    volumes of type volume made (anonymous ones named), in place."""
    mounts = [dict(m) for m in config.get("mounts") or ()]
    covered = {os.path.normpath(m["destination"]) for m in mounts}
    for path in config.get("volumes") or ():
        if os.path.normpath(path) not in covered:
            mounts.append({"type": "volume", "source": "", "destination": path,
                           "read_only": False, "options": []})
    for m in mounts:
        if m.get("type") == "volume":
            m["source"] = sup.volumes.create(m.get("source") or "")["name"]
        elif (m.get("type") or "bind") == "bind" and \
                not set(m.get("options") or ()) & set(vmounts.PROPAGATIONS):
            m["propagation"] = vmounts.daemon_propagation(m.get("source") or "/",
                                                          (sup.root, sup.state))
    return mounts


def prepare(sup, cid: str, name: str, config: dict, spec: dict, bundle: str,
            from_image: bool) -> None:
    """config (updated in place: named volumes, network mode, published ports) and spec."""
    # the volumes there before this call (a failure removes only those it made); no volume
    # asked for, no listing of every volume on the create path
    wants = config.get("volumes") or any(m.get("type") == "volume"
                                         for m in config.get("mounts") or ())
    existing = {v["name"] for v in sup.volumes.list()} if wants else set()
    try:
        config["mounts"] = _volume_mounts(sup, config)
        spec["mounts"] += vmounts.oci_mounts(config["mounts"], sup.volumes.path)
        propagation = vmounts.rootfs_propagation(spec["mounts"])
        if propagation:
            spec["linux"]["rootfsPropagation"] = propagation
        mode = network_mode(config, from_image)
        config["network_mode"] = mode
        if not mode:
            return
        if mode == "host":
            spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"]
                                           if n["type"] != NETNS]
            if not config.get("hostname"):
                spec["hostname"] = socket.gethostname()
        elif mode.startswith("container:"):
            other = sup.resolve(mode.partition(":")[2])
            if other["id"] == cid:
                raise ApiError("INVALID_ARGUMENT", "cannot join own network")
            config["network_mode"] = mode = "container:" + other["id"]
        plan = sup.networks.plan(cid, name, config, bundle, sup.resolve)
        config["published"] = plan["published"]
        spec["mounts"] += sup.networks.write_etc(bundle, spec["hostname"], config, plan,
                                                 sup.resolve)
    except BaseException:
        if sup.networking({"config": config}):
            sup.networks.release(cid)
        for m in config.get("mounts") or ():     # only what this call made
            if m.get("type") == "volume" and m["source"] not in existing:
                _drop_volume(sup, m["source"])
        raise


def before_create(sup, rec: dict) -> None:
    seed_volumes(sup, rec)
    join_network_of(sup, rec)


def seed_volumes(sup, rec: dict) -> None:
    """The image's content at each volume's mount point copied into the volume while it is
    empty, as docker does, before the runtime makes its mount points in the volume (/etc's
    hosts file, a nested mount's directory): the container's root filesystem seen on its own,
    mounted for the copy when no task has it mounted."""
    from supervisor.containers.copying import root_of
    wanted = [m for m in rec["config"].get("mounts") or ()
              if m.get("type") == "volume" and NOCOPY not in (m.get("options") or ())
              and not os.listdir(sup.volumes.path(m["source"]))]
    if not wanted:
        return
    with root_of(sup, rec) as root:
        for m in wanted:
            try:
                sup.volumes.seed(m["source"], m["destination"], root=root)
            except OSError as e:
                raise ApiError("FAILED_PRECONDITION", f"copying the image's {m['destination']} "
                                                      f"into volume {m['source']}: {e}") from None


def join_network_of(sup, rec: dict) -> None:
    """container: mode: the other container's network namespace in config.json."""
    mode = rec["config"].get("network_mode") or ""
    if not mode.startswith("container:"):
        return
    other = sup.store.get(mode.partition(":")[2])
    if other is None:
        raise ApiError("FAILED_PRECONDITION", f"{rec['name']}: the container whose network it "
                                              f"joins ({mode[10:22]}) is gone")
    if other["status"] not in ("running", "paused") or not other["pid"]:
        raise ApiError("FAILED_PRECONDITION", f"cannot join network of a non running container: "
                                              f"{other['name']}")
    path = os.path.join(rec["bundle"], "config.json")
    with open(path) as f:
        spec = json.load(f)
    spec["linux"]["namespaces"] = [n for n in spec["linux"]["namespaces"] if n["type"] != NETNS]
    spec["linux"]["namespaces"].append({"type": NETNS, "path": f"/proc/{other['pid']}/ns/net"})
    with open(path + ".tmp", "w") as f:
        json.dump(spec, f, indent=1)
    os.rename(path + ".tmp", path)


def after_create(sup, rec: dict, pid: int) -> None:
    """The namespace's networking, once the runtime has made it."""
    config = rec["config"]
    if config.get("network_mode"):
        sup.networks.setup(rec["id"], pid, config, config.get("published") or [])


def stopped(sup, rec: dict) -> None:
    if sup.networking(rec):
        sup.networks.teardown(rec["id"])


def removed(sup, rec: dict, volumes: bool) -> None:
    if sup.networking(rec):
        sup.networks.release(rec["id"])
    if not volumes:
        return
    for m in rec["config"].get("mounts") or ():
        if m.get("type") == "volume":
            vol = _get_volume(sup, m["source"])
            if vol is not None and vol.get("anonymous"):
                _drop_volume(sup, m["source"], but=rec["id"])


def volume_users(sup) -> dict[str, list[tuple[str, bool]]]:
    """{volume name: [(container id, whether its task runs)]} of every container."""
    out: dict[str, list[tuple[str, bool]]] = {}
    for rec in sup.store.all():
        for m in rec["config"].get("mounts") or ():
            if m.get("type") == "volume":
                out.setdefault(m["source"], []).append(
                    (rec["id"], rec["status"] in ("running", "paused")))
    return out


def _get_volume(sup, name: str) -> dict | None:
    try:
        return sup.volumes.get(name)
    except ApiError:
        return None


def _drop_volume(sup, name: str, but: str = "") -> None:
    users = {cid for cid, _ in volume_users(sup).get(name, []) if cid != but}
    try:
        sup.volumes.delete(name, sorted(users))
    except ApiError:
        pass
