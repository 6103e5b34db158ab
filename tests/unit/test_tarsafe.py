"""The tar header checksum: unsigned as POSIX writes it, signed as some old writers did."""

from __future__ import annotations

import io
import tarfile

import pytest

from sedis.core.errors import CorruptError
from sedis.oci.tarsafe import iter_entries
from tests.oci_images import file, make_tar


def _sums(header: bytes) -> tuple[int, int]:
    """Unsigned and signed sums of a header, its checksum field counted as spaces."""
    counted = header[:148] + b" " * 8 + header[156:512]
    return sum(counted), sum(b - 256 if b > 127 else b for b in counted)


def _with_checksum(archive: bytes, value: int) -> bytes:
    return archive[:148] + b"%06o\0 " % value + archive[156:]


def _names(archive: bytes) -> list[str]:
    return [entry.name for entry, _ in iter_entries(io.BytesIO(archive), "layer")]


def test_both_checksum_conventions_are_read_and_any_other_value_refused() -> None:
    # A name with bytes above 127 makes the two conventions differ.
    archive = make_tar([file("café/menu", b"x")], fmt=tarfile.GNU_FORMAT)
    unsigned, signed = _sums(archive[:512])
    assert unsigned != signed
    assert _names(archive) == ["café/menu"]
    assert _names(_with_checksum(archive, unsigned)) == ["café/menu"]
    assert _names(_with_checksum(archive, signed)) == ["café/menu"]
    for wrong in (unsigned + 1, signed - 1, unsigned - 256):
        with pytest.raises(CorruptError, match="tar header checksum mismatch"):
            _names(_with_checksum(archive, wrong))
