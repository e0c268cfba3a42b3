"""hawser: a runc-compatible OCI runtime."""
VERSION = "0.1.0"
OCI_VERSION = "1.3.0"
