"""The shared tar reader and decompression (supervisor/archive) against real peers: trees that GNU
tar writes in its gnu, posix (PAX), ustar and v7 formats, compressed by gzip and zstd (xz and
bzip2 through Python's own modules), read from files and from pipes that give a few bytes at a
time, compared entry by entry with Python's tarfile. The end-of-archive rules are Go's
archive/tar's (containerd's): two zero blocks, or one and the end of the stream; a header after a
lone zero block is an error, not an end. Sparse files (GNU's type S, the GNU.sparse.* PAX
records of `tar --sparse --format=posix`, every version) are refused, never read as files."""
from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import random
import subprocess
import tarfile
import threading

import pytest

from supervisor.archive import compression, tar
from supervisor.archive.tar import TarReader

BIG = random.Random(7).randbytes((3 << 20) + 123)     # spans the reader's 1 MiB buffer
ZERO = bytes(512)


def make_tree(root, exotic: bool, fifo: bool = True, big: bytes = BIG) -> None:
    """Files of every kind (v7 has no fifos); exotic: what ustar and v7 cannot hold (long
    names; a big uid and an mtime before 1970, with the caller's tar options)."""
    (root / "d").mkdir(parents=True)
    (root / "d/big").write_bytes(big)
    (root / "d/small").write_bytes(b"small\n")
    (root / "d/empty").write_bytes(b"")
    os.chmod(root / "d/small", 0o4755)
    os.symlink("small", root / "d/sym")
    os.link(root / "d/big", root / "d/hard")
    if fifo:
        os.mkfifo(root / "d/fifo")
    if exotic:
        deep = root / ("x" * 90) / ("y" * 90) / ("z" * 90)
        deep.mkdir(parents=True)
        (deep / ("n" * 120)).write_bytes(b"long\n")
        (root / "üñí").write_bytes(b"utf-8\n")
        os.symlink("t" * 200, root / "longlink")
        os.utime(root / "d/empty", (-86400 * 3650, -86400 * 3650))     # 1960


def gnu_tar(root, fmt: str, *opts) -> bytes:
    return subprocess.run(["tar", f"--format={fmt}", "--sort=name", *opts, "-C", str(root),
                           "-cf", "-", "."], check=True, capture_output=True).stdout


def reference(data: bytes) -> list[tuple]:
    """What tarfile reads: (name, type, size, mode, uid, gid, mtime, linkname, sha of data)."""
    out = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as t:
        for m in t:
            body = t.extractfile(m).read() if m.isreg() else b""
            kind = b"0" if m.type == tarfile.AREGTYPE else m.type
            out.append((m.name.rstrip("/"), kind, len(body), m.mode, m.uid, m.gid,
                        int(m.mtime // 1), m.linkname, hashlib.sha256(body).hexdigest()))
    return out


def ours(stream, tap=None) -> list[tuple]:
    out = []
    reader = TarReader(stream, tap)
    for e in reader:
        h, size = hashlib.sha256(), 0
        for piece in reader.chunks(e):
            h.update(piece)
            size += len(piece)
        out.append((e.path.rstrip("/"), bytes([e.type]), size, e.mode, e.uid, e.gid,
                    e.mtime_ns // 1_000_000_000, os.fsdecode(e.linkname),
                    h.hexdigest()))
    return out


class Dribble:
    """A pipe's reading end fed by a thread in pieces of 1, 7, 511, 4097... bytes: every read
    is short."""

    def __init__(self, data: bytes):
        r, w = os.pipe()
        self.raw = os.fdopen(r, "rb", buffering=0)
        self.thread = threading.Thread(target=self._feed, args=(w, data))
        self.thread.start()

    @staticmethod
    def _feed(w: int, data: bytes) -> None:
        sizes, pos, i = (1, 7, 511, 4097, 65536), 0, 0
        try:
            while pos < len(data):
                n = sizes[i % len(sizes)]
                os.write(w, data[pos:pos + n])
                pos, i = pos + n, i + 1
        except BrokenPipeError:
            pass
        finally:
            os.close(w)

    def close(self) -> None:
        self.raw.close()
        self.thread.join()


@pytest.mark.parametrize("fmt", ["gnu", "posix", "ustar", "v7"])
def test_gnu_tars_of_every_format_read_as_tarfile_reads_them(tmp_path, fmt):
    exotic = fmt in ("gnu", "posix")
    make_tree(tmp_path / "src", exotic, fifo=fmt != "v7")
    opts = ["--owner=3000000", "--group=3000001"] if exotic else []   # base-256 in gnu
    data = gnu_tar(tmp_path / "src", fmt, *opts)
    want = reference(data)
    assert ours(io.BytesIO(data)) == want
    assert len(want) >= (12 if exotic else 6)
    if exotic:
        assert {w[4] for w in want} == {3000000}
        assert min(w[6] for w in want) < 0
    # from a pipe that gives a few bytes at a time, gzip- and zstd-compressed by the tools
    for tool in (None, ["gzip", "-c"], ["zstd", "-qc"]):
        blob = data if tool is None else subprocess.run(tool, input=data, check=True,
                                                        capture_output=True).stdout
        pipe = Dribble(blob)
        try:
            assert ours(compression.open_stream(pipe.raw)) == want
        finally:
            pipe.close()


def test_offsets_and_big_pieces(tmp_path):
    make_tree(tmp_path / "src", exotic=True)
    data = gnu_tar(tmp_path / "src", "posix")
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        offsets = {m.name.rstrip("/"): m.offset for m in t}
    reader = TarReader(io.BytesIO(data))
    for e in reader:
        # a PAX entry's offset is its own header's, after the extended header
        assert e.offset in (offsets[e.path.rstrip("/")], offsets[e.path.rstrip("/")] + 1024)
        if e.path == "./d/big":
            pieces = [len(p) for p in reader.chunks(e)]
            assert sum(pieces) == len(BIG) and len(pieces) <= 5      # ~1 MiB at a time
    # no tap: nothing after the end-of-archive marker is read (GNU tar pads to 10 KiB)
    assert reader.offset == len(members_only(data)) + 1024 < len(data)


def base256(value: int, width: int) -> bytes:
    return ((value % (1 << (8 * width - 1))) | (1 << (8 * width - 1))).to_bytes(width, "big") \
        if value >= 0 else (value % (1 << (8 * width))).to_bytes(width, "big")


def with_field(header: bytes, at: int, field: bytes, signed_sum: bool = False) -> bytes:
    """The header with a field replaced and its checksum made again."""
    b = bytearray(header)
    b[at:at + len(field)] = field
    b[148:156] = b" " * 8
    total = sum(x - 256 if signed_sum and x > 127 else x for x in b)
    b[148:156] = b"%06o\0 " % (total % (1 << 18))
    return bytes(b)


def one_file(name: str, data: bytes, fmt=tarfile.USTAR_FORMAT) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1_600_000_000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_base256_numbers_and_signed_checksums():
    tar_ = one_file("f", b"12345")
    header = tar_[:512]
    patched = with_field(with_field(header, 124, base256(5, 12)), 136, base256(-1000, 12))
    patched = with_field(patched, 108, base256(1 << 40, 8))        # a uid no octal field holds
    (e,) = _entries(patched + tar_[512:])
    assert (e.size, e.mtime_ns, e.uid) == (5, -1000 * 10**9, 1 << 40)
    # a name with bytes over 127, its checksum summed as signed chars (some old tars)
    signed = with_field(header, 0, "fé".encode("latin-1"), signed_sum=True)
    assert [e.name for e in _entries(signed + tar_[512:])] == ["fé".encode("latin-1")]


def _entries(data: bytes):
    reader = TarReader(io.BytesIO(data))
    return [e for e in reader]


# -- the end of the archive ----------------------------------------------------------------------

def members_only(data: bytes) -> bytes:
    """A tar without its end-of-archive marker (and GNU tar's padding after it)."""
    end = len(data.rstrip(b"\0"))
    return data[:end + -end % 512]


@pytest.fixture
def two_tars(tmp_path):
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / f"{name}.txt").write_bytes(name.encode() * 1000)
    return [gnu_tar(tmp_path / n, "posix") for n in ("a", "b")]


def test_two_zero_blocks_or_one_and_the_end_of_the_stream_end_it(two_tars):
    a, _ = two_tars
    body = members_only(a)
    for tail in (ZERO * 2, ZERO * 2 + b"junk after the end" * 100, ZERO, a[len(body):]):
        h = hashlib.sha256()
        names = [e[0] for e in ours(io.BytesIO(body + tail), tap=h.update)]
        assert names == [".", "./a.txt"]
        # the tap (a layer's diff_id) saw every byte, those after the marker too
        assert h.hexdigest() == hashlib.sha256(body + tail).hexdigest()


def test_a_header_after_a_lone_zero_block_is_an_error_not_the_end(two_tars):
    a, b = two_tars
    body = members_only(a)
    data = body + ZERO + b                # b's entries after one zero block
    with pytest.raises(tar.BadHeader, match="invalid tar header") as err:
        ours(io.BytesIO(data))
    assert err.value.offset == len(body) + 512
    assert err.value.previous.path == "./a.txt"
    # one zero block, then a partial one: cut short, not an end
    with pytest.raises(tar.Truncated) as cut:
        ours(io.BytesIO(body + ZERO + b[:100]))
    assert (cut.value.offset, cut.value.header_at) == (len(body) + 612, len(body) + 512)


def test_truncations_say_where(two_tars):
    a, _ = two_tars
    body = members_only(a)
    with tarfile.open(fileobj=io.BytesIO(a)) as t:
        data_at = t.getmember("./a.txt").offset_data
    cases = {0: (0, True, None), len(body): (len(body), True, None),
             data_at + 100: (data_at + 100, False, "./a.txt"), 100: (100, False, None)}
    for cut, (offset, boundary, entry) in cases.items():
        with pytest.raises(tar.Truncated) as err:
            ours(io.BytesIO(a[:cut]))
        e = err.value
        assert (e.offset, e.boundary, e.entry and e.entry.path) == (offset, boundary, entry)


# -- sparse files ---------------------------------------------------------------------------------

@pytest.mark.parametrize("how", ["posix-0.0", "posix-0.1", "posix-1.0", "gnu"])
def test_sparse_files_are_refused_whatever_the_format(tmp_path, how):
    src = tmp_path / "src"
    src.mkdir()
    (src / "before").write_bytes(b"fine")
    with open(src / "holes", "wb") as f:
        f.truncate(4 << 20)
        f.seek(1 << 20)
        f.write(b"data in the middle")
    fmt, _, version = how.partition("-")
    opts = ["--sparse"] + ([f"--sparse-version={version}"] if version else [])
    data = gnu_tar(src, fmt, *opts)
    with pytest.raises(tar.Unsupported, match="sparse files are not supported") as err:
        ours(io.BytesIO(data))
    assert err.value.entry.path.endswith("holes")      # its real name, not GNUSparseFile.N/


# -- compression ----------------------------------------------------------------------------------

def read_all(stream, size: int = 1 << 20) -> bytes:
    out, buf = [], bytearray(size)
    while n := stream.readinto(buf):
        assert n <= size
        out.append(bytes(buf[:n]))
    return b"".join(out)


def test_compressions_by_magic_members_frames_and_padding(two_tars):
    plain = two_tars[0] + two_tars[1]
    half = len(plain) // 2
    cases = {
        "gzip": gzip.compress(plain[:half]) + gzip.compress(plain[half:]) + b"\0" * 10,
        "xz": lzma.compress(plain[:half]) + b"\0" * 4 + lzma.compress(plain[half:]),
        "bzip2": bz2.compress(plain[:half]) + bz2.compress(plain[half:]),
        "zstd": subprocess.run(["zstd", "-qc"], input=plain[:half], check=True,
                               capture_output=True).stdout
        + subprocess.run(["zstd", "-qc"], input=plain[half:], check=True,
                         capture_output=True).stdout,
        "": plain,
    }
    for fmt, blob in cases.items():
        assert compression.detect(blob) == fmt
        pipe = Dribble(blob)
        try:
            stream = compression.open_stream(pipe.raw)
            assert stream.format == fmt and read_all(stream, 4096) == plain
        finally:
            pipe.close()


@pytest.mark.parametrize("fmt", ["gzip", "xz", "bzip2", "zstd"])
def test_cut_or_damaged_streams_fail(two_tars, fmt):
    plain = two_tars[0] * 3
    blob = {"gzip": gzip.compress, "xz": lzma.compress, "bzip2": bz2.compress,
            "zstd": lambda d: subprocess.run(["zstd", "-qc"], input=d, check=True,
                                             capture_output=True).stdout}[fmt](plain)
    with pytest.raises(compression.Truncated, match=f"the {fmt} stream is truncated"):
        read_all(compression.open_stream(io.BytesIO(blob[:-12])))
    damaged = bytearray(blob)
    damaged[len(blob) // 2] ^= 0x55
    with pytest.raises(compression.CompressionError, match=f"bad {fmt} data|{fmt} stream is"):
        read_all(compression.open_stream(io.BytesIO(bytes(damaged))))
    if fmt != "zstd":
        with pytest.raises(compression.Corrupt, match="trailing garbage"):
            read_all(compression.open_stream(io.BytesIO(blob + b"garbage")))


def test_which_compressions_a_caller_takes_is_its_own(two_tars):
    xz = lzma.compress(two_tars[0])
    with pytest.raises(compression.Unsupported) as err:
        compression.open_stream(io.BytesIO(xz), compression.LAYER)
    assert err.value.format == "xz"
    assert read_all(compression.open_stream(io.BytesIO(xz), compression.ARCHIVE)) == two_tars[0]
    with pytest.raises(compression.Unsupported):          # no reader of lz4 here at all
        compression.open_stream(io.BytesIO(b"\x04\x22\x4d\x18" + bytes(100)))


def test_a_bomb_comes_out_a_buffer_at_a_time():
    bomb = gzip.compress(bytes(256 << 20), 9)            # 256 MiB of zeros in ~250 KiB
    assert len(bomb) < 1 << 20
    stream, buf, total, most = compression.open_stream(io.BytesIO(bomb)), bytearray(1 << 16), 0, 0
    while n := stream.readinto(buf):
        total, most = total + n, max(most, n)
    assert total == 256 << 20 and most <= 1 << 16


@pytest.mark.parametrize("chunk", [1, 511, 513, 700, 4096])
def test_headers_and_data_across_reads(tmp_path, chunk):
    """Reads of any size (a reader's buffer, a decompressor's output): headers, PAX records
    and data that straddle them read the same."""
    make_tree(tmp_path / "src", exotic=True, big=BIG[:70_000])
    data = gnu_tar(tmp_path / "src", "posix")
    want = reference(data)
    for stream in (io.BytesIO(data), compression.open_stream(io.BytesIO(gzip.compress(data)))):
        assert ours_chunked(stream, chunk) == want


def ours_chunked(stream, chunk: int) -> list[tuple]:
    out = []
    reader = TarReader(stream, chunk=chunk)
    for e in reader:
        body = reader.read_all(e)
        out.append((e.path.rstrip("/"), bytes([e.type]), len(body), e.mode, e.uid, e.gid,
                    e.mtime_ns // 1_000_000_000, os.fsdecode(e.linkname),
                    hashlib.sha256(body).hexdigest()))
    return out
