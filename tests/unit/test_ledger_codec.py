"""Pure parts of the ledger: records, settings, the ABI codec and the refusal messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_abi.abi import encode
from eth_hash.auto import keccak

from sedis.config import load
from sedis.core.address import Address
from sedis.core.errors import (
    ConfigError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
)
from sedis.core.records import (
    Grant,
    ScanSummary,
    Status,
    digest_from_bytes,
    digest_to_bytes,
    optional_digest,
)
from sedis.ledger.abi import Log, codec, tag_ref
from sedis.ledger.refusals import refusal

DIGEST = "sha256:" + "ab" * 32
OWNER = "0x" + "11" * 20
CALLER = "0x" + "22" * 20


def revert(signature: str, types: list[str], values: list[object]) -> bytes:
    return keccak(signature.encode())[:4] + encode(types, values)


def test_digests_round_trip_and_malformed_ones_are_refused() -> None:
    assert digest_from_bytes(digest_to_bytes(DIGEST)) == DIGEST
    assert optional_digest(bytes(32)) is None
    for bad in ("sha256:" + "AB" * 32, "sha512:" + "ab" * 32, "sha256:abc", "ab" * 32):
        with pytest.raises(InvalidInputError):
            digest_to_bytes(bad)


def test_status_names_parse() -> None:
    assert Status.parse(" revoked ") is Status.REVOKED
    with pytest.raises(InvalidInputError, match="trusted, untrusted"):
        Status.parse("fine")


def test_a_grant_is_active_until_it_expires_or_is_revoked() -> None:
    grant = Grant(
        Address(OWNER), DIGEST, Address(CALLER), "bafy", DIGEST, granted_at=100, expires_at=200
    )
    assert grant.active_at(199) and not grant.active_at(200)
    forever = Grant(Address(OWNER), DIGEST, Address(CALLER), "bafy", DIGEST, granted_at=100)
    assert forever.active_at(10**12)
    revoked = Grant(
        Address(OWNER), DIGEST, Address(CALLER), "bafy", DIGEST, granted_at=100, revoked_at=150
    )
    assert not revoked.active_at(120)


def test_scan_summary_total() -> None:
    assert ScanSummary(1, 2, 3, 4, 5).total == 15
    assert ScanSummary.unscanned().not_scanned


def test_call_data_uses_the_abi_selector() -> None:
    data = codec().call_data("statusOf", Address(OWNER).raw, digest_to_bytes(DIGEST))
    assert data[:4] == keccak(b"statusOf(address,bytes32)")[:4]
    assert data[4:] == bytes(12) + Address(OWNER).raw + digest_to_bytes(DIGEST)


def test_tag_ref_keeps_name_and_tag_apart() -> None:
    assert tag_ref("a:b", "c") != tag_ref("a", "b:c")
    assert tag_ref("app", "v1") == keccak(encode(["string", "string"], ["app", "v1"]))


def test_events_decode_with_indexed_and_plain_fields() -> None:
    c = codec()
    topics = (
        c.topic("GrantRevoked"),
        bytes(12) + bytes.fromhex(OWNER[2:]),
        digest_to_bytes(DIGEST),
        bytes(12) + bytes.fromhex(CALLER[2:]),
    )
    event = c.event(Log(b"\0" * 20, topics, encode(["uint64"], [1234]), 7, 0, b"\1" * 32))
    assert event is not None and event.name == "GrantRevoked"
    assert event.args["digest"] == digest_to_bytes(DIGEST)
    assert event.args["publisher"].lower() == OWNER
    assert event.args["recipient"].lower() == CALLER and event.args["at"] == 1234
    assert c.event(Log(b"", (b"\0" * 32,), b"", 0, 0, b"")) is None
    assert c.event(Log(b"", topics[:2], b"", 0, 0, b"")) is None  # wrong topic count


def test_refusals_name_the_rule_that_was_broken() -> None:
    owner_only = revert(
        "NotPublisher(address,bytes32,address)",
        ["address", "bytes32", "address"],
        [OWNER, digest_to_bytes(DIGEST), CALLER],
    )
    for function, part in (
        ("grant", "grants"),
        ("revokeGrant", "grants"),
        ("setStatus", "status"),
        ("setTag", "tags"),
    ):
        err = refusal(function, owner_only)
        assert isinstance(err, PermissionDeniedError)
        assert "is not the publisher of this record of sha256:abab" in str(err)
        assert f"only its publisher may change its {part}" in str(err)
    record = ["address", "bytes32"], [OWNER, digest_to_bytes(DIGEST)]
    revoked = refusal("grant", revert("RecordIsRevoked(address,bytes32)", *record))
    assert isinstance(revoked, ConflictError) and "is revoked" in str(revoked)
    unknown = refusal("attest", revert("UnknownRecord(address,bytes32)", *record))
    assert isinstance(unknown, NotFoundError)
    plain = refusal("publish", revert("Error(string)", ["string"], ["nope"]))
    assert isinstance(plain, UnavailableError) and "nope" in str(plain)
    silent = refusal("publish", b"")
    assert isinstance(silent, UnavailableError) and "without a reason" in str(silent)
    garbage = refusal("publish", b"\xde\xad\xbe\xef\x00")
    assert isinstance(garbage, UnavailableError) and "0xdeadbeef00" in str(garbage)


def test_ledger_settings(tmp_path: Path) -> None:
    (tmp_path / "sedis.toml").write_text(
        '[ledger]\nurl = "http://127.0.0.1:8545"\ncontract = "0x' + "aa" * 20 + '"\nchain_id = 5\n'
    )
    settings = load({"SEDIS_HOME": str(tmp_path)})
    assert settings.ledger_contract == "0x" + "aa" * 20 and settings.ledger_chain_id == 5
    assert settings.ledger_dir == tmp_path / "ledger"
    env = {
        "SEDIS_HOME": str(tmp_path),
        "SEDIS_LEDGER_CONTRACT": "0x" + "bb" * 20,
        "SEDIS_LEDGER_CHAIN_ID": "31337",
    }
    overridden = load(env)
    assert overridden.ledger_contract == "0x" + "bb" * 20
    assert overridden.ledger_chain_id == 31337
    with pytest.raises(ConfigError, match="must be a 0x address"):
        load({**env, "SEDIS_LEDGER_CONTRACT": "0x123"})
    with pytest.raises(ConfigError, match="must be a number"):
        load({**env, "SEDIS_LEDGER_CHAIN_ID": "mainnet"})
    (tmp_path / "sedis.toml").write_text('[ledger]\nchain_id = "5"\n')
    with pytest.raises(ConfigError, match="positive integer"):
        load({"SEDIS_HOME": str(tmp_path)})
