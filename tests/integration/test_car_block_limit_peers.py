"""The CAR block limit against a real Kubo RPC node (js-ipfs).

`sedis store import-car` with `SEDIS_STORE_URL` pointing at the node checks
the whole CAR first; a block over MAX_BLOCK_SIZE must stop it there, so the
node neither holds nor pins it. A block of exactly the limit goes through,
and sedis reads it back from the node.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sedis.store.cid import MAX_BLOCK_SIZE
from sedis.store.kubo import KuboStore
from tests.car_files import one_block_car
from tests.conftest import CliResult
from tests.unit.test_car_block_limit import one_line

pytestmark = pytest.mark.integration

Cli = Callable[..., CliResult]


def test_an_over_limit_block_never_reaches_the_node(
    sedis: Cli, tmp_path: Path, jsipfs_url: str
) -> None:
    data, cid, _ = one_block_car(MAX_BLOCK_SIZE + 1)
    path = tmp_path / "over.car"
    path.write_bytes(data)

    result = sedis("store", "import-car", str(path), env={"SEDIS_STORE_URL": jsipfs_url})

    assert result.code == 2
    assert one_line(result.stderr) == (
        f"sedis: {path}: block {cid} is {MAX_BLOCK_SIZE + 1} bytes, "
        f"over the {MAX_BLOCK_SIZE}-byte block limit"
    )
    with KuboStore(jsipfs_url) as node:
        assert cid not in node.pins()
        assert not node.has(cid)


def test_a_block_of_exactly_the_limit_is_imported_and_served_by_the_node(
    sedis: Cli, tmp_path: Path, jsipfs_url: str
) -> None:
    data, cid, block = one_block_car(MAX_BLOCK_SIZE)
    path = tmp_path / "limit.car"
    path.write_bytes(data)
    env = {"SEDIS_STORE_URL": jsipfs_url}

    result = sedis("store", "import-car", str(path), "-o", "json", env=env)

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"roots": [str(cid)]}
    with KuboStore(jsipfs_url) as node:
        assert cid in node.pins()
    served = sedis("store", "cat", str(cid), env=env)
    assert served.code == 0, served.stderr
    assert served.stdout_bytes == block
