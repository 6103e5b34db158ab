"""Layer compression: sniffing and bounded gzip decompression.

Media types do not say reliably whether a layer is compressed (Docker calls
every layer "tar.gzip", including the plain tars of ``docker save``), so
readers sniff the first bytes. Decompression is streamed and bounded: a
truncated stream is an error at EOF, and output beyond ``max_output`` bytes
(or beyond ``max_ratio`` times the input, once past a first allowance) is
refused as a decompression bomb.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO, cast

from sedis.core.errors import CorruptError, InvalidInputError
from sedis.oci.streams import CHUNK, IterReader

GZIP, ZSTD, BZIP2, XZ = "gzip", "zstd", "bzip2", "xz"
MAX_LAYER_OUTPUT = 64 * 1024**3
# Deflate cannot expand more than ~1032:1, so a higher ratio is never
# legitimate; the output bound is what stops a bomb in practice.
MAX_RATIO = 1100.0
RATIO_GRACE = 16 * 1024 * 1024


def sniff(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return GZIP
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return ZSTD
    if head[:3] == b"BZh":
        return BZIP2
    if head[:6] == b"\xfd7zXZ\x00":
        return XZ
    return None


class GunzipReader(IterReader):
    """Streams the decompression of a (possibly multi-member) gzip stream."""

    def __init__(
        self,
        raw: BinaryIO,
        what: str,
        max_output: int = MAX_LAYER_OUTPUT,
        max_ratio: float | None = MAX_RATIO,
    ) -> None:
        super().__init__(iter(self._more, b""), raw.close)
        self._raw = raw
        self._what = what
        self._max_output = max_output
        self._max_ratio = max_ratio
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._leftover = b""
        self._in = 0
        self._out = 0
        self._members = 0
        self._started = False

    def _more(self) -> bytes:
        while True:
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self._leftover:
                data, self._leftover = self._leftover, b""
            else:
                data = self._raw.read(CHUNK)
                self._in += len(data)
                if not data:
                    if self._started or not self._members:
                        raise CorruptError(f"{self._what}: truncated gzip stream")
                    return b""
            if not self._started and self._members and not data.strip(b"\0"):
                continue  # zero padding after the last member, as some tools write
            self._started = True
            try:
                out = self._d.decompress(data, CHUNK)
            except zlib.error as exc:
                raise CorruptError(f"{self._what}: corrupt gzip stream ({exc})") from None
            if self._d.eof:
                # Another member may follow (pigz and plain concatenation make them).
                self._members += 1
                self._leftover = self._d.unused_data
                self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
                self._started = False
            if out:
                self._account(len(out))
                return out

    def _account(self, n: int) -> None:
        self._out += n
        if self._out > self._max_output:
            raise InvalidInputError(
                f"{self._what}: decompresses to more than {self._max_output} bytes (gzip bomb?)"
            )
        if (
            self._max_ratio is not None
            and self._out > RATIO_GRACE
            and self._out > self._max_ratio * max(self._in, 1)
        ):
            raise InvalidInputError(
                f"{self._what}: expands more than {self._max_ratio:g}:1 (gzip bomb?)"
            )


def gunzip(
    raw: BinaryIO,
    what: str,
    max_output: int = MAX_LAYER_OUTPUT,
    max_ratio: float | None = MAX_RATIO,
) -> BinaryIO:
    return cast(BinaryIO, io.BufferedReader(GunzipReader(raw, what, max_output, max_ratio), CHUNK))


def peekable(raw: BinaryIO) -> BinaryIO:
    """A buffered view whose ``peek`` shows the first bytes without consuming them."""
    if isinstance(raw, io.BufferedReader):
        return cast(BinaryIO, raw)
    return cast(BinaryIO, io.BufferedReader(cast(io.RawIOBase, raw), CHUNK))


def decompressed(
    raw: BinaryIO,
    what: str,
    max_output: int = MAX_LAYER_OUTPUT,
    max_ratio: float | None = MAX_RATIO,
) -> BinaryIO:
    """The tar inside ``raw``: gunzipped when it is gzip, as is when plain."""
    buffered = peekable(raw)
    head = cast(io.BufferedReader, buffered).peek(8)[:8]
    kind = sniff(head)
    if kind is None:
        return buffered
    if kind == GZIP:
        return gunzip(buffered, what, max_output, max_ratio)
    raise InvalidInputError(f"{what}: {kind}-compressed layers are not supported")
