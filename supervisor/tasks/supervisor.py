"""The supervisor's model: containers (records in the store, bundles under --state) and their
tasks (one shim each). Errors are ApiError with a gRPC status code name (supervisor/grpcutil.py)."""
import json
import logging
import os
import re
import secrets
import shutil
import signal
import threading
import time

from supervisor import procs
from supervisor.containers import bundle as bundles
from supervisor.containers import resources
from supervisor.containers.labels import AUTOREMOVE
from supervisor.containers.store import NameTaken, Store
from supervisor.errors import ApiError
from supervisor.events.hub import Hub
from supervisor.images import config as imgconfig
from supervisor.images.manager import ImageManager
from supervisor.volumes.manager import VolumeManager
from supervisor.tasks import intent, logs, recovery, sandbox, shims
from supervisor.tasks.task import Task

NAME_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$")
logger = logging.getLogger("hawserd")


def parse_restart_policy(policy: str) -> tuple[str, int]:
    """no | on-failure[:N] | always | unless-stopped -> (name, max retries; 0 = unlimited)."""
    name, _, count = (policy or "no").partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped") or \
            (count and (name != "on-failure" or not count.isdigit())):
        raise ValueError(f"invalid restart policy {policy!r}: use no, on-failure[:N], always or "
                         "unless-stopped")
    return name, int(count or 0)


def signal_name(sig: str) -> str:
    """"TERM", "SIGTERM", "15" -> "SIGTERM" ("" stays "": the default, SIGTERM)."""
    if not sig:
        return ""
    try:
        if sig.isdigit():
            return signal.Signals(int(sig)).name
        name = sig.upper() if sig.upper().startswith("SIG") else "SIG" + sig.upper()
        return signal.Signals[name].name
    except (ValueError, KeyError):
        raise ValueError(f"invalid stop signal {sig!r}") from None


class Supervisor:
    def __init__(self, root: str, state: str, address: str, runtime: str, hub: Hub,
                 events_address: str, bridge: str = "hawser0", nft_table: str = "hawser"):
        self.root, self.state, self.default_runtime = root, state, runtime
        self.store = Store(os.path.join(root, "meta.db"))
        self.images = ImageManager(root, os.path.join(root, "meta.db"), self.image_roots)
        # the network manager (pyroute2 and the rest: ~11 MiB) is made when a container or a
        # call first needs networking: a hawserd whose containers have none never imports it
        self._networks = None
        self._network_args = (bridge, nft_table)
        self._networks_lock = threading.Lock()
        self.volumes = VolumeManager(root, os.path.join(root, "meta.db"))
        self.hub = hub
        self.flags = shims.ShimFlags(address, events_address)
        self.runtime_root = os.path.join(state, "runtime")
        self.tasks: dict[str, Task] = {}
        self.locks: dict[str, threading.RLock] = {}
        self.glock = threading.Lock()
        self.changed = threading.Condition()

    # -- helpers -------------------------------------------------------------------------------
    @property
    def networks(self):
        if self._networks is None:
            with self._networks_lock:
                if self._networks is None:
                    from supervisor.networks.manager import NetworkManager
                    self._networks = NetworkManager(os.path.join(self.root, "meta.db"),
                                                    self._task_runs, *self._network_args)
        return self._networks

    def networking(self, rec: dict | None) -> bool:
        """Whether the container's end needs the network manager: it has a network mode, or the
        manager is there anyway (nothing of a container without a mode is in it otherwise)."""
        return self._networks is not None or \
            bool(rec and (rec["config"].get("network_mode") or rec["config"].get("published")))

    def _networks_used(self) -> bool:
        """Whether anything of the networks' is on record: a container with a network mode, or
        a network in the store (made by a call, or the default bridge made on first use)."""
        if any(self.networking(r) for r in self.store.all()):
            return True
        import sqlite3
        try:
            db = sqlite3.connect(f"file:{os.path.join(self.root, 'meta.db')}?mode=ro", uri=True)
            try:
                return db.execute("SELECT 1 FROM networks LIMIT 1").fetchone() is not None
            finally:
                db.close()
        except sqlite3.Error:    # no table yet: networks were never used
            return False

    def lock(self, cid: str) -> threading.RLock:
        with self.glock:
            return self.locks.setdefault(cid, threading.RLock())

    def resolve(self, ref: str) -> dict:
        found = self.store.find(ref)
        if not found:
            raise ApiError("NOT_FOUND", f"no such container: {ref}")
        if len(found) > 1:
            raise ApiError("INVALID_ARGUMENT", f"{ref!r} matches {len(found)} containers: "
                                               "give more of the id")
        return found[0]

    def bundle_dir(self, cid: str) -> str:
        return os.path.join(self.state, "bundles", cid)

    def log_path(self, cid: str) -> str:
        return os.path.join(self.root, "containers", cid, f"{cid}-json.log")

    def output(self, rec: dict) -> tuple[logs.JsonLog, logs.Collector]:
        """The container's json log and a collector reading its task's output FIFOs into it."""
        log = logs.JsonLog(self.log_path(rec["id"]))
        return log, logs.Collector(rec["bundle"], log, bool(rec["config"].get("terminal")))

    def _task_runs(self, cid: str) -> bool:
        rec = self.store.get(cid)
        return rec is not None and rec["status"] in ("running", "paused")

    def image_roots(self) -> list[tuple[str, str]]:
        """What the containers keep of images: (manifest digest, writable snapshot) each."""
        return [(r["image_target"], r["snapshot"]) for r in self.store.all()]

    def drop_rootfs(self, rec: dict) -> None:
        """A removed container's writable snapshot, and its image's content when no name or
        container keeps it any more (an image removed with force while it was in use)."""
        if not rec.get("snapshot"):
            return
        try:
            self.images.remove_rootfs(rec["snapshot"])
        except Exception as e:
            logger.warning("snapshot of %s stays: %s", rec["id"][:12], e)
        if not self.images.named(rec["image_target"]):
            self.images.collect()

    def _set(self, cid: str, **changes) -> dict:
        rec = self.store.update(cid, **changes)
        with self.changed:
            self.changed.notify_all()
        return rec

    # -- containers ----------------------------------------------------------------------------
    def create_container(self, cid: str, name: str, config: dict, rootfs: str, runtime: str,
                         labels: dict, image: str = "") -> dict:
        """A container record and its bundle, from a root filesystem directory or an image (its
        config merged into the container's, a writable snapshot on its layers)."""
        cid = cid or secrets.token_hex(32)
        name = name or cid[:12]
        if not NAME_RE.match(name) or not NAME_RE.match(cid):
            raise ApiError("INVALID_ARGUMENT", f"invalid name or id {name!r}: use letters, "
                                               "digits, '_', '.', '-'")
        if image and rootfs:
            raise ApiError("INVALID_ARGUMENT", "give an image or a rootfs, not both")
        if not image:
            if not rootfs or not os.path.isabs(rootfs):
                raise ApiError("INVALID_ARGUMENT", f"rootfs {rootfs!r} must be an absolute path")
            if not os.path.isdir(rootfs):
                raise ApiError("INVALID_ARGUMENT", f"rootfs {rootfs}: no such directory")
        runtime = runtime or self.default_runtime
        try:
            shims.runtime_binary(runtime)
        except FileNotFoundError as e:
            raise ApiError("FAILED_PRECONDITION", str(e)) from None
        config, extra = dict(config), {}
        read = None
        if image:
            img = self.images.find(image)
            res = self.images.resolve(img["target"])
            try:
                config = imgconfig.merge(res.config, config)
            except imgconfig.ConfigError as e:
                raise ApiError("INVALID_ARGUMENT", str(e)) from None
            labels = imgconfig.merge_labels(res.config, labels)
            extra = {"image": img["name"] if not img["name"].startswith("sha256:")
                     else res.config_digest, "image_id": res.config_digest,
                     "image_target": res.manifest_digest, "snapshot": cid}
            read = self.images.reader(res)
        try:
            resources.check(config)
            parse_restart_policy(config.get("restart_policy") or "")
            config["stop_signal"] = signal_name(config.get("stop_signal") or "")
        except ValueError as e:
            raise ApiError("INVALID_ARGUMENT", str(e)) from None
        path = self.bundle_dir(cid)
        try:
            spec = bundles.make_spec(cid, config, os.path.join(path, "rootfs") if image
                                     else rootfs, read=read)
        except bundles.BadConfig as e:
            raise ApiError("INVALID_ARGUMENT", str(e)) from None
        if self.store.find(name) and self.store.find(name)[0]["name"] == name:
            raise ApiError("ALREADY_EXISTS", f"the name {name!r} is in use by container "
                                             f"{self.store.find(name)[0]['id']}")
        try:
            # the record first: it keeps the snapshot made next (GC's root), and a crash before
            # the snapshot exists leaves a record whose task makes it (ensure_rootfs)
            rec = self.store.add({"id": cid, "name": name, "config": config, "rootfs": rootfs,
                                  "runtime": runtime, "labels": labels, "bundle": path,
                                  "status": "created", **extra})
        except NameTaken:
            raise ApiError("ALREADY_EXISTS", f"a container named {name!r} or with id {cid} "
                                             "already exists") from None
        try:
            self.ensure_rootfs(rec)
            sandbox.prepare(self, cid, name, config, spec, path, bool(image))
            rec = self.store.update(cid, config=config)
            bundles.write_bundle(path, spec)
        except BaseException:
            self.store.remove(cid)
            self.drop_rootfs(rec)
            bundles.remove_bundle(path)
            raise
        self.hub.publish("/containers/create", cid)
        return rec

    def ensure_rootfs(self, rec: dict) -> list:
        """The mounts of the container's root filesystem for its shim ([] for a rootfs dir)."""
        if not rec["snapshot"]:
            return []
        try:
            self.images.rootfs(rec["snapshot"], rec["image_target"])
            return self.images.snapshots.mounts(rec["snapshot"])
        except ApiError:
            raise
        except Exception as e:
            raise ApiError("FAILED_PRECONDITION", f"root filesystem of {rec['name']}: {e}") \
                from None

    def update_labels(self, ref: str, set_: dict, remove: list) -> dict:
        rec = self.resolve(ref)
        labels = {k: v for k, v in {**rec["labels"], **set_}.items() if k not in remove}
        rec = self._set(rec["id"], labels=labels)
        self.hub.publish("/containers/update", rec["id"])
        return rec

    def delete_container(self, ref: str, force: bool, volumes: bool = False) -> None:
        """volumes: its anonymous volumes too (docker's rm -v; --rm does it)."""
        rec = self.resolve(ref)
        cid = rec["id"]
        with self.lock(cid):
            rec = self.store.get(cid)
            if rec is None:
                return
            if rec["status"] in ("running", "paused") and not force:
                raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is {rec['status']}:"
                                                      " stop it first, or remove it with force")
            self.store.update(cid, stop_requested=1)
            if os.path.isdir(rec["bundle"]):    # a crash from here on: recovery completes it
                intent.begin(rec["bundle"], "remove", rec)
            if rec["shim_address"]:
                self.delete_task(cid, force=True)
            sandbox.removed(self, rec, volumes)
            self.store.remove(cid)
            self.drop_rootfs(rec)
            bundles.remove_bundle(self.bundle_dir(cid))
            shutil.rmtree(os.path.dirname(self.log_path(cid)), ignore_errors=True)
        with self.glock:
            self.locks.pop(cid, None)
        self.hub.publish("/containers/delete", cid)

    # -- tasks ---------------------------------------------------------------------------------
    def create_task(self, ref: str) -> dict:
        rec = self.resolve(ref)
        cid = rec["id"]
        with self.lock(cid):
            rec = self.store.get(cid)
            if rec["status"] in ("running", "paused"):
                raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is already "
                                                      f"{rec['status']}")
            if rec["shim_address"]:
                old_shim = rec["shim_pid"]
                self.delete_task(cid, force=True)
                # the new shim must not find the old one's socket still there (its `start`
                # would hand out that address, which goes away with the old shim)
                procs.wait_gone(old_shim, 5.0)
            if not rec["snapshot"] and not os.path.isdir(rec["rootfs"]):
                raise ApiError("FAILED_PRECONDITION", f"rootfs {rec['rootfs']}: no such directory")
            mounts = self.ensure_rootfs(rec)
            try:
                binary = shims.runtime_binary(rec["runtime"])
            except FileNotFoundError as e:
                raise ApiError("FAILED_PRECONDITION", str(e)) from None
            path, terminal = rec["bundle"], bool(rec["config"].get("terminal"))
            stdin, stdout, stderr = logs.make_fifos(path, bool(rec["config"].get("open_stdin")))
            log, collector = self.output(rec)
            shim = None
            try:
                # before the shim exists: a crash from here on is rolled back by recovery
                intent.begin(path, "task", rec)
                self._set(cid, shim_address=shims.shim_address(self.flags, cid), shim_pid=0)
                shim = shims.start_shim(self.flags, cid, path)
                shim_pid = shim.call("Connect", id=cid).shim_pid
                self._set(cid, shim_address=shim.address, shim_pid=shim_pid)
                sandbox.before_create(self, rec)
                pid = shim.create(path, stdin, stdout, stderr, terminal, binary,
                                  self.runtime_root, mounts)
                sandbox.after_create(self, rec, pid)
            except (shims.Error, RuntimeError, OSError, ApiError) as e:
                collector.abort()
                sandbox.stopped(self, rec)
                if shim is not None:
                    self._kill_created(shim, cid)
                    self._shutdown_shim(shim)
                log.close()
                self._set(cid, shim_address="", shim_pid=0)
                intent.end(path)
                if isinstance(e, ApiError):
                    raise
                raise ApiError("FAILED_PRECONDITION", f"cannot create the task of "
                                                      f"{rec['name']}: {e}") from None
            self.tasks[cid] = Task(shim, collector, log)
            return self._set(cid, status="created", pid=pid, exit_status=0, exited_at=0)

    def start_task(self, ref: str, restart: bool = False) -> dict:
        cid = self.resolve(ref)["id"]
        with self.lock(cid):
            task = self._task(cid)
            rec = self.store.get(cid)
            if rec["status"] != "created":
                raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is "
                                                      f"{rec['status']}, not created")
            try:
                pid = task.shim.call("Start", id=cid).pid
            except shims.Error as e:
                raise ApiError("FAILED_PRECONDITION", f"cannot start {rec['name']}: "
                                                      f"{e.args[-1] if e.args else e}") from None
            if restart:
                rec = self._set(cid, status="running", pid=pid, started_at=time.time(),
                                restart_count=rec["restart_count"] + 1)
            else:
                rec = self._set(cid, status="running", pid=pid, started_at=time.time(),
                                restart_count=0, stop_requested=0)
            intent.end(rec["bundle"])
            self._watch(cid, task)
            return rec

    def _watch(self, cid: str, task: Task) -> None:
        threading.Thread(target=self._wait_exit, args=(cid, task), daemon=True,
                         name=f"wait-{cid[:12]}").start()

    def _wait_exit(self, cid: str, task: Task) -> None:
        """Wait for the task's exit and record it (then autoremove if asked)."""
        try:
            resp = task.shim.call("Wait", id=cid, timeout=None)
            status, at = resp.exit_status, resp.exited_at
            exited_at = at.seconds + at.nanos / 1e9 if at is not None else time.time()
        except shims.Error:
            return    # the shim went away (hawserd shutting down, or it died): recovery decides
        task.collector.wait(5)    # the output is in the log before the exit is reported
        task.collector.abort()
        rec = self.store.get(cid)
        if rec is not None:
            rec = self._set(cid, status="stopped", exit_status=status, exited_at=exited_at)
            sandbox.stopped(self, rec)
        task.exited.set()
        if rec is None:
            return
        with self.lock(cid):    # nothing of an exited task stays (unless a new one replaced it)
            if self.tasks.get(cid) is task:
                self.delete_task(cid, force=True)
        if rec["labels"].get(AUTOREMOVE) == "true":
            try:
                self.delete_container(cid, force=True, volumes=True)
            except ApiError:
                pass
            return
        self._maybe_restart(cid)

    def _wants_restart(self, rec: dict) -> bool:
        if rec is None or rec["status"] != "stopped" or rec["stop_requested"]:
            return False
        try:
            policy, retries = parse_restart_policy(rec["config"].get("restart_policy") or "")
        except ValueError:
            return False
        if policy == "on-failure":
            return rec["exit_status"] != 0 and (not retries or rec["restart_count"] < retries)
        return policy != "no"

    def _maybe_restart(self, cid: str) -> None:
        """The restart policy after an exit: a new task after a back-off (100 ms, doubled at each
        restart, at most 10 s), unless a user stopped or removed the container meanwhile."""
        rec = self.store.get(cid)
        if not self._wants_restart(rec):
            return
        time.sleep(min(0.1 * 2 ** rec["restart_count"], 10.0))
        with self.lock(cid):
            rec = self.store.get(cid)
            if not self._wants_restart(rec):
                return
            try:
                self.create_task(cid)
                self.start_task(cid, restart=True)
            except ApiError as e:
                logger.warning("restart of %s failed: %s", cid[:12], e.message)
                return
        self.hub.publish("/containers/restart", cid)

    def _task(self, cid: str) -> Task:
        task = self.tasks.get(cid)
        if task is None:
            raise ApiError("FAILED_PRECONDITION", f"container {cid[:12]} has no task")
        return task

    def kill(self, ref: str, sig: int, all_: bool = False, exec_id: str = "") -> None:
        cid = self.resolve(ref)["id"]
        task = self._task(cid)
        rec = self.store.get(cid)
        if rec["status"] not in ("running", "paused", "created"):
            raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is not running")
        try:
            task.shim.call("Kill", id=cid, exec_id=exec_id, signal=sig, all=all_)
        except shims.Error as e:
            raise ApiError("FAILED_PRECONDITION", f"kill {rec['name']}: {e}") from None

    def wait(self, ref: str, timeout: float | None = None) -> dict:
        cid = self.resolve(ref)["id"]
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.changed:
            while True:
                rec = self.store.get(cid)
                if rec is None or rec["status"] == "stopped" or \
                        (rec["status"] == "created" and cid not in self.tasks):
                    return rec or {"exit_status": 255, "exited_at": time.time()}
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise ApiError("DEADLINE_EXCEEDED", "still running")
                self.changed.wait(left if left is not None else 1.0)

    def stop(self, ref: str, timeout: float) -> None:
        rec = self.resolve(ref)
        with self.lock(rec["id"]):    # not during a restart by the policy
            rec = self._set(rec["id"], stop_requested=1)
        if rec["status"] not in ("running", "paused"):
            return
        sig = getattr(signal, rec["config"].get("stop_signal") or "SIGTERM", signal.SIGTERM)
        if rec["status"] == "paused":
            self.resume(rec["id"])
        try:
            self.kill(rec["id"], int(sig))
        except ApiError:
            if not procs.wait_gone(rec["pid"], 1.0):    # not because it exited meanwhile
                raise
        try:
            self.wait(rec["id"], timeout)
        except ApiError:
            self.kill(rec["id"], int(signal.SIGKILL), all_=True)
            self.wait(rec["id"], 30)

    def delete_task(self, ref: str, force: bool = False) -> dict:
        cid = self.resolve(ref)["id"]
        with self.lock(cid):
            rec = self.store.get(cid)
            task = self.tasks.get(cid)
            if rec["status"] in ("running", "paused"):
                if not force:
                    raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is running")
                if task is not None:
                    try:
                        task.shim.call("Kill", id=cid, signal=9, all=True)
                    except shims.Error:
                        pass
                    task.exited.wait(30)
            if task is None:
                if rec["shim_address"]:
                    resp = shims.delete_dead_shim(self.flags, cid, rec["bundle"])
                    return self._set(cid, shim_address="", shim_pid=0, status="stopped",
                                     exit_status=resp.exit_status if resp else 255)
                return rec
            try:
                task.shim.call("Delete", id=cid)
            except shims.Error:
                pass
            self._shutdown_shim(task.shim)
            task.collector.abort()
            task.collector.wait(2)
            task.log.close()
            self.tasks.pop(cid, None)
            sandbox.stopped(self, rec)
            status = "stopped" if rec["status"] != "created" else "created"
            return self._set(cid, shim_address="", shim_pid=0, status=status)

    @staticmethod
    def _kill_created(shim: shims.ShimClient, cid: str) -> None:
        """A created task that cannot start (its networking failed) killed and deleted."""
        for method, fields in (("Kill", {"signal": 9, "all": True}), ("Delete", {})):
            try:
                shim.call(method, id=cid, **fields)
            except shims.Error:
                pass

    def _shutdown_shim(self, shim: shims.ShimClient) -> None:
        try:
            shim.call("Shutdown", id=shim.id, timeout=10)
        except shims.Error:
            pass
        shim.close()

    def shim_call(self, ref: str, method: str, **fields):
        cid = self.resolve(ref)["id"]
        task = self._task(cid)
        try:
            return task.shim.call(method, id=cid, **fields)
        except shims.Error as e:
            code = {5: "NOT_FOUND", 6: "ALREADY_EXISTS", 9: "FAILED_PRECONDITION", 12: "UNIMPLEMENTED",
                    3: "INVALID_ARGUMENT"}.get(e.code, "FAILED_PRECONDITION")
            raise ApiError(code, f"{method} {cid[:12]}: {e}") from None

    # -- networks joined and left by a created container ---------------------------------------
    def connect(self, ref: str, network: str, aliases: list, ip: str) -> None:
        cid = self.resolve(ref)["id"]
        with self.lock(cid):
            rec = self.store.get(cid)
            pid = rec["pid"] if rec["status"] in ("running", "paused") else 0
            self.networks.connect(cid, rec["name"], rec["config"].get("network_mode") or "", pid,
                                  network, aliases, ip)

    def disconnect(self, ref: str, network: str, force: bool) -> None:
        cid = self.resolve(ref)["id"]
        with self.lock(cid):
            rec = self.store.get(cid)
            pid = rec["pid"] if rec["status"] in ("running", "paused") else 0
            self.networks.disconnect(cid, rec["name"], pid, network)

    # -- execs -----------------------------------------------------------------------------------
    def exec(self, ref: str, exec_id: str, args: list, env: list, cwd: str, user: str,
             terminal: bool, stdin: str, stdout: str, stderr: str) -> None:
        """An extra process in a running container: the container's process settings (from its
        bundle) with the request's args/env/cwd/user; output to the given FIFOs or, when none is
        given, into the container's log (its own stdout/stderr FIFOs, read while it runs)."""
        rec = self.resolve(ref)
        cid = rec["id"]
        if not exec_id or not NAME_RE.match(exec_id):
            raise ApiError("INVALID_ARGUMENT", f"invalid exec id {exec_id!r}")
        if not args:
            raise ApiError("INVALID_ARGUMENT", "no command to exec")
        if rec["status"] != "running":
            raise ApiError("FAILED_PRECONDITION", f"container {rec['name']} is {rec['status']}, "
                                                  "not running")
        self._task(cid)
        try:
            with open(os.path.join(rec["bundle"], "config.json")) as f:
                proc = json.load(f)["process"]
            proc["args"] = list(args)
            extra = [e for e in env if "=" in e]
            keys = {e.split("=", 1)[0] for e in extra}
            proc["env"] = [e for e in proc.get("env") or () if e.split("=", 1)[0] not in keys] \
                + extra
            if cwd:
                if not cwd.startswith("/"):
                    raise bundles.BadConfig(f"working directory {cwd!r} is not an absolute path")
                proc["cwd"] = cwd
            if user:
                proc["user"] = bundles.resolve_user(user, bundles.dir_reader(
                    rec["rootfs"] or os.path.join(rec["bundle"], "rootfs")))
            proc["terminal"] = bool(terminal)
        except bundles.BadConfig as e:
            raise ApiError("INVALID_ARGUMENT", str(e)) from None
        except (OSError, ValueError, KeyError) as e:
            raise ApiError("FAILED_PRECONDITION", f"bundle of {rec['name']}: {e}") from None
        if not stdout and not stderr:
            stdout, stderr = logs.fifo_paths(rec["bundle"])
            if terminal:
                stderr = ""
        spec = shims.wire.message("google.protobuf.Any")(
            type_url="types.containerd.io/opencontainers/runtime-spec/1/Process",
            value=json.dumps(proc).encode())
        self.shim_call(cid, "Exec", exec_id=exec_id, terminal=bool(terminal), stdin=stdin,
                       stdout=stdout, stderr=stderr, spec=spec)

    def delete_exec(self, ref: str, exec_id: str) -> dict:
        r = self.shim_call(ref, "Delete", exec_id=exec_id)
        return {"pid": r.pid, "exit_status": r.exit_status}

    def pause(self, ref: str) -> None:
        cid = self.resolve(ref)["id"]
        self.shim_call(cid, "Pause")
        self._set(cid, status="paused")

    def resume(self, ref: str) -> None:
        cid = self.resolve(ref)["id"]
        self.shim_call(cid, "Resume")
        self._set(cid, status="running")

    # -- restart recovery ----------------------------------------------------------------------
    def recover(self) -> None:
        """At start-up, before serving: see supervisor/tasks/recovery.py; then what a crash
        left of images (ingests, unpacks, content nothing uses)."""
        recovery.Recovery(self).run()
        self.images.startup()
        self.volumes.cleanup()
        if self._networks_used():
            self.networks.reconcile({r["id"]: r["pid"] for r in self.store.all()
                                     if r["status"] in ("running", "paused")})

    def close(self) -> None:
        for task in list(self.tasks.values()):
            task.shim.close()
        if self._networks is not None:
            self._networks.close()
        self.volumes.close()
        self.store.close()

