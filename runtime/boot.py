"""Start-up help for the `hawser` launcher: the runtime's modules loaded from one bundle file.

A plain import costs a few system calls per module (finding the source, checking and reading its
.pyc): with the ~30 modules of a `hawser run`, ~2 ms on this VM. tools/freeze.py writes every
module's compiled code into one file at install time; this finder serves imports from it. Each
module's source is still stat()ed when it is imported: an edited source wins over the bundle (it
is compiled instead), so a stale bundle costs time, never correctness."""
import marshal
import os
import sys
from _frozen_importlib import ModuleSpec


class BundleFinder:
    def __init__(self, entries: dict):
        self.entries = entries  # name -> (source path, source mtime_ns, is package, code bytes)

    def find_spec(self, name, path=None, target=None):
        entry = self.entries.get(name)
        if entry is None:
            return None
        origin, _, is_pkg, _ = entry
        spec = ModuleSpec(name, self, origin=origin, is_package=is_pkg)
        spec.has_location = True
        if is_pkg:
            spec.submodule_search_locations = [os.path.dirname(origin)]
        return spec

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        origin, mtime, _, code = self.entries[module.__name__]
        try:
            fresh = os.stat(origin).st_mtime_ns == mtime
        except OSError:
            raise ImportError(f"{origin} is gone", name=module.__name__) from None
        if fresh:
            obj = marshal.loads(code)
        else:
            with open(origin, "rb") as f:
                obj = compile(f.read(), origin, "exec", dont_inherit=True)
        exec(obj, module.__dict__)


def install(path: str) -> None:
    try:
        with open(path, "rb") as f:
            entries = marshal.loads(f.read())
    except (OSError, ValueError, EOFError, TypeError):
        return  # no bundle: plain imports
    sys.meta_path.insert(0, BundleFinder(entries))
