from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.server.world import ServerWorld, server_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerWorld]:
    with server_world(tmp_path_factory.mktemp("server-world")) as made:
        yield made
