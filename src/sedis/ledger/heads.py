"""The highest block seen of each chain, so that a node replaying old answers is refused.

A JSON-RPC node (or a proxy in front of one) that answers from an older block
than this client has already seen would undo a revocation. Each chain, known
by its id and genesis hash, has a mark in SEDIS_HOME/ledger/heads.json: the
highest block number seen and that block's hash. A head below the mark, or
another hash at a height already seen, is refused; a head above it raises the
mark. The file is shared by every process using this SEDIS_HOME: it is read
as it stands (writes replace it whole) and rewritten under a file lock, which
also keeps the threads of one process (each opens it afresh) from rewriting
it at once.

A head is judged against the mark as it stood before the head was asked for:
another thread or process may raise the mark while the head is on its way,
and a head older than what was seen only since then proves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sedis.core.errors import ConfigError, UnavailableError
from sedis.fsutil import atomic_write_bytes

HEADS_FILE = "heads.json"
_MAX_FILE_BYTES = 1024 * 1024
_LOCK_TIMEOUT = 30.0


class StaleLedgerError(UnavailableError):
    """The node answered from a state older than, or forked from, what was already seen."""


@dataclass(frozen=True, slots=True)
class Head:
    """A block the node answered from: its number, its hash (0x hex) and its timestamp."""

    number: int
    hash: str
    timestamp: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    number: int
    hash: str


def judge(mark: Mark | None, head: Head, ancestor_hash: Callable[[int], str]) -> str | None:
    """Why ``head`` cannot be trusted against ``mark``, or None when it can.

    ``ancestor_hash(n)`` gives the node's hash of block ``n``; it is asked only
    when the head is above the mark, to check that the head descends from it.
    """
    if mark is None:
        return None
    if head.number < mark.number:
        return f"answers from block {head.number}, older than block {mark.number} already seen"
    seen = head.hash if head.number == mark.number else ancestor_hash(mark.number)
    if seen.lower() != mark.hash.lower():
        return (
            f"gives block {mark.number} the hash {_short(seen)}, but {_short(mark.hash)} "
            "was seen at that height"
        )
    return None


def head_too_old(head: Head, now: int, max_age: int | None) -> str | None:
    """Why a head whose timestamp is further behind ``now`` than ``max_age`` is refused."""
    if max_age is None or now - head.timestamp <= max_age:
        return None
    return (
        f"serves block {head.number} made {now - head.timestamp}s ago, "
        f"older than ledger.max_head_age ({max_age}s)"
    )


class HighWaterMarks:
    """The marks of every chain this SEDIS_HOME has read, in one file."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / HEADS_FILE

    def mark(self, chain: str) -> Mark | None:
        return self._load().get(chain)

    def check(
        self, chain: str, head: Head, ancestor_hash: Callable[[int], str], describe: str
    ) -> None:
        """Refuse ``head`` (``describe`` names the node) or raise the mark to it."""
        self.check_since(chain, self.mark(chain), head, ancestor_hash, describe)

    def check_since(
        self,
        chain: str,
        before: Mark | None,
        head: Head,
        ancestor_hash: Callable[[int], str],
        describe: str,
    ) -> None:
        """Refuse ``head`` if it is older than, or forked from, ``before`` (the mark read
        before the head was asked for); else raise the mark to it."""
        self._refuse(judge(before, head, ancestor_hash), describe)
        if before is not None and head.number == before.number:
            return
        self._raise(chain, before, head, ancestor_hash, describe)

    def raise_to(
        self, chain: str, head: Head, ancestor_hash: Callable[[int], str], describe: str
    ) -> None:
        """Raise the mark to a block that a write landed in; one below the mark is no news.

        The mark may have passed the block since the write was sent, and the
        write landed all the same: that is not a reason to report it failed.
        """
        mark = self.mark(chain)
        if mark is not None and head.number < mark.number:
            return
        self._raise(chain, None, head, ancestor_hash, describe)

    def _raise(
        self,
        chain: str,
        before: Mark | None,
        head: Head,
        ancestor_hash: Callable[[int], str],
        describe: str,
    ) -> None:
        from filelock import FileLock, Timeout

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with FileLock(str(self.path) + ".lock", timeout=_LOCK_TIMEOUT):
                marks = self._load()
                latest = marks.get(chain)
                if latest != before and latest is not None:
                    # Moved meanwhile: a head at or above it must still agree with
                    # it; one below it is older only than news that came later.
                    if head.number < latest.number:
                        return
                    self._refuse(judge(latest, head, ancestor_hash), describe)
                    if head.number == latest.number:
                        return
                marks[chain] = Mark(head.number, head.hash)
                body = {k: {"number": m.number, "hash": m.hash} for k, m in marks.items()}
                atomic_write_bytes(self.path, json.dumps(body, indent=2).encode() + b"\n")
        except Timeout:
            raise UnavailableError(f"{self.path} stayed locked for {_LOCK_TIMEOUT:.0f}s") from None

    def _refuse(self, reason: str | None, describe: str) -> None:
        if reason is not None:
            raise StaleLedgerError(
                f"{describe} {reason}: refusing a stale, forked or replayed ledger "
                f"(the marks are in {self.path})"
            )

    def _load(self) -> dict[str, Mark]:
        try:
            with open(self.path, "rb") as f:
                raw = f.read(_MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise ConfigError(f"cannot read {self.path}: {exc.strerror}") from exc
        if len(raw) > _MAX_FILE_BYTES:
            raise ConfigError(f"{self.path} is larger than 1 MiB")
        try:
            data = json.loads(raw)
            return {
                str(key): Mark(_number(entry["number"]), _hash(entry["hash"]))
                for key, entry in data.items()
            }
        except (ValueError, TypeError, KeyError, AttributeError):
            raise ConfigError(f"{self.path} is not a valid file of block marks") from None


def _number(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError("a block number")
    return value


def _hash(value: object) -> str:
    if not isinstance(value, str) or len(value) != 66 or not value.startswith("0x"):
        raise ValueError("a block hash")
    int(value[2:], 16)
    return value


def _short(block_hash: str) -> str:
    return block_hash[:10] + "…"
