"""Frame and block boundaries of a zstd stream (RFC 8878 section 3.1), walked over the
compressed bytes as they pass: enough to know whether the stream ends where a frame ends
(zstandard's stream reader does not say) without decoding anything twice."""
MAGIC = b"\x28\xb5\x2f\xfd"


class FrameError(ValueError):
    def __init__(self, message: str, truncated: bool = False):
        super().__init__(message)
        self.truncated = truncated


def is_skippable(head: bytes) -> bool:
    """A skippable frame's magic: 0x184D2A5? little-endian."""
    return len(head) >= 4 and head[0] & 0xF0 == 0x50 and head[1:4] == b"\x2a\x4d\x18"


class Frames:
    def __init__(self):
        self.need, self.state = 4, "magic"
        self.buf = bytearray()
        self.skip = 0
        self.frames = 0
        self.checksum = 0

    def feed(self, data) -> None:
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
            if b == MAGIC:
                self.state, self.need = "descriptor", 1
            elif is_skippable(b):
                self.state, self.need = "skippable", 4
            else:
                raise FrameError("bad zstd data: not a zstd frame")
        elif self.state == "skippable":
            self.skip = int.from_bytes(b, "little")
            self.state, self.need = "magic", 4
        elif self.state == "descriptor":
            fhd = b[0]
            fcs = (0, 2, 4, 8)[fhd >> 6] or (1 if fhd & 0x20 else 0)
            self.checksum = 4 if fhd & 0x04 else 0
            # the window descriptor (absent for a single-segment frame), dictionary id, size
            self.skip = (0 if fhd & 0x20 else 1) + (0, 1, 2, 4)[fhd & 3] + fcs
            self.state, self.need = "block", 3
        elif self.state == "block":
            header = int.from_bytes(b, "little")
            kind, size = (header >> 1) & 3, header >> 3
            if kind == 3:
                raise FrameError("bad zstd data: reserved block type")
            self.skip = 1 if kind == 1 else size          # an RLE block is one byte
            if header & 1:            # the frame's last block
                self.skip += self.checksum
                self.frames += 1
                self.state, self.need = "magic", 4

    def finish(self) -> None:
        """At the end of the input: it must be between frames, after at least one."""
        if self.state != "magic" or self.buf or self.skip or not self.frames:
            raise FrameError("the zstd stream is truncated", truncated=True)
