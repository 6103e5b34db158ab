"""Raw calls of the ImageLedger contract, as any account holder could make them.

These bypass sedis's client: calls are encoded by web3 from the committed ABI
(contracts/ImageLedger.json), signed with a bare private key and sent as they
are, with whatever publisher, digest or index the caller chooses. Tests use them
to act as someone the client would never let one be: a squatter, an intruder.

    raw = RawContract(url, address, private_key)
    receipt = raw.send("setStatus", publisher, digest_bytes, 4, "mine")
    raw.call("statusOf", publisher, digest_bytes)

``send`` returns the receipt of a transaction that succeeded and raises
``RawRevert`` (with the revert data, decoded against the ABI's errors) on a
refusal. ``EmbeddedRaw`` offers the same on the embedded chain, which has no
JSON-RPC endpoint: the transaction it signs goes straight into that chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from eth_abi.abi import decode
from eth_account import Account
from eth_utils.crypto import keccak
from web3 import Web3
from web3.exceptions import ContractLogicError

ARTIFACT = Path(__file__).resolve().parents[3] / "contracts" / "ImageLedger.json"
_GAS = 1_000_000
_FUNDING = 10**20


@cache
def abi() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(ARTIFACT.read_text("utf-8"))["abi"]
    return loaded


def _type(param: dict[str, Any]) -> str:
    kind: str = param["type"]
    if kind.startswith("tuple"):
        return "(" + ",".join(_type(c) for c in param["components"]) + ")" + kind[5:]
    return kind


@cache
def _errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    out = {}
    for item in abi():
        if item["type"] == "error":
            types = [_type(p) for p in item["inputs"]]
            selector = keccak(text=f"{item['name']}({','.join(types)})")[:4]
            out[selector] = (item["name"], [p["name"] for p in item["inputs"]], types)
    return out


class RawRevert(Exception):
    """The contract refused the call: ``error`` is the custom error's name (None if
    the data decodes to none of the ABI's errors), ``args`` its arguments by name."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.error: str | None = None
        self.args_by_name: dict[str, Any] = {}
        known = _errors().get(data[:4])
        if known is not None:
            name, names, types = known
            self.error = name
            self.args_by_name = dict(zip(names, decode(types, data[4:]), strict=True))
        super().__init__(f"{self.error or 'reverted'} {self.args_by_name} (0x{data.hex()})")


@dataclass(frozen=True, slots=True)
class RawReceipt:
    tx_hash: str
    block_number: int
    gas_used: int


def _encoder() -> Any:
    return Web3().eth.contract(abi=abi())


def _normalise(args: tuple[Any, ...]) -> list[Any]:
    # web3 takes addresses as checksummed text; accept anything with a 0x form.
    return [Web3.to_checksum_address(str(a)) if _looks_like_address(a) else a for a in args]


def _looks_like_address(value: Any) -> bool:
    text = str(value) if not isinstance(value, bytes | int | list | tuple | dict) else ""
    return text.startswith("0x") and len(text) == 42


def _revert_data(exc: ContractLogicError) -> bytes:
    data: Any = exc.data
    if isinstance(data, dict):
        data = data.get("data")
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    return data if isinstance(data, bytes) else b""


class RawContract:
    """The contract at ``address`` on the JSON-RPC node at ``url``, called as the
    account of ``private_key``. On a dev chain, a new account is funded by the
    node's first unlocked account before its first transaction."""

    def __init__(self, url: str, address: str, private_key: bytes | str) -> None:
        self.w3 = Web3(Web3.HTTPProvider(url, cache_allowed_requests=True))
        self.account = Account.from_key(private_key)
        self.contract = self.w3.eth.contract(address=Web3.to_checksum_address(address), abi=abi())

    @property
    def address(self) -> str:
        return str(self.account.address)

    def encode(self, function: str, *args: Any) -> bytes:
        """The call data of ``function(*args)``, for a multicall."""
        encoded: str = self.contract.encode_abi(function, args=_normalise(args))
        return bytes.fromhex(encoded[2:])

    def call(self, function: str, *args: Any) -> Any:
        try:
            return self.contract.functions[function](*_normalise(args)).call({"from": self.address})
        except ContractLogicError as exc:
            raise RawRevert(_revert_data(exc)) from None

    def send(self, function: str, *args: Any) -> RawReceipt:
        """Sign and send ``function(*args)``; the receipt, or RawRevert with the refusal."""
        data = self.contract.encode_abi(function, args=_normalise(args))
        base: dict[str, Any] = {"from": self.address, "to": self.contract.address, "data": data}
        try:
            # A dry run, so that a refusal comes back with its revert data.
            self.w3.eth.call(base)  # type: ignore[arg-type]
        except ContractLogicError as exc:
            raise RawRevert(_revert_data(exc)) from None
        self._fund()
        block = self.w3.eth.get_block("latest")
        tip = 10**9
        tx: dict[str, Any] = {
            **base,
            "gas": _GAS,
            "nonce": self.w3.eth.get_transaction_count(self.account.address, "pending"),
            "chainId": self.w3.eth.chain_id,
            "maxFeePerGas": 2 * int(block["baseFeePerGas"]) + tip,
            "maxPriorityFeePerGas": tip,
            "value": 0,
        }
        tx.pop("from")
        signed = self.account.sign_transaction(tx)
        tx_hash = self.w3.eth.send_raw_transaction(signed.raw_transaction)
        receipt = self.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)
        if receipt["status"] != 1:
            raise RawRevert(b"")
        return RawReceipt(
            "0x" + bytes(tx_hash).hex(), int(receipt["blockNumber"]), int(receipt["gasUsed"])
        )

    def _fund(self) -> None:
        if self.w3.eth.get_balance(self.account.address) >= _FUNDING // 10:
            return
        funding: Any = {
            "from": self.w3.eth.accounts[0],
            "to": self.account.address,
            "value": _FUNDING,
        }
        tx_hash = self.w3.eth.send_transaction(funding)
        self.w3.eth.wait_for_transaction_receipt(tx_hash, poll_latency=0.005)


class EmbeddedRaw:
    """The same raw calls on an embedded ledger: web3 encodes them from the committed
    ABI, the key signs them, and the chain executes them as they are."""

    def __init__(self, ledger: Any, private_key: bytes | str) -> None:
        from sedis.crypto.signer import AccountSigner

        self._ledger = ledger
        self.account = Account.from_key(private_key)
        self._signer = AccountSigner(self.account)
        self._encoder = _encoder()

    @property
    def address(self) -> str:
        return str(self.account.address)

    def encode(self, function: str, *args: Any) -> bytes:
        """The call data of ``function(*args)``, for a multicall."""
        encoded: str = self._encoder.encode_abi(function, args=_normalise(args))
        return bytes.fromhex(encoded[2:])

    def call(self, function: str, *args: Any) -> Any:
        from sedis.ledger.contract import Reverted

        data = self.encode(function, *args)
        try:
            output = self._ledger._call(data)
        except Reverted as exc:
            raise RawRevert(exc.data) from None
        fn = self._encoder.get_function_by_name(function)
        types = [_type(p) for p in fn.abi["outputs"]]
        values = decode(types, output)
        return values[0] if len(values) == 1 else values

    def send(self, function: str, *args: Any) -> RawReceipt:
        from sedis.ledger.contract import Reverted

        try:
            receipt = self._ledger._transact(self._signer, self.encode(function, *args), _GAS)
        except Reverted as exc:
            raise RawRevert(exc.data) from None
        return RawReceipt(receipt.tx_hash, receipt.block_number, receipt.gas_used)
