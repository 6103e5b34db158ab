"""attest: co-signing, approving and vouching for a publisher's record, and taking it back.

Anyone may attest to any record; what an attestation is worth is the trust
policy's to say (an ``approved`` one by a trusted publisher makes the record
count, other kinds count where a rule requires them). An attestation names
its record, its kind and the sha256 of a payload: the payload's bytes when
one is given (stored in the content store, its CID recorded beside the
hash), else the canonical JSON of what is attested, so the hash always says
what the attester meant. Only the attester can revoke it, and a revoked one
never counts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass

from sedis.core.address import Address
from sedis.core.errors import ConflictError, NotFoundError, SedisError
from sedis.core.policy import TrustPolicy
from sedis.core.records import AuditQuery, ImageRecord
from sedis.service import trust
from sedis.service.engines import Actor, Engines

# The kind of the attestation by which a server records who asked it for an action.
REQUEST_KIND = "sedis.request"


@dataclass(frozen=True, slots=True)
class AttestResult:
    digest: str
    publisher: Address  # whose record was attested
    kind: str
    index: int  # the attestation's number among the record's, from 1
    payload_hash: str
    transaction: str
    cid: str = ""  # where the payload is stored, when one was given
    block: int | None = None  # the block the attestation landed in


@dataclass(frozen=True, slots=True)
class AttestRevokeResult:
    digest: str
    publisher: Address
    kind: str
    indexes: tuple[int, ...]  # the attestations revoked
    transactions: tuple[str, ...]
    block: int | None = None  # the block of the last revocation


def payload_hash(kind: str, record: ImageRecord, payload: bytes | None) -> str:
    """sha256 of the payload, or of the canonical JSON naming the kind and the record."""
    if payload is None:
        payload = json.dumps(
            {"kind": kind, "image": record.digest, "publisher": str(record.publisher)},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
    return "sha256:" + hashlib.sha256(payload).hexdigest()


def attest(
    engines: Engines,
    actor: Actor,
    ref: str,
    kind: str,
    *,
    payload: bytes | None = None,
    policy: TrustPolicy,
    publisher: Address | None = None,
) -> AttestResult:
    """Attest ``kind`` about the record ``ref`` names (see ``target``), as the actor."""
    return attest_record(engines, actor, target(engines, policy, ref, publisher), kind, payload)


def attest_record(
    engines: Engines, actor: Actor, record: ImageRecord, kind: str, payload: bytes | None
) -> AttestResult:
    """Attest ``kind`` about ``record``, as the actor; the payload, if any, is stored."""
    digest_of_payload = payload_hash(kind, record, payload)
    cid = ""
    if payload is not None:
        cid = str(engines.store.add_bytes(payload, pin=True).cid)
    receipt = actor.ledger.attest(record.publisher, record.digest, kind, digest_of_payload, cid)
    index = _index_of(engines, actor, record, receipt.tx_hash)
    return AttestResult(
        record.digest,
        record.publisher,
        kind,
        index,
        digest_of_payload,
        receipt.tx_hash,
        cid,
        receipt.block_number,
    )


def revoke(
    engines: Engines,
    actor: Actor,
    ref: str,
    kind: str,
    *,
    policy: TrustPolicy,
    publisher: Address | None = None,
) -> AttestRevokeResult:
    """Take back every live attestation of ``kind`` that the actor made on the record
    ``ref`` names. A digest needs no ``publisher`` when the actor attested ``kind`` on
    only one of its records."""
    ledger = engines.ledger
    record = _attested_record(engines, actor, ref, kind, policy, publisher)
    mine = [
        a
        for a in ledger.attestations(record.publisher, record.digest)
        if a.attester == actor.address and a.kind == kind and a.live
    ]
    if not mine:
        raise NotFoundError(
            f"you have no live {kind!r} attestation of {record.publisher}'s record of "
            f"{record.digest} to revoke"
        )
    receipts = [
        actor.ledger.revoke_attestation(record.publisher, record.digest, a.index) for a in mine
    ]
    return AttestRevokeResult(
        record.digest,
        record.publisher,
        kind,
        tuple(a.index for a in mine),
        tuple(r.tx_hash for r in receipts),
        receipts[-1].block_number,
    )


def request_payload(
    action: str, caller: Address, request_id: str, transactions: Sequence[str]
) -> bytes:
    """The canonical JSON that a ``sedis.request`` attestation's payload holds."""
    return json.dumps(
        {
            "action": action,
            "caller": str(caller),
            "request_id": request_id,
            "transactions": list(transactions),
        },
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    ).encode()


def record_request(
    engines: Engines,
    actor: Actor,
    *,
    publisher: Address,
    digest: str,
    action: str,
    caller: Address,
    request_id: str,
    transactions: Sequence[str],
) -> AttestResult:
    """Record on the ledger who asked for an action that ``actor`` (a server's identity)
    performed on ``publisher``'s record of ``digest``: an attestation of kind
    ``sedis.request`` whose stored payload names the action, the caller, the request and
    the action's transactions, so the audit log shows who asked, not only who signed."""
    record = engines.ledger.image(publisher, digest)
    if record is None:
        raise NotFoundError(f"{publisher} has no record of {digest}")
    payload = request_payload(action, caller, request_id, transactions)
    return attest_record(engines, actor, record, REQUEST_KIND, payload)


def target(
    engines: Engines, policy: TrustPolicy, ref: str, publisher: Address | None = None
) -> ImageRecord:
    """The record that ``ref`` names for an attestation.

    ``publisher`` picks it; a NAME:TAG is the record of the trusted publisher whose tag
    it is; a digest with one record is that record, and one with several is the one
    the policy counts, refused when it counts none or several.
    """
    ledger = engines.ledger
    with ledger.pinned():
        named = trust.resolve(engines, policy, ref, publisher)
        digest = named.digest
        chosen = publisher or named.publisher
        if chosen is not None:
            record = ledger.image(chosen, digest)
            if record is None:
                raise NotFoundError(f"{chosen} has no record of {digest}")
            return record
        records = ledger.records(digest)
        if not records:
            raise NotFoundError(f"nobody has recorded {digest}")
        if len(records) == 1:
            return records[0]
        return _counted_one(engines, policy, digest, records)


def _counted_one(
    engines: Engines, policy: TrustPolicy, digest: str, records: list[ImageRecord]
) -> ImageRecord:
    counted = set(trust.judge(engines, policy, digest).counted)
    counting = [r for r in records if r.publisher in counted]
    if len(counting) == 1:
        return counting[0]
    among = counting or records
    whose = ", ".join(str(r.publisher) for r in among)
    how = "which the policy counts" if counting else "none of which the policy counts"
    raise ConflictError(f"{digest} has records by {whose}, {how}: pick one with --publisher")


def _attested_record(
    engines: Engines,
    actor: Actor,
    ref: str,
    kind: str,
    policy: TrustPolicy,
    publisher: Address | None,
) -> ImageRecord:
    """The record to revoke on: as ``target`` picks it, except that a digest with several
    records needs no ``publisher`` when the actor attested ``kind`` on only one."""
    try:
        return target(engines, policy, ref, publisher)
    except ConflictError:
        ledger = engines.ledger
        digest = trust.resolve(engines, policy, ref).digest
        attested = [
            r
            for r in ledger.records(digest)
            if any(
                a.attester == actor.address and a.kind == kind and a.live
                for a in ledger.attestations(r.publisher, digest)
            )
        ]
        if len(attested) == 1:
            return attested[0]
        if not attested:
            raise NotFoundError(
                f"you have no live {kind!r} attestation of any record of {digest} to revoke"
            ) from None
        raise


def _index_of(engines: Engines, actor: Actor, record: ImageRecord, tx_hash: str) -> int:
    """The number the contract gave the attestation made in ``tx_hash``."""
    query = AuditQuery(
        publisher=record.publisher,
        digest=record.digest,
        actor=actor.address,
        kinds=frozenset({"Attested"}),
    )
    for event in reversed(engines.ledger.audit_log(query)):
        if event.tx_hash == tx_hash:
            index = event.fields.get("index")
            if isinstance(index, int):
                return index
    raise SedisError(f"the ledger accepted transaction {tx_hash} but shows no attestation of it")
