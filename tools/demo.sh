#!/usr/bin/env bash
# `make demo`: start hawserd on its embedded defaults (unless one already answers there), load a
# local busybox image (a `docker save` archive made here: no network), and run containers from
# it with hawserctl: one in the foreground (its output and exit code are the container's), one
# detached that we exec into, read the logs of, diff, commit and remove. Cleans up on success,
# failure or Ctrl-C: the containers and images it made, the hawserd we started (SIGTERM to its
# pid), the temporary files.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/.venv/bin
python=$bin/python3
work=$(mktemp -d /tmp/hawser-demo.XXXXXX)
name=hawser-demo-$$
image=hawser-demo/busybox:$$
started=
cgroups_before=$(ls -d /sys/fs/cgroup/*/hawserd 2>/dev/null || true)
dirs_before=$(ls -d /var/lib/hawserd /run/hawserd 2>/dev/null || true)

ctl() { echo "+ hawserctl $*" >&2; "$bin/hawserctl" "$@"; }

cleanup() {
    "$bin/hawserctl" rm -f "$name" "$name-bg" >/dev/null 2>&1 || true
    "$bin/hawserctl" rmi -f "$image" "$image-committed" >/dev/null 2>&1 || true
    if [ -n "$started" ]; then
        kill -TERM "$started" 2>/dev/null || true
        wait "$started" 2>/dev/null || true
        # the parent cgroups our hawserd made for its containers, if they were not there before
        for d in /sys/fs/cgroup/*/hawserd; do
            [ -d "$d" ] && ! grep -qxF "$d" <<<"$cgroups_before" && rmdir "$d" 2>/dev/null || true
        done
        # and its store and state directories, if the demo's hawserd was the first to make them
        for d in /var/lib/hawserd /run/hawserd; do
            [ -d "$d" ] && ! grep -qxF "$d" <<<"$dirs_before" && rm -rf --one-file-system "$d"
        done
    fi
    rm -rf --one-file-system "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cat >"$work/demo.sh" <<'SCRIPT'
echo "hello from a hawser container, run by hawserd from an image"
echo "hostname: $(hostname)"
echo "id:       $(id)"
echo "pid 1:    $(tr '\0' ' ' </proc/1/cmdline)"
echo "rootfs:   $(grep ' / ' /proc/mounts | cut -d' ' -f3)"
echo "memory:   $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null || echo '?') bytes"
echo "processes:"
ps -o pid,user,comm
exit 3
SCRIPT
"$python" "$repo/tools/mkimage.py" "$work/busybox.tar" "$image" --add "/demo.sh=$work/demo.sh" \
    -- sh /demo.sh

if "$bin/hawserctl" version >/dev/null 2>&1; then
    echo "hawserd is already running on its default address: using it"
else
    echo "+ hawserd   (defaults: --root /var/lib/hawserd --state /run/hawserd" \
         "--address unix:///run/hawserd/hawserd.sock; log in $work/hawserd.log)"
    "$bin/hawserd" >"$work/hawserd.log" 2>&1 &
    started=$!
    for _ in $(seq 100); do
        "$bin/hawserctl" version >/dev/null 2>&1 && break
        kill -0 "$started" 2>/dev/null || { cat "$work/hawserd.log"; exit 1; }
        sleep 0.1
    done
fi
ctl version

ctl load -i "$work/busybox.tar"
ctl images

set +e
ctl run --rm --name "$name" --hostname demo --memory 64m "$image"
status=$?
set -e
echo "(exit code $status: the container's)"

ctl run -d --name "$name-bg" "$image" sh -c 'echo started; echo note > /note; exec sleep 600' >/dev/null
ctl ps
ctl exec "$name-bg" sh -c 'echo "exec in $(hostname): $(ps -o pid,comm | wc -l) lines of ps"'
ctl logs "$name-bg"
ctl diff "$name-bg"
ctl commit "$name-bg" "$image-committed"
ctl run --rm "$image-committed" cat /note
ctl rm -f "$name-bg" >/dev/null
ctl rmi "$image" "$image-committed"
echo "demo done"
