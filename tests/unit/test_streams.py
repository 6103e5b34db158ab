"""Verifying streams: every way of reading them checks size and digest, and says which."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path

import pytest

from sedis.core.errors import CorruptError
from sedis.oci.streams import BACKGROUND_HASH_SIZE, iter_reader, section, verifying

BIG = os.urandom(BACKGROUND_HASH_SIZE + 12345)


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class _ReadOnly:
    """A stream with read() alone (no readinto), as some wrappers are."""

    def __init__(self, data: bytes) -> None:
        self._inner = io.BytesIO(data)

    def read(self, size: int = -1) -> bytes:
        return self._inner.read(size)

    def close(self) -> None:
        self._inner.close()


def _raws(data: bytes, tmp_path: Path) -> dict[str, object]:
    path = tmp_path / "blob"
    path.write_bytes(b"x" * 100 + data + b"y" * 100)
    return {
        "bytesio": io.BytesIO(data),
        "section": section(path, 100, len(data)),
        "iterator": iter_reader(iter([data[i : i + 70000] for i in range(0, len(data), 70000)])),
        "read-only": _ReadOnly(data),
    }


@pytest.mark.parametrize("hash_aside", [False, True])
@pytest.mark.parametrize("kind", ["bytesio", "section", "iterator", "read-only"])
def test_good_blob_reads_back_whole(tmp_path: Path, kind: str, hash_aside: bool) -> None:
    raw = _raws(BIG, tmp_path)[kind]
    with verifying(raw, _digest(BIG), len(BIG), "blob", hash_aside=hash_aside) as stream:  # type: ignore[arg-type]
        out = b"".join(iter(lambda: stream.read(1 << 20), b""))
    assert out == BIG


@pytest.mark.parametrize("hash_aside", [False, True])
@pytest.mark.parametrize("kind", ["bytesio", "section", "iterator", "read-only"])
def test_one_flipped_byte_is_caught(tmp_path: Path, kind: str, hash_aside: bool) -> None:
    bad = bytearray(BIG)
    bad[len(bad) // 3] ^= 0x40
    raw = _raws(bytes(bad), tmp_path)[kind]
    stream = verifying(raw, _digest(BIG), len(BIG), "blob X", hash_aside=hash_aside)  # type: ignore[arg-type]
    with pytest.raises(CorruptError, match=r"blob X: digest is sha256:[0-9a-f]{64}, expected"):
        while stream.read(1 << 20):
            pass
    stream.close()


@pytest.mark.parametrize("hash_aside", [False, True])
def test_too_long_and_too_short(hash_aside: bool) -> None:
    longer = verifying(io.BytesIO(BIG + b"!"), _digest(BIG), len(BIG), "b", hash_aside=hash_aside)
    with pytest.raises(CorruptError, match="more than the declared"):
        while longer.read(1 << 20):
            pass
    shorter = verifying(io.BytesIO(BIG[:-1]), _digest(BIG), len(BIG), "b", hash_aside=hash_aside)
    with pytest.raises(CorruptError, match=f"{len(BIG) - 1} bytes where {len(BIG)}"):
        while shorter.read(1 << 20):
            pass


def test_durable_copy_sends_every_written_range_to_disk_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sedis.oci import sink

    asked: list[tuple[int, int]] = []
    real = sink.start_writeback

    def recording(fd: int, offset: int, length: int) -> list[object]:
        asked.append((offset, length))
        return real(fd, offset, length)  # type: ignore[return-value]

    monkeypatch.setattr(sink, "WRITEBACK_STEP", 1 << 20)
    monkeypatch.setattr(sink, "start_writeback", recording)
    data = os.urandom(5 * (1 << 20) + 777)
    out = tmp_path / "out"
    with open(out, "wb") as dst:
        dst.write(b"header!")
        copied = sink.copy_stream(io.BytesIO(data), dst, durable=True)
    assert copied == len(data)
    assert out.read_bytes() == b"header!" + data
    assert asked == [(7 + n * (1 << 20), 1 << 20) for n in range(5)]


def test_plain_copy_asks_nothing_of_the_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sedis.oci import sink

    monkeypatch.setattr(sink, "WRITEBACK_STEP", 1 << 20)
    monkeypatch.setattr(sink, "start_writeback", lambda *a: pytest.fail("asked for writeback"))
    dst = io.BytesIO()  # not even a file
    assert sink.copy_stream(io.BytesIO(BIG), dst) == len(BIG)
    assert dst.getvalue() == BIG
