"""The shim's own files, in a directory per shim socket (/run/hawser-shim/<socket name>), never
in the bundle: runtime.json (the runtime binary and root `delete` needs after a dead shim; removed
when the container is deleted), exec process specs and pid files, console sockets."""
import os

from runtime import jsonlite

DEFAULT_ROOT = "/run/containerd/hawser"    # the runtime's --root, + "/<namespace>"
RUNTIME_FILE = "runtime.json"


def save(state_dir: str, state: dict) -> None:
    os.makedirs(state_dir, mode=0o700, exist_ok=True)
    tmp = os.path.join(state_dir, "." + RUNTIME_FILE)
    with open(tmp, "w") as f:
        f.write(jsonlite.dumps(state))
    os.replace(tmp, os.path.join(state_dir, RUNTIME_FILE))


def load(state_dir: str) -> dict:
    try:
        with open(os.path.join(state_dir, RUNTIME_FILE), "rb") as f:
            return jsonlite.loads(f.read())
    except (OSError, ValueError):
        return {}


def forget(state_dir: str) -> None:
    remove(os.path.join(state_dir, RUNTIME_FILE))


def remove_dir(state_dir: str) -> None:
    try:
        for name in os.listdir(state_dir):
            os.unlink(os.path.join(state_dir, name))
        os.rmdir(state_dir)
    except OSError:
        pass


def remove(path: str | None) -> None:
    if path:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
