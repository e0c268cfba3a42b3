"""A container's processes as the shim tracks them: the init (the container itself) and the
processes exec'd into it. Status, exit status and time, stdio, and Wait.

Status: created -> running <-> paused -> stopped, as containerd's task API reports it. An exit
that arrives while Start is still running (a short-lived process, reaped before `runtime start`
or `exec` returned) is held until Start has published its event: TaskExit never precedes
TaskStart / TaskExecStarted.
"""
from shim import threads

CREATED, RUNNING, STOPPED, PAUSED, PAUSING = "created", "running", "stopped", "paused", "pausing"
STATUS_CODES = {"unknown": 0, CREATED: 1, RUNNING: 2, STOPPED: 3, PAUSED: 4, PAUSING: 5}


class Process:
    def __init__(self, container_id: str, exec_id: str, io, terminal: bool, stdio: tuple):
        self.container_id, self.exec_id = container_id, exec_id
        self.io, self.terminal = io, terminal
        self.stdin, self.stdout, self.stderr = stdio
        self.pid = 0
        self.status = CREATED
        self.exit_status = 0
        self.exited_at = 0          # ns since the epoch
        self.exited = threads.Event()
        self.lock = threads.Lock()
        self.starting = False
        self.pending_exit = None
        self.spec_path = None       # exec: the process.json given to the runtime
        self.on_exit = None         # callback(process) once the exit is recorded

    @property
    def id(self) -> str:
        return self.exec_id or self.container_id

    def begin_start(self) -> None:
        with self.lock:
            self.starting = True

    def end_start(self, started: bool) -> None:
        """After the start event is queued (or the start failed): deliver a held exit."""
        with self.lock:
            self.starting = False
            if started and self.status == CREATED:
                self.status = RUNNING
            pending, self.pending_exit = self.pending_exit, None
        if pending is not None:
            self.set_exited(*pending)

    def set_exited(self, status: int, when: int) -> None:
        """From the reaper: record the exit (once), release Wait, publish through on_exit."""
        with self.lock:
            if self.exited.is_set():
                return
            if self.starting:
                self.pending_exit = (status, when)
                return
            self.status = STOPPED
            self.exit_status, self.exited_at = status, when
        if self.io is not None:
            self.io.process_exited()
        if self.on_exit is not None:
            self.on_exit(self)
        self.exited.set()

    def wait(self) -> None:
        self.exited.wait()
