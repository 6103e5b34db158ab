"""The CLI's one escaper: what a terminal could act on is shown, never acted on."""

from __future__ import annotations

import pytest

from sedis.cli.app import main
from sedis.cli.output import Format, emit, info, markup_free, note, printable


@pytest.mark.parametrize(
    "char",
    [chr(c) for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))]
    + ["\u061c", "\u200e", "\u200f", "\u2028", "\u2029", "\ufeff", "\udc80", "\U000e0041"]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))],
)
def test_every_control_format_and_bidi_character_is_escaped(char: str) -> None:
    shown = printable(f"a{char}b")
    assert shown == "a" + char.encode("unicode_escape").decode("ascii") + "b"
    assert shown.isascii() and shown.isprintable()


def test_ordinary_text_is_left_alone() -> None:
    text = "acme/app:1.0 — naïve 日本語 [red]x[/] \\x1b 🙂"
    assert printable(text) is text


def test_escape_sequences_read_as_written() -> None:
    assert printable("\x1b[2K\rTRUSTED\x1b]8;;http://x\x07") == (
        "\\x1b[2K\\rTRUSTED\\x1b]8;;http://x\\x07"
    )


def test_markup_is_shown_not_applied() -> None:
    from rich.console import Console

    console = Console(record=True, width=80, color_system="truecolor", force_terminal=True)
    console.print(markup_free("[red]REVOKED[/] \x1b[32mTRUSTED"))
    assert console.export_text().strip() == "[red]REVOKED[/] \\x1b[32mTRUSTED"
    assert "\x1b[31m" not in console.export_text(styles=True)


def test_the_output_is_bounded_by_the_input() -> None:
    hostile = "\x1b\u202e\U000e0041" * 10_000
    assert len(printable(hostile)) <= 10 * len(hostile)


def test_every_text_printer_escapes(capsys: pytest.CaptureFixture[str]) -> None:
    emit(Format.text, {}, "one\x1b[2K")
    emit(Format.text, {}, ["two\rTRUSTED", "three\n"])
    emit(Format.text, {}, lambda: info("four\u202e"))
    note("five\x9b")
    out, err = capsys.readouterr()
    assert out == "one\\x1b[2K\ntwo\\rTRUSTED\nthree\\n\nfour\\u202e\n"
    assert err == "five\\x9b\n"
    emit(Format.json, {"kind": "\x1b[2K"}, "unused")
    assert capsys.readouterr().out == '{\n  "kind": "\\u001b[2K"\n}\n'


def test_errors_are_escaped_on_their_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["verify", "docker-archive:/nonexistent\x1b[2K\u202e.tar"])
    err = capsys.readouterr().err
    assert code != 0 and err.count("\n") == 1
    assert "\x1b" not in err and "\u202e" not in err
    assert "/nonexistent\\x1b[2K\\u202e.tar" in err
