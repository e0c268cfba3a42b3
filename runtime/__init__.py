"""hawser: a runc-compatible OCI runtime.

The error types live here rather than only in runtime.errors: the package is imported anyway,
and one module fewer is ~0.15 ms off every `hawser` call."""
VERSION = "0.1.0"
OCI_VERSION = "1.3.0"


class HawserError(Exception):
    """A failure to report to the user as-is (the message names what is wrong)."""


class NotExist(HawserError):
    def __init__(self, cid: str):
        # containerd and podman match this text to tell "already gone" from other failures.
        super().__init__(f"container {cid} does not exist")
