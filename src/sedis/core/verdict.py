"""The verification verdict: a pure decision over what the ledger says.

`sedis verify` computes an artifact's digest itself, reads the ledger, and
asks this module what to conclude. The exit code is the status's code, 0
only for TRUSTED. A source checked against a name (``--name NAME:TAG``) is
trusted only as the image that the name resolves to, never as an image in
its own right.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from sedis.core.address import Address
from sedis.core.records import Attestation, ImageRecord, ScanSummary, Status

EXIT_CODES = {
    Status.TRUSTED: 0,
    Status.UNTRUSTED: 1,
    Status.UNKNOWN: 2,
    Status.UNSUPPORTED: 3,
    Status.REVOKED: 4,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    digest: str
    status: Status
    reason: str
    owner: Address | None = None
    signers: tuple[Address, ...] = ()  # the accounts whose word made the verdict count
    scan: ScanSummary | None = None
    name: str | None = None  # the NAME:TAG the artifact was checked against, if any
    name_digest: str | None = None  # the digest that name resolves to on the ledger

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def decide(
    digest: str,
    record: ImageRecord | None,
    attestations: Iterable[Attestation] = (),
    allowed_signers: Iterable[Address] = (),
    status_reason: str = "",
) -> Verdict:
    """The verdict on ``digest``, counting only ``allowed_signers`` when any are given."""
    if record is None:
        return Verdict(digest, Status.UNKNOWN, "never published on this ledger")
    allowed = set(allowed_signers)
    vouching = [record.owner]
    if allowed:
        vouching = [a for a in [record.owner] if a in allowed]
        vouching += sorted({a.attester for a in attestations if a.attester in allowed})
        if not vouching:
            return Verdict(
                digest,
                Status.UNKNOWN,
                f"published by {record.owner}, which is not a given signer, "
                "and attested by none of them",
                owner=record.owner,
                scan=record.scan,
            )
    reason = status_reason or {
        Status.TRUSTED: "published and trusted",
        Status.UNTRUSTED: "marked untrusted",
        Status.UNSUPPORTED: "marked unsupported",
        Status.REVOKED: "revoked",
    }.get(record.status, record.status.value.lower())
    if record.scan.not_scanned:
        reason += " (published without a vulnerability scan)"
    return Verdict(digest, record.status, reason, record.owner, tuple(vouching), record.scan)


def decide_named(
    name: str,
    digest: str,
    name_digest: str | None,
    record: ImageRecord | None,
    attestations: Iterable[Attestation] = (),
    allowed_signers: Iterable[Address] = (),
    status_reason: str = "",
) -> Verdict:
    """The verdict on an artifact whose ``digest`` must be the image that ``name`` names.

    ``name_digest`` is what the name resolves to (None when it names nothing);
    ``record`` and the rest are the evidence about ``digest`` itself, judged
    as ``decide`` judges it once the digests agree.
    """
    if name_digest is None:
        return Verdict(
            digest,
            Status.UNKNOWN,
            f"no image is named {name} on this ledger",
            owner=record.owner if record else None,
            name=name,
        )
    if digest != name_digest:
        return Verdict(
            digest,
            Status.UNTRUSTED,
            f"{digest} is not {name}, which names {name_digest}",
            owner=record.owner if record else None,
            name=name,
            name_digest=name_digest,
        )
    verdict = decide(digest, record, attestations, allowed_signers, status_reason)
    return replace(verdict, name=name, name_digest=name_digest)
