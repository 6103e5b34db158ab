"""The scan policy: does a report pass at a severity threshold? Pure."""

from __future__ import annotations

from dataclasses import dataclass

from sedis.scan.model import Finding, ScanReport
from sedis.scan.severity import Severity


@dataclass(frozen=True, slots=True)
class Verdict:
    passed: bool
    fail_on: Severity | None  # None: the policy never fails
    violations: tuple[Finding, ...]  # at or above fail_on, worst first

    def describe(self, limit: int = 5) -> str:
        if self.passed:
            return "policy passed"
        assert self.fail_on is not None
        worst = ", ".join(
            f"{f.id} ({f.severity.label}) in {f.package.name} {f.package.version}"
            for f in self.violations[:limit]
        )
        more = len(self.violations) - limit
        tail = f" and {more} more" if more > 0 else ""
        return f"{len(self.violations)} finding(s) at or above {self.fail_on.label}: {worst}{tail}"


def parse_threshold(text: str) -> Severity | None:
    """'none'/'never' turns the gate off; anything else is a severity name."""
    if text.strip().lower() in ("none", "never", "off"):
        return None
    return Severity.parse(text)


def worst_first(findings: list[Finding] | tuple[Finding, ...]) -> list[Finding]:
    def key(f: Finding) -> tuple[int, float, str, str]:
        score = f.cvss.score if f.cvss else -1.0
        return (-int(f.severity), -score, f.package.name, f.id)

    return sorted(findings, key=key)


def evaluate(report: ScanReport, fail_on: Severity | None) -> Verdict:
    if fail_on is None:
        return Verdict(True, None, ())
    violations = tuple(worst_first([f for f in report.findings if f.severity >= fail_on]))
    return Verdict(not violations, fail_on, violations)
