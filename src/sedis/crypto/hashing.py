"""Hashing beside the caller's thread.

hashlib releases the GIL on large buffers, so hashes updated on a worker
thread run on the other core while the caller encrypts or reads. One worker
keeps the chunks in order; small chunks are handed over a mebibyte at a time
(each hand-off wakes a thread), and a bounded window keeps memory constant.
"""

from __future__ import annotations

from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Protocol

HANDOFF_BYTES = 1024 * 1024


class _Hash(Protocol):
    def update(self, data: bytes, /) -> None: ...


class BackgroundHashes:
    def __init__(self, *hashes: _Hash, window: int = 4) -> None:
        self._hashes = hashes
        self._window = window
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="sedis-hash")
        self._pending: deque[Future[None]] = deque()
        self._batch: list[bytes] = []
        self._batched = 0

    def _absorb(self, chunks: list[bytes]) -> None:
        for chunk in chunks:
            for h in self._hashes:
                h.update(chunk)

    def update(self, chunk: bytes) -> None:
        self._batch.append(chunk)
        self._batched += len(chunk)
        if self._batched >= HANDOFF_BYTES:
            self._hand_off()

    def _hand_off(self) -> None:
        if not self._batch:
            return
        self._pending.append(self._pool.submit(self._absorb, self._batch))
        self._batch, self._batched = [], 0
        if len(self._pending) > self._window:
            self._pending.popleft().result()

    def finish(self) -> None:
        """Wait until every chunk is absorbed (re-raising a worker's failure)."""
        try:
            self._hand_off()
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True)
