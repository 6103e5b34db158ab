"""A streaming multipart/form-data body in the shape kubo's add expects.

httpx can stream one file part, but kubo's directory upload needs a part per
entry with its own Content-Type (application/x-directory, application/symlink)
and a percent-encoded path as the filename, and the files must be opened one
at a time as the body is sent, not all at once.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO
from urllib.parse import quote

from sedis.core.errors import InvalidInputError

_PIECE = 256 * 1024


@dataclass
class _Counter:
    total: int = 0


@dataclass
class _Part:
    name: str
    content_type: str
    body: Callable[[], Iterator[bytes]]


@dataclass
class MultipartBody:
    boundary: str = field(default_factory=lambda: secrets.token_hex(16))
    _parts: list[_Part] = field(default_factory=list)
    _counter: _Counter = field(default_factory=_Counter)

    @property
    def content_type(self) -> str:
        return f"multipart/form-data; boundary={self.boundary}"

    @property
    def content_bytes(self) -> int:
        return self._counter.total

    def add_stream(
        self, name: str, stream: BinaryIO, progress: Callable[[int], None] | None
    ) -> _Counter:
        self._parts.append(
            _Part(name, "application/octet-stream", lambda: self._read(stream, progress))
        )
        return self._counter

    def add_tree(
        self, name: str, path: Path, *, hidden: bool, progress: Callable[[int], None] | None
    ) -> None:
        st = path.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path).encode()
            self._parts.append(_Part(name, "application/symlink", lambda: iter([target])))
        elif stat.S_ISDIR(st.st_mode):
            self._parts.append(_Part(name, "application/x-directory", lambda: iter(())))
            for child in sorted(os.listdir(path)):
                if child.startswith(".") and not hidden:
                    continue
                self.add_tree(f"{name}/{child}", path / child, hidden=hidden, progress=progress)
        elif stat.S_ISREG(st.st_mode):
            self._parts.append(
                _Part(name, "application/octet-stream", lambda: self._read_file(path, progress))
            )
        else:
            raise InvalidInputError(f"cannot add {path}: not a regular file, directory or symlink")

    def _read_file(self, path: Path, progress: Callable[[int], None] | None) -> Iterator[bytes]:
        with open(path, "rb") as stream:
            yield from self._read(stream, progress)

    def _read(self, stream: BinaryIO, progress: Callable[[int], None] | None) -> Iterator[bytes]:
        while piece := stream.read(_PIECE):
            self._counter.total += len(piece)
            if progress is not None:
                progress(len(piece))
            yield piece

    def chunks(self) -> Iterator[bytes]:
        for part in self._parts:
            filename = quote(part.name, safe="")
            head = (
                f"--{self.boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
                f"Content-Type: {part.content_type}\r\n\r\n"
            )
            yield head.encode()
            yield from part.body()
            yield b"\r\n"
        yield f"--{self.boundary}--\r\n".encode()
