"""A container's stdout/stderr: FIFOs in its bundle that hawserd reads into a json-lines log
(docker's json-file driver: {"log": "...", "stream": "stdout", "time": "RFC 3339"}), rotated when
it grows past max_size (log.json -> log.json.1 -> ... -> log.json.<keep>)."""
import codecs
import datetime
import json
import os
import queue
import threading

from supervisor.tasks import fifos

MAX_SIZE = 10 << 20
KEEP = 3


class JsonLog:
    def __init__(self, path: str, max_size: int = MAX_SIZE, keep: int = KEEP):
        self.path, self.max_size, self.keep = path, max_size, keep
        self.lock = threading.Lock()
        # the container's log directory comes with its first task: a created container that
        # never ran costs no directory block (100 of them, 400 KiB on ext4)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.file = open(path, "ab")

    def write(self, stream: str, text: str) -> None:
        now = datetime.datetime.now(datetime.timezone.utc).isoformat().replace("+00:00", "Z")
        line = json.dumps({"log": text, "stream": stream, "time": now}).encode() + b"\n"
        with self.lock:
            if self.file is None:
                return
            self.file.write(line)
            self.file.flush()
            if self.file.tell() >= self.max_size:
                self._rotate()

    def _rotate(self) -> None:
        self.file.close()
        for n in range(self.keep - 1, 0, -1):
            if os.path.exists(f"{self.path}.{n}"):
                os.replace(f"{self.path}.{n}", f"{self.path}.{n + 1}")
        os.replace(self.path, f"{self.path}.1")
        self.file = open(self.path, "ab")

    def close(self) -> None:
        with self.lock:
            if self.file is not None:
                self.file.close()
                self.file = None


def fifo_paths(bundle: str) -> tuple[str, str]:
    return os.path.join(bundle, "stdout"), os.path.join(bundle, "stderr")


def stdin_path(bundle: str) -> str:
    return os.path.join(bundle, "stdin")


def make_fifos(bundle: str, stdin: bool = False) -> tuple[str, str, str]:
    """The stdin (when asked for, else ""), stdout and stderr FIFOs in the bundle."""
    paths = (stdin_path(bundle) if stdin else "",) + fifo_paths(bundle)
    for p in paths:
        if p and not os.path.exists(p):
            os.mkfifo(p, 0o600)
    return paths


class Collector:
    """A container's output FIFOs read into its log until EOF (the last writer, the container,
    is gone), by hawserd's one FIFO-reading thread (fifos.py); abort() ends the streams when
    no task will write (what the FIFOs hold is read first).

    Besides the log, what the process writes goes as it comes to the attached clients
    (subscribe()). A terminal's output is logged as it comes too, not line by line: a shell's
    prompt has no newline. With a terminal there is no stderr (the pty carries both)."""

    def __init__(self, bundle: str, log: JsonLog, terminal: bool = False):
        self.log, self.terminal = log, terminal
        streams = (("stdout", fifo_paths(bundle)[0]),) if terminal else \
            tuple(zip(("stdout", "stderr"), fifo_paths(bundle)))
        self.lock = threading.Lock()
        self.live = {stream for stream, _ in streams}     # streams not at EOF yet
        self.listeners: set[queue.SimpleQueue] = set()
        self.readers = []
        try:
            for stream, path in streams:
                self.readers.append(self._reader(stream, path))
        except OSError:
            self.abort()
            raise

    def subscribe(self) -> tuple[queue.SimpleQueue, int]:
        """A queue that gets (stream, bytes) for what the process writes from now on and
        (stream, None) when a stream ends; with the number of streams still open."""
        q = queue.SimpleQueue()
        with self.lock:
            self.listeners.add(q)
            return q, len(self.live)

    def unsubscribe(self, q: queue.SimpleQueue) -> None:
        with self.lock:
            self.listeners.discard(q)

    def _publish(self, stream: str, chunk: bytes | None) -> None:
        with self.lock:
            if chunk is None:
                self.live.discard(stream)
            for q in self.listeners:
                q.put((stream, chunk))

    def _reader(self, stream: str, path: str) -> fifos.Reader:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending = [""]

        def on_data(chunk: bytes) -> None:
            self._publish(stream, chunk)
            text = pending[0] + decoder.decode(chunk)
            if self.terminal:
                pending[0] = ""
                if text:
                    self.log.write(stream, text)
                return
            *lines, pending[0] = text.split("\n")
            for line in lines:
                self.log.write(stream, line + "\n")

        def on_eof() -> None:
            rest = pending[0] + decoder.decode(b"", final=True)
            if rest:
                self.log.write(stream, rest)
            self._publish(stream, None)
        return fifos.read_fifo(path, on_data, on_eof)

    def abort(self) -> None:
        """EOF for the streams still open (no task is going to write)."""
        for reader in self.readers:
            reader.finish()

    def wait(self, timeout: float = 5.0) -> None:
        for reader in self.readers:
            reader.done.wait(timeout)


def read(path: str, tail: int = -1) -> list[dict]:
    entries = []
    for p in [f"{path}.{n}" for n in range(KEEP, 0, -1)] + [path]:
        try:
            with open(p, "rb") as f:
                entries += [json.loads(line) for line in f if line.strip()]
        except (OSError, ValueError):
            continue
    return entries[-tail:] if tail >= 0 else entries


class Follower:
    """Entries of a container's log from the end of what read() returned on: the current file is
    opened once (its inode kept), and when rotation replaces it the rest of the old file is read
    before the new one."""

    def __init__(self, path: str, tail: int = -1):
        self.path = path
        self.file = None
        self.pending = b""
        try:
            self.file = open(path, "rb")
        except FileNotFoundError:
            pass
        entries = []
        for p in [f"{path}.{n}" for n in range(KEEP, 0, -1)]:
            entries += read_one(p)
        if self.file is not None:
            entries += self._read_lines()
        self.initial = entries[-tail:] if tail > 0 else [] if tail == 0 else entries

    def poll(self) -> list[dict]:
        out = []
        if self.file is None:
            try:
                self.file = open(self.path, "rb")
            except FileNotFoundError:
                return out
        while True:
            out += self._read_lines()
            try:
                rotated = os.stat(self.path).st_ino != os.fstat(self.file.fileno()).st_ino
            except FileNotFoundError:
                rotated = False
            if not rotated:
                return out
            out += self._read_lines()
            self.file.close()
            self.file, self.pending = open(self.path, "rb"), b""

    def _read_lines(self) -> list[dict]:
        data = self.pending + self.file.read()
        end = data.rfind(b"\n") + 1
        self.pending = data[end:]
        out = []
        for line in data[:end].splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
        return out

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def read_one(path: str) -> list[dict]:
    try:
        with open(path, "rb") as f:
            return [json.loads(line) for line in f if line.strip()]
    except (OSError, ValueError):
        return []
