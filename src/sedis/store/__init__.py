"""Content stores: where encrypted images live, addressed by CID."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.store.base import ContentStore


def open_store(settings: Settings) -> ContentStore:
    """The store that the settings name: embedded, or a Kubo RPC URL."""
    if settings.store_url == "embedded":
        from sedis.store.embedded import EmbeddedStore

        return EmbeddedStore(settings.store_dir)
    from sedis.store.kubo import KuboStore

    return KuboStore(settings.store_url)
