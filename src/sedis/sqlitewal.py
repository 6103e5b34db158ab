"""SQLite files in WAL mode, opened by several processes at once."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from filelock import FileLock, Timeout


def connect_wal(path: Path, schema: str, *, synchronous: str) -> sqlite3.Connection:
    """A connection to ``path`` in WAL mode with ``schema`` applied.

    Transactions are begun and ended by the caller (isolation_level=None),
    and a connection may be used from another thread than the one that opened
    it, never two at once. Switching a new file to WAL fails at once, without
    waiting out the busy timeout, while another process is switching it; so
    openers take turns under a lock file beside the database. Raises
    sqlite3.Error, for the caller to say what the file is.
    """
    conn = sqlite3.connect(path, isolation_level=None, timeout=60, check_same_thread=False)
    try:
        with FileLock(str(path.with_name(path.name + ".open-lock")), timeout=60):
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.executescript(schema)
    except Timeout as exc:
        conn.close()
        raise sqlite3.OperationalError("another process has been opening it for 60 s") from exc
    except BaseException:
        conn.close()
        raise
    return conn
