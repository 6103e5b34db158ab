"""Hashing beside the caller's thread.

hashlib releases the GIL on large buffers, so hashes updated on a worker
thread run on the other core while the caller encrypts or reads. One worker
keeps the chunks in order; a bounded window keeps memory constant.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class BackgroundHashes:
    def __init__(self, *hashes: _Hash, window: int = 8) -> None:
        self._hashes = hashes
        self._window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sedis-hash")
        self._pending: deque[Future[None]] = deque()

    def _absorb(self, chunk: bytes) -> None:
        for h in self._hashes:
            h.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._pending.append(self._pool.submit(self._absorb, chunk))
        if len(self._pending) > self._window:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Wait until every chunk is absorbed (re-raising a worker's failure)."""
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)
