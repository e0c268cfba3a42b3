"""Netlink sockets inside another network namespace, without forking the threaded daemon.

A network namespace belongs to a thread, not to the process: a thread may setns(CLONE_NEWNET)
into a namespace and every socket it opens there stays bound to that namespace, whichever
thread uses it later. So a short-lived helper thread enters the namespace, opens the socket and
ends; the caller's thread (a grpc worker) never changes namespace, so it cannot be left in a
container's namespace by an error half-way. (pyroute2's own netns= forks a child to do this.)
"""
import os
import socket
import threading

from runtime import syscall
from runtime.syscall.consts import CLONE_NEWNET

NETLINK_ROUTE = 0


class NamespaceError(OSError):
    pass


def run_in(netns_path: str, make):
    """make() called in a fresh thread that has joined the namespace at netns_path; its
    result returned (its OSError raised) in the caller's thread."""
    result: list = []

    def enter_and_make():
        try:
            fd = os.open(netns_path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            result.append(NamespaceError(e.errno, f"network namespace {netns_path}: "
                                                  f"{e.strerror}"))
            return
        try:
            syscall.get().setns(fd, CLONE_NEWNET)
        except OSError as e:
            result.append(NamespaceError(e.errno, f"network namespace {netns_path}: {e}"))
            return
        finally:
            os.close(fd)
        try:
            result.append(make())
        except BaseException as e:  # handed to the caller's thread
            result.append(e)
        # The thread ends here, still in the namespace: nothing to restore.

    helper = threading.Thread(target=enter_and_make, name="hawser-netns", daemon=True)
    helper.start()
    helper.join()
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


def netlink_socket(netns_path: str | None) -> socket.socket:
    """A NETLINK_ROUTE socket in the namespace at netns_path (None: the caller's own)."""
    def make():
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC,
                             NETLINK_ROUTE)
    return make() if netns_path is None else run_in(netns_path, make)


def same_namespace(netns_path: str) -> bool:
    """Whether netns_path names the namespace this thread is in (the host's, for hawserd)."""
    mine = os.stat("/proc/thread-self/ns/net")
    other = os.stat(netns_path)
    return (mine.st_dev, mine.st_ino) == (other.st_dev, other.st_ino)
