"""A tar read once, front to back, from a stream with readinto() (a file, a pipe, a
decompressor of compression.py): ustar, PAX, GNU long names, old v7, base-256 numbers, both
checksum conventions. Written here rather than through tarfile: tarfile's stream mode copies
its whole read buffer on every 512-byte header, and an entry's data should go to its consumer
in big chunks, straight from one reused buffer the stream fills (memoryview slices, no copy;
headers are parsed from it too, not read 512 bytes at a time).

`tap`, when given, sees every byte read, in order (a layer's diff_id is the sha256 of its
whole uncompressed tar), and the stream is then read to its end after the end-of-archive
marker: what follows the marker counts too. Names stay bytes, as they are in the archive.

Errors are TarErrors that carry where (`offset`, the entry concerned): callers word them
(LayerError, ArchiveError) and wrap them."""
import struct

from supervisor.archive.tarheader import (BadChecksum, BadHeader, Entry, TarError, Truncated,
                                          Unsupported, check_sum, number, parse_entry,
                                          pax_records)

__all__ = ["TarReader", "Entry", "TarError", "Truncated", "BadChecksum", "BadHeader",
           "Unsupported", "BLOCK", "REGULAR", "LINK", "SYMLINK", "CHAR", "BLOCKDEV", "DIR",
           "FIFO", "CONTIGUOUS"]

BLOCK = 512
CHUNK = 1 << 20            # the buffer the stream fills: data comes out in pieces this big
META_LIMIT = 1 << 20       # a PAX header or a GNU long name larger than this is no name
ZERO = bytes(BLOCK)
REGULAR, LINK, SYMLINK, CHAR, BLOCKDEV, DIR, FIFO, CONTIGUOUS = b"01234567"
META_TYPES = frozenset(b"xgLK")
HEADER = struct.Struct("100s8s8s8s12s12s8s1s100s6s2s32s32s8s8s155s12x")


class TarReader:
    """`for entry in reader:` in archive order; an entry's data is `reader.chunks(entry)`
    (memoryviews valid until the next one is asked for), or `reader.read_all(entry)`; what
    the caller leaves of it is skipped. The end-of-archive marker is required."""

    def __init__(self, stream, tap=None, chunk: int = CHUNK):
        readinto = getattr(stream, "readinto", None)
        self._readinto = readinto if readinto is not None else _readinto_of(stream)
        self.tap = tap
        self.buf = bytearray(chunk)
        self.view = memoryview(self.buf)
        self.start = self.end = 0      # the bytes read and not yet consumed: buf[start:end]
        self.read_total = 0            # bytes the stream gave so far
        self.current: Entry | None = None
        self.previous: Entry | None = None   # for messages about the header after it
        self._left = self._pad = 0     # the current entry's data not consumed; what follows it

    @property
    def offset(self) -> int:
        """Bytes of the tar consumed so far."""
        return self.read_total - (self.end - self.start)

    # -- the byte stream ------------------------------------------------------------------------
    def _read(self, at: int) -> int:
        n = self._readinto(self.view[at:]) or 0
        if n:
            if self.tap is not None:
                self.tap(self.view[at:at + n])
            self.read_total += n
        return n

    def _fill(self, need: int) -> int:
        """At least `need` contiguous bytes at buf[start:] (fewer: the stream ended); how many."""
        have = self.end - self.start
        if have >= need:
            return have
        # what is left (under a block) goes to the front and the stream fills the rest: one
        # big read, not one per header (a copy first: the two ranges may overlap)
        self.buf[:have] = self.buf[self.start:self.end]
        self.start, self.end = 0, have
        while self.end < need:
            n = self._read(self.end)
            if not n:
                break
            self.end += n
        return self.end

    def _pieces(self, n: int, header_at: int = -1, data: bool = False):
        """The next n bytes as memoryview slices of the buffer, each consumed as it is given
        (data: the current entry's, counted off what is left of it)."""
        while n:
            if self.start == self.end:
                self.start = self.end = 0
                self.end = self._read(0)
                if not self.end:
                    raise Truncated(self.offset, header_at, self.current, False, self.previous)
                # a pipe gives 64 KiB a read: the consumer gets bigger pieces (fewer writes,
                # hash updates) when the buffer fills up to what is wanted first
                while self.end < min(n, len(self.buf)):
                    got = self._read(self.end)
                    if not got:
                        break
                    self.end += got
            take = min(n, self.end - self.start)
            piece = self.view[self.start:self.start + take]
            self.start += take
            n -= take
            if data:
                self._left -= take
            yield piece

    def _skip(self, n: int) -> None:
        if n <= self.end - self.start:      # most often: it is in the buffer already
            self.start += n
            return
        for _ in self._pieces(n):
            pass

    def drain(self) -> None:
        """The rest of the stream, through the tap."""
        self.start = self.end = 0
        while self._read(0):
            pass

    # -- entries --------------------------------------------------------------------------------
    def chunks(self, entry: Entry):
        if entry is not self.current:
            raise ValueError(f"{entry.label()!r}: not the current entry")
        return self._pieces(self._left, data=True)

    def read_all(self, entry: Entry) -> bytes:
        return b"".join(bytes(c) for c in self.chunks(entry))

    def __iter__(self):
        while True:
            if self.current is not None:        # what the caller left, and the padding
                self._skip(self._left + self._pad)
                self.previous, self.current = self.current, None
            entry = self._next()
            if entry is None:
                break
            yield entry
        if self.tap is not None:                # the marker is not the end of what is hashed
            self.drain()

    def _block(self, at: int) -> bytes:
        have = self._fill(BLOCK)
        if have < BLOCK:
            raise Truncated(at + have, at, None, have == 0, self.previous)
        block = bytes(self.view[self.start:self.start + BLOCK])
        self.start += BLOCK
        return block

    def _next(self) -> Entry | None:
        pax: dict[bytes, bytes] = {}
        longname = longlink = None
        while True:
            at = self.offset
            block = self._block(at)
            if block == ZERO:
                # the end is two zero blocks, or one and the end of the stream (as Go's
                # archive/tar, which containerd uses, reads it); a header after one zero block
                # is a damaged archive, not its end: the entries after it would be dropped
                # while a hash of the stream still matched
                if not self._fill(BLOCK):
                    return None
                if self._block(at + BLOCK) != ZERO:
                    raise BadHeader(at + BLOCK, "invalid tar header: a header after a single "
                                    "zero block (the end-of-archive marker is two)",
                                    self.previous)
                return None
            fields = HEADER.unpack(block)
            check_sum(block, at, self.previous)
            kind = fields[7][0] if fields[7] else 0
            size = number(fields[4], at, "size", self.previous)
            if kind not in META_TYPES:
                entry, data = parse_entry(fields, kind, size, at, pax, longname, longlink,
                                          self.previous)
                self.current, self._left = entry, entry.size
                self._pad = data - entry.size + -data % BLOCK
                return entry
            if size > META_LIMIT:
                raise BadHeader(at, f"{size} bytes of metadata, more than {META_LIMIT} allowed",
                                self.previous)
            data = b"".join(bytes(p) for p in self._pieces(size + -size % BLOCK, at))[:size]
            if kind == ord("x"):
                pax.update(pax_records(data, at))
            elif kind == ord("L"):
                longname = data.split(b"\0", 1)[0]
            elif kind == ord("K"):
                longlink = data.split(b"\0", 1)[0]
            # "g", a global header (git archive's commit id): nothing an entry takes from it


def _readinto_of(stream):
    """readinto() of a stream that only has read()."""
    def readinto(view) -> int:
        data = stream.read(len(view))
        view[:len(data)] = data
        return len(data)
    return readinto
