"""Labels hawserd sets on containers for itself."""
AUTOREMOVE = "hawser.autoremove"    # run --rm -d: remove the container once its task has exited
