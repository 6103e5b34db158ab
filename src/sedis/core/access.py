"""Who may open an image, and what its history says: rules over ledger records.

Each rule takes what the ledger answered (from one block) and the time to
judge at, and returns a decision; the reads and the clock are the caller's.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sedis.core.address import Address
from sedis.core.errors import CorruptError, PermissionDeniedError
from sedis.core.records import Grant, ImageRecord, Status, StatusEntry


def live_grants(grants: Iterable[Grant], now: int) -> list[Grant]:
    """The grants that let their recipients in at ``now``: neither revoked nor expired."""
    return [grant for grant in grants if grant.active_at(now)]


def latest_status_reason(history: Sequence[StatusEntry]) -> str:
    """Why the image has the status it has: the reason of the latest change.

    Publication itself gives no reason (an image never changed has none).
    """
    if not history or history[-1].index == 0:
        return ""
    return history[-1].reason


@dataclass(frozen=True, slots=True)
class PullDecision:
    """Whom a pull of ``record`` is allowed as, and the grant that allows it.

    ``grant`` is None for the record's publisher, who needs none: it opens its
    own current share manifest.
    """

    record: ImageRecord
    grant: Grant | None

    @property
    def as_owner(self) -> bool:
        return self.grant is None

    @property
    def publisher(self) -> Address:
        return self.record.publisher


def decide_pull(
    record: ImageRecord,
    grant: Grant | None,
    who: Address,
    now: int,
    status_reason: str = "",
) -> PullDecision:
    """Whether ``who`` may pull ``record`` at ``now``, holding ``grant`` (its latest one).

    ``record`` is a record that the trust policy counted for the image (the
    caller judged the image TRUSTED first); its grants are the only ones that
    open it. A pull needs that record TRUSTED, and a live grant of it unless
    ``who`` is its publisher; PermissionDeniedError says which of these failed.
    """
    digest = record.digest
    if record.status is not Status.TRUSTED:
        said = f": {status_reason}" if status_reason else ""
        raise PermissionDeniedError(
            f"{digest} is {record.status.value} by {record.publisher}{said}"
        )
    if record.publisher == who:
        return PullDecision(record, None)  # whatever became of its own grant
    if grant is not None and (grant.publisher != record.publisher or grant.digest != digest):
        grant = None  # a grant of another record opens nothing of this one
    if grant is None or grant.revoked_at is not None:
        raise PermissionDeniedError(f"{who} has no grant to {digest} from {record.publisher}")
    if not grant.active_at(now):
        when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(grant.expires_at or 0))
        raise PermissionDeniedError(
            f"the grant of {digest} by {record.publisher} to {who} expired at {when}"
        )
    return PullDecision(record, grant)


def check_sealed_manifest(
    record: ImageRecord,
    manifest_digest: str,
    config_digest: str,
    plain_blobs: int,
    sealed_blobs: int,
) -> None:
    """The plaintext manifest sealed in a share must be the recorded image.

    ``manifest_digest`` is the digest computed over the unsealed manifest's
    bytes, ``config_digest`` the config it names; ``plain_blobs`` and
    ``sealed_blobs`` count the blobs it names and the share carries.
    """
    if manifest_digest != record.digest:
        raise CorruptError(f"the sealed manifest does not match {record.digest}")
    if config_digest != record.config_digest:
        raise CorruptError(f"the config of {record.digest} does not match the ledger")
    if plain_blobs != sealed_blobs:
        raise CorruptError(f"the share manifest of {record.digest} has the wrong blobs")
