#!/usr/bin/env bash
# `make demo`: build a busybox bundle in a temporary directory and run it with `hawser run`.
# Cleans up (delete --force, remove the bundle and the state root) on success, failure or Ctrl-C.
# HAWSER_BIN=/usr/sbin/runc tools/demo.sh runs the same demo with another runtime.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
hawser=${HAWSER_BIN:-$repo/.venv/bin/hawser}
python=$repo/.venv/bin/python3
work=$(mktemp -d /tmp/hawser-demo.XXXXXX)
root=$work/state
id=hawser-demo-$$

cleanup() {
    "$hawser" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$python" "$repo/tools/mkbundle.py" --spec-runtime "$hawser" "$work/bundle" -- sh /demo.sh
cat >"$work/bundle/rootfs/demo.sh" <<'SCRIPT'
echo "hello from a hawser container"
echo "hostname: $(hostname)"
echo "id:       $(id)"
echo "pid 1:    $(tr '\0' ' ' </proc/1/cmdline)"
echo "kernel:   $(uname -sr)"
echo "processes:"
ps -o pid,user,comm
exit 0
SCRIPT

echo "+ $(basename "$hawser") --root $root run --bundle $work/bundle $id"
"$hawser" --root "$root" run --bundle "$work/bundle" "$id" </dev/null
