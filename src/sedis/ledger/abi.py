"""The committed ImageLedger artifact, and ABI encoding and decoding for it.

Built on eth_abi alone, so that both engines (py-evm in-process and a JSON-RPC
node) share one codec and no compiler is needed at run time.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from eth_abi.abi import decode, encode
from eth_abi.decoding import ContextFramesBytesIO
from eth_abi.exceptions import DecodingError
from eth_hash.auto import keccak
from eth_utils.address import to_checksum_address

from sedis.core.errors import CorruptError

ARTIFACT_NAME = "ImageLedger.json"
_ERROR_STRING = bytes.fromhex("08c379a0")
_PANIC = bytes.fromhex("4e487b71")


@dataclass(frozen=True, slots=True)
class Artifact:
    abi: list[dict[str, Any]]
    bytecode: bytes
    deployed_bytecode: bytes
    compiler: str
    source_sha256: str


@dataclass(frozen=True, slots=True)
class _Function:
    selector: bytes
    inputs: list[str]
    outputs: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class _Event:
    name: str
    inputs: list[dict[str, Any]]
    # Prepared once, since the audit log decodes thousands of logs: each indexed
    # input's name and word decoder, and the non-indexed inputs' tuple decoder.
    indexed: tuple[tuple[str, Callable[[bytes], Any]], ...]
    plain: list[dict[str, Any]]
    plain_decoder: Callable[[bytes], tuple[Any, ...]]


@dataclass(frozen=True, slots=True)
class DecodedError:
    name: str
    args: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Log:
    """One raw log, as either engine returns it."""

    address: bytes
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    log_index: int
    tx_hash: bytes


@dataclass(frozen=True, slots=True)
class Event:
    name: str
    args: dict[str, Any]
    block_number: int
    log_index: int
    tx_hash: bytes


def _artifact_text() -> str:
    # An installed package carries the artifact beside this module; a checkout
    # reads the committed one in contracts/.
    packaged = resources.files("sedis.ledger").joinpath(ARTIFACT_NAME)
    if packaged.is_file():
        return packaged.read_text("utf-8")
    checkout = Path(__file__).resolve().parents[3] / "contracts" / ARTIFACT_NAME
    try:
        return checkout.read_text("utf-8")
    except OSError as exc:
        raise CorruptError(f"the contract artifact {ARTIFACT_NAME} is missing: {exc}") from exc


@functools.cache
def load_artifact() -> Artifact:
    raw = json.loads(_artifact_text())
    return Artifact(
        abi=raw["abi"],
        bytecode=bytes.fromhex(raw["bytecode"].removeprefix("0x")),
        deployed_bytecode=bytes.fromhex(raw["deployedBytecode"].removeprefix("0x")),
        compiler=raw["compiler"]["version"],
        source_sha256=raw["sourceSha256"],
    )


def type_string(param: dict[str, Any]) -> str:
    """The canonical ABI type of a parameter, with tuples spelled out."""
    kind: str = param["type"]
    if kind.startswith("tuple"):
        inner = ",".join(type_string(c) for c in param["components"])
        return f"({inner}){kind[len('tuple') :]}"
    return kind


def _signature(item: dict[str, Any]) -> str:
    return f"{item['name']}({','.join(type_string(p) for p in item['inputs'])})"


def _named(params: list[dict[str, Any]], values: tuple[Any, ...] | list[Any]) -> dict[str, Any]:
    return {p["name"]: _shape(p, v) for p, v in zip(params, values, strict=True)}


def _shape(param: dict[str, Any], value: Any) -> Any:
    kind: str = param["type"]
    if kind == "tuple":
        return _named(param["components"], value)
    if kind.startswith("tuple["):
        return [_named(param["components"], v) for v in value]
    if kind == "address":
        return checksummed(value)
    return value


@functools.lru_cache(maxsize=65_536)
def checksummed(value: str | bytes) -> str:
    """An address in EIP-55 case; cached, since a log holds the same few accounts over
    and over and each checksum costs a keccak."""
    return to_checksum_address(value)


def _word_decoder(param: dict[str, Any]) -> Callable[[bytes], Any]:
    """How to read an indexed input's topic word: directly for the static types this
    contract indexes, through eth_abi for anything else."""
    kind = type_string(param)
    if kind == "address":
        return _address_word
    if kind == "bytes32":
        return _bytes32_word
    if kind.startswith("uint") and kind[4:].isdigit():
        return functools.partial(_uint_word, int(kind[4:]))
    return lambda topic: _shape(param, decode([kind], topic)[0])


def _address_word(topic: bytes) -> str:
    if len(topic) != 32 or any(topic[:12]):
        raise DecodingError("an address topic has 12 zero bytes, then 20")
    return checksummed(topic[12:])


def _bytes32_word(topic: bytes) -> bytes:
    if len(topic) != 32:
        raise DecodingError("a topic has 32 bytes")
    return topic


def _uint_word(bits: int, topic: bytes) -> int:
    value = int.from_bytes(topic, "big")
    if len(topic) != 32 or value >> bits:
        raise DecodingError(f"a uint{bits} topic out of range")
    return value


def _prepared_event(item: dict[str, Any]) -> _Event:
    from eth_abi.registry import registry

    plain = [p for p in item["inputs"] if not p["indexed"]]
    tuple_decoder = registry.get_tuple_decoder(*(type_string(p) for p in plain))

    def plain_decoder(data: bytes) -> tuple[Any, ...]:
        values: tuple[Any, ...] = tuple_decoder(ContextFramesBytesIO(data))  # type: ignore[no-untyped-call]
        return values

    return _Event(
        item["name"],
        item["inputs"],
        tuple((p["name"], _word_decoder(p)) for p in item["inputs"] if p["indexed"]),
        plain,
        plain_decoder,
    )


class Codec:
    """Calls, results, custom errors and events of one contract ABI."""

    def __init__(self, abi: list[dict[str, Any]]) -> None:
        self._functions: dict[str, _Function] = {}
        self._errors: dict[bytes, tuple[str, list[dict[str, Any]]]] = {}
        self._events: dict[bytes, _Event] = {}
        self._topics: dict[str, bytes] = {}
        for item in abi:
            if item["type"] == "function":
                self._functions[item["name"]] = _Function(
                    selector=keccak(_signature(item).encode())[:4],
                    inputs=[type_string(p) for p in item["inputs"]],
                    outputs=item["outputs"],
                )
            elif item["type"] == "error":
                self._errors[keccak(_signature(item).encode())[:4]] = (item["name"], item["inputs"])
            elif item["type"] == "event":
                topic = keccak(_signature(item).encode())
                self._events[topic] = _prepared_event(item)
                self._topics[item["name"]] = topic

    def call_data(self, name: str, *args: Any) -> bytes:
        fn = self._functions[name]
        return fn.selector + encode(fn.inputs, list(args))

    def result(self, name: str, data: bytes) -> Any:
        """A function's return values: one value, or a tuple of several."""
        outputs = self._functions[name].outputs
        try:
            values = decode([type_string(p) for p in outputs], data)
        except (DecodingError, ValueError) as exc:
            raise CorruptError(f"the ledger answered {name}() with malformed data: {exc}") from exc
        shaped = [_shape(p, v) for p, v in zip(outputs, values, strict=True)]
        return shaped[0] if len(shaped) == 1 else tuple(shaped)

    def error(self, data: bytes) -> DecodedError | None:
        """The custom error (or Error(string), or Panic) in revert data; None if unknown."""
        selector, body = data[:4], data[4:]
        try:
            if selector == _ERROR_STRING:
                return DecodedError("Error", {"message": decode(["string"], body)[0]})
            if selector == _PANIC:
                return DecodedError("Panic", {"code": decode(["uint256"], body)[0]})
            if selector in self._errors:
                name, params = self._errors[selector]
                values = decode([type_string(p) for p in params], body)
                return DecodedError(name, _named(params, values))
        except (DecodingError, ValueError):
            return None
        return None

    def event_names(self) -> list[str]:
        return list(self._topics)

    def topic(self, event: str) -> bytes:
        return self._topics[event]

    def event(self, log: Log) -> Event | None:
        """Decode a log of this contract; None for one it does not know."""
        if not log.topics or log.topics[0] not in self._events:
            return None
        spec = self._events[log.topics[0]]
        if len(log.topics) != len(spec.indexed) + 1:
            return None
        try:
            args = {
                name: decode_word(topic)
                for (name, decode_word), topic in zip(spec.indexed, log.topics[1:], strict=True)
            }
            args.update(_named(spec.plain, spec.plain_decoder(log.data)))
        except (DecodingError, ValueError):
            return None
        return Event(spec.name, args, log.block_number, log.log_index, log.tx_hash)


@functools.cache
def codec() -> Codec:
    return Codec(load_artifact().abi)


def word(value: bytes | int | str) -> bytes:
    """A 32-byte topic for an indexed bytes32, uint or address value."""
    if isinstance(value, bytes):
        return value.rjust(32, b"\0")
    if isinstance(value, int):
        return value.to_bytes(32, "big")
    return bytes.fromhex(value.removeprefix("0x")).rjust(32, b"\0")


def tag_ref(name: str, tag: str) -> bytes:
    """keccak256(abi.encode(name, tag)), as the contract's tagRef computes it."""
    return keccak(encode(["string", "string"], [name, tag]))


def artifact_sha256() -> str:
    return hashlib.sha256(_artifact_text().encode()).hexdigest()
