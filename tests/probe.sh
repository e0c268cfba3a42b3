#!/bin/sh
# What a container sees, printed as "=== SECTION" blocks; run as the container's process
# (`sh /probe.sh`, busybox applets only). tests/test_differential.py runs it under runc and under
# hawser with the same config and compares the normalised sections.
# $$ is the shell the runtime exec'd: its /proc/$$ files show exactly what the runtime set up
# (children would get recomputed capabilities at their own execve).
P=/proc/$$

echo "=== pid"
echo "$$"

echo "=== id"
id
echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"

echo "=== status"
grep -E '^(Uid|Gid|Groups|Umask|Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp|Seccomp_filters):' $P/status

echo "=== idmap"
for f in uid_map gid_map setgroups; do
    echo "$f:" $(cat $P/$f)
done

echo "=== limits"
cat $P/limits

echo "=== env"
tr '\0' '\n' < $P/environ | sort

echo "=== cwd"
readlink $P/cwd

echo "=== umask"
umask

echo "=== hostname"
echo "hostname=$(hostname)"
echo "domainname=$(cat /proc/sys/kernel/domainname)"
echo "net.ipv4.ip_forward=$(cat /proc/sys/net/ipv4/ip_forward)"

echo "=== fds"
for fd in $P/fd/*; do
    echo "${fd##*/} -> $(readlink "$fd")"
done

echo "=== mountinfo"
cat $P/mountinfo

echo "=== dev"
find /dev -mindepth 1 | sort | while read -r f; do
    stat -c '%n|%F|%a|%u|%g|%t:%T|%N' "$f"
done

echo "=== masked"
for p in /proc/acpi /proc/asound /proc/kcore /proc/keys /proc/latency_stats /proc/timer_list \
         /proc/timer_stats /proc/sched_debug /sys/firmware /proc/scsi /proc/interrupts; do
    if ! [ -e "$p" ]; then
        echo "$p: absent"
    elif [ -d "$p" ]; then
        echo "$p: dir entries=$(ls -A "$p" 2>&1 | wc -l) ls=$(ls "$p" >/dev/null 2>&1 && echo ok || echo fail)"
    else
        n=$(head -c 64 "$p" 2>/dev/null | wc -c)
        echo "$p: $(stat -c %F "$p") read=$(head -c 1 "$p" >/dev/null 2>&1 && echo ok || echo fail) bytes=$n"
    fi
done

echo "=== readonly"
# Writes of the current value back: harmless where they succeed (the container has its own UTS
# namespace, and the other files get the value they already have). busybox `[ -w ]` is always
# true for root, so the writes are real.
try() { out=$( ("$@") 2>&1); echo "rc=$? $out" | tr '\n' ' '; echo; }
rewrite() { v=$(cat "$1" 2>/dev/null) || { echo "$1: absent"; return; }
            echo "write $1: $(try sh -c 'printf "%s\n" "$1" > "$2"' sh "$v" "$1")"; }
for f in /proc/sys/kernel/hostname /proc/sys/kernel/domainname /proc/irq/default_smp_affinity \
         /proc/sys/kernel/printk_ratelimit /sys/kernel/mm/transparent_hugepage/enabled; do
    [ -e "$f" ] && rewrite "$f" || echo "$f: absent"
done
for d in / /tmp /etc /dev /dev/shm /dev/mqueue /scratch /hostdir /hostdir-rw /run /proc/sys \
         /proc/fs /proc/bus /sys /sys/fs/cgroup /sys/fs/cgroup/memory; do
    [ -d "$d" ] || continue
    echo "create in $d: $(try sh -c ': > "$1/.probe-write"' sh "$d")"
    rm -f "$d/.probe-write" 2>/dev/null
done
echo "mkdir in /dev/shm: $(try mkdir /dev/shm/probe-dir)"
rmdir /dev/shm/probe-dir 2>/dev/null
echo "mkdir in /sys/fs/cgroup/pids: $(try mkdir /sys/fs/cgroup/pids/probe-dir)"
rmdir /sys/fs/cgroup/pids/probe-dir 2>/dev/null

echo "=== files"
for d in /scratch /hostdir /hostdir-rw; do
    [ -d "$d" ] || continue
    echo "$d: $(ls -A "$d" | tr '\n' ' ')"
done
[ -f /hostdir/hello ] && echo "/hostdir/hello: $(cat /hostdir/hello)"
echo "/etc/hostname: $(cat /etc/hostname 2>&1)"

echo "=== net"
ip -o link 2>&1
ip -o addr 2>&1
echo "proc/net/dev: $(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' ')"

echo "=== end"
