"""Content: the blobs of images (layers, configs, manifests, indexes) by digest (store.py)."""
