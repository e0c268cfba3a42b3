"""hawserctl's side of a live session with a container's process: `run` (not detached),
`start -a`, `attach` and `exec -it`.

The client's terminal is put in raw mode when the process has a terminal (its pty does the
echo and line editing; ours must pass every key through, ^C included), its size is sent at
the start and on every SIGWINCH, and restored however the session ends.

Threads, queue and signals come from the C modules (_thread via shim.threads, _queue, _signal):
threading, queue and signal (enum) would add ~6 ms to every attached `hawserctl run`; the
terminal modules are imported only for a terminal."""
import _signal as signal
import os
import sys
from _queue import SimpleQueue

from shim import threads


def window_size(fd: int = 0) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on fd, None when fd is not a terminal."""
    import fcntl
    import struct
    import termios
    try:
        rows, cols, _, _ = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except OSError:
        return None
    return (rows, cols) if rows and cols else None


class RawTerminal:
    """Raw mode on stdin for the block, when `wanted` and stdin is a terminal."""

    def __init__(self, wanted: bool):
        self.saved = None
        if wanted and os.isatty(0):
            import termios
            self.saved = termios.tcgetattr(0)

    def __enter__(self):
        if self.saved is not None:
            import termios
            import tty
            tty.setraw(0, termios.TCSANOW)
        return self

    def __exit__(self, *exc) -> None:
        if self.saved is not None:
            import termios
            termios.tcsetattr(0, termios.TCSADRAIN, self.saved)


def on_resize(send) -> None:
    """send(rows, cols) now and whenever the client's terminal changes size."""
    def resized(*_):
        size = window_size()
        if size:
            send(*size)
    signal.signal(signal.SIGWINCH, resized)
    resized()


def in_thread(fn):
    """fn() run in a thread while this (the main) thread waits where signal handlers can run:
    a blocking RPC would hold SIGWINCH off until it returns."""
    result, done = {}, threads.Event()

    def run():
        try:
            result["value"] = fn()
        except BaseException as e:    # noqa: B036 - re-raised in the caller's thread
            result["error"] = e
        finally:
            done.set()
    threads.spawn(run)
    while not done.wait(0.5):
        pass
    if "error" in result:
        raise result["error"]
    return result["value"]


def write_out(stream: str, data: bytes) -> None:
    out = sys.stderr if stream == "stderr" else sys.stdout
    out.buffer.write(data)
    out.buffer.flush()


def attach(api, cid: str, stdin: bool, terminal: bool, when_attached=None) -> None:
    """Relay the container's output (and our stdin, resizes) until its output ends;
    when_attached() runs once the daemon has subscribed us (start -a starts the task there, so
    not a byte of the output is missed)."""
    requests = SimpleQueue()

    def request_stream():
        while (req := requests.get()) is not None:
            yield req

    requests.put(api.tpb.AttachRequest(container_id=cid))
    responses = api.t.Attach(request_stream())
    try:
        next(responses)    # attached
        if when_attached is not None:
            when_attached()
        if terminal:
            on_resize(lambda rows, cols: requests.put(api.tpb.AttachRequest(width=cols,
                                                                            height=rows)))
        else:
            proxy_signals(api, cid)
        if stdin:
            threads.spawn(pump_stdin, requests, api)
        for resp in responses:
            write_out(resp.stream, resp.data)
    finally:
        requests.put(None)


def proxy_signals(api, cid: str) -> None:
    """SIGINT, SIGTERM, SIGHUP and SIGQUIT to us go to the container (docker's --sig-proxy):
    ^C in a session without a terminal is for the process, which decides whether to exit.
    (With a terminal ^C is a byte on its way to the pty, whose line discipline signals.)"""
    def forward(signum, _frame):
        threads.spawn(api.t.Kill, api.tpb.KillRequest(container_id=cid, signal=signum))
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
        signal.signal(sig, forward)


def pump_stdin(requests: SimpleQueue, api) -> None:
    """Our stdin to the container's, then close its stdin at our EOF (as `docker run -i`)."""
    try:
        while data := os.read(0, 65536):
            requests.put(api.tpb.AttachRequest(stdin=data))
    except OSError:
        pass
    requests.put(api.tpb.AttachRequest(close_stdin=True))
