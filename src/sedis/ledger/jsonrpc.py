"""The ImageLedger contract on any Ethereum JSON-RPC node: anvil, geth, Besu, a consortium chain.

Transactions are signed by the writer's signer and sent raw, with an explicit
gas limit, EIP-1559 fees where the node has a base fee, and a nonce read from
the node's pending state; the threads of a process that sign as one account
take turns from reading the nonce to sending. Every receipt's status is
checked.

Replies are bounded in size and depth by the transport (rpcnode.py), since the
node is not trusted to keep them small or shallow.

Reads are pinned to a block: the latest block is read once per read (or per
pinned block, each thread its own), checked against this SEDIS_HOME's high-water mark for
the chain (see heads.py) and, when ledger.max_head_age is set, against the
local clock; every call and log query then names that block.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from eth_utils.address import to_checksum_address

from sedis.core.address import Address
from sedis.core.errors import ConfigError, SedisError, UnavailableError
from sedis.core.records import LedgerInfo, TxReceipt
from sedis.fsutil import atomic_write_bytes
from sedis.ledger.abi import Log, codec, load_artifact
from sedis.ledger.contract import ContractReader, Reverted, account_arg
from sedis.ledger.heads import Head, HighWaterMarks, StaleLedgerError, head_too_old
from sedis.replies import printable

if TYPE_CHECKING:
    from pathlib import Path

    from web3 import Web3

    from sedis.config import Settings
    from sedis.crypto.signer import Signer

T = TypeVar("T")
DEV_CHAIN_IDS = frozenset({31337, 1337})  # anvil and hardhat; geth --dev
DEPLOYMENTS_FILE = "deployments.json"
_DEV_FUNDING = 10**20
_RECEIPT_TIMEOUT = 120.0
_GAS_MARGIN = 1.25
_NODE_TIMEOUT = 10.0


class InsufficientFundsError(UnavailableError):
    pass


# How long a process waits for another one sending as the same account.
_LOCK_WAIT = 120.0
_nonce_locks: dict[tuple[str, Address], threading.Lock] = {}
_nonce_locks_guard = threading.Lock()


def _nonce_lock(url: str, account: Address) -> threading.Lock:
    """The lock a process's threads that sign as ``account`` on the node at ``url`` share."""
    with _nonce_locks_guard:
        return _nonce_locks.setdefault((url, account), threading.Lock())


class JsonRpcLedger(ContractReader):
    """A ledger on a JSON-RPC node: one per process may serve every thread of it."""

    def __init__(
        self,
        settings: Settings,
        w3: Web3,
        chain_id: int,
        contract: str | None,
    ) -> None:
        self.url = settings.ledger_url
        self.w3 = w3
        self.chain_id = chain_id
        self._settings = settings
        self._contract_text = contract
        self.contract = bytes.fromhex(contract[2:]) if contract else b""
        self._marks = HighWaterMarks(settings.ledger_dir)
        self._pins = threading.local()

    @classmethod
    def connect(cls, settings: Settings, need_contract: bool = True) -> JsonRpcLedger:
        from web3 import Web3

        from sedis.ledger.rpcnode import BoundedHTTPProvider

        provider = BoundedHTTPProvider(
            settings.ledger_url, timeout=_NODE_TIMEOUT, cache_allowed_requests=True
        )
        w3 = Web3(provider)
        chain_id = _rpc(settings.ledger_url, lambda: int(w3.eth.chain_id))
        if settings.ledger_chain_id is not None and chain_id != settings.ledger_chain_id:
            raise ConfigError(
                f"the node at {settings.ledger_url} serves chain {chain_id}, but the "
                f"configuration expects chain {settings.ledger_chain_id} (ledger.chain_id)"
            )
        ledger = cls(settings, w3, chain_id, None)
        contract = settings.ledger_contract or ledger._deployed()
        if contract is None:
            if need_contract:
                raise ConfigError(
                    f"no ImageLedger contract is configured for chain {chain_id} at "
                    f"{settings.ledger_url}: run 'sedis ledger deploy' or set ledger.contract"
                )
            return ledger
        ledger._use(to_checksum_address(contract))
        return ledger

    def _use(self, contract: str) -> None:
        code = self._rpc(lambda: bytes(self.w3.eth.get_code(contract)))  # type: ignore[arg-type]
        if not code:
            raise ConfigError(f"there is no contract at {contract} on chain {self.chain_id}")
        if code != load_artifact().deployed_bytecode:
            raise ConfigError(
                f"the contract at {contract} on chain {self.chain_id} is an earlier ImageLedger "
                "(or another contract), whose records do not carry over: deploy the current "
                "one ('sedis ledger deploy') and publish again"
            )
        self._contract_text = contract
        self.contract = bytes.fromhex(contract[2:])

    def close(self) -> None:
        close = getattr(self.w3.provider, "close", None)
        if close is not None:
            close()

    def info(self) -> LedgerInfo:
        with self.pinned():
            number = self._pinned_head().number
        return LedgerInfo(
            url=self.url,
            chain_id=self.chain_id,
            contract=self._contract_text,
            block_number=number,
        )

    # -- deployment -------------------------------------------------------------------

    def deploy(self, signer: Signer) -> tuple[str, TxReceipt]:
        """Deploy a new ImageLedger signed by ``signer``, remember it for this chain, and use
        it from now on."""
        receipt, created = self._send(signer, None, load_artifact().bytecode)
        assert created is not None
        self._remember(created, receipt.block_number)
        self._use(created)
        return created, receipt

    @cached_property
    def _chain_key(self) -> str:
        genesis = self._rpc(lambda: self.w3.eth.get_block(0)["hash"])
        # Chain id alone would mistake a restarted dev node for the old one.
        return f"{self.chain_id}:0x{bytes(genesis).hex()}"

    def _registry_key(self) -> str:
        return self._chain_key

    def _registry_path(self) -> Path:
        return self._settings.ledger_dir / DEPLOYMENTS_FILE

    def _registry(self) -> dict[str, Any]:
        try:
            raw = json.loads(self._registry_path().read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read {self._registry_path()}: {exc}") from exc
        return raw if isinstance(raw, dict) else {}

    def _deployed(self) -> str | None:
        entry = self._registry().get(self._registry_key())
        return entry.get("contract") if isinstance(entry, dict) else None

    def _remember(self, contract: str, block: int) -> None:
        registry = self._registry()
        registry[self._registry_key()] = {"contract": contract, "block": block, "url": self.url}
        self._registry_path().parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self._registry_path(), json.dumps(registry, indent=2).encode() + b"\n")

    # -- the block that reads answer from ------------------------------------------------

    @contextmanager
    def pinned(self) -> Iterator[None]:
        if getattr(self._pins, "head", None) is not None:
            yield
            return
        self._pins.head = self._checked_head()
        try:
            yield
        finally:
            self._pins.head = None

    def _pinned_head(self) -> Head:
        head: Head | None = getattr(self._pins, "head", None)
        assert head is not None, "a read outside pinned()"
        return head

    def _checked_head(self) -> Head:
        """The latest block, once it is known not to be older than what was seen."""
        for attempt in range(2):
            before = self._marks.mark(self._chain_key)
            head = self._block("latest")
            too_old = head_too_old(head, int(time.time()), self._settings.ledger_max_head_age)
            if too_old is not None:
                raise StaleLedgerError(
                    f"the ledger node at {self.url} {too_old}: refusing a stalled or "
                    "replayed ledger"
                )
            try:
                self._marks.check_since(
                    self._chain_key, before, head, self._block_hash, self._describe
                )
                return head
            except StaleLedgerError:
                # A node behind a balancer may answer from a replica a block
                # behind another: ask once more before calling it stale.
                if attempt:
                    raise
        raise AssertionError("unreachable")

    @property
    def _describe(self) -> str:
        return f"the ledger node at {self.url} (chain {self.chain_id})"

    def _block_hash(self, number: int) -> str:
        return self._block(number).hash

    def _block(self, number: int | str) -> Head:
        block: Any = self._rpc(lambda: self.w3.eth.get_block(number))  # type: ignore[arg-type]
        if block is None or block.get("hash") is None or block.get("number") is None:
            raise UnavailableError(f"the ledger node at {self.url} has no block {number}")
        # Checked before it can become a mark: a malformed block from a node
        # must not be written to heads.json, where it would stop every chain.
        try:
            head = Head(
                int(block["number"]), "0x" + bytes(block["hash"]).hex(), int(block["timestamp"])
            )
        except (KeyError, TypeError, ValueError):
            head = None
        if head is None or head.number < 0 or len(head.hash) != 66 or head.timestamp < 0:
            raise UnavailableError(
                f"the ledger node at {self.url} answered a malformed block {number}"
            )
        return head

    def _chain_time(self) -> int:
        with self.pinned():
            return self._pinned_head().timestamp

    # -- primitives -----------------------------------------------------------------------

    def _call(self, data: bytes) -> bytes:
        tx: dict[str, Any] = {"to": self._contract_text, "data": data}
        with self.pinned():
            at = self._pinned_head().number
            return self._reverting(lambda: bytes(self.w3.eth.call(tx, at)))  # type: ignore[arg-type]

    def _transact(self, signer: Signer, data: bytes, gas: int) -> TxReceipt:
        return self._send(signer, self._contract_text, data)[0]

    def _logs(
        self, event_names: Sequence[str], topics: Sequence[bytes | None], from_block: int = 0
    ) -> list[Log]:
        c = codec()
        with self.pinned():
            to_block = self._pinned_head().number
        if from_block > to_block:
            return []
        query: Any = {
            "address": self._contract_text,
            "fromBlock": from_block,
            "toBlock": to_block,
            "topics": [
                [c.topic(n) for n in event_names],
                *[None if t is None else t for t in topics],
            ],
        }
        while query["topics"] and query["topics"][-1] is None:
            query["topics"].pop()
        rows = self._rpc(lambda: self.w3.eth.get_logs(query))
        return [
            Log(
                bytes(
                    r["address"]
                    if isinstance(r["address"], bytes)
                    else bytes.fromhex(r["address"][2:])
                ),
                tuple(bytes(t) for t in r["topics"]),
                bytes(r["data"]),
                int(r["blockNumber"]),
                int(r["logIndex"]),
                bytes(r["transactionHash"]),
            )
            for r in rows
        ]

    # -- sending -------------------------------------------------------------------------

    def _send(self, signer: Signer, to: str | None, data: bytes) -> tuple[TxReceipt, str | None]:
        sender = str(signer.address)
        base: dict[str, Any] = {"from": sender, "data": data, "value": 0}
        if to is not None:
            base["to"] = to
        # The estimate doubles as a dry run: a refusal surfaces here, with its reason.
        estimate = self._reverting(lambda: int(self.w3.eth.estimate_gas(base)))  # type: ignore[arg-type]
        gas = int(estimate * _GAS_MARGIN) + 10_000
        fees = self._fees()
        self._ensure_funds(signer.address, gas * max(fees.values()))
        tx_hash = self._send_signed(signer, {**base, **fees, "gas": gas})
        receipt: Any = self._rpc(
            lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=0.005
            )
        )
        if receipt["status"] != 1:
            # Something changed between the dry run and the block: ask again for the reason.
            self._reverting(lambda: bytes(self.w3.eth.call(base, receipt["blockNumber"])))  # type: ignore[arg-type]
            raise UnavailableError(
                f"transaction 0x{bytes(tx_hash).hex()} failed in block "
                f"{receipt['blockNumber']} (out of gas?)"
            )
        # What this account wrote must never be read back older (a revocation, say).
        # The receipt only ever raises the mark: one at or below it (another
        # process saw a later block already) does not make a landed write fail.
        written = Head(int(receipt["blockNumber"]), "0x" + bytes(receipt["blockHash"]).hex())
        self._marks.raise_to(self._chain_key, written, self._block_hash, self._describe)
        created = receipt.get("contractAddress")
        return (
            TxReceipt(
                "0x" + bytes(tx_hash).hex(), int(receipt["blockNumber"]), int(receipt["gasUsed"])
            ),
            created,
        )

    def _send_signed(self, signer: Signer, fields: dict[str, Any]) -> Any:
        """Sign and send with the account's next nonce; the transaction's hash."""
        sender = str(signer.address)
        # Until the node has the transaction, its nonce is not pending there: a
        # second thread signing as this account would read the same one, and so
        # would another process on this SEDIS_HOME (the file lock).
        with _nonce_lock(self.url, signer.address), self._nonce_file_lock(signer.address):
            for attempt in range(3):
                nonce = self._rpc(lambda: self.w3.eth.get_transaction_count(sender, "pending"))  # type: ignore[arg-type]
                tx = {**fields, "nonce": nonce, "chainId": self.chain_id}
                tx.pop("from")
                raw = signer.sign_transaction(tx)
                try:
                    return self.w3.eth.send_raw_transaction(raw)
                except SedisError:
                    raise
                except Exception as exc:
                    # Another process that signs as this account may have taken the nonce.
                    if "nonce" in str(exc).lower() and attempt < 2:
                        time.sleep(0.05 * (attempt + 1))
                        continue
                    raise _unavailable(self.url, exc) from exc
        raise AssertionError("unreachable")

    @contextmanager
    def _nonce_file_lock(self, account: Address) -> Iterator[None]:
        """The lock every process signing as ``account`` on this chain from this
        SEDIS_HOME takes around reading its next nonce and sending."""
        from filelock import FileLock, Timeout

        directory = self._settings.ledger_dir / "nonces"
        directory.mkdir(parents=True, exist_ok=True)
        lock = FileLock(str(directory / f"{self.chain_id}-{account.hex}.lock"), timeout=_LOCK_WAIT)
        try:
            with lock:
                yield
        except Timeout:
            raise UnavailableError(
                f"another process kept the nonce of {account} locked for {_LOCK_WAIT:.0f} s"
            ) from None

    def _fees(self) -> dict[str, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"))
        base_fee = block.get("baseFeePerGas")
        if base_fee is None:  # a chain without EIP-1559
            return {"gasPrice": self._rpc(lambda: int(self.w3.eth.gas_price))}
        try:
            tip = int(self.w3.eth.max_priority_fee)
        except SedisError:
            raise
        except Exception:  # a node without eth_maxPriorityFeePerGas
            tip = 10**9
        return {"maxFeePerGas": 2 * int(base_fee) + tip, "maxPriorityFeePerGas": tip}

    def balance(self, address: Address) -> int:
        checked = to_checksum_address(account_arg(address))
        return self._rpc(lambda: int(self.w3.eth.get_balance(checked)))

    def _ensure_funds(self, address: Address, needed: int) -> None:
        balance = self.balance(address)
        if balance >= needed:
            return
        if self.chain_id not in DEV_CHAIN_IDS:
            raise InsufficientFundsError(
                f"{address} has {balance} wei on chain {self.chain_id}, and this transaction may "
                f"cost up to {needed} wei: send it funds first"
            )
        # A dev node unlocks its dev accounts: the first one pays.
        dev = self._rpc(lambda: self.w3.eth.accounts[0])
        funding: Any = {"from": dev, "to": str(address), "value": _DEV_FUNDING + needed}
        tx_hash = self._rpc(lambda: self.w3.eth.send_transaction(funding))
        self._rpc(
            lambda: self.w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=_RECEIPT_TIMEOUT, poll_latency=0.005
            )
        )

    # -- error translation ------------------------------------------------------------------

    def _rpc(self, fn: Callable[[], T]) -> T:
        return _rpc(self.url, fn)

    def _reverting(self, fn: Callable[[], T]) -> T:
        from web3.exceptions import ContractLogicError

        try:
            return fn()
        except ContractLogicError as exc:
            raise Reverted(_revert_data(exc)) from None
        except SedisError:
            raise
        except Exception as exc:
            raise _unavailable(self.url, exc) from exc


def _rpc(url: str, fn: Callable[[], T]) -> T:
    try:
        return fn()
    except SedisError:
        raise
    except Exception as exc:
        raise _unavailable(url, exc) from exc


def _unavailable(url: str, exc: Exception) -> UnavailableError:
    # The node's own words, cut short: an error object may be as long as a reply.
    detail = printable(str(exc))
    return UnavailableError(f"the ledger node at {url} failed: {type(exc).__name__}: {detail}")


def _revert_data(exc: Exception) -> bytes:
    data = getattr(exc, "data", None)
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, bytes):
        return data
    if isinstance(data, str) and data.startswith("0x"):
        try:
            return bytes.fromhex(data[2:])
        except ValueError:
            return b""
    return b""
