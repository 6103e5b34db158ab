"""BlobChecks: every blob of a source at hand is read and checked, on worker threads."""

from __future__ import annotations

from pathlib import Path

import pytest

from sedis.core.errors import CorruptError
from sedis.oci.transports import open_source
from sedis.service.query import BlobChecks
from tests.oci_images import file, make_image, make_tar, write_layout


def _layout(root: Path, layers: int = 4) -> tuple[Path, list[str]]:
    image = make_image([make_tar([file(f"f{n}", f"layer {n}\n" * 1000)]) for n in range(layers)])
    write_layout(root, image)
    return root, image.layer_digests


@pytest.mark.parametrize("concurrent", [True, False])
def test_a_whole_image_checks(tmp_path: Path, concurrent: bool) -> None:
    root, _ = _layout(tmp_path / "img")
    with open_source(f"oci:{root}") as src:
        src.concurrent_reads = concurrent
        with BlobChecks([src]) as checks:
            checks.wait(src)


@pytest.mark.parametrize("concurrent", [True, False])
@pytest.mark.parametrize("which", [0, 2, 3])
def test_one_altered_byte_in_any_layer_is_named(
    tmp_path: Path, concurrent: bool, which: int
) -> None:
    root, layers = _layout(tmp_path / "img")
    blob = root / "blobs" / "sha256" / layers[which][7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    with open_source(f"oci:{root}") as src:
        src.concurrent_reads = concurrent
        with BlobChecks([src]) as checks, pytest.raises(CorruptError) as caught:
            checks.wait(src)
    assert f"blob {layers[which]}: digest is sha256:" in str(caught.value)


def test_each_source_answers_for_itself(tmp_path: Path) -> None:
    good, _ = _layout(tmp_path / "good", layers=2)
    bad, layers = _layout(tmp_path / "bad", layers=2)
    (bad / "blobs" / "sha256" / layers[1][7:]).write_bytes(b"truncated")
    with (
        open_source(f"oci:{good}") as ok,
        open_source(f"oci:{bad}") as broken,
        BlobChecks([ok, broken]) as checks,
    ):
        checks.wait(ok)
        with pytest.raises(CorruptError, match="bytes where"):
            checks.wait(broken)


def test_leaving_early_reports_the_callers_error_not_the_checks(tmp_path: Path) -> None:
    root, layers = _layout(tmp_path / "img")
    (root / "blobs" / "sha256" / layers[0][7:]).write_bytes(b"bad")
    with (
        open_source(f"oci:{root}") as src,
        pytest.raises(KeyError, match="the ledger failed"),
        BlobChecks([src]),
    ):
        raise KeyError("the ledger failed")
