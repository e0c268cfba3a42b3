"""A file replaced whole or not at all: written beside its path under a random name (O_EXCL,
never through a symlink), synced, then renamed over it; removed if anything fails first. A
reader sees the old file or the new one, never half of it."""
import os


class ReplacingFile:
    def __init__(self, path: str, mode: int = 0o666):
        directory = os.path.dirname(path) or "."
        self.path = path
        self.tmp = os.path.join(directory, f".{os.path.basename(path)}.{os.urandom(6).hex()}.tmp")
        self.fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                          os.O_CLOEXEC, mode)
        os.fchmod(self.fd, mode & ~_umask())

    def write(self, data) -> int:
        view = memoryview(data)
        while view:
            view = view[os.write(self.fd, view):]
        return len(data)

    def __enter__(self):
        return self

    def __exit__(self, kind, value, tb) -> None:
        try:
            if kind is None:
                os.fsync(self.fd)
        finally:
            os.close(self.fd)
        if kind is None:
            os.replace(self.tmp, self.path)
            return
        try:
            os.unlink(self.tmp)
        except FileNotFoundError:
            pass


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
