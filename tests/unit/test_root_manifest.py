"""The layout index a store hands back is parsed within bounds, never trusted whole."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.service import access
from sedis.store.embedded import EmbeddedStore


def _root(store: EmbeddedStore, index: bytes) -> str:
    entry = store.add_bytes(index)
    return str(store.add_directory([("index.json", entry)]).cid)


@pytest.mark.parametrize(
    ("index", "error", "message"),
    [
        (b"[" * 30_000 + b"]" * 30_000, InvalidInputError, "nested deeper"),
        (b'{"schemaVersion":2,"manifests":[]}', CorruptError, "names no manifest"),
        (b'{"schemaVersion":2,"manifests":"x"}', InvalidInputError, "index.json of"),
    ],
    ids=["deep", "empty", "not-a-list"],
)
def test_a_hostile_layout_index_is_one_clear_refusal(
    tmp_path: Path, index: bytes, error: type[Exception], message: str
) -> None:
    with EmbeddedStore(tmp_path / "store") as store:
        root = _root(store, index)
        with pytest.raises(error, match=message):
            access.root_manifest(store, root)
