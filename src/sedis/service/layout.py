"""The stored form: an OCI image layout added to the store as one UnixFS directory."""

from __future__ import annotations

import json

from sedis.oci import model
from sedis.store.base import ContentStore
from sedis.store.importer import Entry

OCI_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


def index_json(manifest: bytes, tag: str | None) -> bytes:
    entry: dict[str, object] = {
        "mediaType": model.OCI_MANIFEST,
        "digest": model.sha256_digest(manifest),
        "size": len(manifest),
    }
    if tag:
        entry["annotations"] = {model.REF_NAME_ANNOTATION: tag}
    return json.dumps({"schemaVersion": 2, "manifests": [entry]}, separators=(",", ":")).encode()


def add_layout(
    store: ContentStore, manifest: bytes, blobs: dict[str, Entry], tag: str | None
) -> tuple[Entry, Entry]:
    """Add the layout directory; return (root, the manifest file) entries. Pins the root."""
    manifest_entry = store.add_bytes(manifest, pin=False)
    by_hex = {digest.removeprefix("sha256:"): entry for digest, entry in blobs.items()}
    by_hex[model.sha256_digest(manifest).removeprefix("sha256:")] = manifest_entry
    sha256 = store.add_directory(sorted(by_hex.items()), pin=False)
    blobs_dir = store.add_directory([("sha256", sha256)], pin=False)
    root = store.add_directory(
        [
            ("blobs", blobs_dir),
            ("index.json", store.add_bytes(index_json(manifest, tag), pin=False)),
            ("oci-layout", store.add_bytes(OCI_LAYOUT, pin=False)),
        ],
        pin=True,
    )
    return root, manifest_entry
