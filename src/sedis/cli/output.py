"""Rendering for the CLI: text for people, JSON for programs, progress on terminals."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

import typer


class Format(str, Enum):
    text = "text"
    json = "json"


OutputOption = typer.Option(Format.text, "-o", "--output", help="Output format.")


def emit(fmt: Format, data: Any, text: Callable[[], None]) -> None:
    """Print ``data`` as JSON, or call ``text`` to print it for people."""
    if fmt == Format.json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=False) + "\n")
    else:
        text()


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

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TransferSpeedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)
