"""Networks: the networks and endpoints tables and IPAM (store.py, ipam.py), bridges and veths by
netlink in-process (bridge.py, netns.py), hawserd's nftables table (nat.py), DNS (dns.py), the
per-container /etc files (etcfiles.py), the orchestration (manager.py) and the Networks service."""
