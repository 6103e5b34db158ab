"""rpm: the SQLite rpmdb (var/lib/rpm/rpmdb.sqlite), its header blobs read here.

Each row of ``Packages`` is an rpm header without its magic: two big-endian
uint32 counts (index entries, data bytes), the 16-byte index entries (tag,
type, offset, count), then the data store. Every offset and length is
checked against the blob before it is read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import tempfile

from sedis.core.errors import InvalidInputError
from sedis.scan.inventory import purls
from sedis.scan.model import OSInfo, Package
from sedis.scan.rootfs import Files

SQLITE_DB = "var/lib/rpm/rpmdb.sqlite"
SQLITE_WAL = SQLITE_DB + "-wal"
_MAX_ENTRIES = 65536
_MAX_DATA = 64 * 1024 * 1024
_MAX_PACKAGES = 100_000

_NAME, _VERSION, _RELEASE, _EPOCH, _LICENSE, _ARCH, _SOURCERPM = (
    1000,
    1001,
    1002,
    1003,
    1014,
    1022,
    1044,
)
_WANTED = frozenset({_NAME, _VERSION, _RELEASE, _EPOCH, _LICENSE, _ARCH, _SOURCERPM})
_INT32, _STRING, _I18NSTRING = 4, 6, 9


class HeaderError(ValueError):
    pass


def wants(path: str) -> bool:
    return path in (SQLITE_DB, SQLITE_WAL)


def parse_header(blob: bytes) -> dict[int, str | int]:
    if len(blob) < 8:
        raise HeaderError("header shorter than its counts")
    il, dl = struct.unpack_from(">II", blob, 0)
    if il > _MAX_ENTRIES or dl > _MAX_DATA:
        raise HeaderError(f"header claims {il} entries and {dl} data bytes")
    start = 8 + 16 * il
    if start + dl > len(blob):
        raise HeaderError("header is truncated")
    store = blob[start : start + dl]
    out: dict[int, str | int] = {}
    for i in range(il):
        tag, typ, offset, count = struct.unpack_from(">iIiI", blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if offset < 0 or offset >= dl:
            raise HeaderError(f"tag {tag} points outside the data store")
        if typ == _INT32:
            if count < 1 or offset + 4 > dl:
                raise HeaderError(f"tag {tag} is truncated")
            out[tag] = struct.unpack_from(">i", store, offset)[0]
        elif typ in (_STRING, _I18NSTRING):
            end = store.find(b"\0", offset)
            if end < 0:
                raise HeaderError(f"tag {tag} string is not terminated")
            out[tag] = store[offset:end].decode("utf-8", errors="replace")
    return out


def _srpm_name(srpm: str) -> str:
    """'openssl-3.0.7-24.el9.src.rpm' -> 'openssl' (name-version-release.arch.rpm)."""
    base = srpm.removesuffix(".rpm")
    base = base.rsplit(".", 1)[0] if "." in base else base
    parts = base.rsplit("-", 2)
    return parts[0] if len(parts) == 3 else base


def _connect(data: bytes, wal: bytes, scratch: str) -> sqlite3.Connection:
    if wal:
        # Committed transactions not yet checkpointed live only in the WAL, so
        # the pair is copied out and SQLite replays it on open.
        path = os.path.join(scratch, "rpmdb.sqlite")
        with open(path, "wb") as f:
            f.write(data)
        with open(path + "-wal", "wb") as f:
            f.write(wal)
        return sqlite3.connect(path)
    # SQLite in WAL mode marks the file (bytes 18-19 = 2); with no WAL to
    # replay, a deserialized copy is read as a rollback-journal database.
    image = bytearray(data)
    if len(image) >= 20 and image[18:20] == b"\x02\x02":
        image[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:")
    conn.deserialize(bytes(image))
    return conn


def _rows(data: bytes, wal: bytes) -> list[bytes]:
    with tempfile.TemporaryDirectory(prefix="sedis-rpmdb-") as scratch:
        return _rows_in(data, wal, scratch)


def _rows_in(data: bytes, wal: bytes, scratch: str) -> list[bytes]:
    conn: sqlite3.Connection | None = None
    try:
        conn = _connect(data, wal, scratch)
        cursor = conn.execute(
            "SELECT blob FROM Packages ORDER BY hnum LIMIT ?", (_MAX_PACKAGES + 1,)
        )
        rows = [bytes(r[0]) for r in cursor]
    except sqlite3.DatabaseError as exc:
        raise InvalidInputError(f"{SQLITE_DB} is not a readable rpm database: {exc}") from exc
    finally:
        if conn is not None:
            with contextlib.suppress(sqlite3.Error):
                conn.close()
    if len(rows) > _MAX_PACKAGES:
        raise InvalidInputError(f"{SQLITE_DB} holds more than {_MAX_PACKAGES} packages")
    return rows


def read(files: Files, os_info: OSInfo | None) -> list[Package]:
    if SQLITE_DB not in files:
        return []
    layer, data = files[SQLITE_DB]
    out: list[Package] = []
    wal = files[SQLITE_WAL][1] if SQLITE_WAL in files else b""
    for n, blob in enumerate(_rows(data, wal)):
        try:
            h = parse_header(blob)
        except HeaderError as exc:
            raise InvalidInputError(f"{SQLITE_DB}: package {n + 1}: {exc}") from None
        name, version, release = h.get(_NAME), h.get(_VERSION), h.get(_RELEASE)
        if not isinstance(name, str) or not isinstance(version, str):
            continue
        if name == "gpg-pubkey":
            continue  # imported signing keys are stored as pseudo-packages
        rel = release if isinstance(release, str) else ""
        epoch = h.get(_EPOCH)
        epoch_n = epoch if isinstance(epoch, int) else None
        evr = (f"{epoch_n}:" if epoch_n else "") + version + (f"-{rel}" if rel else "")
        srpm = h.get(_SOURCERPM)
        srpm_s = srpm if isinstance(srpm, str) else ""
        arch = h.get(_ARCH)
        lic = h.get(_LICENSE)
        out.append(
            Package(
                kind="rpm",
                name=name,
                version=evr,
                source_name=_srpm_name(srpm_s) if srpm_s else name,
                source_version=evr,
                ecosystem=os_info.ecosystem if os_info else None,
                purl=purls.rpm(
                    os_info,
                    name,
                    version,
                    rel,
                    epoch_n,
                    arch if isinstance(arch, str) else None,
                    srpm_s,
                ),
                path=SQLITE_DB,
                layer=layer,
                arch=arch if isinstance(arch, str) else None,
                license=lic if isinstance(lic, str) else None,
            )
        )
    return out
