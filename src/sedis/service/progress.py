"""How a long use case reports its progress: the work it will do, then as it goes."""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    def start(self, total: int) -> None:
        """The use case will process ``total`` bytes (called once, before any advance)."""
        ...

    def advance(self, done: int) -> None:
        """``done`` more bytes are processed."""
        ...
