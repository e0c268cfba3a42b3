"""The syscall layer: one implementation for the process, or a fake installed by tests."""
_current = None


def get():
    """The syscall implementation in use, made on first use: the C module's (runtime.syscall.
    native) when `make install` built it, else ctypes' (runtime.syscall.linux), which loads libc."""
    global _current
    if _current is None:
        try:
            from runtime.syscall.native import NativeSyscalls as impl
        except ImportError:
            from runtime.syscall.linux import LinuxSyscalls as impl
        _current = impl()
    return _current


def install(impl):
    """Replace the implementation (unit tests install runtime.syscall.fake.FakeSyscalls)."""
    global _current
    previous, _current = _current, impl
    return previous
