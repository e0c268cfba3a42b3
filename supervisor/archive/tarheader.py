"""tar.py's headers: the errors, the entry, the fields of a header block and of PAX records
(ustar's prefix, GNU long names, base-256 numbers, signed and unsigned checksums), as Go's
archive/tar reads them."""
import os

BLOCK = 512
# types with no data whatever their size field says (hard and symbolic links, devices, dirs,
# fifos), as Go's archive/tar reads them
NO_DATA = frozenset(b"123456")
SPARSE, DUMPDIR, DIR = ord("S"), ord("D"), ord("5")


class TarError(Exception):
    """offset: the byte of the tar the problem is at; entry: the entry whose header or data it
    is in, if known; previous: the entry before (where a bad header is, for a reader)."""

    def __init__(self, message: str, offset: int, entry=None, previous=None):
        super().__init__(message)
        self.offset, self.entry, self.previous = offset, entry, previous


class Truncated(TarError):
    """The stream ended early, at `offset`: in the data of `entry`, in the header at
    `header_at`, or at a header's boundary (`boundary`: a tar without its end-of-archive
    marker; offset 0 for an empty stream)."""

    def __init__(self, offset: int, header_at: int, entry=None, boundary: bool = False,
                 previous=None):
        if entry is not None:
            where = f"in the data of {entry.label()!r}"
        elif boundary:
            where = "with no end-of-archive marker"
        else:
            where = f"in the header at byte {header_at}"
        super().__init__(f"the tar ends at byte {offset}, {where}", offset, entry, previous)
        self.header_at, self.boundary = header_at, boundary


class BadChecksum(TarError):
    def __init__(self, offset: int, previous=None):
        super().__init__(f"bad tar header at byte {offset}: checksum mismatch (not a tar, or a "
                         "corrupt one)", offset, None, previous)


class BadHeader(TarError):
    """`reason` says what is wrong with the header (or PAX record) at offset."""

    def __init__(self, offset: int, reason: str, previous=None):
        super().__init__(f"bad tar header at byte {offset}: {reason}", offset, None, previous)
        self.reason = reason


class Unsupported(TarError):
    """An entry no reader should take as it is: a sparse file (its data is a map and the
    pieces, not the file)."""

    def __init__(self, entry, reason: str):
        super().__init__(f"{entry.label()!r}: {reason}", entry.offset, entry)
        self.reason = reason


class Entry:
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns", "atime_ns",
                 "linkname", "devmajor", "devminor", "xattrs", "offset")

    def label(self) -> str:
        """The name for a message."""
        return self.name.decode(errors="backslashreplace")

    @property
    def path(self) -> str:
        """The name as a str (bytes that are no UTF-8 kept, as os.fsdecode does)."""
        return os.fsdecode(self.name)

    @property
    def is_regular(self) -> bool:
        return self.type in b"07"


def parse_entry(f, kind: int, size: int, at: int, pax: dict, longname, longlink, previous):
    """(the Entry of the header fields f at byte at, with what the PAX records and GNU long
    names before it say; the bytes of data that follow its header)."""
    e = Entry()
    e.offset = at
    name = f[0].split(b"\0", 1)[0]
    if f[9] == b"ustar\0" and f[15][0]:       # POSIX's prefix (GNU's "ustar  " has none)
        name = f[15].split(b"\0", 1)[0] + b"/" + name
    e.name = pax.get(b"path", longname or name)
    e.linkname = pax.get(b"linkpath", longlink or f[8].split(b"\0", 1)[0])
    if kind == 0:
        kind = DIR if e.name.endswith(b"/") else ord("0")   # an old v7 tar's entry
    e.type = kind
    if kind == SPARSE or pax and any(k.startswith(b"GNU.sparse.") for k in pax):
        # GNU's old sparse type, or the PAX records of `tar --sparse --format=posix`, which
        # come with a plain regular type: read as a file, its data would be the sparse map
        # and the pieces, silently wrong (GNU.sparse.name is then its real name)
        e.name = pax.get(b"GNU.sparse.name", e.name)
        raise Unsupported(e, "a sparse file (GNU tar's --sparse): sparse files are not "
                          "supported")
    e.mode = number(f[1], at, "mode", previous) & 0o7777
    e.uid = _pax_int(pax, b"uid", at) if b"uid" in pax else number(f[2], at, "uid", previous)
    e.gid = _pax_int(pax, b"gid", at) if b"gid" in pax else number(f[3], at, "gid", previous)
    e.size = data = _pax_int(pax, b"size", at) if b"size" in pax else size
    if kind in NO_DATA:
        e.size = data = 0
    elif kind == DUMPDIR:              # a GNU dumpdir: a directory; its listing is no file
        e.size, e.type = 0, DIR
    e.mtime_ns = _pax_time(pax[b"mtime"], at) if b"mtime" in pax \
        else number(f[5], at, "mtime", previous) * 1_000_000_000
    e.atime_ns = _pax_time(pax[b"atime"], at) if b"atime" in pax else e.mtime_ns
    devices = kind in b"34"
    e.devmajor = number(f[13], at, "devmajor", previous) if devices else 0
    e.devminor = number(f[14], at, "devminor", previous) if devices else 0
    e.xattrs = {k[13:]: v for k, v in pax.items() if k.startswith(b"SCHILY.xattr.")}
    return e, data


def check_sum(block: bytes, at: int, previous=None) -> None:
    field = block[148:156]
    try:
        want = int(field.split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        want = -1
    unsigned = sum(block) - sum(field) + 8 * ord(" ")
    if want == unsigned:
        return
    # some old tars summed the bytes as signed chars (counted only when the sum is off)
    high = sum(1 for b in block if b > 127) - sum(1 for b in field if b > 127)
    if want != unsigned - 256 * high:
        raise BadChecksum(at, previous)


# the 8-byte fields (mode, uid, gid) of a layer take a few values, again and again: parsed once
_SEEN: dict[bytes, int] = {}
_SEEN_MAX = 4096


def number(field: bytes, at: int, what: str, previous=None) -> int:
    """An octal field, or GNU's base-256: the top bit set, the 0x40 bit the sign, the rest of
    the field a two's complement number (a big uid or size, a negative mtime)."""
    value = _SEEN.get(field)
    if value is not None:
        return value
    if not field[0] & 0x80:
        digits = field.split(b"\0", 1)[0].strip(b" ")
        if digits.isdigit():                 # not int()'s signs, underscores or inner spaces
            try:
                value = int(digits, 8)
            except ValueError:
                pass                         # an 8 or a 9
            else:
                if len(field) == 8 and len(_SEEN) < _SEEN_MAX:
                    _SEEN[field] = value
                return value
        elif not digits:
            return 0
        raise BadHeader(at, f"{what} {digits!r} is not a number", previous)
    value = int.from_bytes(bytes([field[0] & 0x7f]) + field[1:], "big")
    if field[0] & 0x40:
        value -= 1 << (8 * len(field) - 1)
        if what != "mtime":
            raise BadHeader(at, f"negative {what}", previous)
    return value


def pax_records(data: bytes, at: int) -> dict[bytes, bytes]:
    """"<length> <key>=<value>\\n" records, the length counting the whole record; an empty
    value unsets the key (but an empty xattr is one)."""
    out, pos = {}, 0
    while pos < len(data) and data[pos]:
        try:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
        except ValueError:
            raise BadHeader(at, "bad PAX record") from None
        record = data[space + 1:pos + length]
        if length <= space - pos or pos + length > len(data) or not record.endswith(b"\n") \
                or b"=" not in record:
            raise BadHeader(at, "bad PAX record")
        key, _, value = record[:-1].partition(b"=")
        if value or key.startswith(b"SCHILY.xattr."):
            out[key] = value
        else:
            out.pop(key, None)
        pos += length
    return out


def _pax_int(pax, key: bytes, at: int) -> int:
    try:
        value = int(pax[key])
    except ValueError:
        raise BadHeader(at, f"PAX {key.decode()}={pax[key]!r} is not a number") from None
    if value < 0:
        raise BadHeader(at, f"PAX {key.decode()} is negative")
    return value


def _pax_time(value: bytes, at: int) -> int:
    """Seconds with an optional fraction ("1700000000.123456789") in nanoseconds, exactly."""
    sign = -1 if value.startswith(b"-") else 1
    whole, _, frac = value.lstrip(b"-").partition(b".")
    try:
        return sign * (int(whole or b"0") * 1_000_000_000 + int((frac + b"000000000")[:9]))
    except ValueError:
        raise BadHeader(at, f"PAX time {value!r} is not a time") from None
