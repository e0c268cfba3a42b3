"""containerd-shim-hawser-v2: the per-container shim (containerd shim v2, runtime type
io.containerd.hawser.v2). Modules: cli (the command line), daemon (`start` and the long-lived
process), cleanup (`delete` after a dead shim), service (the Task API), process (init and exec'd
processes), runtime_cli (the low-level runtime's command line), forkserver (hawser's commands
without a new interpreter), reaper (every child's exit),
io (stdio and consoles), mount (the rootfs), events (publishing to containerd), oom and stats
(cgroup v1), state (the shim's own files), ttrpc, wire (protobuf codec), threads."""
VERSION = "0.1.0"
