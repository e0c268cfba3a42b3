"""A compressed stream as its uncompressed bytes, the compression told by magic bytes as
containerd's DecompressStream does (media types and file names get it wrong often enough).
Which compressions a caller takes is its own choice: layers are gzip, zstd or plain
(LAYER), archives and rootfs tarballs may also be xz or bzip2 (ARCHIVE).

Every reader has readinto(buf) and read(n), bounds its output by len(buf) or n (a small blob
of a highly compressible stream must not become gigabytes in memory at once). gzip, xz and
bzip2 make their output as new bytes (zlib has no output buffer to give): `chunked` says so,
and their read_chunk(n) hands those bytes out as they are, not copied into the caller's buffer
(tar.TarReader reads them that way). Each fails with
Truncated or Corrupt on a stream that is cut short or damaged, never with a short stream that
looks finished. gzip, xz and bzip2 allow members one after another (pigz, pbzip2, `cat a.gz
b.gz`), NUL padding between and after them as gzip(1) and xz(1) do; zstd frames follow each
other natively."""
import bz2
import lzma
import zlib

import zstandard

from supervisor.archive.zstdframes import FrameError, Frames, is_skippable

PLAIN, GZIP, ZSTD, XZ, BZIP2, LZ4 = "", "gzip", "zstd", "xz", "bzip2", "lz4"
LAYER = frozenset((PLAIN, GZIP, ZSTD))
ARCHIVE = LAYER | {XZ, BZIP2}
MAGIC = ((b"\x1f\x8b", GZIP), (b"\x28\xb5\x2f\xfd", ZSTD), (b"\xfd7zXZ\x00", XZ),
         (b"BZh", BZIP2), (b"\x04\x22\x4d\x18", LZ4))
HEAD = 6                      # the longest magic
# compressed bytes read at a time: with the output bounded per read this is all a bomb costs
IN_CHUNK = 256 << 10


class CompressionError(Exception):
    """`format` names the compression (GZIP, ...)."""

    def __init__(self, message: str, format: str):
        super().__init__(message)
        self.format = format


class Unsupported(CompressionError):
    """A compression the caller does not take (or none can read here: lz4)."""


class Truncated(CompressionError):
    pass


class Corrupt(CompressionError):
    pass


def detect(head: bytes) -> str:
    """The compression whose magic head starts with, PLAIN for none."""
    for magic, name in MAGIC:
        if head.startswith(magic):
            return name
    if is_skippable(head):
        return ZSTD           # a zstd skippable frame (some writers start with one)
    return PLAIN


def open_stream(raw, allowed=ARCHIVE):
    """raw (a binary stream: a file, a pipe, anything with read or readinto) as its
    uncompressed bytes; closing the result closes raw. Unsupported for a compression not in
    allowed."""
    head = peek(raw, HEAD)
    fmt = detect(head)
    if fmt not in allowed or fmt == LZ4:
        raise Unsupported(f"{fmt}-compressed data", fmt)
    if fmt == GZIP:
        return _Members(raw, head, GZIP, lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))
    if fmt == XZ:
        return _Members(raw, head, XZ, lzma.LZMADecompressor)
    if fmt == BZIP2:
        return _Members(raw, head, BZIP2, bz2.BZ2Decompressor)
    if fmt == ZSTD:
        return _Zstd(raw, head)
    return _Plain(raw, head)


def peek(raw, n: int) -> bytes:
    """The first n bytes (fewer at the end): an unbuffered pipe gives what it has, maybe less."""
    data = b""
    while len(data) < n:
        more = raw.read(n - len(data))
        if not more:
            break
        data += more
    return data


class Stream:
    """What every reader shares: the peeked head given back first, read() and readinto() over
    read_chunk()."""
    format = PLAIN
    chunked = False            # read_chunk() is the way to read it: readinto() would copy

    def __init__(self, raw, head: bytes):
        self.raw, self.head = raw, head
        self._raw_readinto = getattr(raw, "readinto", None)

    def _raw(self, n: int = IN_CHUNK) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.raw.read(n) or b""

    def read(self, n: int = IN_CHUNK) -> bytes:
        return self.read_chunk(n)

    def readinto(self, buf) -> int:
        data = self.read_chunk(len(buf))
        buf[:len(data)] = data
        return len(data)

    def close(self) -> None:
        self.raw.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Plain(Stream):
    def read(self, n: int = IN_CHUNK) -> bytes:
        buf = bytearray(n)
        del buf[self.readinto(buf):]
        return bytes(buf)

    def readinto(self, buf) -> int:
        if self.head:
            n = len(self.head)              # HEAD bytes, less than any buffer the reader has
            buf[:n] = self.head
            self.head = b""
            return n
        if self._raw_readinto is not None:  # straight from the kernel into the caller's buffer
            return self._raw_readinto(buf) or 0
        data = self.raw.read(len(buf)) or b""
        buf[:len(data)] = data
        return len(data)


class _Members(Stream):
    """gzip, xz or bzip2: a decompressor per member. zlib keeps the input it did not get to in
    unconsumed_tail (to be given again); lzma and bz2 keep it themselves (needs_input)."""

    chunked = True

    def __init__(self, raw, head: bytes, fmt: str, make):
        super().__init__(raw, head)
        self.format, self.make = fmt, make
        self.magic = dict((name, magic) for magic, name in MAGIC)[fmt]
        self.d = make()
        self.zlib = fmt == GZIP
        self.done = False

    def read_chunk(self, n: int) -> bytes:
        if n <= 0:                   # (a max_length of 0 is no bound to zlib)
            return b""
        while not self.done:
            if self.d.eof:
                self._next_member()
                continue
            try:
                out = self._step(n)
            except (zlib.error, lzma.LZMAError, EOFError) as e:
                raise Corrupt(f"bad {self.format} data: {e}", self.format) from None
            except OSError as e:
                if e.errno is not None:      # the input's own (EIO...), not bz2's "Invalid data"
                    raise
                raise Corrupt(f"bad {self.format} data: {e}", self.format) from None
            if out:
                return out
        return b""

    def _step(self, n: int) -> bytes:
        d = self.d
        if self.zlib:
            data = d.unconsumed_tail or self._raw()
            if data:
                return d.decompress(data, n)
            out = d.flush()          # the input is all in: what zlib still holds, if anything
        elif not d.needs_input:
            return d.decompress(b"", n)
        else:
            data = self._raw()
            if data:
                return d.decompress(data, n)
            out = b""
        if not out and not d.eof:
            raise Truncated(f"the {self.format} stream is truncated", self.format)
        return out

    def _next_member(self) -> None:
        rest = self.d.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._raw()
            if not rest:
                self.done = True
                return
        if not rest.startswith(self.magic[:len(rest)]):
            raise Corrupt(f"bad {self.format} data: trailing garbage after the compressed "
                          "stream", self.format)
        self.d = self.make()
        self.head = rest + self.head


class _Zstd(Stream):
    """zstandard's stream reader decompresses straight into the caller's buffer, but takes a
    stream cut short for a finished one: a walk over the frames' block headers (a few per MiB,
    zstdframes.py) tells."""
    format = ZSTD

    def __init__(self, raw, head: bytes):
        super().__init__(raw, head)
        self.frames = Frames()
        self.reader = zstandard.ZstdDecompressor().stream_reader(
            _Walked(self), read_size=IN_CHUNK, read_across_frames=True)

    def read_chunk(self, n: int) -> bytes:
        return self._checked(self.reader.read, n)

    def readinto(self, buf) -> int:          # straight into buf: zstandard can
        return self._checked(self.reader.readinto, buf)

    def _checked(self, call, arg):
        try:
            out = call(arg)
            if not out:
                self.frames.finish()
        except zstandard.ZstdError as e:
            raise Corrupt(f"bad zstd data: {e}", ZSTD) from None
        except FrameError as e:
            raise (Truncated if e.truncated else Corrupt)(f"{e}", ZSTD) from None
        return out

    def close(self) -> None:
        self.reader.close()
        super().close()


class _Walked:
    """The compressed side as zstandard reads it: every byte also goes past the frame walk."""

    def __init__(self, owner: _Zstd):
        self.owner = owner

    def read(self, n: int) -> bytes:
        data = self.owner._raw()
        self.owner.frames.feed(data)
        return data
