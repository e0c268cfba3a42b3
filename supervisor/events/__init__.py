"""Events: the hub the shims publish to (hub.py) and the Events service."""
