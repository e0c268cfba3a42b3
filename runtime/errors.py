"""The error types: the one exception the CLI turns into a one-line error and exit status 1.
Defined in the package itself (see runtime/__init__.py); this is their usual import path."""
from runtime import HawserError, NotExist

__all__ = ["HawserError", "NotExist"]
