"""Every command's --help names what each value is (SOURCE, NAME:TAG, FILE), as a user
reads it: no Python type names, no braces, no lower-case placeholders."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from typer._click import Command
from typer.core import TyperArgument, TyperGroup, TyperOption

from sedis.cli.app import command, main

# A word in upper case first, after the literal scheme a value may start with, and the
# punctuation that says how the value is written: NAME:TAG, CID[/PATH], PATH...,
# jwe:PUB.pem
METAVAR = re.compile(
    r"\[?([a-z]+:(//)?)?[A-Z][A-Z0-9_]*([:./\[\]-][A-Za-z0-9_:./\[\]-]*)?\]?(\.\.\.)?"
)


def _walk(node: Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Command]]:
    yield path, node
    if isinstance(node, TyperGroup):
        for name, child in node.commands.items():
            yield from _walk(child, (*path, name))


COMMANDS = dict(_walk(command()))


def _help(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    assert main([*path, "--help"]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "sedis")
def test_help_shows_no_type_names_or_braces(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(path, capsys)
    assert f"Usage: {' '.join(('sedis', *path))}" in text
    assert re.findall(r"<[^>\s]*>", text) == []
    assert re.findall(r"\{[^}\s]*\}", text) == []


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "sedis")
def test_every_value_has_an_upper_case_metavar(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = _help(path, capsys)
    usage = text.split("\n\n", 1)[0].split()
    for param in COMMANDS[path].params:
        if getattr(param, "hidden", False):
            continue
        if isinstance(param, TyperOption):
            if param.is_flag or param.count:
                continue
            longest = max(param.opts, key=len)
            shown = re.search(rf"(?<![\w-]){re.escape(longest)} (\S+)", text)
            assert shown is not None, f"{param.opts} is not in the help of {path}"
            assert METAVAR.fullmatch(shown.group(1)), f"{param.opts} shows {shown.group(1)!r}"
        elif isinstance(param, TyperArgument):
            pieces = [piece for piece in usage if piece.strip("[].").upper() == piece.strip("[].")]
            shown_as = param.metavar or param.name.upper()
            assert any(shown_as in piece for piece in pieces), f"{param.name}: {usage}"
            assert METAVAR.fullmatch(shown_as), f"{param.name} shows {shown_as!r}"


def test_an_argument_is_bare_when_required_and_bracketed_when_not(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert "Usage: sedis store export-car [OPTIONS] CID[/PATH] FILE" in _help(
        ("store", "export-car"), capsys
    )
    assert "Usage: sedis store add [OPTIONS] PATH..." in _help(("store", "add"), capsys)


def test_the_root_help_names_the_options_that_may_come_first(
    capsys: pytest.CaptureFixture[str],
) -> None:
    text = " ".join(_help((), capsys).split())
    for option in ("--as NAME", "--password-env VAR", "-o/--output FORMAT", "--debug"):
        assert option in text
