"""The one way hawserd's services open meta.db: each service its own connection (and its own
tables), shared by its threads under its own lock, autocommit; WAL, so readers never wait for a
writer; synchronous=NORMAL (a commit survives a crash of hawserd, only a power loss may take the
last ones); a writer waits for another service's write instead of failing; and the WAL file cut
back after each checkpoint instead of staying at its largest (4 MiB)."""
import sqlite3

BUSY_SECONDS = 30.0
WAL_LIMIT = 1 << 20


def connect(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None,
                         timeout=BUSY_SECONDS)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT}")
    return db
