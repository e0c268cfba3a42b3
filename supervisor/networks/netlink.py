"""pyroute2's IPRoute without the rest of pyroute2. Its package's __init__ imports every part
(NDB, IPDB, conntrack, multiprocessing, the diag sockets...): ~7 MiB more resident in hawserd
and ~30 ms, of which IPRoute needs none. The package is registered as a bare module (its
__path__ only, __init__ not run) so that importing the submodules IPRoute needs loads just
those. When pyroute2 was already imported whole, that is used as it is."""
import importlib.util
import sys


def _bare_package(name: str) -> None:
    if name in sys.modules:
        return
    spec = importlib.util.find_spec(name)
    if spec is None:
        raise ImportError(f"no module named {name!r}")
    sys.modules[name] = importlib.util.module_from_spec(spec)


_bare_package("pyroute2")

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # noqa: E402

__all__ = ["IPRoute", "NetlinkError"]
