#!/usr/bin/env bash
# `make demo`: start hawserd on its embedded defaults (unless one already answers there), load a
# local busybox image (a `docker save` archive made here: no network), and run containers from
# it with hawserctl: one in the foreground (its output and exit code are the container's), one
# detached that we exec into, read the logs of, diff, commit and remove, a web server on a
# network of its own with a published port (asked from the host's 127.0.0.1, and by name from
# another container), and a named volume that outlives its container. Cleans up on success,
# failure or Ctrl-C: the containers, network, volume and images it made, the hawserd we started
# (SIGTERM to its pid) and the bridge and nftables table it made, the temporary files.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bin=$repo/.venv/bin
python=$bin/python3
work=$(mktemp -d /tmp/hawser-demo.XXXXXX)
name=hawser-demo-$$
image=hawser-demo/busybox:$$
started=
net=hawser-demo-net-$$
vol=hawser-demo-vol-$$
bridge_before=$(ip -o link show hawser0 2>/dev/null || true)
table_before=$(nft list table ip hawser >/dev/null 2>&1 && echo yes || true)
cgroups_before=$(ls -d /sys/fs/cgroup/*/hawserd 2>/dev/null || true)
dirs_before=$(ls -d /var/lib/hawserd /run/hawserd 2>/dev/null || true)

ctl() { echo "+ hawserctl $*" >&2; "$bin/hawserctl" "$@"; }

cleanup() {
    "$bin/hawserctl" rm -f "$name" "$name-bg" "$name-web" >/dev/null 2>&1 || true
    "$bin/hawserctl" network rm "$net" >/dev/null 2>&1 || true
    "$bin/hawserctl" volume rm "$vol" >/dev/null 2>&1 || true
    "$bin/hawserctl" rmi -f "$image" "$image-committed" >/dev/null 2>&1 || true
    if [ -n "$started" ]; then
        kill -TERM "$started" 2>/dev/null || true
        wait "$started" 2>/dev/null || true
        # the default bridge and the nftables table, if our hawserd made them
        [ -z "$bridge_before" ] && ip link delete hawser0 2>/dev/null || true
        [ -z "$table_before" ] && nft delete table ip hawser 2>/dev/null || true
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

port=$("$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
ctl network create "$net"
ctl run -d --name "$name-web" --network "$net" -p "127.0.0.1:$port:80" "$image" sh -c \
    'mkdir /www && echo "hello from $(hostname), published" > /www/index.html && exec httpd -f -p 80 -h /www' >/dev/null
ctl port "$name-web"
echo "+ wget -q -O- http://127.0.0.1:$port/   (from the host)"
for _ in $(seq 50); do busybox wget -q -O- "http://127.0.0.1:$port/" 2>/dev/null && break; sleep 0.1; done
ctl run --rm --network "$net" "$image" wget -q -O- "http://$name-web/"
ctl inspect -f '{{json .NetworkSettings.Networks}}' "$name-web"
ctl rm -f "$name-web" >/dev/null
ctl network rm "$net"

ctl run --rm -v "$vol:/data" "$image" sh -c 'echo "written by a container that is gone" > /data/note'
ctl run --rm -v "$vol:/data:ro" "$image" cat /data/note
ctl volume ls
ctl volume rm "$vol"
ctl rmi "$image" "$image-committed"
echo "demo done"
