"""What every command needs: the settings and the engines they name."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sedis.config import Settings
    from sedis.store.base import ContentStore


def settings() -> Settings:
    from sedis import config

    return config.load()


def store() -> ContentStore:
    from sedis.store import open_store

    return open_store(settings())
