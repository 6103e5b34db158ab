"""rescan: scan a published image again with newer data, and attest to it on the ledger.

Anyone who may pull an image may rescan it. The new CycloneDX report is
sealed for the owner, the current recipients and the scanner itself, and a
small scan envelope (counts, database snapshot, date, the sealed report's
descriptor) is stored; an attestation of kind "scan" points at it, so the
image's scan history is on the ledger, beside the scan made at publish.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sedis.core.errors import NotFoundError
from sedis.crypto.layer_cipher import new_private_options
from sedis.oci import model
from sedis.oci.checked import CheckedBlob
from sedis.service import pull, scanning, sealing
from sedis.service.session import Session

if TYPE_CHECKING:
    from jwcrypto.jwk import JWK

    from sedis.store.base import ContentStore

ENVELOPE_TYPE = "application/vnd.sedis.scan-envelope.v1+json"
SCAN_KIND = "scan"
MAX_ENVELOPE = 4 * 1024 * 1024


@dataclass
class RescanResult:
    digest: str
    counts: dict[str, int]
    report_digest: str
    vulndb_digest: str
    envelope_cid: str
    transaction: str
    sealed_for: list[str]


def rescan(session: Session, ref: str) -> RescanResult:
    record, share = pull.check_access(session, ref)
    source = pull.SealedImageSource(session.store, share, session.encryption_key, record)
    report = scanning.scan_source(source, session.settings.home, scanning.ScanPolicy(None))
    document = report.cyclonedx()
    report_digest = report.cyclonedx_digest()

    keys = _readers(
        session,
        record.owner,
        [
            g.recipient
            for g in session.reader.grants(record.digest)
            if session.reader.is_granted(record.digest, g.recipient)
        ],
    )
    checked = CheckedBlob.of_bytes(document, "application/vnd.cyclonedx+json")
    blob = sealing.seal_blob(
        session.store,
        checked,
        sealing.REPORT_MEDIA_TYPE,
        new_private_options(checked.digest),
    )
    descriptor = blob.descriptor.to_json()
    descriptor["annotations"] = sealing.wrap_for(blob, list(keys.values()))
    envelope = json.dumps(
        {
            "mediaType": ENVELOPE_TYPE,
            "image": record.digest,
            "scannedAt": report.scanned_at,
            "vulndbDigest": report.vulndb_digest,
            "counts": dict(report.counts()),
            "report": descriptor,
        },
        separators=(",", ":"),
    ).encode()
    entry = session.store.add_bytes(envelope, pin=True)
    session.store.pin(blob.cid)
    tx = session.ledger.attest(record.digest, SCAN_KIND, report_digest, str(entry.cid))
    return RescanResult(
        record.digest,
        dict(report.counts()),
        report_digest,
        report.vulndb_digest,
        str(entry.cid),
        tx.tx_hash,
        sorted(keys),
    )


def _readers(session: Session, owner: str, recipients: list[str]) -> dict[str, JWK]:
    """Public keys of everyone who may read the image now (those with registered keys)."""
    keys: dict[str, JWK] = {session.address: session.public_key}
    for address in [owner, *recipients]:
        if address in keys:
            continue
        try:
            keys[address] = session.recipient_key(address)
        except NotFoundError:
            continue  # not in the key directory: it reads the image's own reports only
    return keys


def read_envelope(store: ContentStore, cid: str) -> dict[str, Any]:
    """A scan envelope's plaintext facts (its report stays sealed)."""
    raw = store.read_bytes(cid, MAX_ENVELOPE)
    doc = model.load_json(raw, f"scan envelope {cid}", MAX_ENVELOPE)
    if doc.get("mediaType") != ENVELOPE_TYPE:
        raise NotFoundError(f"{cid} is not a scan envelope")
    return doc
