"""A container's resource limits (memory_limit in bytes, pids_limit, cpus; 0 = none): checked
when it is created or updated, written into its bundle's config.json as OCI LinuxResources, and
changed on a running task through the shim's Update (containerd's task API: the LinuxResources
JSON in a google.protobuf.Any), as `hawserctl update` asks. The new limits are in the record's
config (inspect shows them) and in the bundle, so a later task of the container keeps them."""
import json
import os

from supervisor.containers import bundle as bundles
from supervisor.containers.resources import FIELDS, check, resources
from supervisor.errors import ApiError
from supervisor.tasks import intent, shims

RESOURCES_TYPE = "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources"


def update(sup, ref: str, values: dict) -> dict:
    """Change the limits given (non-zero) of a container with a running or paused task."""
    try:
        check(values)
    except ValueError as e:
        raise ApiError("INVALID_ARGUMENT", str(e)) from None
    given = {k: v for k, v in values.items() if k in FIELDS and v}
    if not given:
        raise ApiError("INVALID_ARGUMENT", "nothing to update: give memory_limit, pids_limit "
                                           "or cpus")
    cid = sup.resolve(ref)["id"]
    with sup.lock(cid):
        rec = sup.store.get(cid)
        if rec is None or rec["status"] not in ("running", "paused") or cid not in sup.tasks:
            raise ApiError("FAILED_PRECONDITION", f"container {ref} has no running task: "
                                                  f"it is {rec['status'] if rec else 'gone'}")
        old_config, bundle = rec["config"], rec["bundle"]
        intent.begin(bundle, "update", rec)
        old_spec = None
        try:
            old_spec = _write(bundle, dict(old_config, **given))
            rec = sup._set(cid, config=dict(old_config, **given))
            apply(sup, cid)
        except (shims.Error, OSError, ValueError) as e:
            if old_spec is not None:
                _write_spec(bundle, old_spec)
            rec = sup._set(cid, config=old_config)
            raise ApiError("FAILED_PRECONDITION", f"update {rec['name']}: "
                                                  f"{e.args[-1] if e.args else e}") from None
        finally:
            intent.end(bundle)
    sup.hub.publish("/containers/update", cid)
    return rec


def apply(sup, cid: str) -> None:
    """The recorded limits onto the container's live task (its cgroup, through the runtime)."""
    rec = sup.store.get(cid)
    body = json.dumps(resources(rec["config"])).encode()
    any_ = shims.wire.message("google.protobuf.Any")(type_url=RESOURCES_TYPE, value=body)
    sup.tasks[cid].shim.call("Update", id=cid, resources=any_)


def _write(bundle: str, config: dict) -> dict:
    """The limits of config into the bundle's config.json; the spec as it was before."""
    with open(os.path.join(bundle, "config.json")) as f:
        old = json.load(f)
    spec = json.loads(json.dumps(old))
    res = spec.setdefault("linux", {}).setdefault("resources", {})
    for key, value in resources(config).items():
        res.setdefault(key, {}).update(value)
    _write_spec(bundle, spec)
    return old


def _write_spec(bundle: str, spec: dict) -> None:
    bundles.write_bundle(bundle, spec)
