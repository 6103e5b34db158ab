"""One block limit for CAR import and for serving: MAX_BLOCK_SIZE.

A CAR section may be a little longer than a block (it carries the CID too),
so a block just over the store's limit used to pass import, be pinned, and
then be refused on every read. `sedis store import-car` now refuses it in
one line and pins nothing; a block of exactly the limit imports and reads.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from sedis.core.errors import InvalidInputError, NotFoundError
from sedis.store import car
from sedis.store.cid import MAX_BLOCK_SIZE, RAW, Cid
from sedis.store.embedded import EmbeddedStore
from tests.car_files import one_block_car
from tests.conftest import CliResult

Cli = Callable[..., CliResult]


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


@pytest.mark.parametrize("version", [1, 2])
def test_a_block_one_byte_over_the_limit_is_refused_and_nothing_is_pinned(
    sedis: Cli, tmp_path: Path, home: Path, version: int
) -> None:
    data, cid, _ = one_block_car(MAX_BLOCK_SIZE + 1, version)
    path = tmp_path / "over.car"
    path.write_bytes(data)

    result = sedis("store", "import-car", str(path))

    assert result.code == 2
    assert one_line(result.stderr) == (
        f"sedis: {path}: block {cid} is {MAX_BLOCK_SIZE + 1} bytes, "
        f"over the {MAX_BLOCK_SIZE}-byte block limit"
    )
    assert json.loads(sedis("store", "pins", "-o", "json").stdout) == []
    assert sedis("store", "stat", str(cid)).code == 3
    assert not EmbeddedStore(home / "store").has(cid)


def test_a_block_of_exactly_the_limit_is_imported_and_served(sedis, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data, cid, block = one_block_car(MAX_BLOCK_SIZE)
    path = tmp_path / "limit.car"
    path.write_bytes(data)

    result = sedis("store", "import-car", str(path), "-o", "json")

    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"roots": [str(cid)]}
    assert json.loads(sedis("store", "pins", "-o", "json").stdout) == [str(cid)]
    served = sedis("store", "cat", str(cid))
    assert served.code == 0 and served.stdout_bytes == block


def test_an_over_limit_block_after_good_ones_imports_none_of_them(tmp_path: Path) -> None:
    good = b"small and fine"
    good_cid = Cid.for_block(good, RAW)
    _, big_cid, big = one_block_car(MAX_BLOCK_SIZE + 1)
    out = io.BytesIO()
    car.write(out, [good_cid, big_cid], [(good_cid, good), (big_cid, big)])
    store = EmbeddedStore(tmp_path / "s")
    with pytest.raises(InvalidInputError, match="over the 2097152-byte block limit"):
        store.import_car(io.BytesIO(out.getvalue()), name="mixed.car")
    assert list(store.pins()) == []
    assert not store.has(good_cid) and not store.has(big_cid)


# -- other projects' CARs still import -----------------------------------------------------


def conformance_dir() -> Path:
    """The shared conformance data, which sits beside the checkout (never copied into it)."""
    for parent in Path(__file__).resolve().parents:
        candidate = parent / "shared" / "conformance"
        if candidate.is_dir():
            return candidate
    pytest.fail("the conformance data (../shared/conformance beside the checkout) is missing")


# CARs whose codecs and hashes the store supports (sha2-256, dag-pb and raw), with the
# roots their PROVENANCE.md gives.
SUPPORTED = {
    "car-go-car/simple-unixfs.car": ["QmPLPpnptHc1DMhJAWNYMTqBTqqRQNy5WsY7F9pZgsBfMT"],
    "car-go-car/sample-unixfs-v2.car": [
        "bafybeiakgrehdxxgy5kca72znt6jllrj2sqkehtqeojfuxlbeuqg3vfkwq"
    ],
    "car-go-car/sample-rw-bs-v2.car": [
        "bafkreifuosuzujyf4i6psbneqtwg2fhplc2wxptc5euspa2gn3bwhnihfu",
        "bafkreifc4hca3inognou377hfhvu2xfchn2ltzi7yu27jkaeujqqqdbjju",
        "bafkreig5lvr4l6b4fr3un4xvzeyt3scevgsqjgrhlnwxw2unwbn5ro276u",
    ],
    "car-gateway-conformance/fixtures/gateway-raw-block.car": [
        "bafybeie72edlprgtlwwctzljf6gkn2wnlrddqjbkxo3jomh4n7omwblxly"
    ],
    "car-gateway-conformance/fixtures/path_gateway_unixfs/dir-with-files.car": [
        "bafybeihchr7vmgjaasntayyatmp5sv6xza57iy2h4xj7g46bpjij6yhrmy"
    ],
    "car-gateway-conformance/fixtures/trustless_gateway_car/"
    "single-layer-hamt-with-multi-block-files.car": [
        "bafybeidbclfqleg2uojchspzd4bob56dqetqjsj27gy2cq3klkkgxtpn4i"
    ],
}


@pytest.mark.parametrize("name", sorted(SUPPORTED))
def test_conformance_cars_still_import(tmp_path: Path, name: str) -> None:
    store = EmbeddedStore(tmp_path / "s")
    with open(conformance_dir() / name, "rb") as stream:
        roots = store.import_car(stream, name=name)
    assert [str(r) for r in roots] == SUPPORTED[name]
    assert sorted(str(c) for c in store.pins()) == sorted(SUPPORTED[name])


def test_kubos_partial_car_is_still_refused_as_kubo_refuses_pinning_it(tmp_path: Path) -> None:
    """kubo t0054: the dag-scope=entity CAR holds only its root; pinning it must fail."""
    path = conformance_dir() / "car-kubo-t0054" / "partial-dag-scope-entity.car"
    store = EmbeddedStore(tmp_path / "s")
    with open(path, "rb") as stream, pytest.raises(NotFoundError, match="is not in the store"):
        store.import_car(stream, name=path.name)
    assert list(store.pins()) == []
