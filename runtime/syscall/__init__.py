"""The syscall layer: one LinuxSyscalls instance for the process, or a fake installed by tests."""
_current = None


def get():
    """The syscall implementation in use (created on first use: ctypes loads libc then)."""
    global _current
    if _current is None:
        from runtime.syscall.linux import LinuxSyscalls
        _current = LinuxSyscalls()
    return _current


def install(impl):
    """Replace the implementation (unit tests install runtime.syscall.fake.FakeSyscalls)."""
    global _current
    previous, _current = _current, impl
    return previous
