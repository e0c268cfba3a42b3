"""hawserd (the supervisor daemon) and hawserctl (its docker-like client)."""
