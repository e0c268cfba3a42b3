"""hawserctl's rendering of progress messages (id, status, current, total), docker's way. On a
terminal each id keeps one line, rewritten in place (cursor up, erase, write, cursor down) with
a bar while bytes move; a message without an id is a line of its own and ends the block of
lines being updated (docker's rule, so a later id never rewrites an earlier operation's
line). Anything else (a pipe, a file) gets one line per status change and no byte counts:
logs stay readable. Only os at import: hawserctl starts fast."""
import os

UNITS = ("B", "kB", "MB", "GB", "TB", "PB")
BAR_WIDTH = 50          # docker's
MIN_BAR = 10            # narrower than this, the bar is left out and the numbers stay
DEFAULT_COLUMNS = 80


def human_size(n: float) -> str:
    """docker's units.HumanSize: decimal units, 4 significant digits ("12.35MB")."""
    i = 0
    while n >= 1000 and i < len(UNITS) - 1:
        n /= 1000.0
        i += 1
    return f"{n:.4g}{UNITS[i]}"


def bar(current: int, total: int, room: int) -> str:
    """`[=====>      ]  12.3MB/45.6MB` in at most `room` columns (the bar shrinks first)."""
    if total <= 0:
        return human_size(current).rjust(8)
    numbers = f"{human_size(current).rjust(8)}/{human_size(total)}"
    width = min(BAR_WIDTH, room - len(numbers) - 3)
    if width < MIN_BAR:
        return numbers
    done = min(width, current * width // total)
    return f"[{'=' * done}>{' ' * (width - done)}] {numbers}"


class Display:
    """Call update(id, status, current, total) for each message, finish() at the end."""

    def __init__(self, stream, tty: bool | None = None):
        self.stream = stream
        self.tty = _isatty(stream) if tty is None else tty
        self.rows: dict[str, int] = {}       # id -> its line in the block being updated
        self.last: dict[str, str] = {}       # id -> the status printed last (not a tty)

    def __call__(self, ident: str, status: str, current: int = 0, total: int = 0) -> None:
        self.update(ident, status, current, total)

    def update(self, ident: str, status: str, current: int = 0, total: int = 0) -> None:
        if self.tty:
            self._terminal(ident, status, current or 0, total or 0)
        else:
            self._plain(ident, status)
        self.stream.flush()

    def _plain(self, ident: str, status: str) -> None:
        if not ident:
            self.stream.write(status + "\n")
            return
        if self.last.get(ident) != status:
            self.last[ident] = status
            self.stream.write(f"{ident}: {status}\n")

    def _terminal(self, ident: str, status: str, current: int, total: int) -> None:
        columns = _columns(self.stream)
        if not ident:
            self.rows.clear()
            self.stream.write(status[:columns - 1] + "\n")
            return
        text = f"{ident}: {status}"
        if current > 0 or total > 0:
            text += " " + bar(current, total, columns - 1 - len(text) - 1)
        text = text[:columns - 1]   # a wrapped line would throw the cursor arithmetic off
        row = self.rows.get(ident)
        if row is None:
            self.rows[ident] = len(self.rows)
            self.stream.write(f"\x1b[2K\r{text}\n")
            return
        up = len(self.rows) - row
        self.stream.write(f"\x1b[{up}A\x1b[2K\r{text}\x1b[{up}B\r")

    def finish(self) -> None:
        """The end of the output: later lines start below the block."""
        self.rows.clear()
        try:
            self.stream.flush()
        except (OSError, ValueError):
            pass


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def _columns(stream) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns or DEFAULT_COLUMNS
    except (AttributeError, ValueError, OSError):
        return DEFAULT_COLUMNS
