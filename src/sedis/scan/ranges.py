"""OSV `affected` evaluation: events, explicit version lists, and the fix to offer.

Pure. Follows the OSV schema's evaluation rules: events are sorted by
version, an ``introduced`` of "0" is before everything, an ``introduced`` at or
below the version opens the range, ``fixed`` at or below closes it, and
``last_affected`` below closes it. ``limit`` caps a range from above.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sedis.scan.versions import Scheme, VersionError, compare, parse, scheme_for

_KINDS = ("introduced", "fixed", "last_affected", "limit")


@dataclass(frozen=True, slots=True)
class Verdict:
    affected: bool
    fixed: str | None = None  # the version that fixes it; None while no fix is known


NOT_AFFECTED = Verdict(False)


def _key(scheme: Scheme, kind: str, value: str) -> tuple[int, Any, int]:
    """Sort key: "0" first, "*" last, and at equal versions introduced before the others."""
    order = _KINDS.index(kind)
    if value == "0" and kind != "limit":
        return (0, (), order)
    if value == "*":
        return (2, (), order)
    return (1, parse(scheme, value), order)


def _at_or_below(scheme: Scheme, bound: str, version: str) -> bool:
    return bound == "0" or compare(scheme, bound, version) <= 0


def evaluate_range(scheme: Scheme, events: Sequence[Mapping[str, str]], version: str) -> Verdict:
    try:
        flat = [(kind, ev[kind]) for ev in events for kind in _KINDS if kind in ev]
        flat.sort(key=lambda kv: _key(scheme, kv[0], kv[1]))
        for kind, value in flat:
            if kind == "limit" and value != "*" and compare(scheme, version, value) >= 0:
                return NOT_AFFECTED
        affected = False
        fixed: str | None = None
        for kind, value in flat:
            if kind == "introduced" and _at_or_below(scheme, value, version):
                affected, fixed = True, None
            elif kind == "fixed":
                if _at_or_below(scheme, value, version):
                    affected = False
                elif affected and fixed is None:
                    fixed = value
            elif kind == "last_affected" and (value == "0" or compare(scheme, value, version) < 0):
                affected = False
    except VersionError:
        # A range this scheme cannot order is no evidence either way.
        return NOT_AFFECTED
    return Verdict(True, fixed) if affected else NOT_AFFECTED


def _in_versions(scheme: Scheme | None, versions: Sequence[str], version: str) -> bool:
    if version in versions:
        return True
    if scheme is None:
        return False
    try:
        mine = parse(scheme, version)
        return any(parse(scheme, v) == mine for v in versions if isinstance(v, str))
    except VersionError:
        return False


def evaluate(entry: Mapping[str, Any], version: str) -> Verdict:
    """Is ``version`` of the package named by one OSV ``affected`` entry affected?"""
    ecosystem = str(entry.get("ecosystem", ""))
    verdicts: list[Verdict] = []
    for rng in entry.get("ranges") or ():
        scheme = scheme_for(ecosystem, str(rng.get("type", "")))
        if scheme is None:
            continue
        verdict = evaluate_range(scheme, rng.get("events") or (), version)
        if verdict.affected:
            verdicts.append(verdict)
    versions = entry.get("versions") or ()
    if not verdicts and versions and _in_versions(scheme_for(ecosystem), versions, version):
        return Verdict(True, None)
    if not verdicts:
        return NOT_AFFECTED
    fixes = [v.fixed for v in verdicts if v.fixed is not None]
    if len(fixes) < len(verdicts):
        return Verdict(True, None)  # one range has no fix, so the package has none
    scheme = scheme_for(ecosystem) or Scheme.SEMVER
    try:
        return Verdict(True, min(fixes, key=lambda f: parse(scheme, f)))
    except VersionError:
        return Verdict(True, fixes[0])
