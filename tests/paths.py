"""Where the project and its programs are, for tests and helpers (not conftest: test modules
importing `conftest` by name would get whichever conftest.py pytest loaded last)."""
import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HAWSER = os.environ.get("HAWSER_BIN", str(REPO / ".venv" / "bin" / "hawser"))
