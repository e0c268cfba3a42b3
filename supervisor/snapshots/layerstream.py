"""A layer blob as its uncompressed tar stream, through the shared reader (supervisor/archive):
gzip (one or more members), zstd (one or more frames) or plain, by magic bytes as containerd's
DecompressStream tells them (a media type is only checked for being a layer's: registries and
archives get the +gzip/+zstd suffix wrong often enough); xz, bzip2 and lz4 are no OCI layer's.
And what the reader or the decompressor raises, as a LayerError that names the entry and the
byte of the tar."""
from supervisor.archive import compression, tar

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


class LayerError(Exception):
    pass


def open_layer(path: str, media_type: str = ""):
    """The uncompressed tar stream of the layer blob at path: readinto(buf), read(n) and
    close(), also a context manager."""
    if media_type and media_type not in LAYER_TYPES:
        raise LayerError(f"media type {media_type!r} is not a layer's")
    fh = open(path, "rb", buffering=0)
    try:
        return compression.open_stream(fh, compression.LAYER)
    except compression.Unsupported as e:
        fh.close()
        raise LayerError(f"{e.format}-compressed layers are not supported (OCI layers are "
                         "gzip, zstd or uncompressed tar)") from None
    except BaseException:
        fh.close()
        raise


def layer_error(e: Exception, reader: tar.TarReader) -> LayerError:
    """The reader's TarError or the decompressor's CompressionError, worded for a layer."""
    if isinstance(e, tar.Truncated):
        if e.entry is not None:
            return LayerError(f"unexpected end of layer at byte {e.offset} (in the data of "
                              f"entry {e.entry.label()!r})")
        if e.boundary:
            return LayerError(f"unexpected end of layer at byte {e.offset}: no end-of-archive "
                              "marker" + _after(e.previous))
        return LayerError(f"unexpected end of layer at byte {e.header_at} (a tar header cut "
                          f"short at byte {e.offset})")
    if isinstance(e, tar.Unsupported):
        return LayerError(f"layer entry {e.entry.label()!r} (at byte {e.offset}): {e.reason}")
    if isinstance(e, tar.TarError):                   # a bad header or checksum
        return LayerError(f"{e}{_after(e.previous)}")
    # the reader reads ahead: the damage is past what the stream gave, whatever entry is read
    where = f" (after byte {reader.read_total} of the tar" + (
        f", reading entry {reader.current.label()!r})" if reader.current else ")")
    if isinstance(e, compression.Truncated):
        return LayerError(f"unexpected end of layer: {e}{where}")
    return LayerError(f"{e}{where}")                # Corrupt: "bad gzip data: ..."


def _after(previous) -> str:
    return f" (after entry {previous.label()!r})" if previous is not None else ""
