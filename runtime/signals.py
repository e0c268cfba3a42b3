"""Signal names and numbers (Linux), without importing the `signal` module (it imports enum)."""
from runtime.errors import HawserError

SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7, "FPE": 8,
    "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14, "TERM": 15,
    "STKFLT": 16, "CHLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20, "TTIN": 21, "TTOU": 22,
    "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27, "WINCH": 28, "IO": 29,
    "POLL": 29, "PWR": 30, "SYS": 31,
}
SIGRTMIN, SIGRTMAX = 34, 64


def parse_signal(text: str) -> int:
    """`9`, `KILL`, `SIGKILL`, `sigkill`, `RTMIN+3` -> number; HawserError for anything else."""
    if text.isascii() and text.isdigit():
        num = int(text)
        if 1 <= num <= SIGRTMAX:
            return num
        raise HawserError(f"invalid signal number {text}")
    name = text.upper()
    if name.startswith("SIG"):
        name = name[3:]
    if name in SIGNALS:
        return SIGNALS[name]
    for base, num, sign in (("RTMIN", SIGRTMIN, 1), ("RTMAX", SIGRTMAX, -1)):
        if name == base:
            return num
        if name.startswith(base + ("+" if sign > 0 else "-")) and name[6:].isascii() and name[6:].isdigit():
            off = num + sign * int(name[6:])
            if SIGRTMIN <= off <= SIGRTMAX:
                return off
    raise HawserError(f"unknown signal {text!r}")
