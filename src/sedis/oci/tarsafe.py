"""A bounded tar reader for archives sedis did not write.

The stdlib tarfile reads PAX and GNU long-name headers whole into memory and
lets names like ``../x`` or ``/etc/x`` through, so untrusted tars are read
here instead: every header is checksummed, metadata headers are size-bounded,
names are normalized and refused when absolute or climbing out with ``..``,
and the unusual entry types (sparse, multi-volume) are refused by name.

Two policies sit on top: ``ArchiveIndex`` for the outer archives (docker
save, oci-archive), which are plain containers of blobs and so may hold only
files, directories and links that stay inside; and ``iter_entries`` for layer
tars, which carry a root filesystem and so may also hold devices and fifos.
Nothing here extracts anything to disk.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from sedis.core.errors import CorruptError, InvalidInputError, NotFoundError
from sedis.oci.streams import CHUNK, section

BLOCK = 512
MAX_META_BYTES = 1024 * 1024  # one PAX header or GNU long name/link
MAX_NAME_BYTES = 64 * 1024
MAX_ENTRIES = 1_000_000
MAX_ARCHIVE_ENTRIES = 100_000
MAX_LINK_HOPS = 16
_HIGH_BYTES = bytes(range(128, 256))

FILE, DIR, SYMLINK, HARDLINK, CHAR, BLOCKDEV, FIFO = (
    "file",
    "dir",
    "symlink",
    "hardlink",
    "char",
    "block",
    "fifo",
)
_TYPES = {
    b"0": FILE,
    b"\0": FILE,
    b"7": FILE,
    b"1": HARDLINK,
    b"2": SYMLINK,
    b"3": CHAR,
    b"4": BLOCKDEV,
    b"5": DIR,
    b"6": FIFO,
}
_NAMED_UNSUPPORTED = {
    b"S": "a GNU sparse file",
    b"V": "a volume header",
    b"M": "a multi-volume continuation",
    b"N": "an old GNU long-name record",
    b"D": "a GNU dump directory",
}


@dataclass(frozen=True, slots=True)
class TarEntry:
    name: str  # normalized: relative, no "." or ".." parts, no trailing slash
    kind: str
    size: int  # content bytes (0 for anything but a file)
    mode: int
    linkname: str  # raw link target for symlinks; normalized path for hardlinks
    offset: int  # where the content starts in the tar stream
    uid: int = 0
    gid: int = 0


def clean_name(raw: str, what: str) -> str:
    """Normalize an entry name, refusing absolute paths and ``..`` anywhere."""
    if "\0" in raw:
        raise InvalidInputError(f"{what}: entry name {raw[:80]!r} contains NUL")
    if raw.startswith("/") and any(part not in ("", ".") for part in raw.split("/")):
        # "/" alone (as umoci writes it) names the root itself, like "./": harmless.
        raise InvalidInputError(f"{what}: entry {raw[:200]!r} has an absolute path")
    parts = []
    for part in raw.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            raise InvalidInputError(f"{what}: entry {raw[:200]!r} climbs out with '..'")
        parts.append(part)
    return "/".join(parts)


def _octal(field: bytes, what: str, label: str) -> int:
    if field and field[0] & 0x80:
        # GNU base-256 for values that overflow the octal field.
        if field[0] & 0x40:
            raise InvalidInputError(f"{what}: negative {label} in a tar header")
        value = field[0] & 0x3F
        for byte in field[1:]:
            value = (value << 8) | byte
        return value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise InvalidInputError(f"{what}: malformed {label} field in a tar header") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes, what: str) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos:].strip(b"\0") == b"":
            break
        space = data.find(b" ", pos)
        if space < 0 or space - pos > 20:
            raise InvalidInputError(f"{what}: malformed PAX header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise InvalidInputError(f"{what}: malformed PAX record length") from None
        end = pos + length
        if length <= space - pos + 1 or end > len(data) or data[end - 1 : end] != b"\n":
            raise InvalidInputError(f"{what}: malformed PAX record")
        key, eq, value = data[space + 1 : end - 1].partition(b"=")
        if not eq:
            raise InvalidInputError(f"{what}: PAX record without '='")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos = end
    return records


class TarReader:
    """Walks a tar stream header by header; content is read or skipped on demand."""

    def __init__(self, stream: BinaryIO, what: str, *, seekable: bool = False) -> None:
        self._f = stream
        self._what = what
        self._seekable = seekable
        self._pos = 0
        self._left = 0  # unread content bytes of the current entry
        self._pad = 0

    # -- raw stream -------------------------------------------------------------

    def _read_exact(self, n: int, label: str) -> bytes:
        parts = []
        need = n
        while need:
            chunk = self._f.read(min(need, CHUNK))
            if not chunk:
                raise CorruptError(f"{self._what}: truncated tar ({label})")
            parts.append(chunk)
            need -= len(chunk)
        self._pos += n
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        if not n:
            return
        if self._seekable:
            self._f.seek(n, os.SEEK_CUR)
            self._pos += n
            return
        while n:
            chunk = self._f.read(min(n, CHUNK))
            if not chunk:
                raise CorruptError(f"{self._what}: truncated tar (entry content)")
            n -= len(chunk)
            self._pos += len(chunk)

    def read(self, n: int = -1) -> bytes:
        """Read content of the current entry (at most ``n`` bytes)."""
        if n < 0 or n > self._left:
            n = self._left
        if n == 0:
            return b""
        data = self._read_exact(n, "entry content")
        self._left -= n
        return data

    def _finish_entry(self) -> None:
        self._skip(self._left + self._pad)
        self._left = self._pad = 0

    # -- headers ------------------------------------------------------------------

    def _meta(self, size: int, label: str) -> bytes:
        if size > MAX_META_BYTES:
            raise InvalidInputError(
                f"{self._what}: {label} header of {size} bytes is over the {MAX_META_BYTES} limit"
            )
        data = self._read_exact(size, label)
        self._skip(-size % BLOCK)
        return data

    def __iter__(self) -> Iterator[TarEntry]:
        pax: dict[str, str] = {}
        long_name: str | None = None
        long_link: str | None = None
        count = 0
        while True:
            self._finish_entry()
            header = self._f.read(BLOCK)
            if not header:
                # A missing end-of-archive marker is common and harmless.
                if pax or long_name or long_link:
                    raise CorruptError(f"{self._what}: truncated tar (metadata without entry)")
                return
            if len(header) < BLOCK:
                raise CorruptError(f"{self._what}: truncated tar (partial header)")
            self._pos += BLOCK
            if header == bytes(BLOCK):
                return
            self._check_sum(header)
            typeflag = header[156:157]
            size = _octal(header[124:136], self._what, "size")
            if typeflag == b"x":
                pax.update(_pax_records(self._meta(size, "PAX"), self._what))
                continue
            if typeflag == b"g":
                self._meta(size, "global PAX")  # defaults for later entries; not used
                continue
            if typeflag == b"L":
                long_name = _text(self._meta(size, "GNU long name"))
                continue
            if typeflag == b"K":
                long_link = _text(self._meta(size, "GNU long link"))
                continue
            kind = _TYPES.get(typeflag)
            if kind is None:
                label = _NAMED_UNSUPPORTED.get(typeflag, f"type {typeflag!r}")
                raw = _text(header[0:100])
                raise InvalidInputError(f"{self._what}: entry {raw!r} is {label}, not supported")
            name = pax.get("path") or long_name or self._ustar_name(header)
            link = pax.get("linkpath") or long_link or _text(header[157:257])
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise InvalidInputError(f"{self._what}: malformed PAX size") from None
            pax, long_name, long_link = {}, None, None
            if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES:
                raise InvalidInputError(f"{self._what}: entry name over {MAX_NAME_BYTES} bytes")
            count += 1
            if count > MAX_ENTRIES:
                raise InvalidInputError(f"{self._what}: more than {MAX_ENTRIES} entries")
            if kind == FILE and name.endswith("/"):
                kind = DIR  # old tars mark directories by a trailing slash only
            clean = clean_name(name, self._what)
            if kind == HARDLINK:
                link = clean_name(link, f"{self._what}: hardlink {name!r}")
            # Only regular files carry content (as in tarfile and GNU tar); the
            # size field of links, directories and devices is ignored.
            content = size if kind == FILE else 0
            self._left, self._pad = content, -content % BLOCK
            yield TarEntry(
                name=clean,
                kind=kind,
                size=size if kind == FILE else 0,
                mode=_octal(header[100:108], self._what, "mode") & 0o7777,
                linkname=link,
                offset=self._pos,
                uid=_octal(header[108:116], self._what, "uid"),
                gid=_octal(header[116:124], self._what, "gid"),
            )

    def _check_sum(self, header: bytes) -> None:
        try:
            stored = _octal(header[148:156], self._what, "checksum")
        except InvalidInputError:
            raise CorruptError(
                f"{self._what}: tar header checksum is malformed (not a tar?)"
            ) from None
        unsigned = sum(header[:148]) + 8 * 32 + sum(header[156:])
        if stored == unsigned:
            return
        # Some old writers summed signed chars: each byte above 127 counts 256 less.
        rest = header[:148] + header[156:]
        signed = unsigned - 256 * (len(rest) - len(rest.translate(None, _HIGH_BYTES)))
        if stored != signed:
            raise CorruptError(f"{self._what}: tar header checksum mismatch (not a tar?)")

    @staticmethod
    def _ustar_name(header: bytes) -> str:
        name = _text(header[0:100])
        if header[257:263] == b"ustar\0":
            prefix = _text(header[345:500])
            if prefix:
                return f"{prefix}/{name}"
        return name


def iter_entries(stream: BinaryIO, what: str) -> Iterator[tuple[TarEntry, TarReader]]:
    """Each entry of a (layer) tar stream with the reader for its content.

    The content must be read before the next entry is asked for.
    """
    reader = TarReader(stream, what)
    for entry in reader:
        yield entry, reader


# -- outer archives -------------------------------------------------------------


class ArchiveIndex:
    """The entries of an uncompressed tar file, indexed once for random access.

    Such an archive is only a container of blobs and JSON, so it may hold
    regular files, directories, and links that resolve inside it; devices,
    fifos, duplicates and escaping links are refused when it is opened.
    """

    def __init__(self, path: Path, what: str | None = None) -> None:
        self.path = path
        self.what = what or str(path)
        self.entries: dict[str, TarEntry] = {}
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed below
        except FileNotFoundError:
            raise NotFoundError(f"{path}: no such file") from None
        except IsADirectoryError:
            raise InvalidInputError(f"{path} is a directory, not a tar archive") from None
        except OSError as exc:
            raise InvalidInputError(f"{path}: cannot read ({exc.strerror})") from None
        with handle:
            magic = handle.read(6)
            handle.seek(0)
            if magic[:2] == b"\x1f\x8b" or magic[:4] == b"\x28\xb5\x2f\xfd" or magic[:3] == b"BZh":
                raise InvalidInputError(
                    f"{self.what}: archive is compressed; decompress it to a plain tar first"
                )
            for entry in TarReader(handle, self.what, seekable=True):
                self._add(entry)
        for entry in self.entries.values():
            if entry.kind in (SYMLINK, HARDLINK):
                self.resolve(entry.name)  # refuse escaping or dangling links up front

    def _add(self, entry: TarEntry) -> None:
        if len(self.entries) >= MAX_ARCHIVE_ENTRIES:
            raise InvalidInputError(f"{self.what}: more than {MAX_ARCHIVE_ENTRIES} entries")
        if entry.kind in (CHAR, BLOCKDEV, FIFO):
            raise InvalidInputError(f"{self.what}: entry {entry.name!r} is a {entry.kind} device")
        if not entry.name:
            return  # the archive's own "./" entry
        previous = self.entries.get(entry.name)
        if previous is not None and not (previous.kind == DIR and entry.kind == DIR):
            raise InvalidInputError(f"{self.what}: duplicate entry {entry.name!r}")
        if entry.kind == HARDLINK and entry.linkname not in self.entries:
            raise InvalidInputError(
                f"{self.what}: hardlink {entry.name!r} points to {entry.linkname!r}, "
                "which is not an earlier entry"
            )
        self.entries[entry.name] = entry

    def resolve(self, name: str) -> TarEntry:
        """The regular file that ``name`` is, after links inside the archive."""
        current = name
        for _ in range(MAX_LINK_HOPS):
            entry = self.entries.get(current)
            if entry is None:
                raise NotFoundError(f"{self.what}: no entry {current!r}")
            if entry.kind == FILE:
                return entry
            if entry.kind == HARDLINK:
                current = entry.linkname
                continue
            if entry.kind == SYMLINK:
                target = entry.linkname
                joined = posixpath.normpath(posixpath.join(posixpath.dirname(current), target))
                if target.startswith("/") or joined in (".", "..") or joined.startswith("../"):
                    raise InvalidInputError(
                        f"{self.what}: symlink {entry.name!r} escapes the archive ({target!r})"
                    )
                current = joined
                continue
            raise InvalidInputError(f"{self.what}: {name!r} is a {entry.kind}, not a file")
        raise InvalidInputError(f"{self.what}: too many links resolving {name!r}")

    def exists(self, name: str) -> bool:
        return name in self.entries

    def size(self, name: str) -> int:
        return self.resolve(name).size

    def open(self, name: str) -> BinaryIO:
        entry = self.resolve(name)
        return section(self.path, entry.offset, entry.size)

    def backing_file(self, name: str) -> Path:
        # The archive itself, with any link that named it followed: its identity
        # is what oci.checked watches, and a symlinked archive is an ordinary one.
        return self.path.resolve()

    def read_small(self, name: str, limit: int) -> bytes:
        entry = self.resolve(name)
        if entry.size > limit:
            raise InvalidInputError(
                f"{self.what}: {name} is {entry.size} bytes, over the {limit}-byte limit"
            )
        with self.open(name) as stream:
            data = stream.read(entry.size)
        if len(data) != entry.size:
            raise CorruptError(f"{self.what}: {name} is truncated")
        return data
