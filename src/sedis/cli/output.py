"""Rendering for the CLI: text for people, JSON for programs, progress on terminals."""

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


OutputOption = typer.Option(Format.text, "-o", "--output", help="Output format.")


def emit(fmt: Format, data: Any, text: str | Iterable[str] | Callable[[], object]) -> None:
    """Print ``data`` as JSON, or ``text`` (a line, lines, or a printer) for people."""
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    elif callable(text):
        text()
    elif isinstance(text, str):
        typer.echo(text)
    else:
        for line in text:
            typer.echo(line)


def info(message: str) -> None:
    """A line for people, on stdout."""
    typer.echo(message)


def note(message: str) -> None:
    """Commentary that must not mix with data on stdout."""
    typer.echo(message, err=True)


@contextmanager
def progress(description: str, total: int | None, enabled: bool) -> Iterator[Callable[[int], None]]:
    """A byte progress bar on stderr when it is a terminal; otherwise silent."""
    if not enabled or not sys.stderr.isatty():
        yield lambda _n: None
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
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
