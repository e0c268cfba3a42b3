"""`hawser run`: create + start, then (unless --detach) wait for the container's init as its
subreaper, forwarding signals to it, and delete the container; the exit code is the container's."""
import os

from runtime import NotExist, state, syscall
from runtime.common import wait_init
from runtime.create import CreateOptions, create
from runtime.delete import delete_container
from runtime.start import start_container


def run(root: str, cid: str, opts: CreateOptions, detach: bool) -> int:
    if not detach:
        # The init is our grandchild: as subreaper we inherit it when the intermediate exits.
        syscall.get().set_child_subreaper()
        opts.own_console = True
    c = create(root, cid, opts)
    relay = None
    try:
        if c.console is not None:
            from runtime.relay import ConsoleRelay
            relay = ConsoleRelay(c.console)
        start_container(c)
    except BaseException:
        if relay is not None:
            relay.close()
        delete_container(c, force=True)
        raise
    if detach:
        c.unlock()
        return 0
    c.unlock()
    code = relay.run(c.pid, wait_init) if relay is not None else wait_init(c.pid)
    # The lock was released while waiting: the id may have been deleted and reused since.
    try:
        now = state.load(c.root, c.id)
    except NotExist:
        return code
    if all(now.data.get(k) == c.data.get(k) for k in ("pid", "pidStart", "created")):
        delete_container(now, force=True)
    else:
        now.unlock()
    return code


