"""hawserd's layer snapshots (containerd's snapshots/overlay and diff/): overlay.py the
snapshotter over its table (table.py), apply.py the layer unpack (layerstream.py: the blob
through supervisor/archive's decompression and tar reader; extract.py, copyup.py), diff.py a
writable snapshot's changes and its layer tar; layered.py reads a stack of layer dirs as
overlayfs merges them, mountinfo.py tells which are mounted."""
