"""--debug sends the library's notes to stderr for one call of main, and no longer."""

from __future__ import annotations

import logging

import pytest

from sedis.cli.app import main


def test_debug_logging_lasts_one_call(capsys: pytest.CaptureFixture[str]) -> None:
    logger = logging.getLogger("sedis")
    before = list(logger.handlers)
    for _ in range(3):
        assert main(["--debug", "--help"]) == 0
    assert logger.handlers == before
    capsys.readouterr()
