"""hawserd: the supervisor daemon.

    hawserd [--root /var/lib/hawserd] [--state /run/hawserd]
            [--address unix:///run/hawserd/hawserd.sock] [--runtime hawser|runc|crun|PATH]
            [--log-level debug|info|warn|error]

Serves the hawser.v1 gRPC API on a unix socket (mode 0660, root only). One hawserd per --root:
a second one refuses to start (flock on <root>/hawserd.lock). The shims publish their events to
<state>/events.sock.
"""
import argparse
import fcntl
import logging
import os
import signal
import sys
import threading
from concurrent import futures

log = logging.getLogger("hawserd")


def parse(argv):
    p = argparse.ArgumentParser(prog="hawserd", description="the hawser supervisor daemon")
    p.add_argument("--root", default="/var/lib/hawserd", help="persistent state (metadata, logs)")
    p.add_argument("--state", default="/run/hawserd", help="runtime state (bundles, sockets)")
    p.add_argument("--address", default="unix:///run/hawserd/hawserd.sock")
    p.add_argument("--runtime", default="hawser", help="hawser | runc | crun | a path")
    p.add_argument("--bridge", default="hawser0", help="the default network's bridge")
    p.add_argument("--nft-table", default="hawser",
                   help="hawserd's nftables table (ip family): its NAT and published ports")
    p.add_argument("--log-level", default="info",
                   choices=["debug", "info", "warn", "warning", "error"])
    return p.parse_args(argv)


def socket_path(address: str) -> str:
    if address.startswith("unix://"):
        return address[len("unix://"):]
    if "://" in address:
        raise SystemExit(f"hawserd: --address {address!r}: only unix:// addresses are served")
    return address


def take_lock(root: str):
    f = open(os.path.join(root, "hawserd.lock"), "a+")
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        raise SystemExit(f"hawserd: another hawserd (pid {f.read().strip() or '?'}) is using "
                         f"--root {root}")
    f.truncate(0)
    f.write(f"{os.getpid()}\n")
    f.flush()
    return f


def main(argv=None) -> int:
    args = parse(sys.argv[1:] if argv is None else argv)
    level = {"warn": "WARNING"}.get(args.log_level, args.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s hawserd %(levelname)s %(message)s")
    root, state = os.path.abspath(args.root), os.path.abspath(args.state)
    if any(c in root for c in ",:\n"):
        # overlayfs takes its layer directories in a comma- and colon-separated option
        raise SystemExit(f"hawserd: --root {root!r}: a ',' or ':' in it would break the "
                         "overlay mounts of image layers")
    path = socket_path(args.address)
    for d in (root, state, os.path.dirname(path)):
        os.makedirs(d, mode=0o711, exist_ok=True)
    lock = take_lock(root)  # noqa: F841 (held for the life of the process)

    import grpc
    from supervisor.daemon import server as services
    from supervisor.events.hub import ForwardServer, Hub
    from supervisor.tasks import shims
    from supervisor.tasks.supervisor import Supervisor
    try:
        shims.runtime_binary(args.runtime)
    except FileNotFoundError as e:
        raise SystemExit(f"hawserd: {e}")

    hub = Hub()
    forward = ForwardServer(os.path.join(state, "events.sock"), hub)
    sup = Supervisor(root, state, "unix://" + path, args.runtime, hub, forward.address,
                     bridge=args.bridge, nft_table=args.nft_table)
    sup.recover()

    # A streaming call (logs -f, events, attach) holds a worker for its whole life: enough
    # workers that hundreds of them leave room for the calls that end them (kill, stop);
    # threads are made only as calls need them.
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=512))
    services.register(server, sup)
    if os.path.exists(path):
        os.unlink(path)
    old = os.umask(0o117)
    try:
        server.add_insecure_port("unix://" + path)
        server.start()
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    log.info("serving hawser.v1 on unix://%s (root %s, state %s, runtime %s)", path, root,
             state, args.runtime)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(3600):
        pass
    log.info("shutting down (containers keep running under their shims)")
    server.stop(2).wait()
    forward.close()
    sup.close()
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
