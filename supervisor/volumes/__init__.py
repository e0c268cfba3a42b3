"""Named and anonymous volumes (store.py, manager.py) and docker's -v/--mount/--tmpfs syntax
(mounts.py). Kept empty: hawserctl imports mounts.py, and a package's __init__ runs first."""
