"""OSV range evaluation: every event kind, explicit versions, and the fix offered."""

from __future__ import annotations

from typing import Any

from sedis.scan.ranges import Verdict, evaluate


def entry(
    eco: str, *events: dict[str, str], versions: list[str] | None = None, kind: str = "ECOSYSTEM"
) -> dict[str, Any]:
    return {
        "ecosystem": eco,
        "name": "x",
        "versions": versions or [],
        "ranges": [{"type": kind, "events": list(events)}] if events else [],
    }


def test_introduced_fixed() -> None:
    e = entry("Debian:12", {"introduced": "0"}, {"fixed": "2.36-9+deb12u3"})
    assert evaluate(e, "2.36-9+deb12u2") == Verdict(True, "2.36-9+deb12u3")
    assert evaluate(e, "2.36-9") == Verdict(True, "2.36-9+deb12u3")
    assert not evaluate(e, "2.36-9+deb12u3").affected
    assert not evaluate(e, "2.36-9+deb12u14").affected


def test_unfixed_is_affected_with_no_fix() -> None:
    assert evaluate(entry("Debian:12", {"introduced": "0"}), "1:1.2.13.dfsg-1") == Verdict(True)


def test_fixed_zero_means_never_affected() -> None:
    e = entry("Debian:12", {"introduced": "0"}, {"fixed": "0"})
    assert not evaluate(e, "0.1").affected
    assert not evaluate(e, "5.4.1-1").affected


def test_last_affected() -> None:
    e = entry("PyPI", {"introduced": "1.0"}, {"last_affected": "1.5"})
    assert not evaluate(e, "0.9").affected
    assert evaluate(e, "1.0") == Verdict(True)
    assert evaluate(e, "1.5") == Verdict(True)
    assert not evaluate(e, "1.5.1").affected


def test_limit_caps_the_range() -> None:
    e = entry("npm", {"introduced": "0"}, {"limit": "2.0.0"}, kind="SEMVER")
    assert evaluate(e, "1.9.9").affected
    assert not evaluate(e, "2.0.0").affected
    assert evaluate(
        entry("npm", {"introduced": "0"}, {"limit": "*"}, kind="SEMVER"), "9.0.0"
    ).affected


def test_several_intervals_and_their_fixes() -> None:
    e = entry(
        "PyPI", {"introduced": "1.0"}, {"fixed": "1.2"}, {"introduced": "2.0"}, {"fixed": "2.3"}
    )
    assert evaluate(e, "1.1") == Verdict(True, "1.2")
    assert not evaluate(e, "1.5").affected
    assert evaluate(e, "2.2") == Verdict(True, "2.3")
    assert not evaluate(e, "2.3").affected


def test_events_out_of_order_are_sorted() -> None:
    e = entry("Alpine:v3.19", {"fixed": "1.2.12-r2"}, {"introduced": "0"})
    assert evaluate(e, "1.2.12-r1") == Verdict(True, "1.2.12-r2")
    assert not evaluate(e, "1.3.1-r0").affected


def test_explicit_versions() -> None:
    e = entry("PyPI", versions=["2.31.0", "2.30.0"])
    assert evaluate(e, "2.31.0").affected
    assert evaluate(e, "2.31").affected  # the same version under PEP 440
    assert not evaluate(e, "2.32.0").affected


def test_git_ranges_and_unknown_ecosystems_are_no_evidence() -> None:
    git = {
        "ecosystem": "Debian:12",
        "name": "x",
        "versions": [],
        "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}],
    }
    assert not evaluate(git, "1.0").affected
    assert not evaluate(entry("Go", {"introduced": "0"}), "v1.0.0").affected


def test_unparseable_event_is_no_evidence() -> None:
    e = entry("Debian:12", {"introduced": "0"}, {"fixed": "not a version"})
    assert not evaluate(e, "1.0-1").affected


def test_one_unfixed_range_means_no_fix() -> None:
    e = {
        "ecosystem": "PyPI",
        "name": "x",
        "versions": [],
        "ranges": [
            {"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.0"}]},
            {"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}]},
        ],
    }
    assert evaluate(e, "1.5") == Verdict(True, None)
