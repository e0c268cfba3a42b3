"""A layer blob as its uncompressed tar stream: gzip (one or more members), zstd (one or more
frames) or plain, told apart by their magic bytes as containerd's DecompressStream does (a media
type is only checked for being a layer's: registries and archives get the +gzip/+zstd suffix
wrong often enough). Every reader bounds its output per read (a small blob of a highly
compressible layer must not become gigabytes in memory) and fails with LayerError on a stream
that is truncated or corrupt, never with a short, silently accepted tar."""
import zlib

import zstandard

IN_CHUNK = 256 << 10
GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
LAYER_TYPES = frozenset(
    base + suffix
    for base in ("application/vnd.oci.image.layer.v1.tar",
                 "application/vnd.oci.image.layer.nondistributable.v1.tar")
    for suffix in ("", "+gzip", "+zstd")) | {
    "application/vnd.docker.image.rootfs.diff.tar",
    "application/vnd.docker.image.rootfs.diff.tar.gzip",
    "application/vnd.docker.image.rootfs.diff.tar.zstd",
    "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
}
OTHER_MAGIC = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4"}


class LayerError(Exception):
    pass


def open_layer(path: str, media_type: str = ""):
    """The uncompressed tar stream of the layer blob at path: an object with read(n) and
    close(), also a context manager."""
    if media_type and media_type not in LAYER_TYPES:
        raise LayerError(f"media type {media_type!r} is not a layer's")
    fh = open(path, "rb", buffering=0)
    try:
        return decompressing(fh)
    except BaseException:
        fh.close()
        raise


def decompressing(fh):
    """fh (a raw binary stream, closed with the result) as its uncompressed tar stream."""
    head = _peek(fh, 6)
    if head.startswith(GZIP_MAGIC):
        return _Gzip(fh, head)
    if head.startswith(ZSTD_MAGIC) or _zstd_skippable(head):
        return _Zstd(fh, head)
    for magic, name in OTHER_MAGIC.items():
        if head.startswith(magic):
            raise LayerError(f"{name}-compressed layers are not supported (OCI layers are "
                             "gzip, zstd or uncompressed tar)")
    return _Plain(fh, head)


def _peek(fh, n: int) -> bytes:
    data = b""
    while len(data) < n:
        more = fh.read(n - len(data))
        if not more:
            break
        data += more
    return data


def _zstd_skippable(head: bytes) -> bool:
    return len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


class _Reader:
    def __init__(self, fh, head: bytes):
        self.fh, self.head = fh, head

    def _raw(self) -> bytes:
        if self.head:
            data, self.head = self.head, b""
            return data
        return self.fh.read(IN_CHUNK)

    def close(self) -> None:
        self.fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class _Plain(_Reader):
    def read(self, n: int) -> bytes:
        if self.head:
            return self._raw()
        return self.fh.read(n)


class _Gzip(_Reader):
    """Members one after another (pigz and `cat a.gz b.gz` make such streams); NUL padding
    after the last member is allowed, as gzip(1) allows it."""

    def __init__(self, fh, head: bytes):
        super().__init__(fh, head)
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.done = False

    def read(self, n: int) -> bytes:
        while not self.done:
            if self.z.eof:
                self._next_member()
                continue
            data = self.z.unconsumed_tail or self._raw()
            try:
                if not data:
                    out = self.z.flush()
                    if not self.z.eof:
                        raise LayerError("unexpected end of layer: the gzip stream is truncated")
                else:
                    out = self.z.decompress(data, n)
            except zlib.error as e:
                raise LayerError(f"bad gzip data: {e}") from None
            if out:
                return out
        return b""

    def _next_member(self) -> None:
        rest = self.z.unused_data
        while True:
            rest = rest.lstrip(b"\0")
            if rest:
                break
            rest = self._raw()
            if not rest:
                self.done = True
                return
        if not rest.startswith(GZIP_MAGIC[:len(rest)]):
            raise LayerError("bad gzip data: trailing garbage after the compressed stream")
        self.z = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self.head = rest + self.head


class _Zstd(_Reader):
    """zstandard's stream reader bounds each read's output but takes a truncated stream for a
    finished one: a walk over the frames' block headers (a few per MiB) tells."""

    def __init__(self, fh, head: bytes):
        super().__init__(fh, head)
        self.frames = _ZstdFrames()
        self.reader = zstandard.ZstdDecompressor().stream_reader(
            _Compressed(self), read_size=IN_CHUNK, read_across_frames=True)

    def read(self, n: int) -> bytes:
        try:
            out = self.reader.read(n)
        except zstandard.ZstdError as e:
            raise LayerError(f"bad zstd data: {e}") from None
        if not out:
            self.frames.finish()
        return out

    def close(self) -> None:
        self.reader.close()
        super().close()


class _Compressed:
    """The compressed side, as zstandard reads it: every byte also goes past the frame walk."""

    def __init__(self, owner: _Zstd):
        self.owner = owner

    def read(self, n: int) -> bytes:
        data = self.owner._raw()
        self.owner.frames.feed(data)
        return data


class _ZstdFrames:
    """Frame and block boundaries of a zstd stream (RFC 8878 section 3.1): enough to know
    whether it ends where a frame ends."""

    def __init__(self):
        self.need, self.state = 4, "magic"
        self.buf = bytearray()
        self.skip = 0
        self.frames = 0
        self.checksum = 0

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self.skip:
                step = min(self.skip, len(view) - pos)
                self.skip -= step
                pos += step
                continue
            take = min(self.need - len(self.buf), len(view) - pos)
            self.buf += view[pos:pos + take]
            pos += take
            if len(self.buf) == self.need:
                field, self.buf = bytes(self.buf), bytearray()
                self._field(field)

    def _field(self, b: bytes) -> None:
        if self.state == "magic":
            if b == ZSTD_MAGIC:
                self.state, self.need = "descriptor", 1
            elif _zstd_skippable(b):
                self.state, self.need = "skippable", 4
            else:
                raise LayerError("bad zstd data: not a zstd frame")
        elif self.state == "skippable":
            self.skip = int.from_bytes(b, "little")
            self.state, self.need = "magic", 4
        elif self.state == "descriptor":
            fhd = b[0]
            fcs = (0, 2, 4, 8)[fhd >> 6] or (1 if fhd & 0x20 else 0)
            self.checksum = 4 if fhd & 0x04 else 0
            self.skip = (0 if fhd & 0x20 else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self.state, self.need = "block", 3
        elif self.state == "block":
            header = int.from_bytes(b, "little")
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 3:
                raise LayerError("bad zstd data: reserved block type")
            self.skip = 1 if kind == 1 else size
            if header & 1:            # the frame's last block
                self.skip += self.checksum
                self.frames += 1
                self.state, self.need = "magic", 4

    def finish(self) -> None:
        if self.state != "magic" or self.buf or self.skip or not self.frames:
            raise LayerError("unexpected end of layer: the zstd stream is truncated")
