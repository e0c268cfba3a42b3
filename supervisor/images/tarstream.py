"""A tar read once, front to back, from a pipe: headers parsed here (ustar, GNU long names, pax)
so that a member's data goes to its consumer in large chunks straight from the file, without
tarfile's small-buffer stream; and an archive compressed as a whole (docker load takes
`docker save | gzip`) is decompressed on the way by magic bytes."""
import bz2
import lzma
import zlib

BLOCK = 512
CHUNK = 4 << 20
# compressed input fed at a time: a gzip bomb (1000:1) then costs at most ~256 MiB at once
COMPRESSED_CHUNK = 256 << 10
MAX_HEADER_DATA = 1 << 20          # a pax header or a GNU long name: more is not a name

REGULAR, HARDLINK, SYMLINK, DIRECTORY = "0", "1", "2", "5"
GNU_LONGNAME, GNU_LONGLINK, PAX, PAX_GLOBAL = "L", "K", "x", "g"


class TarError(Exception):
    pass


class Member:
    __slots__ = ("name", "type", "size", "linkname")

    def __init__(self, name: str, type_: str, size: int, linkname: str):
        self.name, self.type, self.size, self.linkname = name, type_, size, linkname

    @property
    def is_regular(self) -> bool:
        return self.type in (REGULAR, "\0", "7")


class Decompressed:
    """readinto() of a decompressor fed from `raw` (the archive is gzip, xz, bzip2 or zstd as a
    whole). gzip allows members one after another (pigz, concatenated files): each gets a new
    decompressor."""

    def __init__(self, raw, make, head: bytes, concatenated: bool = False):
        self.raw, self.make, self.concatenated = raw, make, concatenated
        self.d, self.pending, self.eof = make(), head, False
        self.out, self.pos = memoryview(b""), 0

    def readinto(self, buf) -> int:
        view = memoryview(buf)
        while self.pos >= len(self.out):
            if self.eof:
                return 0
            data = self.pending or self.raw.read(COMPRESSED_CHUNK)
            self.pending = b""
            if not data:
                self.eof = True
                if not getattr(self.d, "eof", True):
                    raise TarError("the compressed archive is truncated")
                return 0
            try:
                self.out, self.pos = memoryview(self.d.decompress(data)), 0
            except Exception as e:     # zlib.error, LZMAError, OSError, zstandard.ZstdError
                raise TarError(f"the compressed archive is corrupt: {e}") from None
            if self.concatenated and self.d.eof and self.d.unused_data:
                self.pending, self.d = self.d.unused_data, self.make()
        n = min(len(view), len(self.out) - self.pos)
        view[:n] = self.out[self.pos:self.pos + n]
        self.pos += n
        return n


def open_stream(fileobj):
    """A readinto()-able stream of the tar in fileobj, decompressing by magic bytes."""
    head = b""
    while len(head) < 6:            # an unbuffered pipe may give fewer bytes than asked
        more = fileobj.read(6 - len(head))
        if not more:
            break
        head += more
    if head[:2] == b"\x1f\x8b":
        return Decompressed(fileobj, lambda: zlib.decompressobj(31), head, concatenated=True)
    if head[:6] == b"\xfd7zXZ\x00":
        return Decompressed(fileobj, lzma.LZMADecompressor, head)
    if head[:3] == b"BZh":
        return Decompressed(fileobj, bz2.BZ2Decompressor, head)
    if head[:4] == b"\x28\xb5\x2f\xfd":
        import zstandard
        return Decompressed(fileobj, zstandard.ZstdDecompressor().decompressobj, head)
    return Prefixed(fileobj, head)


class Prefixed:
    """fileobj with the bytes already read for the magic put back in front."""

    def __init__(self, raw, head: bytes):
        self.raw, self.head = raw, head
        self._readinto = getattr(raw, "readinto", None)

    def readinto(self, buf) -> int:
        if self.head:
            n = min(len(buf), len(self.head))
            buf[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        if self._readinto is not None:
            return self._readinto(buf) or 0
        data = self.raw.read(len(buf))
        buf[:len(data)] = data
        return len(data)


class TarReader:
    """Members in archive order: `for m in reader:` then `reader.chunks(m)` (or nothing: the
    data is skipped). The end-of-archive blocks are required: a tar cut short at a member's
    boundary is truncated too."""

    def __init__(self, stream):
        self.stream = stream
        self.buf = bytearray(CHUNK)
        self.offset = 0                  # bytes of tar read so far
        self._unread = 0                 # data (plus padding) of the current member not read
        self._current = None

    def _fill(self, view, what: str) -> None:
        got = 0
        while got < len(view):
            n = self.stream.readinto(view[got:])
            if not n:
                if self.offset + got == 0:
                    raise TarError("empty file, not a tar archive")
                raise TarError(f"truncated at byte {self.offset + got} ({what})")
            got += n
        self.offset += got

    def _block(self, what: str) -> bytes:
        block = bytearray(BLOCK)
        self._fill(memoryview(block), what)
        return bytes(block)

    def chunks(self, member: Member):
        """The member's data in chunks (memoryviews valid until the next one)."""
        if member is not self._current:
            raise TarError(f"{member.name}: not the current member")
        left = member.size
        view = memoryview(self.buf)
        while left:
            n = min(left, len(view))
            self._fill(view[:n], f"in member {member.name}")
            left -= n
            self._unread -= n
            yield view[:n]
        self._skip_rest(member)

    def _skip_rest(self, member: Member) -> None:
        view = memoryview(self.buf)
        while self._unread:
            n = min(self._unread, len(view))
            self._fill(view[:n], f"in member {member.name}")
            self._unread -= n

    def _data(self, size: int, what: str) -> bytes:
        if size > MAX_HEADER_DATA:
            raise TarError(f"{what}: {size} bytes of header data")
        padded = -(-size // BLOCK) * BLOCK
        data = bytearray(padded)
        self._fill(memoryview(data), what)
        return bytes(data[:size])

    def __iter__(self):
        pax: dict[str, str] = {}
        long_name = long_link = None
        while True:
            if self._current is not None:
                self._skip_rest(self._current)
                self._current = None
            at = self.offset
            block = self._block("no end-of-archive blocks" if at else "no header")
            if block == bytes(BLOCK):
                return          # what follows the end (a second zero block, padding) is not read
            name, type_, size, linkname = _header(block, at)
            if type_ in (GNU_LONGNAME, GNU_LONGLINK, PAX, PAX_GLOBAL):
                data = self._data(size, f"header at byte {at}")
                if type_ == GNU_LONGNAME:
                    long_name = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif type_ == GNU_LONGLINK:
                    long_link = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
                elif type_ == PAX:
                    pax = _pax(data, at)
                continue
            name = pax.get("path", long_name or name)
            linkname = pax.get("linkpath", long_link or linkname)
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise TarError(f"header at byte {at}: pax size {pax['size']!r}") from None
            pax, long_name, long_link = {}, None, None
            has_data = type_ not in (HARDLINK, SYMLINK, DIRECTORY, "3", "4", "6")
            member = Member(name, type_, size if has_data else 0, linkname)
            self._current = member
            self._unread = -(-member.size // BLOCK) * BLOCK
            yield member


def _number(field: bytes, what: str) -> int:
    if field[:1] and field[0] & 0x80:                 # GNU base-256
        value = int.from_bytes(field[1:], "big")
        return value if not field[0] & 0x40 else value - (1 << (8 * len(field) - 2))
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarError(f"{what}: {bytes(field)!r} is not a number") from None


def _header(block: bytes, at: int) -> tuple[str, str, int, str]:
    try:
        stored = _number(block[148:156], "checksum")
    except TarError:
        stored = -1
    unsigned = sum(block[:148]) + 256 + sum(block[156:])
    signed = unsigned - 2 * sum(b for b in block[:148] + block[156:] if b > 127)
    if stored not in (unsigned, signed):
        raise TarError(f"not a tar archive, or corrupt: bad header checksum at byte {at}")
    name = block[:100].split(b"\0", 1)[0]
    if block[257:263] == b"ustar\x00":       # POSIX: a prefix; GNU ("ustar  ") uses it otherwise
        prefix = block[345:500].split(b"\0", 1)[0]
        if prefix:
            name = prefix + b"/" + name
    size = _number(block[124:136], f"header at byte {at}: size")
    if size < 0:
        raise TarError(f"header at byte {at}: negative size")
    type_ = chr(block[156]) if block[156] else "0"
    linkname = block[157:257].split(b"\0", 1)[0]
    decode = lambda b: b.decode("utf-8", "surrogateescape")   # noqa: E731
    return decode(name), type_, size, decode(linkname)


def _pax(data: bytes, at: int) -> dict[str, str]:
    """pax records: "<length> <key>=<value>\\n", the length counting the whole record."""
    out, pos = {}, 0
    while pos < len(data):
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarError(f"pax header at byte {at}: bad record") from None
        record = data[space + 1:pos + length - 1]
        if length <= 0 or pos + length > len(data) or b"=" not in record:
            raise TarError(f"pax header at byte {at}: bad record")
        key, _, value = record.partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out
