"""Images: references (refs.py), manifests and platforms (manifest.py, platforms.py), the image
table (store.py), docker/OCI archives (archive.py) and root filesystem import (rootfs.py)."""
