"""Image references as scan targets: one image's layers, merged by sedis.oci.

The scan reads plaintext layers only; an encrypted image is scanned before
it is encrypted (that is what the publish gate does) or after a pull.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sedis.core.errors import InvalidInputError
from sedis.scan.model import ScanReport


def image_ids(source: Any) -> frozenset[str]:
    """The names a VEX product may use for this image: its manifest and config digests."""
    ids = {source.manifest_digest, source.manifest.config.digest}
    return frozenset(ids)


def scan_image(reference: str, db_path: Path, **kwargs: Any) -> ScanReport:
    """Scan the image ``reference`` names (oci:, oci-archive:, docker-archive:, docker://)."""
    from sedis.oci.layers import source_layers
    from sedis.oci.transports import open_source
    from sedis.scan.service import scan_layers

    with open_source(reference) as source:
        encrypted = [d.digest for d in source.manifest.layers if d.encrypted]
        if encrypted:
            raise InvalidInputError(
                f"{reference}: layer {encrypted[0]} is encrypted; scan the image before"
                " encryption or after a pull"
            )
        kwargs.setdefault("target", reference)
        kwargs["image_ids"] = kwargs.get("image_ids", frozenset()) | image_ids(source)
        return scan_layers(source_layers(source), db_path, **kwargs)
