"""CheckedImage on an executor: local layers are checked side by side, others one by one."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

import pytest

from sedis.core.errors import CorruptError
from sedis.oci.checked import CheckedImage
from sedis.oci.model import Descriptor
from sedis.oci.source import ImageSource
from sedis.oci.transports import open_source
from tests.conftest import pseudo_random
from tests.oci_images import file, make_image, make_tar, write_layout


def _layout(root: Path, layers: int = 4) -> tuple[Path, list[str]]:
    tars = [
        make_tar([file(f"f{n}", pseudo_random(2 * 1024 * 1024, f"layer {n}"))])
        for n in range(layers)
    ]
    image = make_image(tars, compress=False)
    write_layout(root, image)
    return root, image.layer_digests


@pytest.fixture
def pool() -> Iterator[Executor]:
    with ThreadPoolExecutor(2, thread_name_prefix="shared") as executor:
        yield executor


class _Threads:
    """A progress callback that notes the threads that read."""

    def __init__(self) -> None:
        self.names: set[str] = set()
        self.calls = 0

    def __call__(self, got: int) -> None:
        self.names.add(threading.current_thread().name)
        self.calls += 1


class _Remote(ImageSource):
    """A source with no local files (as a registry is), over a layout."""

    def __init__(self, inner: ImageSource) -> None:
        self.reference = "test://remote"
        self.manifest = inner.manifest
        self._inner = inner

    def _open_raw(self, desc: Descriptor) -> BinaryIO:
        return self._inner.open_raw_blob(desc)


@pytest.mark.parametrize("shared", [True, False])
def test_a_whole_image_checks_and_reads_back(tmp_path: Path, pool: Executor, shared: bool) -> None:
    root, _ = _layout(tmp_path / "img")
    with (
        open_source(f"oci:{root}") as src,
        CheckedImage(src, executor=pool if shared else None) as image,
    ):
        for desc in src.manifest.layers:
            with image.blob(desc).open() as stream:
                assert stream.read() == (root / "blobs" / "sha256" / desc.hex).read_bytes()


@pytest.mark.parametrize("shared", [True, False])
@pytest.mark.parametrize("which", [0, 2, 3])
def test_one_altered_byte_in_any_layer_is_named(
    tmp_path: Path, pool: Executor, shared: bool, which: int
) -> None:
    root, layers = _layout(tmp_path / "img")
    blob = root / "blobs" / "sha256" / layers[which][7:]
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 1
    blob.write_bytes(bytes(data))
    with open_source(f"oci:{root}") as src, pytest.raises(CorruptError) as caught:
        CheckedImage(src, executor=pool if shared else None)
    assert f"blob {layers[which]}: digest is sha256:" in str(caught.value)


def test_local_layers_are_checked_on_the_executor_and_the_callers_thread(
    tmp_path: Path, pool: Executor
) -> None:
    root, _ = _layout(tmp_path / "img", layers=6)
    threads = _Threads()
    with open_source(f"oci:{root}") as src, CheckedImage(src, executor=pool, progress=threads):
        pass
    assert threading.current_thread().name in threads.names
    assert any(name.startswith("shared") for name in threads.names)


def test_without_an_executor_every_check_runs_on_the_callers_thread(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path / "img")
    threads = _Threads()
    with open_source(f"oci:{root}") as src, CheckedImage(src, progress=threads):
        pass
    assert threads.names == {threading.current_thread().name}


def test_a_source_without_local_files_is_read_one_blob_at_a_time(
    tmp_path: Path, pool: Executor
) -> None:
    root, _ = _layout(tmp_path / "img")
    threads = _Threads()
    with (
        open_source(f"oci:{root}") as inner,
        CheckedImage(_Remote(inner), executor=pool, spool_dir=tmp_path / "spool", progress=threads),
    ):
        pass
    assert threads.names == {threading.current_thread().name}


def test_checks_run_from_the_executors_only_thread_still_finish(tmp_path: Path) -> None:
    root, layers = _layout(tmp_path / "img")

    def check_all(executor: Executor) -> int:
        with open_source(f"oci:{root}") as src, CheckedImage(src, executor=executor) as image:
            return sum(image.blob(desc).descriptor.size for desc in src.manifest.layers)

    with ThreadPoolExecutor(1) as single:
        checked = single.submit(check_all, single).result(timeout=60)
    assert checked == sum((root / "blobs" / "sha256" / d[7:]).stat().st_size for d in layers)


def test_a_failed_check_leaves_no_other_check_running(tmp_path: Path, pool: Executor) -> None:
    root, layers = _layout(tmp_path / "img", layers=6)
    (root / "blobs" / "sha256" / layers[0][7:]).write_bytes(b"short")
    threads = _Threads()
    with open_source(f"oci:{root}") as src, pytest.raises(CorruptError, match="bytes where"):
        CheckedImage(src, executor=pool, progress=threads)
    seen = threads.calls
    time.sleep(0.2)
    assert threads.calls == seen
