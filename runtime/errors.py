"""The one exception type the CLI turns into a one-line error and exit status 1."""


class HawserError(Exception):
    """A failure to report to the user as-is (the message names what is wrong)."""


class NotExist(HawserError):
    def __init__(self, cid: str):
        # containerd and podman match this text to tell "already gone" from other failures.
        super().__init__(f"container {cid} does not exist")
