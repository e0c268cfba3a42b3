"""A streaming reader of the tar formats layers come in (ustar, PAX, GNU long names, old v7),
hashing every byte it reads: the layer's diff id is the sha256 of its uncompressed tar. Written
here rather than through tarfile: tarfile's stream mode copies its whole read buffer on every
512-byte header, and the entries' data should go straight from the decompressor's chunks into
the files (memoryview slices, no copies). Names stay bytes, as they are in the archive."""
import hashlib
import struct

from supervisor.snapshots.compression import LayerError

BLOCK = 512
CHUNK = 1 << 20
META_LIMIT = 1 << 20         # a PAX header or a GNU long name larger than this is refused
HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12x")
REGULAR = frozenset(b"0\x007")
# entry types whose size field is ignored (they carry no data), as Go's archive/tar does
NO_DATA = frozenset(b"123456")
SUPPORTED = frozenset(b"\x0001234567D")


class Truncated(LayerError):
    pass


class Entry:
    __slots__ = ("name", "type", "mode", "uid", "gid", "size", "mtime_ns", "atime_ns",
                 "linkname", "devmajor", "devminor", "xattrs")

    def label(self) -> str:
        return self.name.decode(errors="backslashreplace")


class TarReader:
    def __init__(self, stream):
        self.stream = stream
        self.sha = hashlib.sha256()
        self.chunk, self.pos = b"", 0
        self.offset = 0             # bytes of the tar consumed so far (for error messages)

    @property
    def diff_id(self) -> str:
        return "sha256:" + self.sha.hexdigest()

    # -- the byte stream ----------------------------------------------------------------------
    def _more(self) -> bool:
        data = self.stream.read(CHUNK)
        if not data:
            return False
        self.sha.update(data)
        self.chunk, self.pos = data, 0
        return True

    def read(self, n: int) -> bytes:
        end = self.pos + n
        if end <= len(self.chunk):
            self.pos = end
            self.offset += n
            return self.chunk[end - n:end]
        parts, need = [self.chunk[self.pos:]], n - (len(self.chunk) - self.pos)
        while need:
            if not self._more():
                raise Truncated(f"unexpected end of layer at byte {self.offset}")
            piece = self.chunk[:need]
            parts.append(piece)
            self.pos = len(piece)
            need -= len(piece)
        self.offset += n
        return b"".join(parts)

    def pieces(self, n: int):
        """The next n bytes as memoryview slices of the stream's chunks (valid until the next
        piece is asked for)."""
        while n:
            if self.pos == len(self.chunk) and not self._more():
                raise Truncated(f"unexpected end of layer at byte {self.offset}")
            take = min(n, len(self.chunk) - self.pos)
            yield memoryview(self.chunk)[self.pos:self.pos + take]
            self.pos += take
            self.offset += take
            n -= take

    def skip(self, n: int) -> None:
        for _ in self.pieces(n):
            pass

    def drain(self) -> None:
        """Everything after the end-of-archive marker still counts in the diff id."""
        self.chunk, self.pos = b"", 0
        while self._more():
            pass

    # -- entries ------------------------------------------------------------------------------
    def entries(self):
        """Entries in archive order; after the last one the stream is drained. The caller must
        consume an entry's data (pieces/skip of entry.size) before asking for the next."""
        while True:
            e = self._next()
            if e is None:
                self.drain()
                return
            start = self.offset
            yield e
            # what the caller left of the data, and the padding to a whole block
            self.skip(e.size - (self.offset - start) + (-e.size % BLOCK))

    def _next(self) -> Entry | None:
        pax: dict[bytes, bytes] = {}
        longname = longlink = None
        while True:
            at = self.offset
            if self.pos == len(self.chunk) and not self._more():
                raise Truncated(f"unexpected end of layer at byte {at}: no end-of-archive "
                                "marker")
            block = self.read(BLOCK)
            if block.count(0) == BLOCK:
                return None
            f = HEADER.unpack(block)
            _check_sum(block, at)
            kind = f[7][0] if f[7] else 0
            size = _number(f[4], at)
            if kind in b"xgLK":
                if size > META_LIMIT:
                    raise LayerError(f"tar header at byte {at}: {size} bytes of metadata, "
                                     f"more than {META_LIMIT} allowed")
                data = self.read(size)
                self.skip(-size % BLOCK)
                if kind == ord("x"):
                    pax.update(_pax_records(data, at))
                elif kind == ord("L"):
                    longname = data.split(b"\0", 1)[0]
                elif kind == ord("K"):
                    longlink = data.split(b"\0", 1)[0]
                continue         # "g" (a global header, git archive's comment): ignored
            return self._entry(f, kind, size, at, pax, longname, longlink)

    def _entry(self, f, kind, size, at, pax, longname, longlink) -> Entry:
        e = Entry()
        name = f[0].split(b"\0", 1)[0]
        if f[9] == b"ustar\0" and f[15][0]:
            name = f[15].split(b"\0", 1)[0] + b"/" + name
        e.name = pax.get(b"path", longname or name)
        e.linkname = pax.get(b"linkpath", longlink or f[8].split(b"\0", 1)[0])
        if kind == 0:
            kind = ord("5") if e.name.endswith(b"/") else ord("0")   # an old v7 tar's entry
        if kind not in SUPPORTED:
            if b"GNU.sparse.major" in pax or kind == ord("S"):
                raise LayerError(f"layer entry {e.label()!r}: sparse files are not supported")
            raise LayerError(f"layer entry {e.label()!r}: unsupported tar entry type "
                             f"{chr(kind)!r}")
        e.type = kind
        e.mode = _number(f[1], at) & 0o7777
        e.uid = _pax_int(pax, b"uid", at) if b"uid" in pax else _number(f[2], at)
        e.gid = _pax_int(pax, b"gid", at) if b"gid" in pax else _number(f[3], at)
        e.size = _pax_int(pax, b"size", at) if b"size" in pax else size
        if kind in NO_DATA:
            e.size = 0
        elif kind == ord("D"):
            self.skip(e.size + (-e.size % BLOCK))    # a GNU dumpdir: its listing is no file
            e.size, e.type = 0, ord("5")
        e.mtime_ns = _pax_time(pax[b"mtime"], at) if b"mtime" in pax \
            else _number(f[5], at) * 1_000_000_000
        e.atime_ns = _pax_time(pax[b"atime"], at) if b"atime" in pax else e.mtime_ns
        e.devmajor = _number(f[13], at) if kind in b"34" else 0
        e.devminor = _number(f[14], at) if kind in b"34" else 0
        e.xattrs = {k[13:]: v for k, v in pax.items() if k.startswith(b"SCHILY.xattr.")}
        return e


def _check_sum(block: bytes, at: int) -> None:
    field = block[148:156]
    try:
        want = int(field.split(b"\0", 1)[0].strip() or b"-1", 8)
    except ValueError:
        want = -1
    unsigned = sum(block) - sum(field) + 8 * ord(" ")
    if want == unsigned:
        return
    # some old tars summed the bytes as signed chars
    high = sum(1 for b in block if b > 127) - sum(1 for b in field if b > 127)
    if want != unsigned - 256 * high:
        raise LayerError(f"bad tar header at byte {at}: checksum mismatch (not a tar, or a "
                         "corrupt one)")


def _number(field: bytes, at: int) -> int:
    if field and field[0] & 0x80:        # base-256 (GNU): a big uid, size or a negative mtime
        return int.from_bytes(field, "big", signed=True) if field[0] == 0xff \
            else int.from_bytes(field[1:], "big")
    digits = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(digits, 8) if digits else 0
    except ValueError:
        raise LayerError(f"bad tar header at byte {at}: {digits!r} is not a number") from None


def _pax_records(data: bytes, at: int) -> dict[bytes, bytes]:
    out, pos = {}, 0
    while pos < len(data) and data[pos]:
        try:
            space = data.index(b" ", pos)
            length = int(data[pos:space])
        except ValueError:
            raise LayerError(f"bad PAX header at byte {at}") from None
        record = data[space + 1:pos + length]
        if length <= space - pos or not record.endswith(b"\n") or b"=" not in record:
            raise LayerError(f"bad PAX header at byte {at}")
        key, _, value = record[:-1].partition(b"=")
        if value or key.startswith(b"SCHILY.xattr."):
            out[key] = value
        else:
            out.pop(key, None)          # an empty value unsets the field
        pos += length
    return out


def _pax_int(pax, key: bytes, at: int) -> int:
    try:
        value = int(pax[key])
    except ValueError:
        raise LayerError(f"bad PAX header at byte {at}: {key.decode()}={pax[key]!r}") from None
    if value < 0:
        raise LayerError(f"bad PAX header at byte {at}: negative {key.decode()}")
    return value


def _pax_time(value: bytes, at: int) -> int:
    """Seconds with an optional fraction ("1700000000.123456789") in nanoseconds, exactly."""
    sign = -1 if value.startswith(b"-") else 1
    whole, _, frac = value.lstrip(b"-").partition(b".")
    try:
        return sign * (int(whole or b"0") * 1_000_000_000 + int((frac + b"000000000")[:9]))
    except ValueError:
        raise LayerError(f"bad PAX header at byte {at}: time {value!r}") from None
