"""The audit log: who published, shared, revoked, attested, tagged and reported what, and when."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from sedis.core.audit import in_chain_order, latest
from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.records import AuditEvent, AuditQuery
from sedis.service.engines import Engines
from sedis.service.naming import is_digest, parse_name

# A name tagged onto more digests than this is read as one pass over the whole log,
# filtered here, instead of one read per digest: a name that a squatter has tagged
# onto thousands of digests costs no more than reading the log once.
_READS_PER_DIGEST_UP_TO = 16
_EVERY_EVENT = AuditQuery()


@dataclass(frozen=True, slots=True)
class AuditLog:
    """The events selected, in chain order.

    ``digests`` are what ``image`` stood for (a name: every digest anyone has
    tagged with it). ``left_out`` counts the earlier events that ``limit``
    kept out.
    """

    events: tuple[AuditEvent, ...]
    image: str | None = None
    digests: tuple[str, ...] = ()
    left_out: int = 0


def audit(
    engines: Engines,
    query: AuditQuery = _EVERY_EVENT,
    *,
    image: str | None = None,
    limit: int | None = None,
) -> AuditLog:
    """The events of the ledger that ``query`` selects, about ``image`` if one is given.

    ``image`` is a ``sha256:`` digest, or ``NAME[:TAG]``: then every event about
    every digest that any publisher has tagged so (squatters' included), which
    takes in each of those tag moves. ``limit`` keeps the latest events only.
    """
    if query.since is not None and query.until is not None and query.since > query.until:
        raise InvalidInputError("the start of the time range (--since) is after its end (--until)")
    if limit is not None and limit < 1:
        raise InvalidInputError(f"a limit is at least 1 event, not {limit}")
    ledger = engines.ledger
    digests: tuple[str, ...] = ()
    with ledger.pinned():
        if image is None:
            events = ledger.audit_log(query)
        else:
            digests = _digests_of(engines, image.strip())
            events = _about(engines, query, digests)
    ordered = in_chain_order(events)
    kept = latest(ordered, limit)
    return AuditLog(tuple(kept), image, digests, len(ordered) - len(kept))


def _digests_of(engines: Engines, image: str) -> tuple[str, ...]:
    if is_digest(image):
        return (image,)
    if image.startswith("sha256:"):
        raise InvalidInputError(f"invalid digest {image!r} (expected sha256:<64 hex digits>)")
    name = parse_name(image)
    history = engines.ledger.tag_history(name.name, name.tag)
    if not history:
        raise NotFoundError(f"nobody has tagged {name} on the ledger")
    return tuple(dict.fromkeys(entry.digest for entry in history))


def _about(engines: Engines, query: AuditQuery, digests: tuple[str, ...]) -> list[AuditEvent]:
    ledger = engines.ledger
    if len(digests) > _READS_PER_DIGEST_UP_TO:
        wanted = set(digests)
        return [e for e in ledger.audit_log(query) if e.digest in wanted]
    events: list[AuditEvent] = []
    for digest in digests:
        if query.digest is None or query.digest == digest:
            events += ledger.audit_log(dataclasses.replace(query, digest=digest))
    return events
