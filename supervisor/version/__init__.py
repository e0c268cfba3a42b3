"""The Version and Health services."""
