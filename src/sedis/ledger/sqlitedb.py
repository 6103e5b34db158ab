"""SQLite under py-evm: the embedded chain's key-value store, log index and metadata.

Every write of one transaction (state trie nodes, block, receipts, canonical
head, log index rows) happens inside one SQLite transaction, so a crash at any
point leaves the chain either before or after that transaction, never between.
WAL mode lets readers keep a consistent snapshot while a writer works.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from eth.db.backends.base import BaseDB

from sedis.core.errors import CorruptError, UnavailableError
from sedis.sqlitewal import connect_wal

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL, idx INTEGER NOT NULL, tx BLOB NOT NULL, address BLOB NOT NULL,
    t0 BLOB, t1 BLOB, t2 BLOB, t3 BLOB, data BLOB NOT NULL,
    PRIMARY KEY (block, idx)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_t1 ON logs (t1, t0);
CREATE INDEX IF NOT EXISTS logs_t2 ON logs (t2, t0);
CREATE INDEX IF NOT EXISTS logs_t3 ON logs (t3, t0);
"""

LogRow = tuple[int, int, bytes, bytes, tuple[bytes, ...], bytes]


class SqliteDB(BaseDB):
    """A py-evm key-value database in one SQLite file, shared by the threads of a process.

    Each thread reads through a connection of its own, so that each holds its
    own snapshot: one SQLite connection carries one transaction at a time, and
    a snapshot held by one thread (a pinned read) must neither block nor be
    shared by the others. Writes go through one more connection, used by one
    writer at a time (the caller serialises them): a thread inside a pinned
    read may still write, without its snapshot being in the way.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._guard = threading.Lock()
        self._readers: dict[threading.Thread, sqlite3.Connection] = {}
        self._closed = False
        self._writer = self._connect()

    def _connect(self) -> sqlite3.Connection:
        try:
            return connect_wal(self.path, _SCHEMA, synchronous="FULL")
        except sqlite3.DatabaseError as exc:
            raise _translate(self.path, exc) from exc

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection this thread's session uses: the writer's inside writing()."""
        if getattr(self._local, "writing", False):
            return self._writer
        conn: sqlite3.Connection | None = getattr(self._local, "reader", None)
        if conn is None:
            conn = self._local.reader = self._reader()
        return conn

    def _reader(self) -> sqlite3.Connection:
        conn = self._connect()
        with self._guard:
            if self._closed:
                conn.close()
                raise UnavailableError(f"the embedded ledger {self.path} is closed")
            # Threads come and go (a server's request threads): close what the
            # finished ones left, so that connections do not pile up.
            for thread in [t for t in self._readers if not t.is_alive()]:
                self._readers.pop(thread).close()
            self._readers[threading.current_thread()] = conn
        return conn

    def close(self) -> None:
        with self._guard:
            self._closed = True
            readers, self._readers = list(self._readers.values()), {}
        for conn in readers:
            conn.close()
        self._writer.close()

    @contextmanager
    def transaction(self, write: bool) -> Iterator[None]:
        """This thread's snapshot for reads, or the one writer's all-or-nothing transaction.

        A read session inside another on the same thread joins it: reads in
        it all answer from the snapshot the outer one took. Write sessions do
        not nest.
        """
        if write:
            with self._session(self._begin_write, self._end_write):
                yield
            return
        depth: int = getattr(self._local, "read_depth", 0)
        if depth or getattr(self._local, "writing", False):
            # A read inside a write session reads what the write has done so far.
            self._local.read_depth = depth + 1
            try:
                yield
            finally:
                self._local.read_depth = depth
            return
        with self._session(self._begin_read, self._end_read):
            yield

    @contextmanager
    def _session(
        self, begin: Callable[[], sqlite3.Connection], end: Callable[[], None]
    ) -> Iterator[None]:
        try:
            conn = begin()
            try:
                yield
            except BaseException:
                end()
                conn.execute("ROLLBACK")
                raise
            end()
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise _translate(self.path, exc) from exc

    def _begin_read(self) -> sqlite3.Connection:
        conn = self.conn
        conn.execute("BEGIN")
        self._local.read_depth = 1
        # SQLite takes a deferred transaction's snapshot at its first read:
        # read now, so that the snapshot is the state when the session began.
        conn.execute("SELECT 1 FROM meta LIMIT 1").fetchall()
        return conn

    def _end_read(self) -> None:
        self._local.read_depth = 0

    def _begin_write(self) -> sqlite3.Connection:
        if getattr(self._local, "writing", False):
            raise RuntimeError("write sessions of the embedded ledger do not nest")
        self._writer.execute("BEGIN IMMEDIATE")
        self._local.writing = True
        return self._writer

    def _end_write(self) -> None:
        self._local.writing = False

    # -- py-evm's DatabaseAPI ------------------------------------------------

    def __getitem__(self, key: bytes) -> bytes:
        row = self.conn.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        value: bytes = row[0]
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.conn.execute("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)", (key, value))

    def __delitem__(self, key: bytes) -> None:
        if self.conn.execute("DELETE FROM kv WHERE k = ?", (key,)).rowcount == 0:
            raise KeyError(key)

    def _exists(self, key: bytes) -> bool:
        return self.conn.execute("SELECT 1 FROM kv WHERE k = ?", (key,)).fetchone() is not None

    # -- metadata and the log index --------------------------------------------

    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES (?, ?)", (key, value))

    def add_logs(self, rows: Sequence[LogRow]) -> None:
        self.conn.executemany(
            "INSERT INTO logs (block, idx, tx, address, t0, t1, t2, t3, data)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(b, i, tx, a, *(list(t) + [None] * 4)[:4], d) for b, i, tx, a, t, d in rows],
        )

    def find_logs(
        self,
        address: bytes,
        topic0s: Sequence[bytes],
        topics: Sequence[bytes | None],
        from_block: int = 0,
    ) -> list[LogRow]:
        """Logs of one contract with one of ``topic0s`` from block ``from_block`` on;
        ``topics`` filter topics 1 to 3."""
        where = ["address = ?", f"t0 IN ({','.join('?' * len(topic0s))})"]
        params: list[bytes | int] = [address, *topic0s]
        if from_block > 0:
            where.append("block >= ?")
            params.append(from_block)
        for column, value in zip(("t1", "t2", "t3"), topics, strict=False):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        sql = (
            "SELECT block, idx, tx, address, t0, t1, t2, t3, data FROM logs WHERE "  # noqa: S608
            + " AND ".join(where)
            + " ORDER BY block, idx"
        )
        return [
            (b, i, tx, a, tuple(t for t in (t0, t1, t2, t3) if t is not None), d)
            for b, i, tx, a, t0, t1, t2, t3, d in self.conn.execute(sql, params)
        ]


def _translate(path: Path, exc: sqlite3.DatabaseError) -> Exception:
    # SQLite finds damage as it reads pages, so there is no need to scan the
    # whole file on every open.
    if isinstance(exc, sqlite3.OperationalError):
        return UnavailableError(f"the embedded ledger {path} is unavailable: {exc}")
    return CorruptError(f"the embedded ledger database {path} is damaged: {exc}")
