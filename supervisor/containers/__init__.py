"""Containers: their records (store.py), OCI bundles (bundle.py) and the Containers service."""
