"""The verification verdict: what ``evaluate`` concluded, in the shape callers report.

`sedis verify` computes an artifact's digest itself, gathers every record of
that digest, and asks ``core.policy.evaluate`` what to conclude under the
trust policy; a ``Verdict`` is that conclusion, with whose records and
attestations counted. The exit code is the status's code, 0 only for
TRUSTED. A source checked against a name (``--name NAME:TAG``) is trusted
only as the image that the name resolves to under the policy, never as an
image in its own right.
"""

from __future__ import annotations

from dataclasses import dataclass

from sedis.core.address import Address
from sedis.core.policy import Decision, Evaluation, RuleOutcome, TrustPolicy, covers_name
from sedis.core.records import ScanSummary, Status

EXIT_CODES = {
    Status.TRUSTED: 0,
    Status.UNTRUSTED: 1,
    Status.UNKNOWN: 2,
    Status.UNSUPPORTED: 3,
    Status.REVOKED: 4,
}


@dataclass(frozen=True, slots=True)
class Verdict:
    digest: str
    status: Status
    reason: str
    decision: Decision
    policy: str  # TrustPolicy.source
    publishers: tuple[Address, ...]  # whose records counted
    vouching: tuple[Address, ...]  # whose attestations counted
    scan: ScanSummary | None  # of the first counting record, if any
    name: str | None = None  # the NAME:TAG the artifact was checked against, if any
    name_digest: str | None = None  # what that name resolved to under the policy
    rules: tuple[RuleOutcome, ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]


def verdict_of(
    evaluation: Evaluation,
    *,
    policy: TrustPolicy,
    name: str | None = None,
    name_digest: str | None = None,
) -> Verdict:
    """The verdict that ``evaluation`` (made under ``policy``) gives."""
    scan = None
    for publisher in evaluation.counted:
        record = evaluation.record_of(publisher)
        if record is not None:
            scan = record.scan
            break
    return Verdict(
        digest=evaluation.digest,
        status=evaluation.status,
        reason=evaluation.reason,
        decision=evaluation.decision,
        policy=policy.source,
        publishers=evaluation.counted,
        vouching=evaluation.vouching,
        scan=scan,
        name=name,
        name_digest=name_digest,
        rules=evaluation.rules,
    )


def name_mismatch(digest: str, name: str, name_digest: str, policy: TrustPolicy) -> Verdict:
    """An artifact that is not the image ``name`` resolves to: UNTRUSTED, whatever it is."""
    return Verdict(
        digest=digest,
        status=Status.UNTRUSTED,
        reason=f"{digest} is not {name}, which names {name_digest}",
        decision=Decision.DENY,
        policy=policy.source,
        publishers=(),
        vouching=(),
        scan=None,
        name=name,
        name_digest=name_digest,
    )


def name_not_found(digest: str, name: str, reason: str, policy: TrustPolicy) -> Verdict:
    """An artifact checked against a name that no trusted publisher tagged: UNKNOWN.

    ``reason`` is why the name did not resolve. An operator's gate denies it
    when some rule speaks for the name, and otherwise follows the policy's
    default, as for any image no rule covers.
    """
    return Verdict(
        digest=digest,
        status=Status.UNKNOWN,
        reason=reason,
        decision=Decision.DENY if covers_name(policy, name) else policy.default,
        policy=policy.source,
        publishers=(),
        vouching=(),
        scan=None,
        name=name,
    )
