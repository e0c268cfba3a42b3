"""containerd.task.v2.Task: what containerd (or hawserd) asks a shim, answered by driving the
low-level runtime's command line. One shim normally serves one container (its id is the shim's);
several ids work too.

Errors carry gRPC codes containerd's errdefs understands: NotFound for an unknown container,
exec or finished process, AlreadyExists for a duplicate, FailedPrecondition for a request the
process's state forbids (Start twice, Delete while running), Unimplemented for Checkpoint.
"""
import os
import time

from runtime import jsonlite
from shim import VERSION, mount, process, state, threads, ttrpc, wire
from shim.io import ConsoleSocket, ProcessIO
from shim.process import CREATED, PAUSED, RUNNING, STATUS_CODES, STOPPED, Process
from shim.runtime_cli import Runtime, RuntimeFailed, read_pid_file

task = wire.package("containerd.task.v2")
events = wire.package("containerd.events")
types = wire.package("containerd.v1.types")
Empty = wire.message("google.protobuf.Empty")


def _fail(code: int, msg: str):
    return ttrpc.Error(code, msg)


def _ts(ns: int):
    return wire.timestamp(ns) if ns else None


class Container:
    def __init__(self, cid: str, bundle: str, runtime: Runtime, init: Process,
                 rootfs: str | None, pid_ns: bool):
        self.id, self.bundle, self.runtime, self.init = cid, bundle, runtime, init
        self.rootfs = rootfs          # where the shim mounted containerd's rootfs, if it did
        self.pid_ns = pid_ns          # False: orphans of the container are killed at its exit
        self.execs: dict[str, Process] = {}
        self.lock = threads.Lock()
        self.oom = None
        self.procs_file = None        # the cgroup.procs of the container (without a pid ns)


class TaskService:
    def __init__(self, namespace: str, reaper, publisher, state_dir: str, default_binary: str,
                 log, shutdown, forks=None):
        self.namespace, self.reaper, self.publisher = namespace, reaper, publisher
        self.state_dir, self.default_binary = state_dir, default_binary
        self.log, self.request_shutdown = log, shutdown
        self.containers: dict[str, Container] = {}
        self.creating: set[str] = set()    # ids whose Create is under way
        self.closing = False               # a Shutdown was accepted: no Create any more
        self.lock = threads.Lock()
        self.counter = 0
        self.forks = forks    # the fork server for hawser's commands, until a container started

    def _drop_forks(self) -> None:
        """No more commands through the fork server: an idle shim is one process."""
        forks, self.forks = self.forks, None
        if forks is not None:
            forks.close()

    # -- lookups ------------------------------------------------------------------------------

    def _container(self, cid: str) -> Container:
        with self.lock:
            c = self.containers.get(cid)
        if c is None:
            raise _fail(ttrpc.NOT_FOUND, f"container {cid} not created")
        return c

    def _process(self, c: Container, exec_id: str) -> Process:
        if not exec_id:
            return c.init
        with c.lock:
            p = c.execs.get(exec_id)
        if p is None:
            raise _fail(ttrpc.NOT_FOUND, f"process {exec_id} does not exist in container {c.id}")
        return p

    def _state_file(self, name: str) -> str:
        with self.lock:
            self.counter += 1
            n = self.counter
        return os.path.join(self.state_dir, f"{n}-{name}")

    # -- the runtime, from the create options -------------------------------------------------

    def _runtime_choice(self, options) -> tuple[str, str, dict]:
        """(binary, root, runc options) from CreateTaskRequest.options: containerd's runc
        Options (BinaryName, Root), or the file `ctr run --runtime-config-path` names."""
        binary, root, extra = self.default_binary, "", {}
        name = wire.any_name(options)
        if name == "containerd.runc.v1.Options":
            o = wire.message(name).decode(options.value)
            binary, root = o.binary_name or binary, o.root
            extra = {"no_pivot": o.no_pivot_root, "no_new_keyring": o.no_new_keyring}
        elif name == "runtimeoptions.v1.Options":
            path = wire.message(name).decode(options.value).config_path
            if path:
                conf = read_config(path)
                binary = conf.get("binary") or binary
                root = conf.get("root") or ""
        return binary, os.path.join(root or state.DEFAULT_ROOT, self.namespace), extra

    # -- Task API -----------------------------------------------------------------------------

    def Create(self, req):
        """A Shutdown while this runs is refused: the shim would exit under its own runtime call
        and leave the container it is creating to nobody (a client that went away, e.g. a
        killed hawserd, and its successor asking for a Shutdown)."""
        with self.lock:
            if req.id in self.containers or req.id in self.creating:
                raise _fail(ttrpc.ALREADY_EXISTS, f"container {req.id} already exists")
            if self.closing:
                raise _fail(ttrpc.UNAVAILABLE, "the shim is shutting down")
            self.creating.add(req.id)
        try:
            return self._create(req)
        finally:
            with self.lock:
                self.creating.discard(req.id)

    def _create(self, req):
        if req.checkpoint:
            raise _fail(ttrpc.UNIMPLEMENTED, "restoring from a checkpoint is not supported by "
                                             "containerd-shim-hawser-v2")
        try:
            binary, root, extra = self._runtime_choice(req.options)
        except (OSError, ValueError) as e:    # tomllib's errors are ValueErrors
            raise _fail(ttrpc.INVALID_ARGUMENT, f"runtime options: {e}") from None
        bundle = req.bundle
        state.save(self.state_dir, {"binary": binary, "root": root, "id": req.id,
                                    "bundle": bundle})
        forks = self.forks if binary == self.default_binary else None
        if forks is None:
            self._drop_forks()
        runtime = Runtime(self.reaper, binary, root, os.path.join(bundle, "log.json"), forks)
        rootfs = None
        if req.rootfs:
            rootfs = os.path.join(bundle, "rootfs")
            try:
                mount.mount_all(req.rootfs, rootfs)
            except OSError as e:
                raise _fail(ttrpc.UNKNOWN, f"failed to mount rootfs component: {e}") from None
        pio = ProcessIO(req.stdin, req.stdout, req.stderr, req.terminal)
        console = None
        pid_file = os.path.join(bundle, "init.pid")
        try:
            pio.open()
            if req.terminal:
                console = ConsoleSocket(self._state_file("console.sock"))
            try:
                runtime.create(req.id, bundle, pid_file, console and console.path,
                               pio.child_stdio(), **extra)
            finally:
                pio.spawned()
            pid = read_pid_file(pid_file)
            if console is not None:
                pio.attach_console(console.receive_master())
        except BaseException as e:
            pio.close()
            self._undo_create(runtime, req.id, rootfs)
            state.forget(self.state_dir)
            if isinstance(e, RuntimeFailed):
                raise _fail(ttrpc.UNKNOWN, f"OCI runtime create failed: {e}") from None
            if isinstance(e, (OSError, ValueError)):
                raise _fail(ttrpc.UNKNOWN, f"create {req.id}: {e}") from None
            raise
        finally:
            if console is not None:
                console.close()
        init = Process(req.id, "", pio, req.terminal, (req.stdin, req.stdout, req.stderr))
        init.pid = pid
        c = Container(req.id, bundle, runtime, init, rootfs, has_pid_namespace(bundle))
        init.on_exit = lambda p: self._init_exited(c, p)
        if not c.pid_ns:
            c.procs_file = _procs_file(pid)
        with self.lock:
            self.containers[req.id] = c
        self.publisher.publish(events.TaskCreate(
            container_id=req.id, bundle=bundle, rootfs=list(req.rootfs), pid=pid,
            io=events.TaskIO(stdin=req.stdin, stdout=req.stdout, stderr=req.stderr,
                             terminal=req.terminal), checkpoint=req.checkpoint))
        self.reaper.track(pid, init.set_exited)
        self._watch_oom(c)
        return task.CreateTaskResponse(pid=pid)

    def _undo_create(self, runtime: Runtime, cid: str, rootfs: str | None) -> None:
        """Nothing of a failed create stays: the runtime's state, the rootfs mount."""
        try:
            runtime.delete(cid, force=True)
        except RuntimeFailed:
            pass
        if rootfs:
            try:
                mount.unmount_all(rootfs)
            except OSError as e:
                self.log("warn", f"unmount {rootfs}: {e}")

    def Start(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        with p.lock:
            if p.status != CREATED or p.starting:
                raise _fail(ttrpc.FAILED_PRECONDITION,
                            f"cannot start {p.id}: it is {'starting' if p.starting else p.status}")
            p.starting = True
        started = False
        try:
            if req.exec_id:
                self._start_exec(c, p)
                self.publisher.publish(events.TaskExecStarted(container_id=c.id,
                                                              exec_id=p.exec_id, pid=p.pid))
            else:
                try:
                    c.runtime.start(c.id)
                except RuntimeFailed as e:
                    raise _fail(ttrpc.UNKNOWN, f"OCI runtime start failed: {e}") from None
                finally:
                    c.runtime.forks = None
                    self._drop_forks()
                self.publisher.publish(events.TaskStart(container_id=c.id, pid=p.pid))
            started = True
        finally:
            p.end_start(started)
        return task.StartResponse(pid=p.pid)

    def _start_exec(self, c: Container, p: Process) -> None:
        if c.init.status == STOPPED:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"container {c.id} is stopped")
        pid_file = self._state_file("exec.pid")
        console = None
        try:
            p.io.open()
            if p.terminal:
                console = ConsoleSocket(self._state_file("console.sock"))
            try:
                c.runtime.exec(c.id, p.spec_path, pid_file, console and console.path,
                               p.io.child_stdio())
            finally:
                p.io.spawned()
            p.pid = read_pid_file(pid_file)
            if console is not None:
                p.io.attach_console(console.receive_master())
        except RuntimeFailed as e:
            p.io.close()
            raise _fail(ttrpc.UNKNOWN, f"OCI runtime exec failed: {e}") from None
        except (OSError, ValueError) as e:
            p.io.close()
            raise _fail(ttrpc.UNKNOWN, f"exec {p.exec_id}: {e}") from None
        finally:
            if console is not None:
                console.close()
            state.remove(pid_file)
        self.reaper.track(p.pid, p.set_exited)

    def _init_exited(self, c: Container, p: Process) -> None:
        """In the reaper's thread: publish the exit; what needs the runtime goes to a thread."""
        self.publisher.publish(events.TaskExit(container_id=c.id, id=c.id, pid=p.pid,
                                               exit_status=p.exit_status,
                                               exited_at=wire.timestamp(p.exited_at)))
        if not c.pid_ns:    # no pid namespace: nothing kills what init leaves behind
            threads.spawn(self._kill_all, c)

    def _kill_all(self, c: Container) -> None:
        """What init left in the container's cgroup, as runc's shim does: `kill --all`, or (a
        runtime that refuses it once init is gone) SIGKILL to every pid of its cgroup."""
        try:
            c.runtime.kill(c.id, 9, all=True)
            return
        except (RuntimeFailed, ttrpc.Error):
            pass
        if c.procs_file:
            try:
                with open(c.procs_file) as f:
                    pids = [int(p) for p in f.read().split()]
            except OSError:
                return
            for pid in pids:
                try:
                    os.kill(pid, 9)
                except ProcessLookupError:
                    pass

    def _exec_exited(self, c: Container, p: Process) -> None:
        self.publisher.publish(events.TaskExit(container_id=c.id, id=p.exec_id, pid=p.pid,
                                               exit_status=p.exit_status,
                                               exited_at=wire.timestamp(p.exited_at)))

    def Delete(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        if p.status in (RUNNING, PAUSED) or p.starting:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"cannot delete {p.id}: it is {p.status}")
        if req.exec_id:
            with c.lock:
                c.execs.pop(req.exec_id, None)
            if not p.exited.is_set():    # never started: release its waiters (no TaskExit)
                p.on_exit = None
                p.set_exited(255, time.time_ns())
            p.io.close()
            state.remove(p.spec_path)
        else:
            self._delete_container(c, p)
        return task.DeleteResponse(pid=p.pid, exit_status=p.exit_status,
                                   exited_at=_ts(p.exited_at))

    def _delete_container(self, c: Container, p: Process) -> None:
        c.runtime.forks = None
        self._drop_forks()
        created = p.status == CREATED
        if created:
            self.reaper.untrack(p.pid)    # its exit is not a TaskExit after the TaskDelete
        try:
            c.runtime.delete(c.id, force=created)
        except RuntimeFailed as e:
            if "does not exist" not in str(e):
                raise _fail(ttrpc.UNKNOWN, f"failed to delete task: {e}") from None
        if created:
            p.set_exited(137, time.time_ns())
        p.io.wait_output(2.0)
        p.io.close()
        with c.lock:
            execs, c.execs = list(c.execs.values()), {}
        for e in execs:
            e.io.close()
            state.remove(e.spec_path)
        if c.oom is not None:
            c.oom.close()
        if c.rootfs:
            try:
                mount.unmount_all(c.rootfs)
            except OSError as e:
                self.log("warn", f"unmount {c.rootfs}: {e}")
        with self.lock:
            self.containers.pop(c.id, None)
        state.forget(self.state_dir)    # a `delete` after this has nothing to do
        self.publisher.publish(events.TaskDelete(container_id=c.id, pid=p.pid,
                                                 exit_status=p.exit_status,
                                                 exited_at=_ts(p.exited_at)))

    def Exec(self, req):
        c = self._container(req.id)
        if not req.exec_id:
            raise _fail(ttrpc.INVALID_ARGUMENT, "exec id is required")
        if c.init.status == STOPPED:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"cannot exec in container {c.id}: stopped")
        with c.lock:
            if req.exec_id in c.execs:
                raise _fail(ttrpc.ALREADY_EXISTS, f"id {req.exec_id}: already exists")
            p = Process(c.id, req.exec_id, ProcessIO(req.stdin, req.stdout, req.stderr,
                                                     req.terminal),
                        req.terminal, (req.stdin, req.stdout, req.stderr))
            c.execs[req.exec_id] = p
        p.spec_path = self._state_file("process.json")
        with open(p.spec_path, "wb") as f:
            f.write(req.spec.value if req.spec is not None else b"{}")
        p.on_exit = lambda proc: self._exec_exited(c, proc)
        self.publisher.publish(events.TaskExecAdded(container_id=c.id, exec_id=req.exec_id))
        return Empty()

    def State(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        stopped = p.status == STOPPED
        return task.StateResponse(
            id=p.id, bundle=c.bundle, pid=p.pid, status=STATUS_CODES[p.status],
            stdin=p.stdin, stdout=p.stdout, stderr=p.stderr, terminal=p.terminal,
            exit_status=p.exit_status if stopped else 0,
            exited_at=_ts(p.exited_at) if stopped else None, exec_id=req.exec_id)

    def Pids(self, req):
        c = self._container(req.id)
        try:
            pids = c.runtime.ps(c.id)
        except RuntimeFailed as e:
            raise _fail(ttrpc.UNKNOWN, f"failed to list pids: {e}") from None
        with c.lock:
            by_pid = {p.pid: p.exec_id for p in c.execs.values() if p.pid}
        details = wire.message("containerd.runc.v1.ProcessDetails")
        out = []
        for pid in pids:
            info = None
            if pid in by_pid:
                info = wire.pack_any(details(exec_id=by_pid[pid]))
            out.append(types.ProcessInfo(pid=pid, info=info))
        return task.PidsResponse(processes=out)

    def Pause(self, req):
        c = self._container(req.id)
        p = c.init
        if p.status != RUNNING:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"cannot pause {c.id}: it is {p.status}")
        with p.lock:
            p.status = process.PAUSING
        try:
            c.runtime.pause(c.id)
        except RuntimeFailed as e:
            with p.lock:
                p.status = RUNNING if p.status == process.PAUSING else p.status
            raise _fail(ttrpc.UNKNOWN, f"OCI runtime pause failed: {e}") from None
        with p.lock:
            if p.status == process.PAUSING:
                p.status = PAUSED
        self.publisher.publish(events.TaskPaused(container_id=c.id))
        return Empty()

    def Resume(self, req):
        c = self._container(req.id)
        p = c.init
        if p.status != PAUSED:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"cannot resume {c.id}: it is {p.status}")
        try:
            c.runtime.resume(c.id)
        except RuntimeFailed as e:
            raise _fail(ttrpc.UNKNOWN, f"OCI runtime resume failed: {e}") from None
        with p.lock:
            if p.status == PAUSED:
                p.status = RUNNING
        self.publisher.publish(events.TaskResumed(container_id=c.id))
        return Empty()

    def Checkpoint(self, req):
        raise _fail(ttrpc.UNIMPLEMENTED,
                    "checkpoint is not supported by containerd-shim-hawser-v2 (no CRIU support)")

    def Kill(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        if not req.exec_id:
            try:
                c.runtime.kill(c.id, req.signal, all=req.all)
            except RuntimeFailed as e:
                raise _fail(ttrpc.UNKNOWN, f"unknown error after kill: {e}") from None
            return Empty()
        if p.exited.is_set():
            raise _fail(ttrpc.NOT_FOUND, f"process {p.exec_id}: process already finished")
        if not p.pid:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"process {p.exec_id}: process not created")
        try:
            os.kill(p.pid, req.signal)
        except ProcessLookupError:
            raise _fail(ttrpc.NOT_FOUND, f"process {p.exec_id}: process already finished") from None
        return Empty()

    def ResizePty(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        try:
            p.io.resize(req.width, req.height)
        except OSError as e:
            raise _fail(ttrpc.UNKNOWN, f"resize pty: {e}") from None
        return Empty()

    def CloseIO(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        if req.stdin:
            p.io.close_stdin()
        return Empty()

    def Update(self, req):
        c = self._container(req.id)
        if c.init.status == STOPPED:
            raise _fail(ttrpc.FAILED_PRECONDITION, f"cannot update {c.id}: it is stopped")
        resources = req.resources.value if req.resources is not None else b"{}"
        try:
            c.runtime.update(c.id, resources)
        except RuntimeFailed as e:
            raise _fail(ttrpc.UNKNOWN, f"OCI runtime update failed: {e}") from None
        return Empty()

    def Wait(self, req):
        c = self._container(req.id)
        p = self._process(c, req.exec_id)
        p.wait()
        return task.WaitResponse(exit_status=p.exit_status, exited_at=_ts(p.exited_at))

    def Stats(self, req):
        c = self._container(req.id)
        if c.init.status == STOPPED or not c.init.pid:
            raise _fail(ttrpc.NOT_FOUND, f"container {c.id} is not running")
        from shim import stats
        try:
            metrics = stats.cgroup_v1_metrics(c.init.pid)
        except OSError as e:
            raise _fail(ttrpc.NOT_FOUND, f"cgroup of {c.id}: {e}") from None
        if metrics is None:
            raise _fail(ttrpc.UNIMPLEMENTED, "stats: only cgroup v1 is supported")
        return task.StatsResponse(stats=wire.pack_any(metrics))

    def Connect(self, req):
        with self.lock:
            c = self.containers.get(req.id)
        return task.ConnectResponse(shim_pid=os.getpid(), task_pid=c.init.pid if c else 0,
                                    version=VERSION)

    def Shutdown(self, req):
        with self.lock:
            if self.containers or self.creating:
                return Empty()
            self.closing = True
        self._drop_forks()
        self.request_shutdown()    # the shim exits once this answer is out
        return Empty()

    # -- OOM ----------------------------------------------------------------------------------

    def _watch_oom(self, c: Container) -> None:
        from shim import oom
        try:
            c.oom = oom.watch(c.init.pid, lambda: self.publisher.publish(
                events.TaskOOM(container_id=c.id)))
        except OSError as e:
            self.log("warn", f"no OOM events for {c.id}: {e}")


def _procs_file(pid: int) -> str | None:
    from shim import cgroup
    for controller in ("pids", "freezer", "memory", "cpu"):
        try:
            path = cgroup.v1_path(pid, controller)
            if path and path == cgroup.v1_path(os.getpid(), controller):
                return None    # not a cgroup of its own: never kill "everything" in it
        except OSError:
            return None
        if path and os.path.exists(os.path.join(path, "cgroup.procs")):
            return os.path.join(path, "cgroup.procs")
    return None


def has_pid_namespace(bundle: str) -> bool:
    try:
        with open(os.path.join(bundle, "config.json"), "rb") as f:
            spec = jsonlite.loads(f.read())
        return any(ns.get("type") == "pid" for ns in
                   (spec.get("linux") or {}).get("namespaces") or ())
    except (OSError, ValueError, AttributeError):
        return True


def read_config(path: str) -> dict:
    """The file `ctr run --runtime-config-path` names: JSON or TOML, e.g.
    {"binary_name": "runc", "root": "/run/r"} or `BinaryName = "runc"` (runc Options' names)."""
    with open(path, "rb") as f:
        data = f.read()
    if data.lstrip().startswith(b"{"):
        conf = jsonlite.loads(data)
    else:
        import tomllib
        conf = tomllib.loads(data.decode())
    if not isinstance(conf, dict):
        raise ValueError(f"{path}: not a table of options")
    norm = {k.lower().replace("_", ""): v for k, v in conf.items()}
    return {"binary": norm.get("binaryname") or norm.get("binary") or norm.get("runtime"),
            "root": norm.get("root")}
