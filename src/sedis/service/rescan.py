"""rescan: scan a published image again with newer data, and attest to it on the ledger.

Anyone who may pull an image may rescan it. The new CycloneDX report is
sealed for the record's publisher, its current recipients and the scanner
itself, and a small scan envelope (counts, database snapshot, date, the
sealed report's descriptor) is stored; an attestation of kind "scan" on the
record points at it, so the record's scan history is on the ledger, beside
the scan made at publish.
A scan attestation vouches for nothing by itself: a trust policy counts it
only where a rule names that kind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sedis.core.access import live_grants
from sedis.core.address import Address
from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.core.policy import TrustPolicy
from sedis.crypto.layer_cipher import new_private_options
from sedis.oci import model
from sedis.oci.checked import CheckedBlob
from sedis.service import access, pull, scanning, sealing
from sedis.service.engines import Actor, Engines

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.base import ContentStore

ENVELOPE_TYPE = "application/vnd.sedis.scan-envelope.v1+json"
SCAN_KIND = "scan"
MAX_ENVELOPE = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RescanResult:
    digest: str
    counts: Mapping[str, int]
    report_digest: str
    vulndb_digest: str
    envelope_cid: str
    transaction: str
    sealed_for: tuple[Address, ...]
    publisher: Address  # whose record the scan attestation is about
    block: int | None = None  # the block the scan attestation landed in


def rescan(
    engines: Engines,
    actor: Actor,
    ref: str,
    *,
    policy: TrustPolicy,
    publisher: Address | None = None,
) -> RescanResult:
    """Scan an image the actor may pull under ``policy`` with today's database, seal the
    report for everyone who may read that record, and attest (kind "scan") to the scan
    on the record it pulled."""
    granted = pull.check_access(engines, actor, ref, policy, publisher)
    record = granted.record
    source = pull.open_image(engines, actor, granted)
    report = scanning.scan_source(source, engines.vulndb, scanning.ScanPolicy(None))
    document = report.cyclonedx()
    report_digest = report.cyclonedx_digest()

    ledger = engines.ledger
    live = live_grants(ledger.grants(record.publisher, record.digest), ledger.now())
    keys = _readers(engines, actor, [record.publisher, *(g.recipient for g in live)])
    checked = CheckedBlob.of_bytes(document, "application/vnd.cyclonedx+json")
    store = engines.store
    blob = sealing.seal_blob(
        store,
        checked,
        sealing.REPORT_MEDIA_TYPE,
        new_private_options(checked.digest),
    )
    descriptor = blob.descriptor.to_json()
    descriptor["annotations"] = sealing.wrap_for(blob, list(keys.values()))
    counts = dict(report.counts())
    envelope = json.dumps(
        {
            "mediaType": ENVELOPE_TYPE,
            "image": record.digest,
            "scannedAt": report.scanned_at,
            "vulndbDigest": report.vulndb_digest,
            "counts": counts,
            "report": descriptor,
        },
        separators=(",", ":"),
    ).encode()
    entry = store.add_bytes(envelope, pin=True)
    store.pin(blob.cid)
    tx = actor.ledger.attest(
        record.publisher, record.digest, SCAN_KIND, report_digest, str(entry.cid)
    )
    return RescanResult(
        record.digest,
        counts,
        report_digest,
        report.vulndb_digest,
        str(entry.cid),
        tx.tx_hash,
        tuple(sorted(keys)),
        record.publisher,
        tx.block_number,
    )


def _readers(engines: Engines, actor: Actor, readers: list[Address]) -> dict[Address, JWK]:
    """Public keys of everyone who may read the image now, with a usable registered key."""
    keys: dict[Address, JWK] = {actor.address: actor.keys.public_key}
    for address in readers:
        if address in keys:
            continue
        try:
            keys[address] = access.usable_key(engines, actor, address)
        except (NotFoundError, InvalidInputError):
            continue  # no usable key in the directory: it reads the image's own reports only
    return keys


def read_envelope(store: ContentStore, cid: str) -> dict[str, Any]:
    """A scan envelope's plaintext facts (its report stays sealed)."""
    raw = store.read_bytes(cid, MAX_ENVELOPE)
    doc = model.load_json(raw, f"scan envelope {cid}", MAX_ENVELOPE)
    if doc.get("mediaType") != ENVELOPE_TYPE:
        raise NotFoundError(f"{cid} is not a scan envelope")
    return doc
