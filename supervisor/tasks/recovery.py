"""What hawserd does when it starts after it died (SIGKILL, crash) or was stopped: every container
of its own (a record in the store, a bundle under --state/bundles, or a shim process whose
-address is this hawserd's) is brought to a state that agrees with its record.

Intent comes before side effects: create_task records the shim's address (predictable: the
hash of hawserd's address, the namespace and the id) before `shim start`, and writes an intent
file in the bundle (`hawserd-intent.json`: the operation and the status before it) that stays
until the task has started; rm and update write theirs too. On start-up, per container:

- the shim answers and its task is running or paused: hawserd takes it back (whatever the
  record said: a Start that completed before the crash is kept), watches its exit again and reads
  its output into the log again;
- the task exited while hawserd was down: the record gets the exit status and time from the
  shim's State, the task and its shim are deleted;
- the task is created but not started (a `run` or `start` interrupted between Tasks.Create and
  Tasks.Start), or the shim has no task (interrupted before or during the shim's Create): it is
  rolled back: the task deleted, the shim shut down, and the record back to the status it had
  before (`created` for a new container: docker's "Created"; `exited` with the last exit status
  for a restart), with nothing left of the task;
- no shim answers (it died): `shim delete` removes what it left; a record that said running is
  stopped with the exit status `delete` reports (137), one that had already exited keeps its own;
- a bundle or shim with no record (a removal interrupted after the record went), or a record
  whose removal was under way: the removal is completed (task, shim, runtime state, bundle, log);
- an update of limits under way: the recorded limits are applied again to the running task.

Only this hawserd's shims are touched: those of its records and bundles, at its own predicted
socket addresses, and shim processes whose command line carries its -address and whose working
directory is one of its bundles (another --root may have used the same address). Then the restart
policies apply as docker's daemon does at start: `always` starts every container that had run
(even one a user stopped), `unless-stopped` those a user had not stopped, `on-failure` those whose
last exit (while hawserd was down, or before) was a failure with retries left."""
import logging
import os
import shutil
import subprocess
import threading
import time
from concurrent import futures

from shim import cli as shim_cli
from shim import ttrpc
from shim.daemon import _can_connect
from supervisor.containers import bundle as bundles
from supervisor.containers.labels import AUTOREMOVE
from supervisor.errors import ApiError
from supervisor.tasks import limits, shims
from supervisor.tasks.intent import end, pending
from supervisor.tasks.task import Task
from supervisor.procs import wait_gone

logger = logging.getLogger("hawserd")
# shim State codes (containerd.v1.types.Status)
CREATED, RUNNING, STOPPED, PAUSED, PAUSING = 1, 2, 3, 4, 5
SETTLE = 30.0       # the longest wait for a straggling `shim start`/`delete` or a busy shim
WORKERS = 8


# -- this hawserd's shim processes ----------------------------------------------------------------
def shim_processes(address: str) -> dict[str, list[tuple[int, bool, str]]]:
    """Shims whose command line names this hawserd's address: id -> [(pid, daemon, cwd)]. A
    daemon leads its own session (it called setsid); a `start` or `delete` still running does
    not. Their cwd is the bundle they were started in."""
    out: dict[str, list[tuple[int, bool]]] = {}
    want = address.encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except (OSError, IndexError):
            continue
        if fields[0] in ("Z", "X") or not any(a.endswith(b"containerd-shim-hawser-v2")
                                              for a in argv[:3]):
            continue
        if _flag(argv, b"-address") != want or _flag(argv, b"-namespace") != \
                shims.NAMESPACE.encode():
            continue
        cid = _flag(argv, b"-id").decode(errors="replace")
        out.setdefault(cid, []).append((int(entry), int(fields[3]) == int(entry), cwd))
    return out


def _flag(argv: list[bytes], name: bytes) -> bytes:
    return argv[argv.index(name) + 1] if name in argv[:-1] else b""


def _wait(pred, timeout: float, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(step)
    return True


class Recovery:
    def __init__(self, sup):
        self.sup = sup
        self.address = sup.flags.address
        self.boot_restarts: list[str] = []
        self.lock = threading.Lock()
        self.procs: dict[str, list[tuple[int, bool, str]]] = {}

    def run(self) -> None:
        t = time.monotonic()
        # stragglers of the dead hawserd (`shim start` that outlived it, `shim delete`) end first
        if not _wait(lambda: not any(not p[1] for procs in shim_processes(self.address).values()
                                     for p in procs), SETTLE, 0.05):
            logger.warning("recovery: shim start/delete processes still running after %ss",
                           SETTLE)
        self.procs = shim_processes(self.address)
        ids = [r["id"] for r in self.sup.store.all()]
        bdir = os.path.join(self.sup.state, "bundles")
        extra = set(os.listdir(bdir)) if os.path.isdir(bdir) else set()
        # a shim of this address whose bundle is (or was: " (deleted)") one of ours; another
        # --root/--state may have used the same address, its shims are not ours to end
        extra |= {cid for cid, procs in self.procs.items()
                  if any(os.path.dirname(cwd) == os.path.realpath(bdir) for _, _, cwd in procs)}
        ids += sorted(extra - set(ids))
        with futures.ThreadPoolExecutor(WORKERS, thread_name_prefix="recover") as pool:
            for cid, err in zip(ids, pool.map(self._guarded, ids)):
                if err:
                    logger.error("recovery of %s: %s", cid[:12], err)
        if ids:
            logger.info("recovered %d containers in %.2fs", len(ids), time.monotonic() - t)
        for cid in self.boot_restarts:
            threading.Thread(target=restart_on_boot, args=(self.sup, cid), daemon=True,
                             name=f"boot-{cid[:12]}").start()

    def _guarded(self, cid: str) -> str:
        try:
            self.one(cid)
            return ""
        except Exception as e:    # noqa: BLE001 - one container must not stop the others
            logger.exception("recovery of %s", cid[:12])
            return repr(e)

    # -- one container -------------------------------------------------------------------------
    def one(self, cid: str) -> None:
        sup = self.sup
        rec = sup.store.get(cid)
        bundle = rec["bundle"] if rec else sup.bundle_dir(cid)
        intent = pending(bundle)
        if rec is None or intent.get("op") == "remove":
            self.discard(cid, rec, bundle)
            return
        self.repair_files(rec)
        found = self.connect(cid, rec, bundle)
        if found is None:
            self.dead(rec, intent)
        else:
            self.reconcile(rec, intent, *found)
        rec = sup.store.get(cid)
        if rec["labels"].get(AUTOREMOVE) == "true" and rec["status"] == "stopped":
            sup.delete_container(cid, force=True, volumes=True)   # it exited while hawserd was down
        elif wants_restart_on_boot(sup, rec):
            with self.lock:
                self.boot_restarts.append(cid)

    def repair_files(self, rec: dict) -> None:
        """A crash between the record and its bundle: write the bundle (and log directory)."""
        cid = rec["id"]
        os.makedirs(os.path.dirname(self.sup.log_path(cid)), exist_ok=True)
        if not os.path.exists(os.path.join(rec["bundle"], "config.json")):
            try:
                bundles.write_bundle(rec["bundle"], bundles.make_spec(cid, rec["config"],
                                                                      rec["rootfs"]))
            except (bundles.BadConfig, OSError) as e:
                logger.warning("recovery: bundle of %s: %s", cid[:12], e)

    def connect(self, cid: str, rec: dict | None, bundle: str):
        """(client, shim pid) of the shim serving cid, or None when none does (it died, or it
        was never started). A shim that accepts but does not answer is given time, then
        killed: it is ours (its command line names our address) and nobody can drive it."""
        candidates = [rec["shim_address"]] if rec and rec["shim_address"] else []
        candidates.append(shim_cli.socket_address(self.address, shims.NAMESPACE, cid))
        try:
            with open(os.path.join(bundle, "address")) as f:
                candidates.append(f.read().strip())
        except OSError:
            pass
        deadline = time.monotonic() + SETTLE
        for address in dict.fromkeys(a for a in candidates if a.startswith("unix://")):
            while True:
                try:
                    client = shims.ShimClient(cid, address)
                except OSError:
                    break    # nobody listens there
                try:
                    return client, client.call("Connect", id=cid, timeout=5).shim_pid
                except ttrpc.Error as e:
                    client.close()
                    if e.code != ttrpc.DEADLINE_EXCEEDED or time.monotonic() > deadline:
                        logger.warning("recovery: shim of %s at %s: %s", cid[:12], address, e)
                        break
        # no answer anywhere: a daemon of ours still running for cid is hung (or exiting)
        for pid, daemon, _ in self.procs.get(cid, []):
            if daemon and not wait_gone(pid, 5):
                logger.warning("recovery: killing shim %d of %s, which does not answer", pid,
                               cid[:12])
                os.kill(pid, 9)
                wait_gone(pid, 5)
        return None

    def reconcile(self, rec: dict, intent: dict, shim: shims.ShimClient, shim_pid: int) -> None:
        sup, cid = self.sup, rec["id"]
        try:
            st = shim.call("State", id=cid, timeout=SETTLE)
        except ttrpc.Error as e:
            if e.code != ttrpc.NOT_FOUND:
                raise
            st = None
        if st is not None and st.status in (RUNNING, PAUSED, PAUSING):
            self.adopt(rec, shim, shim_pid, st.pid, "paused" if st.status == PAUSED else "running")
            if intent.get("op") == "update":
                limits.apply(sup, cid)
            end(rec["bundle"])
            logger.info("recovery: %s: task %s taken back (record said %s)", cid[:12],
                        "paused" if st.status == PAUSED else "running", rec["status"])
            return
        self.release(cid, shim, shim_pid)
        self.scrub(cid, rec)
        if st is not None and st.status == STOPPED:
            # the task exited while hawserd was down (or before, its exit recorded)
            exited_at = st.exited_at.seconds + st.exited_at.nanos / 1e9 if st.exited_at \
                else time.time()
            rec = sup._set(cid, status="stopped", exit_status=st.exit_status, exited_at=exited_at)
            intent = {}
        elif rec["status"] in ("running", "paused"):    # its task was deleted: the exit is lost
            rec = sup._set(cid, status="stopped", exit_status=255, exited_at=time.time())
        rec = self.settle_record(rec, intent)
        logger.info("recovery: %s: %s task deleted, shim shut down; now %s (exit %d)", cid[:12],
                    {CREATED: "a created", STOPPED: "an exited"}.get(st and st.status, "no"),
                    rec["status"], rec["exit_status"])

    def adopt(self, rec: dict, shim: shims.ShimClient, shim_pid: int, pid: int,
              status: str) -> None:
        """Take a live task back: its output into the log again, its exit watched again."""
        sup, cid = self.sup, rec["id"]
        log, collector = sup.output(rec)
        task = Task(shim, collector, log)
        sup.tasks[cid] = task
        sup._set(cid, status=status, pid=pid, shim_address=shim.address, shim_pid=shim_pid)
        sup._watch(cid, task)

    def dead(self, rec: dict, intent: dict) -> None:
        """No shim serves the container: `shim delete` cleans up after it (the runtime's
        container, the rootfs mount, the socket, the shim's state) and reports the exit."""
        sup, cid = self.sup, rec["id"]
        resp = None
        if not rec["shim_address"] and not intent:
            return    # it had no task
        if os.path.isdir(rec["bundle"]):
            resp = shims.delete_dead_shim(sup.flags, cid, rec["bundle"])
        self.scrub(cid, rec)
        if rec["status"] in ("running", "paused"):
            rec = sup._set(cid, status="stopped", exit_status=resp.exit_status if resp else 255,
                           exited_at=time.time())
            intent = {}
        rec = self.settle_record(rec, intent)
        logger.info("recovery: %s: no shim; now %s (exit %d)", cid[:12], rec["status"],
                    rec["exit_status"])

    def settle_record(self, rec: dict, intent: dict) -> dict:
        """No task: the record says so; one whose task was created and never started goes back
        to the status it had before (an interrupted run or start is rolled back)."""
        changes = {"shim_address": "", "shim_pid": 0}
        prev = intent.get("prev") if intent.get("op") == "task" else None
        if rec["status"] == "created":
            changes.update(prev if prev and prev["status"] == "stopped" else
                           {"status": "created", "pid": 0})
        rec = self.sup._set(rec["id"], **changes)
        end(rec["bundle"])
        return rec

    def release(self, cid: str, shim: shims.ShimClient, shim_pid: int) -> None:
        """Delete the shim's task (killing it if it is only created) and shut the shim down. A
        Create still under way in the shim (the request of the dead hawserd) makes it refuse
        the Shutdown: then its task is looked at again once that Create has ended."""
        deadline = time.monotonic() + SETTLE
        try:
            while True:
                try:
                    shim.call("Delete", id=cid, timeout=SETTLE)
                except ttrpc.Error as e:
                    if e.code not in (ttrpc.NOT_FOUND, ttrpc.UNAVAILABLE):
                        logger.warning("recovery: delete task %s: %s", cid[:12], e)
                try:
                    shim.call("Shutdown", id=cid, timeout=10)
                except ttrpc.Error:
                    pass
                if wait_gone(shim_pid, 2):
                    return
                if time.monotonic() > deadline:
                    logger.warning("recovery: killing shim %d of %s, which does not exit",
                                   shim_pid, cid[:12])
                    os.kill(shim_pid, 9)
                    wait_gone(shim_pid, 5)
                    return
        finally:
            shim.close()

    def scrub(self, cid: str, rec: dict | None) -> None:
        """After the shim is gone: what it may have left (its socket and state through `shim
        delete`; the runtime's container, with its cgroup, through `runtime delete --force`)."""
        sup = self.sup
        bundle = rec["bundle"] if rec else sup.bundle_dir(cid)
        sock = shim_cli.socket_address(self.address, shims.NAMESPACE, cid)[len("unix://"):]
        sdir = shim_cli.state_dir(self.address, shims.NAMESPACE, cid)
        if os.path.isdir(bundle) and (os.path.exists(sock) or os.path.isdir(sdir)):
            shims.delete_dead_shim(sup.flags, cid, bundle)
        if os.path.exists(sock) and not _can_connect(sock):    # (`delete` found no address file)
            os.unlink(sock)
        if os.path.exists(os.path.join(sup.runtime_root, shims.NAMESPACE, cid)):
            try:
                binary = shims.runtime_binary(rec["runtime"] if rec else "")
            except FileNotFoundError:
                binary = ""
            binary = binary or os.path.join(os.path.dirname(shims.shim_binary()), "hawser")
            p = subprocess.run([binary, "--root", os.path.join(sup.runtime_root, shims.NAMESPACE),
                                "delete", "--force", cid], capture_output=True, text=True,
                               timeout=60, stdin=subprocess.DEVNULL)
            if p.returncode != 0:
                logger.warning("recovery: %s delete --force %s: %s", binary, cid[:12],
                               p.stderr.strip())

    def discard(self, cid: str, rec: dict | None, bundle: str) -> None:
        """A container being removed (its record, or only its bundle or shim, left): finish."""
        found = self.connect(cid, rec, bundle)
        if found is not None:
            shim, shim_pid = found
            try:
                shim.call("Kill", id=cid, signal=9, all=True, timeout=10)
            except ttrpc.Error:
                pass
            try:
                shim.call("Wait", id=cid, timeout=10)
            except ttrpc.Error:
                pass
            self.release(cid, shim, shim_pid)
        self.scrub(cid, rec)
        sup = self.sup
        sup.store.remove(cid)
        if rec is not None:
            sup.drop_rootfs(rec)
        bundles.remove_bundle(bundle)
        shutil.rmtree(os.path.dirname(sup.log_path(cid)), ignore_errors=True)
        if rec is not None:
            sup.hub.publish("/containers/delete", cid)
        logger.info("recovery: %s: removal completed", cid[:12])


# -- restart policies at start-up --------------------------------------------------------------
def wants_restart_on_boot(sup, rec: dict) -> bool:
    """docker's rule when its daemon starts: `always` starts a container that has run and is
    not running even after a stop by a user; the others follow the rule of an exit while
    hawserd runs (unless-stopped: no stop by a user; on-failure: a failure, retries left)."""
    if rec["status"] == "stopped" and rec["config"].get("restart_policy") == "always":
        return True
    return sup._wants_restart(rec)


def restart_on_boot(sup, cid: str) -> None:
    """A start as a user's (the restart count and the stop by a user are reset, as docker does)."""
    with sup.lock(cid):
        rec = sup.store.get(cid)
        if rec is None or not wants_restart_on_boot(sup, rec):
            return
        try:
            sup.create_task(cid)
            sup.start_task(cid)
        except ApiError as e:
            logger.warning("restart of %s at start-up failed: %s", cid[:12], e.message)
            return
    sup.hub.publish("/containers/restart", cid)
