"""Tasks: a container's process under its shim (supervisor.py, shims.py), its logs and live
sessions, limits, restart recovery, and the Tasks service."""
