"""hawserd (the supervisor daemon) and hawserctl (its docker-like client)."""
VERSION = "0.1.0"
