"""Engines over one fake ledger and one fake store, and three identities acting on them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sedis.service.engines import Actor, Engines
from tests.unit.service.fakes import FakeDirectory, FakeLedger, FakeStore, make_actor, make_engines


@pytest.fixture
def ledger() -> FakeLedger:
    return FakeLedger()


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def engines(tmp_path: Path, ledger: FakeLedger, store: FakeStore) -> Iterator[Engines]:
    home = tmp_path / "home"
    home.mkdir()
    with make_engines(home, ledger, store) as opened:
        yield opened


@pytest.fixture
def directory() -> FakeDirectory:
    """The names the actors know each other by."""
    return FakeDirectory()


@pytest.fixture
def alice(engines: Engines, directory: FakeDirectory) -> Actor:
    return make_actor(engines, "alice", directory)


@pytest.fixture
def bob(engines: Engines, directory: FakeDirectory) -> Actor:
    return make_actor(engines, "bob", directory)


@pytest.fixture
def carol(engines: Engines, directory: FakeDirectory) -> Actor:
    return make_actor(engines, "carol", directory)
