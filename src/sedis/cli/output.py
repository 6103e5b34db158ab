"""Rendering for the CLI: text for people, JSON for programs, progress on terminals.

Text for people goes through ``printable`` on its way out: tags, reasons,
attestation kinds and error messages come from the ledger or the network,
and a terminal must show what they say, never act on it. JSON needs no such
step: ``json.dumps`` escapes every control character and all non-ASCII.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Any

import typer


class Format(StrEnum):
    text = "text"
    json = "json"


OutputOption = typer.Option(
    Format.text, "-o", "--output", metavar="FORMAT", help="Output format: text or json."
)


def printable(text: str) -> str:
    """``text`` with every character a terminal could act on written as an escape.

    That is each character Python does not call printable: C0 and C1
    controls and DEL (ESC opens the sequences that erase lines, move the
    cursor and recolour text; CR and LF rewrite or forge lines), format
    characters such as the bidirectional overrides (U+202E reverses what
    follows), line and paragraph separators, unusual spaces and unassigned
    code points. Each becomes its Python escape (``\\x1b``, ``\\n``,
    ``\\u202e``), in time linear in the text.
    """
    if text.isprintable():
        return text
    return "".join(
        char if char.isprintable() else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


def emit(fmt: Format, data: Any, text: str | Iterable[str] | Callable[[], object]) -> None:
    """Print ``data`` as JSON, or ``text`` (a line, lines, or a printer) for people.

    Each line is one line on the terminal: what it quotes cannot break it.
    A printer prints through ``info`` and ``note``, which escape alike.
    """
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif callable(text):
        text()
    elif isinstance(text, str):
        info(text)
    else:
        for line in text:
            info(line)


def info(message: str) -> None:
    """A line for people, on stdout (an empty message gives an empty line)."""
    typer.echo(printable(message))


def note(message: str) -> None:
    """Commentary that must not mix with data on stdout."""
    typer.echo(printable(message), err=True)


def markup_free(text: str) -> str:
    """``text`` for a Rich renderable: escaped as ``printable`` does, and with any
    ``[style]`` in it shown as written instead of applied."""
    from rich.markup import escape

    return escape(printable(text))


@contextmanager
def progress(description: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr when it is a terminal; otherwise silent."""
    with progress_bar(description, enabled) as bar:
        bar.start(total)
        yield bar.advance


class _Bar:
    """A use case's progress (see service.progress), drawn once it says its total."""

    def __init__(self, description: str, enabled: bool) -> None:
        self._description = description
        self._enabled = enabled and sys.stderr.isatty()
        self._bar: Any = None
        self._task: Any = None

    def start(self, total: int | None) -> None:
        if not self._enabled or self._bar is not None:
            return
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TransferSpeedColumn,
        )

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
        )
        self._bar = Progress(*columns, console=Console(stderr=True), transient=True)
        self._bar.start()
        self._task = self._bar.add_task(markup_free(self._description), total=total)

    def advance(self, done: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, done)

    def stop(self) -> None:
        if self._bar is not None:
            self._bar.stop()


@contextmanager
def progress_bar(description: str, enabled: bool) -> Iterator[_Bar]:
    """A byte progress bar on stderr when it is a terminal (and ``enabled``); else silent."""
    bar = _Bar(description, enabled)
    try:
        yield bar
    finally:
        bar.stop()
