"""oci.checked: every blob is checked whole before it is handed out, and stays the bytes checked."""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

import pytest

from sedis.core.errors import CorruptError
from sedis.oci.checked import CheckedBlob, CheckedImage, CheckedSource
from sedis.oci.model import Descriptor
from sedis.oci.oci_layout import OciLayoutSource
from sedis.oci.source import ImageSource
from tests.conftest import pseudo_random
from tests.oci_images import file, make_image, make_tar, sha, write_layout

LAYER = make_tar([file("data.bin", pseudo_random(2 * 1024 * 1024, "checked"))])


def _layout(tmp_path: Path) -> tuple[Path, bytes]:
    image = make_image([LAYER], compress=False)
    write_layout(tmp_path / "img", image)
    return tmp_path / "img", image.manifest


class _Streaming(ImageSource):
    """A non-local source (as a registry is) over a layout, serving ``lie`` for one blob."""

    def __init__(self, inner: ImageSource, lie: dict[str, bytes] | None = None) -> None:
        self.reference = "test://streaming"
        self.manifest = inner.manifest
        self._inner = inner
        self._lie = lie or {}

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        import io

        if desc.digest in self._lie:
            return io.BytesIO(self._lie[desc.digest])
        return self._inner.open_raw_blob(desc)


def test_local_blobs_are_checked_and_read_back_unchanged(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    with OciLayoutSource(root) as source, CheckedImage(source) as image:
        layer = source.manifest.layers[0]
        with image.blob(layer).open() as stream:
            assert stream.read() == LAYER
        with CheckedSource(image).open_blob(layer) as stream:
            assert stream.read() == LAYER


def test_a_local_blob_written_to_after_its_check_is_refused(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    with OciLayoutSource(root) as source, CheckedImage(source) as image:
        layer = source.manifest.layers[0]
        path = root / "blobs" / "sha256" / layer.hex
        with open(path, "r+b") as handle:  # same size, same inode: only the bytes differ
            handle.write(b"\0" * 512)
        with pytest.raises(CorruptError, match="changed after it was checked"):
            image.blob(layer).open().read()


def test_a_local_blob_changed_while_it_is_read_stops_before_the_changed_bytes(
    tmp_path: Path,
) -> None:
    root, _ = _layout(tmp_path)
    with OciLayoutSource(root) as source, CheckedImage(source) as image:
        layer = source.manifest.layers[0]
        path = root / "blobs" / "sha256" / layer.hex
        stream = image.blob(layer).open()
        first = stream.read(1024 * 1024)
        assert first == LAYER[: len(first)]
        with open(path, "r+b") as handle:
            handle.seek(len(LAYER) - 4096)
            handle.write(b"\0" * 4096)
        with pytest.raises(CorruptError, match="changed after it was checked"):
            stream.read()


def test_a_lying_local_blob_is_refused_before_anything_reads_it(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    path = root / "blobs" / "sha256" / sha(LAYER)[7:]
    path.write_bytes(bytes(len(LAYER)))
    with (
        OciLayoutSource(root) as source,
        pytest.raises(CorruptError, match=f"expected {sha(LAYER)}"),
    ):
        CheckedImage(source)


def test_a_streaming_source_is_spooled_privately_and_checked(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    spool = tmp_path / "spool"
    with OciLayoutSource(root) as inner, CheckedImage(_Streaming(inner), spool_dir=spool) as image:
        layer = inner.manifest.layers[0]
        assert image.blob(layer).open().read() == LAYER
        # The spool has no name anyone could open, and what the directory holds is private.
        assert list(spool.iterdir()) == []
        assert spool.stat().st_mode & 0o077 == 0
        open_fds = set(os.listdir("/proc/self/fd"))
    assert len(set(os.listdir("/proc/self/fd"))) < len(open_fds)


def test_a_streaming_source_that_lies_leaves_no_spool_behind(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    spool = tmp_path / "spool"
    with OciLayoutSource(root) as inner:
        layer = inner.manifest.layers[0]
        before = set(os.listdir("/proc/self/fd"))
        lying = _Streaming(inner, {layer.digest: bytes(len(LAYER))})
        with pytest.raises(CorruptError, match=f"expected {layer.digest}"):
            CheckedImage(lying, spool_dir=spool)
        assert set(os.listdir("/proc/self/fd")) <= before
    assert list(spool.iterdir()) == []


def test_bytes_in_hand_are_named_by_their_own_digest() -> None:
    blob = CheckedBlob.of_bytes(b"manifest", "application/json")
    assert blob.digest == sha(b"manifest")
    assert blob.open().read() == b"manifest"


def test_a_key_for_one_digest_cannot_seal_another(tmp_path: Path) -> None:
    from sedis.crypto.layer_cipher import new_private_options
    from sedis.service import sealing
    from sedis.store.embedded import EmbeddedStore

    blob = CheckedBlob.of_bytes(b"one", "application/octet-stream")
    other = new_private_options(sha(b"two"))
    with EmbeddedStore(tmp_path / "store") as store, pytest.raises(ValueError, match="cannot seal"):
        sealing.seal_blob(store, blob, "x", other)


def test_a_spool_that_cannot_be_made_is_one_clear_refusal(tmp_path: Path) -> None:
    from sedis.core.errors import InvalidInputError

    root, _ = _layout(tmp_path)
    not_a_dir = tmp_path / "spool"
    not_a_dir.write_bytes(b"a file where the spool directory should be")
    with (
        OciLayoutSource(root) as inner,
        pytest.raises(InvalidInputError, match=f"cannot make a spool file in {not_a_dir}"),
    ):
        CheckedImage(_Streaming(inner), spool_dir=not_a_dir)


def test_one_blob_described_with_two_sizes_is_refused(tmp_path: Path) -> None:
    import json

    image = make_image([LAYER, LAYER], compress=False)
    doc = json.loads(image.manifest)
    doc["layers"][0]["size"] += 1  # the second, true, description must not cover for it
    image.manifest = json.dumps(doc).encode()
    write_layout(tmp_path / "img", image)
    with (
        OciLayoutSource(tmp_path / "img") as source,
        pytest.raises(CorruptError, match="described with two sizes"),
    ):
        CheckedImage(source)


def test_the_checked_source_hands_out_only_the_checked_blobs(tmp_path: Path) -> None:
    from sedis.core.errors import InvalidInputError

    root, _ = _layout(tmp_path)
    with OciLayoutSource(root) as source, CheckedImage(source) as image:
        checked = CheckedSource(image)
        layer = source.manifest.layers[0]
        other = Descriptor(layer.media_type, sha(b"other"), 5)
        with pytest.raises(InvalidInputError, match=f"no blob {other.digest}"):
            checked.open_blob(other)
        resized = Descriptor(layer.media_type, layer.digest, layer.size + 1)
        with pytest.raises(CorruptError, match="has the wrong size"):
            checked.open_blob(resized)


def test_a_symlinked_docker_archive_is_checked_where_it_lies(tmp_path: Path) -> None:
    from sedis.oci.docker_archive import DockerArchiveSource
    from tests.oci_images import legacy_docker_archive

    image = make_image([LAYER], compress=False)
    archive = legacy_docker_archive(tmp_path / "app.tar", image)
    link = tmp_path / "link.tar"
    link.symlink_to(archive)
    with DockerArchiveSource(link) as source, CheckedImage(source) as checked:
        layer = source.manifest.layers[0]
        assert checked.blob(layer).open().read() == LAYER


def test_checks_called_off_stop_within_a_read(tmp_path: Path) -> None:
    import threading

    from sedis.oci.checked import CheckCancelled

    root, _ = _layout(tmp_path)
    cancel = threading.Event()
    cancel.set()
    with OciLayoutSource(root) as source, pytest.raises(CheckCancelled, match="called off"):
        CheckedImage(source, cancel=cancel)
