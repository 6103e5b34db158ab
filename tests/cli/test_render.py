"""The JSON the image commands print is made from their results' dataclasses."""

from __future__ import annotations

import json

import pytest

from sedis.cli import render
from sedis.cli.output import Format
from sedis.core.address import Address
from sedis.core.records import Status
from sedis.service.query import ImageSummary, StatusChange

OWNER = Address.parse("0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed")


def test_addresses_are_checksummed_text_and_enums_their_values() -> None:
    counts = {"critical": 0, "high": 1, "medium": 0, "low": 2, "unknown": 0}
    row = ImageSummary("sha256:" + "a" * 64, ("app:1",), OWNER, Status.TRUSTED, 5, "bafy", counts)
    assert render.plain([row]) == [
        {
            "digest": "sha256:" + "a" * 64,
            "names": ["app:1"],
            "publisher": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "status": "TRUSTED",
            "published_at": 5,
            "root_cid": "bafy",
            "scan": counts,
        }
    ]


def test_text_from_the_ledger_is_escaped_and_json_keeps_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    change = StatusChange("sha256:" + "b" * 64, Status.REVOKED, "bad\x1b[2Jreason\n", "0x01")
    render.status_changed(Format.text, change)
    shown = capsys.readouterr().out
    assert "\x1b" not in shown and "bad\\x1b[2Jreason\\n" in shown
    render.status_changed(Format.json, change)
    assert json.loads(capsys.readouterr().out)["reason"] == "bad\x1b[2Jreason\n"
