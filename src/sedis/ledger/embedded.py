"""The default ledger: the ImageLedger bytecode on a py-evm chain kept in SEDIS_HOME/ledger/."""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from eth_utils.address import to_checksum_address

from sedis.core.address import Address
from sedis.core.errors import ConfigError, UnavailableError
from sedis.core.records import LedgerInfo, TxReceipt
from sedis.crypto.signer import AccountSigner, Signer
from sedis.ledger.abi import Log, codec, load_artifact
from sedis.ledger.contract import ContractReader, Reverted, account_arg
from sedis.ledger.evmchain import CHAIN_ID, DEV_ADDRESS, DEV_KEY, EmbeddedChain, Outcome

_DEPLOY_GAS = 5_000_000
_FUNDING = 10**20  # 100 ether: thousands of transactions at this chain's fees


class EmbeddedLedger(ContractReader):
    """The embedded chain's ledger: one per process may serve every thread of it."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._chain = EmbeddedChain(directory)
        self.contract = self._ensure_contract()

    @functools.cached_property
    def _dev(self) -> Signer:
        # eth_account is slow to import, and a reader never signs.
        return AccountSigner.from_key(DEV_KEY.to_bytes())

    def _ensure_contract(self) -> bytes:
        with self._chain.reading():
            known = self._chain.db.get_meta("contract")
            code = self._chain.account(bytes.fromhex(known))[2] if known else None
        if code is not None and code != load_artifact().deployed_bytecode:
            # An older sedis deployed another version: its records are keyed otherwise
            # and its events would not decode.
            raise ConfigError(
                f"the embedded ledger in {self.directory} holds an earlier ImageLedger, whose "
                "records do not carry over: move that directory aside (a new ledger starts "
                "on next use) and publish again"
            )
        if known is None:
            with self._chain.writing():
                known = self._chain.db.get_meta("contract")
                if known is None:
                    outcome = self._apply(self._dev, None, load_artifact().bytecode, _DEPLOY_GAS)
                    assert outcome.contract is not None
                    known = outcome.contract.hex()
                    self._chain.db.set_meta("contract", known)
                    self._chain.db.set_meta("contract_block", str(outcome.block_number))
        return bytes.fromhex(known)

    def close(self) -> None:
        self._chain.close()

    @contextmanager
    def pinned(self) -> Iterator[None]:
        # One SQLite read transaction of this thread: a snapshot of one block.
        with self._chain.reading():
            yield

    def info(self) -> LedgerInfo:
        with self._chain.reading():
            number, _ = self._chain.head()
        return LedgerInfo(
            url="embedded",
            chain_id=CHAIN_ID,
            contract=to_checksum_address(self.contract),
            block_number=number,
        )

    def balance(self, address: Address) -> int:
        with self._chain.reading():
            return self._chain.account(account_arg(address))[0]

    # -- primitives -------------------------------------------------------------------

    def _call(self, data: bytes) -> bytes:
        with self._chain.reading():
            outcome = self._chain.call(self.contract, data, DEV_ADDRESS)
        return _unwrap(outcome)

    def _transact(self, signer: Signer, data: bytes, gas: int) -> TxReceipt:
        with self._chain.writing():
            outcome = self._apply(signer, self.contract, data, gas)
        return TxReceipt("0x" + outcome.tx_hash.hex(), outcome.block_number, outcome.gas_used)

    def _logs(
        self, event_names: Sequence[str], topics: Sequence[bytes | None], from_block: int = 0
    ) -> list[Log]:
        c = codec()
        with self._chain.reading():
            return self._chain.logs(
                self.contract, [c.topic(n) for n in event_names], topics, from_block
            )

    def _chain_time(self) -> int:
        with self._chain.reading():
            return self._chain.head()[1]

    # -- inside a write session -----------------------------------------------------------

    def _apply(
        self, signer: Signer, to: bytes | None, data: bytes, gas: int, value: int = 0
    ) -> Outcome:
        sender = signer.address.raw
        balance, nonce, _ = self._chain.account(sender)
        max_fee = 2 * self._chain.base_fee() + 1
        signed = []
        if balance < gas * max_fee + value and sender != DEV_ADDRESS:
            # The embedded chain is a dev chain: its dev account funds whoever
            # acts, in the same block as the transaction that needs the funds.
            funding = _FUNDING + gas * max_fee + value
            dev_nonce = self._chain.account(DEV_ADDRESS)[1]
            signed.append(_signed(self._dev, dev_nonce, sender, b"", 21_000, funding, max_fee))
        signed.append(_signed(signer, nonce, to, data, gas, value, max_fee))
        outcome = self._chain.apply(signed)
        _unwrap(outcome)
        return outcome


def _signed(
    signer: Signer,
    nonce: int,
    to: bytes | None,
    data: bytes,
    gas: int,
    value: int,
    max_fee: int,
) -> bytes:
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": CHAIN_ID,
        "nonce": nonce,
        "gas": gas,
        "value": value,
        "data": data,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": 1,
    }
    if to is not None:
        tx["to"] = to_checksum_address(to)
    return signer.sign_transaction(tx)


def _unwrap(outcome: Outcome) -> bytes:
    if outcome.ok:
        return outcome.output
    if outcome.error == "reverted":
        raise Reverted(outcome.output)
    raise UnavailableError(f"the embedded ledger could not execute the call: {outcome.error}")
