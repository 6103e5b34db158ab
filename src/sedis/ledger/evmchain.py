"""The embedded chain: py-evm (Cancun) over SQLite, one block per write (a
transaction, with the dev account's funding of its sender when it needs it).

Writers take a lock of the process and a file lock (so one thread of one
process writes at a time), then run the whole transaction (execution, block,
receipts, log index) inside one SQLite transaction: it commits whole or not at
all, and a reverted transaction is never persisted. Readers run calls on a
snapshot of the latest block, each thread on its own (see sqlitedb.py), and
need no lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth.chains.base import MiningChain
from eth.constants import POST_MERGE_DIFFICULTY, POST_MERGE_MIX_HASH, POST_MERGE_NONCE
from eth.db.atomic import AtomicDB
from eth.exceptions import Revert
from eth.vm.forks.cancun import CancunVM
from eth.vm.message import Message
from eth_keys.datatypes import PrivateKey
from eth_typing import Address
from eth_utils.exceptions import ValidationError
from filelock import FileLock, Timeout

from sedis.core.errors import UnavailableError
from sedis.ledger.abi import Log
from sedis.ledger.sqlitedb import SqliteDB

CHAIN_ID = 1337
GAS_LIMIT = 30_000_000
CALL_GAS = 50_000_000
# The dev account that holds the embedded chain's ether and funds new
# accounts. Its key is public by design: this chain is local to one machine.
DEV_KEY = PrivateKey(
    bytes.fromhex("5ed15de75ed15de75ed15de75ed15de75ed15de75ed15de75ed15de75ed15de7")
)
DEV_ADDRESS = DEV_KEY.public_key.to_canonical_address()
_DEV_BALANCE = 10**30
_LOCK_TIMEOUT = 60.0


class _VM(CancunVM):
    @classmethod
    def validate_header(cls, header: Any, parent_header: Any) -> None:
        # Every transaction gets its own block and dozens fit in a second, so a
        # block may share its parent's second; time must only never go back.
        if header.timestamp == parent_header.timestamp:
            parent_header = parent_header.copy(timestamp=parent_header.timestamp - 1)
        super().validate_header(header, parent_header)


class _Chain(MiningChain):
    chain_id = CHAIN_ID
    vm_configuration = ((0, _VM),)  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What executing one transaction or call produced."""

    ok: bool
    output: bytes
    gas_used: int = 0
    tx_hash: bytes = b""
    block_number: int = 0
    error: str = ""
    contract: bytes | None = None


class EmbeddedChain:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = FileLock(str(directory / "lock"), timeout=_LOCK_TIMEOUT)
        self._writer = threading.Lock()
        self.db = SqliteDB(directory / "chain.sqlite")
        self._atomic = AtomicDB(self.db)
        with self.reading():
            fresh = self.db.get_meta("genesis") is None
        if fresh:
            with self.writing():
                if self.db.get_meta("genesis") is None:
                    self._create()

    def _create(self) -> None:
        params: Any = {
            "coinbase": b"\0" * 20,
            "difficulty": POST_MERGE_DIFFICULTY,
            "extra_data": b"sedis",
            "gas_limit": GAS_LIMIT,
            "mix_hash": POST_MERGE_MIX_HASH,
            "nonce": POST_MERGE_NONCE,
            "timestamp": int(time.time()),
        }
        dev = {"balance": _DEV_BALANCE, "nonce": 0, "code": b"", "storage": {}}
        state: Any = {DEV_ADDRESS: dev}
        genesis = _Chain.from_genesis(self._atomic, params, state).get_canonical_head()
        self.db.set_meta("genesis", genesis.hash.hex())

    def close(self) -> None:
        self.db.close()

    # -- sessions -------------------------------------------------------------

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The one writer: locks of the process and across processes, and an
        all-or-nothing SQLite transaction. Write sessions do not nest."""
        # Threads queue here, not on the file lock, whose timeout is meant for
        # another process that hangs.
        try:
            with self._writer, self._lock, self.db.transaction(write=True):
                yield
        except Timeout:
            raise UnavailableError(
                f"the embedded ledger in {self.directory} stayed locked by another process "
                f"for {_LOCK_TIMEOUT:.0f} s"
            ) from None

    @contextmanager
    def reading(self) -> Iterator[None]:
        """A snapshot of the chain for this thread; nested sessions share the outer one's."""
        with self.db.transaction(write=False):
            yield

    # -- reads (inside a session) -----------------------------------------------

    def _pending(self) -> tuple[_Chain, Any]:
        chain = _Chain(self._atomic)
        head = chain.get_canonical_head()
        header = chain.create_header_from_parent(
            head, timestamp=max(int(time.time()), head.timestamp), gas_limit=head.gas_limit
        )
        return chain, header

    def head(self) -> tuple[int, int]:
        """Number and timestamp of the latest block."""
        header = _Chain(self._atomic).get_canonical_head()
        return header.block_number, header.timestamp

    def account(self, address: bytes) -> tuple[int, int, bytes]:
        """Balance, nonce and code of an account at the latest block."""
        chain, header = self._pending()
        state = chain.get_vm(header).state
        who = Address(address)
        return state.get_balance(who), state.get_nonce(who), state.get_code(who)

    def base_fee(self) -> int:
        _, header = self._pending()
        fee: int = header.base_fee_per_gas
        return fee

    def call(self, to: bytes, data: bytes, sender: bytes) -> Outcome:
        chain, header = self._pending()
        state = chain.get_vm(header).state
        message = Message(
            gas=CALL_GAS,
            to=Address(to),
            sender=Address(sender),
            value=0,
            data=data,
            code=state.get_code(Address(to)),
        )
        context = state.get_transaction_context_class()(gas_price=0, origin=Address(sender))
        snapshot = state.snapshot()
        try:
            computation = state.computation_class.apply_message(state, message, context)
        finally:
            state.revert(snapshot)
        return _outcome(computation)

    def logs(
        self,
        address: bytes,
        topic0s: Sequence[bytes],
        topics: Sequence[bytes | None] = (),
        from_block: int = 0,
    ) -> list[Log]:
        return [
            Log(a, t, d, b, i, tx)
            for b, i, tx, a, t, d in self.db.find_logs(address, topic0s, topics, from_block)
        ]

    # -- writes (inside writing()) --------------------------------------------------

    def apply(self, raw_txs: Sequence[bytes]) -> Outcome:
        """Execute signed transactions, in order, in a new block; the outcome is the
        last one's, and any that fails fails them all. A failure leaves no trace once
        the caller's writing() session rolls back."""
        chain, header = self._pending()
        chain.header = header
        vm = chain.get_vm(header)
        try:
            txs = [vm.get_transaction_builder().decode(raw) for raw in raw_txs]
            _, receipts, computations = chain.mine_all(txs)
        except ValidationError as exc:
            return Outcome(ok=False, output=b"", error=f"the transaction is invalid: {exc}")
        for computation in computations:
            outcome = _outcome(computation)
            if not outcome.ok:
                return outcome
        block_number = header.block_number
        emitted = [
            (tx.hash, log)
            for tx, receipt in zip(txs, receipts, strict=True)
            for log in receipt.logs
        ]
        self.db.add_logs(
            [
                (
                    block_number,
                    index,
                    tx_hash,
                    bytes(log.address),
                    tuple(t.to_bytes(32, "big") for t in log.topics),
                    bytes(log.data),
                )
                for index, (tx_hash, log) in enumerate(emitted)
            ]
        )
        tx, computation = txs[-1], computations[-1]
        # Receipts count gas cumulatively over the block.
        gas_before = receipts[-2].gas_used if len(receipts) > 1 else 0
        created = computation.msg.storage_address if tx.to == b"" else None
        return Outcome(
            ok=True,
            output=outcome.output,
            gas_used=receipts[-1].gas_used - gas_before,
            tx_hash=tx.hash,
            block_number=block_number,
            contract=created,
        )


def _outcome(computation: Any) -> Outcome:
    if computation.is_success:
        return Outcome(ok=True, output=bytes(computation.output))
    error = computation.error
    if isinstance(error, Revert):
        return Outcome(ok=False, output=bytes(computation.output), error="reverted")
    return Outcome(ok=False, output=b"", error=f"{type(error).__name__}: {error}")
