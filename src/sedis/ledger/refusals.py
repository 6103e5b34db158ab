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
from sedis.core.records import digest_from_bytes
from sedis.ledger.abi import DecodedError, codec

_STATUS_NAMES = ("UNKNOWN", "TRUSTED", "UNTRUSTED", "UNSUPPORTED", "REVOKED")

# What an owner-only function changes, for "only the owner of X may change its ...".
_OWNED_PART = {
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
    match err.name:
        case "NotImageOwner":
            part = _OWNED_PART.get(function, "record")
            return PermissionDeniedError(
                f"only the owner of {digest} ({_addr(a['owner'])}) may change its {part}; "
                f"{_addr(a['caller'])} is not its owner"
            )
        case "NotNameOwner":
            return PermissionDeniedError(
                f"only {_addr(a['owner'])}, the first publisher of {a['name']!r}, may move its "
                f"tags; {_addr(a['caller'])} may not"
            )
        case "AlreadyPublished":
            return ConflictError(f"{digest} is already published by {_addr(a['owner'])}")
        case "UnknownImage":
            return NotFoundError(f"{digest} is not published on the ledger")
        case "ImageIsRevoked":
            return ConflictError(
                f"{digest} is revoked; its status, grants and tags can no longer change"
            )
        case "StatusUnchanged":
            return ConflictError(f"{digest} is already {_STATUS_NAMES[a['status']]}")
        case "InvalidStatus":
            return InvalidInputError(f"status {a['status']} is not one a publisher may set")
        case "ReasonRequired":
            return InvalidInputError("a status change needs a reason (--reason TEXT)")
        case "NotGranted":
            return NotFoundError(f"{_addr(a['recipient'])} holds no grant of {digest} to revoke")
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
        case "Error":
            return UnavailableError(f"the ledger contract refused {function}(): {a['message']}")
        case _:
            return UnavailableError(f"the ledger contract refused {function}(): {err.name} {a}")


def _addr(value: str) -> str:
    return to_checksum_address(value)
