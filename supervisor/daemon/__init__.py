"""hawserd's wiring: its command line (cli.py) and gRPC server (server.py)."""
