"""verify, status, inspect and list: reading (and marking) what the ledger says."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sedis.core.errors import NotFoundError, SedisError
from sedis.core.records import Attestation, ImageRecord, Status
from sedis.core.verdict import Verdict, decide, decide_named
from sedis.ledger.base import Ledger
from sedis.oci.model import Descriptor
from sedis.oci.source import ImageSource
from sedis.service import naming
from sedis.service.session import Session

if TYPE_CHECKING:
    from sedis.store.base import ContentStore


def verify_digest(ledger: Ledger, digest: str, signers: list[str]) -> Verdict:
    # One block for every answer, so the record, its history and approvals agree.
    with ledger.pinned():
        return _verify_pinned(ledger, digest, signers)


def _verify_pinned(ledger: Ledger, digest: str, signers: list[str]) -> Verdict:
    record = ledger.image(digest)
    if record is None:
        return decide(digest, None)
    attestations, reason = _evidence(ledger, digest, signers)
    return decide(digest, record, attestations, signers, reason)


def _evidence(ledger: Ledger, digest: str, signers: list[str]) -> tuple[list[Attestation], str]:
    """The attestations that may count, and the reason given for the latest status change."""
    history = ledger.status_history(digest)
    reason = history[-1].reason if history and history[-1].index > 0 else ""
    return (ledger.attestations(digest) if signers else []), reason


def verify_named_source(
    ledger: Ledger,
    source: ImageSource,
    name: str,
    signers: list[str],
    check_blobs: bool = True,
) -> Verdict:
    """The verdict on a source that must be the image ``name`` (NAME:TAG) names on the ledger.

    The source's digest is computed here, as for ``verify_source``; the name
    is resolved on the ledger, and the two must agree before the record
    counts for anything.
    """
    image = naming.parse_name(name)
    if check_blobs:
        with BlobChecks([source]) as checks:
            checks.wait(source)
    digest = source.manifest.digest
    try:
        name_digest: str | None = naming.resolve(ledger, str(image))
    except NotFoundError:
        name_digest = None
    record = ledger.image(digest)
    attestations: list[Attestation] = []
    reason = ""
    if record is not None and digest == name_digest:
        attestations, reason = _evidence(ledger, digest, signers)
    return decide_named(str(image), digest, name_digest, record, attestations, signers, reason)


def verify_source(
    ledger: Ledger, source: ImageSource, signers: list[str], check_blobs: bool = True
) -> Verdict:
    """The verdict on an image that is at hand: its digest is computed here, never trusted.

    Every blob is read and checked against the manifest (unless the caller
    has done so, with BlobChecks), so an archive whose layers were swapped is
    caught, not just one whose manifest was.
    """
    if check_blobs:
        with BlobChecks([source]) as checks:
            checks.wait(source)
    return verify_digest(ledger, source.manifest.digest, signers)


class BlobChecks:
    """Every blob of some sources read and checked on worker threads, from the start.

    sha256 releases the GIL, so the checks run on the other cores while the
    caller does something else (opening the ledger, say); blobs of a source
    that reads files are checked side by side.
    """

    def __init__(self, sources: Iterable[ImageSource]) -> None:
        self._pool = ThreadPoolExecutor(os.cpu_count() or 1, thread_name_prefix="sedis-verify")
        self._stop = threading.Event()
        self._checks: dict[int, list[Future[None]]] = {}
        for source in sources:
            descriptors = source.manifest.descriptors()
            if source.concurrent_reads:
                jobs = [self._pool.submit(self._check, source, [desc]) for desc in descriptors]
            else:
                jobs = [self._pool.submit(self._check, source, descriptors)]
            self._checks[id(source)] = jobs

    def _check(self, source: ImageSource, descriptors: Iterable[Descriptor]) -> None:
        """Read blobs to their ends: the source's streams raise unless they match."""
        for desc in descriptors:
            with source.open_blob(desc) as stream:
                # Large reads: each re-takes the GIL once, so little is lost to a busy caller.
                while stream.read(4 << 20):
                    if self._stop.is_set():
                        return

    def wait(self, source: ImageSource) -> None:
        """Return when every blob of ``source`` is checked; raise the first failure."""
        for job in self._checks[id(source)]:
            job.result()

    def __enter__(self) -> BlobChecks:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()  # an early exit (an error elsewhere) need not wait for big reads
        self._pool.shutdown(wait=True, cancel_futures=True)


def set_status(session: Session, ref: str, status: Status, reason: str) -> dict[str, Any]:
    digest = naming.resolve(session.reader, ref)
    receipt = session.ledger.set_status(digest, status, reason)
    return {
        "digest": digest,
        "status": status.value,
        "reason": reason,
        "transaction": receipt.tx_hash,
    }


def _plain(value: Any) -> Any:
    if isinstance(value, Status):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def scans(ledger: Ledger, record: ImageRecord, store: ContentStore | None) -> list[dict[str, Any]]:
    """Every scan of an image: the one made at publish, then each rescan attestation."""
    # Imported here: it brings the decryption stack, which `verify` never needs.
    from sedis.service.rescan import SCAN_KIND, read_envelope

    first = record.scan
    history: list[dict[str, Any]] = [
        {
            "kind": "publish",
            "at": record.published_at,
            "by": record.owner,
            "not_scanned": first.not_scanned,
            "counts": None
            if first.not_scanned
            else {
                "critical": first.critical,
                "high": first.high,
                "medium": first.medium,
                "low": first.low,
                "unknown": first.unknown,
            },
            "report_digest": first.report_digest,
            "report_cid": first.report_cid,
            "vulndb_digest": first.vulndb_digest,
        }
    ]
    for attestation in ledger.attestations(record.digest):
        if attestation.kind != SCAN_KIND:
            continue
        entry: dict[str, Any] = {
            "kind": "rescan",
            "at": attestation.at,
            "by": attestation.attester,
            "not_scanned": False,
            "counts": None,
            "report_digest": attestation.payload_hash,
            "envelope_cid": attestation.cid,
            "vulndb_digest": None,
        }
        if store is not None and attestation.cid:
            try:
                envelope = read_envelope(store, attestation.cid)
                entry["counts"] = envelope.get("counts")
                entry["vulndb_digest"] = envelope.get("vulndbDigest")
            except SedisError as exc:
                entry["unreadable"] = str(exc)
        history.append(entry)
    return history


def inspect(ledger: Ledger, ref: str, store: ContentStore | None = None) -> dict[str, Any]:
    digest = naming.resolve(ledger, ref)
    record = ledger.image(digest)
    if record is None:
        raise NotFoundError(f"{digest} was never published")
    tags = ledger.tags_of(digest)
    details: dict[str, Any] = _plain(
        {
            "record": asdict(record),
            "status_history": [asdict(e) for e in ledger.status_history(digest)],
            "grants": [asdict(g) for g in ledger.grants(digest)],
            "attestations": [asdict(a) for a in ledger.attestations(digest)],
            "tags": [asdict(t) for t in tags],
            "scans": scans(ledger, record, store),
            "tag_history": {
                f"{t.name}:{t.tag}": [asdict(h) for h in ledger.tag_history(t.name, t.tag)]
                for t in tags
            },
        }
    )
    return details


def list_images(ledger: Ledger, me: str | None, mine: bool, shared: bool) -> list[dict[str, Any]]:
    with ledger.pinned():
        return _list_pinned(ledger, me, mine, shared)


def _list_pinned(ledger: Ledger, me: str | None, mine: bool, shared: bool) -> list[dict[str, Any]]:
    if mine and me is not None:
        records = ledger.images(owner=me)
    elif shared and me is not None:
        now = ledger.now()
        digests = [g.digest for g in ledger.grants_to(me) if g.active_at(now)]
        records = [r for r in (ledger.image(d) for d in digests) if r is not None]
        records = [r for r in records if r.owner.lower() != me.lower()]
    else:
        records = ledger.images()
    rows = []
    for record in records:
        rows.append(
            {
                "digest": record.digest,
                "names": [f"{t.name}:{t.tag}" for t in ledger.tags_of(record.digest)],
                "owner": record.owner,
                "status": record.status.value,
                "published_at": record.published_at,
                "root_cid": record.root_cid,
            }
        )
    return rows
