"""`sedis demo` tells its story through the real commands, and each step's exit code is
checked as it runs: a squatter's record and tag count for nothing with the recipient."""

from __future__ import annotations

import os

import pytest

from sedis.cli.app import main


def test_the_demo_runs_and_the_squatter_changes_nothing_for_bob(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in [k for k in os.environ if k.startswith("SEDIS_")]:
        monkeypatch.delenv(key)
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    steps = out.split("\n10. ")
    assert len(steps) == 2
    after_squat = steps[1].split("\n11. ")[0]
    # mallory revoked her own record of alice's image; bob's verify is still TRUSTED.
    assert "is now REVOKED: mallory says so" in after_squat
    assert "\nTRUSTED     acme/app:1.0  sha256:" in after_squat
    assert "verdict TRUSTED: " in after_squat
    assert "not counted by the policy" in out
    assert "Done in " in out
