"""Reading feed files within fixed limits: sizes, member counts, JSON depth."""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sedis.core.errors import InvalidInputError

MAX_JSON_BYTES = 1024 * 1024 * 1024  # the Debian tracker's JSON is ~80 MB; NVD's years less
MAX_MEMBER_BYTES = 16 * 1024 * 1024  # one OSV record; the largest real ones are a few MB
MAX_MEMBERS = 2_000_000
MAX_ZIP_TOTAL = 8 * 1024 * 1024 * 1024
MAX_DIR_FILES = 2_000_000


def read_file(path: Path, limit: int = MAX_JSON_BYTES) -> bytes:
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size > limit:
                raise InvalidInputError(f"{path}: larger than {limit >> 20} MiB")
            data = f.read(limit + 1)
    except OSError as exc:
        raise InvalidInputError(f"cannot read {path}: {exc.strerror}") from exc
    if len(data) > limit:
        raise InvalidInputError(f"{path}: larger than {limit >> 20} MiB")
    return data


def parse_json(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except RecursionError:
        raise InvalidInputError(f"{where}: JSON nested too deeply") from None
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{where}: not UTF-8 JSON: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise InvalidInputError(
            f"{where}: invalid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None


def zip_members(path: Path) -> Iterator[tuple[str, bytes]]:
    """Each .json member's bytes; the archive's directory is checked whole first."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise InvalidInputError(f"{path}: not a readable zip archive: {exc}") from None
    with archive:
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise InvalidInputError(f"{path}: more than {MAX_MEMBERS} members")
        total = 0
        for info in infos:
            if info.file_size > MAX_MEMBER_BYTES:
                raise InvalidInputError(
                    f"{path}: member {info.filename} is larger than {MAX_MEMBER_BYTES >> 20} MiB"
                )
            total += info.file_size
        if total > MAX_ZIP_TOTAL:
            raise InvalidInputError(
                f"{path}: members add up to more than {MAX_ZIP_TOTAL >> 30} GiB"
            )
        for info in infos:
            if info.is_dir() or not info.filename.endswith(".json"):
                continue
            try:
                with archive.open(info) as member:
                    # The header's size is the attacker's word; read one byte past it.
                    data = member.read(MAX_MEMBER_BYTES + 1)
            except (zipfile.BadZipFile, OSError, EOFError, zipfile.LargeZipFile) as exc:
                raise InvalidInputError(f"{path}: member {info.filename}: {exc}") from None
            if len(data) > MAX_MEMBER_BYTES:
                raise InvalidInputError(f"{path}: member {info.filename} is too large")
            yield info.filename, data


def dir_files(root: Path) -> list[Path]:
    out: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            if name.endswith((".json", ".zip")):
                out.append(Path(dirpath) / name)
                if len(out) > MAX_DIR_FILES:
                    raise InvalidInputError(f"{root}: more than {MAX_DIR_FILES} feed files")
    return out
