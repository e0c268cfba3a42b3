"""`containerd-shim-hawser-v2 ... -id ID -bundle B delete`: what containerd runs after a shim has
disconnected: after every normal Shutdown too, so the common case (the shim deleted its container
and forgot it) answers at once. After a shim that died (killed, crashed): remove the container with
the runtime the shim used (recorded at Create in the shim's state directory), unmount its rootfs,
remove the dead shim's socket and state. The exit status is 137: the real one died with the shim."""
import os
import sys
import time

from shim import cli


def _warn(msg: str) -> None:
    sys.stderr.write(f"containerd-shim-hawser-v2 delete: {msg}\n")


def delete(flags: dict) -> bytes:
    ns, cid, address = flags["namespace"], flags.get("id", ""), flags.get("address", "")
    if not cid:
        raise cli.UsageError("-id is required")
    bundle = flags.get("bundle") or os.getcwd()
    sdir = cli.state_dir(address, ns, cid)
    if os.path.isdir(sdir):    # else the shim ended cleanly: nothing to load, nothing to undo
        from shim import state
        saved = state.load(sdir)
        if saved:
            _clean_after_dead_shim(saved, cid, ns, bundle)
        state.remove_dir(sdir)
    _remove_dead_socket(os.path.join(bundle, "address"))
    try:
        with open(os.path.join(bundle, "init.pid")) as f:
            pid = int(f.read().strip())
    except (OSError, ValueError):
        pid = 0
    return delete_response(pid, 137, time.time_ns())


def delete_response(pid: int, status: int, exited_ns: int) -> bytes:
    """containerd.task.v2.DeleteResponse{1 pid, 2 exit_status, 3 exited_at Timestamp}, encoded
    here: this answers after every container, and shim.wire would cost its import."""
    def varint(v: int) -> bytes:
        out = bytearray()
        while v > 0x7F:
            out.append(v & 0x7F | 0x80)
            v >>= 7
        out.append(v)
        return bytes(out)
    seconds, nanos = divmod(exited_ns, 1_000_000_000)
    ts = (b"\x08" + varint(seconds) if seconds else b"") + \
        (b"\x10" + varint(nanos) if nanos else b"")
    return (b"\x08" + varint(pid) if pid else b"") + \
        (b"\x10" + varint(status) if status else b"") + b"\x1a" + varint(len(ts)) + ts


def _clean_after_dead_shim(saved: dict, cid: str, ns: str, bundle: str) -> None:
    from shim import mount, state
    from shim.reaper import Reaper
    from shim.runtime_cli import Runtime, RuntimeFailed
    runtime = Runtime(Reaper(direct=True), saved.get("binary") or cli.default_runtime(),
                      saved.get("root") or os.path.join(state.DEFAULT_ROOT, ns),
                      os.path.join(bundle, "log.json"))
    try:
        runtime.delete(cid, force=True)
    except RuntimeFailed as e:
        _warn(f"runtime delete: {e}")
    try:
        mount.unmount_all(os.path.join(bundle, "rootfs"))
    except OSError as e:
        _warn(f"unmount rootfs: {e}")


def _remove_dead_socket(address_file: str) -> None:
    """The socket of a dead shim (nobody answers on it any more) under /run/containerd/s."""
    try:
        with open(address_file) as f:
            address = f.read().strip()
    except OSError:
        return
    path = address[len("unix://"):] if address.startswith("unix://") else ""
    if os.path.dirname(path) == cli.SOCKET_DIR and os.path.exists(path):
        from shim.daemon import _can_connect
        if not _can_connect(path):
            os.unlink(path)
