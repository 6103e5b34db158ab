"""The contract's custom errors, as one clear SedisError each."""

from __future__ import annotations

from typing import Any

from eth_utils.address import to_checksum_address

from sedis.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    SedisError,
    UnavailableError,
)
from sedis.core.records import digest_from_bytes, short_digest
from sedis.ledger.abi import DecodedError, codec

_STATUS_NAMES = ("UNKNOWN", "TRUSTED", "UNTRUSTED", "UNSUPPORTED", "REVOKED")

# What a publisher-only function changes, for "... may change its ...".
_OWNED_PART = {
    "publish": "record",
    "setStatus": "status",
    "grant": "grants",
    "revokeGrant": "grants",
    "setTag": "tags",
}


def refusal(function: str, data: bytes) -> SedisError:
    """The error for revert ``data`` from a call of ``function``."""
    decoded = codec().error(data)
    if decoded is None:
        detail = f" (revert data 0x{data.hex()})" if data else ""
        return UnavailableError(
            f"the ledger contract refused {function}() without a reason{detail}"
        )
    return _explain(function, decoded)


def _explain(function: str, err: DecodedError) -> SedisError:
    a: dict[str, Any] = err.args
    digest = digest_from_bytes(a["digest"]) if "digest" in a else ""
    record = f"{_addr(a['publisher'])}'s record of {digest}" if "publisher" in a else digest
    match err.name:
        case "NotPublisher":
            part = _OWNED_PART.get(function, "record")
            return PermissionDeniedError(
                f"{_addr(a['caller'])} is not the publisher of this record of "
                f"{short_digest(digest)} ({_addr(a['publisher'])} is); only its publisher "
                f"may change its {part}"
            )
        case "NotAttester":
            return PermissionDeniedError(
                f"only its attester can revoke attestation {a['index']} of {record}; "
                f"{_addr(a['caller'])} is not it"
            )
        case "AttestationAlreadyRevoked":
            return ConflictError(f"attestation {a['index']} of {record} is already revoked")
        case "UnknownAttestation":
            return NotFoundError(f"{record} has no attestation {a['index']}")
        case "AlreadyPublished":
            return ConflictError(f"{_addr(a['publisher'])} has already published {digest}")
        case "UnknownRecord":
            return NotFoundError(f"{_addr(a['publisher'])} has no record of {digest}")
        case "RecordIsRevoked":
            return ConflictError(
                f"{record} is revoked; its status, grants and tags can no longer change"
            )
        case "StatusUnchanged":
            return ConflictError(f"{record} is already {_STATUS_NAMES[a['status']]}")
        case "InvalidStatus":
            return InvalidInputError(f"status {a['status']} is not one a publisher may set")
        case "ReasonRequired":
            return InvalidInputError("a status change needs a reason (--reason TEXT)")
        case "NotGranted" if function == "reportUsage":
            return PermissionDeniedError(
                f"{_addr(a['account'])} may not report usage of {record}: only its publisher "
                "or a recipient with a live grant may"
            )
        case "NotGranted":
            return NotFoundError(f"{_addr(a['account'])} holds no grant of {record} to revoke")
        case "InvalidRecipient":
            return InvalidInputError(f"{_addr(a['recipient'])} cannot receive a grant")
        case "InvalidExpiry":
            return InvalidInputError(
                f"the expiry {a['expiresAt']} is not after the chain's time {a['now']}"
            )
        case "InvalidWindow":
            return InvalidInputError(
                f"a usage window must end after it starts ({a['windowStart']}..{a['windowEnd']})"
            )
        case "InvalidDigest":
            return InvalidInputError("a digest or hash is missing (all zeros)")
        case "EmptyCid":
            return InvalidInputError("a CID is missing")
        case "InvalidScan":
            return InvalidInputError(
                "the scan summary is inconsistent: a scanned image needs its report digest and "
                "CID; an unscanned one has no counts and no report"
            )
        case "InvalidKind":
            return InvalidInputError("an attestation needs a kind")
        case "InvalidTag":
            return InvalidInputError("a tag needs a name and a tag")
        case "InvalidKeys":
            return InvalidInputError("the public keys are missing or larger than 4096 bytes")
        case "LengthMismatch":
            return InvalidInputError(
                f"{a['publishers']} publishers were given for {a['digests']} digests"
            )
        case "Error":
            return UnavailableError(f"the ledger contract refused {function}(): {a['message']}")
        case _:
            return UnavailableError(f"the ledger contract refused {function}(): {err.name} {a}")


def _addr(value: str) -> str:
    return to_checksum_address(value)
