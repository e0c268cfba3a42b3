"""hawserd's layer snapshots (containerd's snapshots/overlay, archive/ and diff/): overlay.py the
snapshotter over its table (table.py), apply.py the layer unpack (compression.py, tarstream.py,
extract.py, copyup.py), diff.py a writable snapshot's changes and its layer tar; layered.py reads
a stack of layer dirs as overlayfs merges them, mountinfo.py tells which are mounted."""
