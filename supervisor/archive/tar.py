"""A tar read once, front to back, from a stream with readinto() (a file, a pipe, a
decompressor of compression.py): ustar, PAX, GNU long names, old v7, base-256 numbers, both
checksum conventions. Written here rather than through tarfile: tarfile's stream mode copies
its whole read buffer on every 512-byte header, and an entry's data should go to its consumer
in big chunks (memoryview slices, no copy) straight from what the stream gives: a
decompressor's output as it made it, a file's or a pipe's bytes read into one reused buffer.
Headers are parsed from the same chunks, not read 512 bytes at a time.

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
        # a decompressor's output is read as it comes (new bytes each time: a copy into a
        # buffer would be one more), anything else into one buffer of our own
        self._read_chunk = stream.read_chunk if getattr(stream, "chunked", False) else None
        readinto = getattr(stream, "readinto", None)
        self._readinto = readinto if readinto is not None else _readinto_of(stream)
        self.tap = tap
        self.chunk = chunk
        self.own = memoryview(bytearray(chunk)) if self._read_chunk is None else None
        self.view = memoryview(b"")
        self.start = self.end = 0      # the bytes read and not yet consumed: view[start:end]
        self.read_total = 0            # bytes the stream gave so far
        self.current: Entry | None = None
        self.previous: Entry | None = None   # for messages about the header after it
        self._left = self._pad = 0     # the current entry's data not consumed; what follows it

    @property
    def offset(self) -> int:
        """Bytes of the tar consumed so far."""
        return self.read_total - (self.end - self.start)

    # -- the byte stream ------------------------------------------------------------------------
    def _refill(self, want: int) -> int:
        """What was read is consumed: the stream's next bytes, at least `want` of them where it
        has them (a pipe gives 64 KiB a read: the consumer gets bigger pieces, so fewer writes
        and hash updates); how many (0: the end)."""
        if self._read_chunk is not None:
            self.view = memoryview(self._read_chunk(self.chunk))
            n = len(self.view)
            if n and self.tap is not None:
                self.tap(self.view)
        else:
            self.view, n = self.own, 0
            while n < want:
                got = self._readinto(self.own[n:]) or 0
                if not got:
                    break
                if self.tap is not None:
                    self.tap(self.own[n:n + got])
                n += got
        self.read_total += n
        self.start, self.end = 0, n
        return n

    def _pieces(self, n: int, header_at: int = -1, data: bool = False):
        """The next n bytes as memoryview slices of what was read, each consumed as it is given
        (data: the current entry's, counted off what is left of it)."""
        while n:
            if self.start == self.end and not self._refill(min(n, self.chunk)):
                raise Truncated(self.offset, header_at, self.current, False, self.previous)
            take = min(n, self.end - self.start)
            piece = self.view[self.start:self.start + take]
            self.start += take
            n -= take
            if data:
                self._left -= take
            yield piece

    def _skip(self, n: int) -> None:
        if n <= self.end - self.start:      # most often: it is there already
            self.start += n
            return
        for _ in self._pieces(n):
            pass

    def drain(self) -> None:
        """The rest of the stream, through the tap."""
        while self._refill(self.chunk):
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
        if self.end - self.start >= BLOCK:
            block = bytes(self.view[self.start:self.start + BLOCK])
            self.start += BLOCK
            return block
        parts, got = [], 0              # across two reads of the stream
        while got < BLOCK:
            if self.start == self.end and not self._refill(BLOCK - got):
                raise Truncated(at + got, at, None, got == 0, self.previous)
            take = min(BLOCK - got, self.end - self.start)
            parts.append(bytes(self.view[self.start:self.start + take]))
            self.start += take
            got += take
        return b"".join(parts)

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
                if self.start == self.end and not self._refill(BLOCK):
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
