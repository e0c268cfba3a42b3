"""hawserctl: its command line (ctl.py, cliargs.py), the gRPC client without grpcio (grpclite.py,
h2.py, hpack.py, messages.py) and attached sessions (session.py)."""
