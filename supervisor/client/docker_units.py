"""docker's human units and times (go-units, Go's time formats) and the column alignment of
its tables (Go's text/tabwriter as docker's formatter sets it up). Stdlib `time` only: `ps`
and `images` use these on every call."""
import time

_DECIMAL = ("B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB")


def human_duration(seconds: float) -> str:
    """go-units' HumanDuration: "Less than a second", "About a minute", "5 minutes", ..."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = int(seconds / 60)
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = int(seconds / 3600 + 0.5)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{int(seconds / 3600) // 24 // 365} years"


def human_size(size: float, precision: int = 3) -> str:
    """go-units' HumanSizeWithPrecision (decimal units): "1.99MB", "4.1kB", "0B";
    precision 4 is its HumanSize."""
    i = 0
    while size >= 1000 and i < len(_DECIMAL) - 1:
        size /= 1000
        i += 1
    return f"{size:.{precision}g}{_DECIMAL[i]}"


def rfc3339_nano(seconds: int, nanos: int = 0) -> str:
    """Go's time.RFC3339Nano in UTC, as docker's JSON has times: fraction without trailing
    zeros, none when whole."""
    t = time.gmtime(seconds)
    text = f"{t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}T{t.tm_hour:02d}:{t.tm_min:02d}:" \
           f"{t.tm_sec:02d}"
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def go_time_utc(seconds: int, nanos: int = 0) -> str:
    """Go's Time.String() of a UTC time: 2006-01-02 15:04:05.999999999 +0000 UTC."""
    t = time.gmtime(seconds)
    frac = ("." + f"{nanos:09d}".rstrip("0")) if nanos else ""
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + frac + " +0000 UTC"


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m - 3 if m > 2 else m + 9) + 2) // 5 + d - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468


def parse_rfc3339(text: str) -> tuple[int, int] | None:
    """(seconds, nanos) of an RFC 3339 time (an image config's "created"), None if it is
    not one."""
    try:
        date, _, clock = text.replace("t", "T").partition("T")
        y, mo, d = (int(x) for x in date.split("-"))
        zone = len(clock)
        for i, ch in enumerate(clock):
            if ch in "Zz+-":
                zone = i
                break
        hms, _, frac = clock[:zone].partition(".")
        h, mi, sec = (int(x) for x in hms.split(":"))
        offset = 0
        tz = clock[zone:]
        if tz and tz not in ("Z", "z"):
            oh, om = (int(x) for x in tz[1:].split(":"))
            offset = (oh * 3600 + om * 60) * (-1 if tz[0] == "-" else 1)
        if not (1 <= mo <= 12 and 1 <= d <= 31 and h < 24 and mi < 60 and sec < 61) or \
                not tz or (frac and not frac.isdigit()):
            return None
    except ValueError:
        return None
    seconds = _days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset
    return seconds, int((frac + "0" * 9)[:9]) if frac else 0


def go_time_string(seconds: int) -> str:
    """Go's time.Unix(seconds, 0).String() in the local zone: 2006-01-02 15:04:05 -0700 MST."""
    t = time.localtime(seconds)
    off = t.tm_gmtoff // 60
    sign = "-" if off < 0 else "+"
    off = abs(off)
    return time.strftime("%Y-%m-%d %H:%M:%S", t) + f" {sign}{off // 60:02d}{off % 60:02d} " \
        f"{t.tm_zone or f'{sign}{off // 60:02d}{off % 60:02d}'}"


def timestamp_seconds(ts) -> float | None:
    """A google.protobuf.Timestamp as seconds; None when unset (or zero: never)."""
    if ts is None or (not ts.seconds and not ts.nanos):
        return None
    return ts.seconds + ts.nanos / 1e9


def _width(ch: str) -> int:
    """Display width of a rune, as docker's Ellipsis counts: East Asian wide ones are 2."""
    if ord(ch) < 0x1100:
        return 1
    import unicodedata
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def ellipsis(s: str, max_width: int) -> str:
    """docker's formatter.Ellipsis: cut to max_width display columns ending in "…"."""
    if max_width <= 0:
        return ""
    if max_width == 1:
        return s[:1]
    if s.isascii():
        return s if len(s) <= max_width else s[:max_width - 1] + "…"
    widths, total = [], 0
    for ch in s:
        total += _width(ch)
        widths.append(total)
    if total <= max_width:
        return s
    for i in range(len(widths) - 1):
        if widths[i] <= max_width - 1 < widths[i + 1]:
            return s[:i + 1] + "…"
    return s


def tabwrite(text: str, minwidth: int = 10, tabwidth: int = 1, padding: int = 3) -> str:
    """Go's text/tabwriter (padchar ' ', no flags, as docker's tables): tab-terminated cells
    of adjacent lines form a column, padded to its widest cell plus `padding`, at least
    `minwidth`; a line's last cell is not part of a column. Widths count runes."""
    lines = [line.split("\t") for line in text.split("\n")]
    out: list[str] = []

    def write_lines(line0: int, line1: int, widths: list) -> None:
        for i in range(line0, line1):
            cells = lines[i]
            for j, cell in enumerate(cells):
                out.append(cell)
                if j < len(widths) and j < len(cells) - 1:
                    out.append(" " * (widths[j] - len(cell)))
            if i + 1 < len(lines):
                out.append("\n")

    def format_block(line0: int, line1: int, widths: list) -> int:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:
                this += 1
                continue
            write_lines(line0, this, widths)
            line0 = this
            width = minwidth
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + padding)
                this += 1
            format_block(line0, this, widths + [width])
            line0 = this
        write_lines(line0, line1, widths)
        return line1

    format_block(0, len(lines), [])
    return "".join(out)
