"""Tar streams as images and snapshots read them (containerd's archive/ and archive/compression):
compression.py tells a stream's compression by its magic bytes and decompresses it through
readinto(); tar.py reads the tar from it front to back, once, in big chunks. Neither knows
layers or image archives: which compressions are allowed and how an error reads are the
callers' (snapshots/layerstream.py, images/archive*.py, images/rootfs.py)."""
