"""containerd-shim-hawser-v2: the per-container shim (containerd shim v2, runtime type
io.containerd.hawser.v2). Modules: cli (start/delete/daemon), service (the Task API), process
(init and exec'd processes), runtime_cli (the low-level runtime's command line), reaper (every
child's exit), io (stdio and consoles), events (publishing to containerd), ttrpc, wire (protobuf
codec), mount (the rootfs)."""
VERSION = "0.1.0"
