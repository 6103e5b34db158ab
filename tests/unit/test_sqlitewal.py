"""Several processes opening one new SQLite file at once all get it, in WAL mode."""

from __future__ import annotations

import multiprocessing
import sqlite3
import time
from pathlib import Path

import pytest

from sedis.sqlitewal import connect_wal

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY);"


def _open(path: str, start: float, results: multiprocessing.Queue[str]) -> None:
    while time.time() < start:
        pass
    try:
        conn = connect_wal(Path(path), SCHEMA, synchronous="NORMAL")
        results.put(conn.execute("PRAGMA journal_mode").fetchone()[0])
        conn.close()
    except sqlite3.Error as exc:
        results.put(f"{type(exc).__name__}: {exc}")


def test_openers_racing_on_a_new_file_all_succeed(tmp_path: Path) -> None:
    # Without the turn-taking, about one open in ten failed with "database is locked".
    ctx = multiprocessing.get_context("fork")
    outcomes = []
    for trial in range(10):
        results: multiprocessing.Queue[str] = ctx.Queue()
        start = time.time() + 0.2
        path = str(tmp_path / f"db{trial}.sqlite")
        procs = [ctx.Process(target=_open, args=(path, start, results)) for _ in range(4)]
        for proc in procs:
            proc.start()
        for proc in procs:
            proc.join(timeout=60)
        outcomes += [results.get(timeout=10) for _ in procs]
    assert outcomes == ["wal"] * 40


def test_a_file_that_is_not_sqlite_raises_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "not.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(sqlite3.DatabaseError):
        connect_wal(path, SCHEMA, synchronous="FULL")
