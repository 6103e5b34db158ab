"""The trust policy, and the one function that judges an image under it.

A policy is a list of rules. A rule covers some images (name globs and
digests) and says whose records of them count, which attestations they need,
and what their scans may show. Every verdict sedis gives (verify, pull,
inspect, and the operators' watchdog, admission webhook and gateway) comes
from ``evaluate`` over the same evidence: every publisher's record of the
digest, with its attestations and tags.

The rules, in order of application:

- A rule covers an image when one of its ``images`` entries matches: a
  ``sha256:`` digest equal to the image's; ``*`` alone, which covers every
  image; or a glob (``fnmatch``, case-sensitive) matching one of the names the
  image was asked for by, or one of the tags that the rule's publishers put on
  it. A glob with a ``:`` matches ``name:tag``, one without matches the name.
- A record counts for a rule when its publisher is one of the rule's
  publishers, or when one of them approved it (a live ``approved``
  attestation): approving another account's record is co-signing it.
  Records by anyone else count for nothing, whatever their status.
- A rule with no counting record says UNKNOWN. Otherwise it says the worst
  status among its counting records (REVOKED, then UNTRUSTED, then
  UNSUPPORTED), so a revocation by any publisher the rule trusts sticks.
- A rule whose records are TRUSTED then checks its requirements, and says
  UNTRUSTED when one fails: a scan (``require_scan``); no finding worse than
  ``max_severity`` in any counting record's scan (a ceiling needs a scan to
  judge by); a scan no older than ``max_scan_age`` (the newest scan of a
  counting record, or a live ``scan`` attestation where the rule requires that
  kind); and, for each required attestation kind, at least ``min`` distinct
  accounts of ``by`` (the rule's publishers when not given) with a live
  attestation of that kind on a counting record.
- Every rule that covers the image must hold: the verdict is the worst of
  their statuses (REVOKED, UNTRUSTED, UNSUPPORTED, UNKNOWN, then TRUSTED).
  An image no rule covers is UNKNOWN, and the policy's default decides
  whether an operator's gate lets it run; nothing is TRUSTED without a rule.

``narrowed`` keeps only some accounts' word (``--signer``): it intersects
every rule's publishers and every requirement's attesters with them.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from sedis.core.address import Address
from sedis.core.errors import ConflictError, NotFoundError
from sedis.core.records import Attestation, ImageRecord, Status, TagEntry

APPROVED = "approved"
SCAN = "scan"
EVERY_IMAGE = "*"
DIGEST_PREFIX = "sha256:"


class Decision(Enum):
    """What an operator's gate does with an image: let it run, or not."""

    ALLOW = "allow"
    DENY = "deny"


# Worst first: the order in which statuses win when several records or rules speak.
_RECORD_ORDER = (Status.REVOKED, Status.UNTRUSTED, Status.UNSUPPORTED, Status.TRUSTED)
_VERDICT_ORDER = (
    Status.REVOKED,
    Status.UNTRUSTED,
    Status.UNSUPPORTED,
    Status.UNKNOWN,
    Status.TRUSTED,
)

# A scan summary's counts, worst first; a ceiling allows its own level and those after it.
SEVERITIES = ("critical", "high", "medium", "low", "unknown")
CEILINGS = (*SEVERITIES, "none")


@dataclass(frozen=True, slots=True)
class AttestationRequirement:
    """At least ``min`` distinct accounts of ``by`` attest ``kind``; ``by`` None means
    the rule's publishers."""

    kind: str
    by: frozenset[Address] | None = None
    min: int = 1


@dataclass(frozen=True, slots=True)
class TrustRule:
    images: tuple[str, ...] = (EVERY_IMAGE,)
    publishers: frozenset[Address] = frozenset()
    attestations: tuple[AttestationRequirement, ...] = ()
    max_severity: str | None = None  # one of CEILINGS; None: any
    max_scan_age: int | None = None  # seconds; None: any age
    require_scan: bool = False
    line: int = 0  # where the rule starts in its file, for explanations (0: not from a file)

    def attesters(self, requirement: AttestationRequirement) -> frozenset[Address]:
        return self.publishers if requirement.by is None else requirement.by


@dataclass(frozen=True, slots=True)
class TrustPolicy:
    rules: tuple[TrustRule, ...]
    default: Decision = Decision.DENY
    source: str = "the default policy"  # a file's path, or how the policy came about

    def narrowed(self, signers: Iterable[Address]) -> TrustPolicy:
        """The policy counting only ``signers``' records and attestations."""
        keep = frozenset(signers)
        rules = tuple(
            replace(
                rule,
                publishers=rule.publishers & keep,
                attestations=tuple(
                    replace(req, by=rule.attesters(req) & keep) for req in rule.attestations
                ),
            )
            for rule in self.rules
        )
        return replace(self, rules=rules)

    @property
    def publishers(self) -> frozenset[Address]:
        """Every account whose records some rule counts."""
        return frozenset().union(*(rule.publishers for rule in self.rules))


@dataclass(frozen=True, slots=True)
class RecordEvidence:
    """One publisher's record of the digest, with what others said of it."""

    record: ImageRecord
    attestations: tuple[Attestation, ...] = ()
    tags: tuple[str, ...] = ()  # "name:tag" refs of this publisher that point at it now
    status_reason: str = ""  # the reason given with the latest status change


@dataclass(frozen=True, slots=True)
class Subject:
    """The image judged: its digest, and the names it was asked for by ("name:tag")."""

    digest: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Check:
    """One finding of a rule about the image, passed or failed, in words."""

    passed: bool
    text: str


@dataclass(frozen=True, slots=True)
class RuleOutcome:
    index: int  # from 1, in policy order
    line: int
    covers: bool
    status: Status  # UNKNOWN for a rule that does not cover the image
    counted: tuple[Address, ...]  # the publishers whose records counted
    checks: tuple[Check, ...]


@dataclass(frozen=True, slots=True)
class Evaluation:
    digest: str
    status: Status
    decision: Decision
    reason: str
    counted: tuple[Address, ...]  # publishers whose records made the verdict, over all rules
    vouching: tuple[Address, ...]  # accounts whose attestations counted toward a requirement
    rules: tuple[RuleOutcome, ...] = field(default=())
    evidence: tuple[RecordEvidence, ...] = field(default=())

    def record_of(self, publisher: Address) -> ImageRecord | None:
        for item in self.evidence:
            if item.record.publisher == publisher:
                return item.record
        return None


def evaluate(
    policy: TrustPolicy,
    subject: Subject,
    evidence: Sequence[RecordEvidence],
    now: int,
) -> Evaluation:
    """The verdict on ``subject`` under ``policy``, from every record of its digest."""
    evidence = tuple(e for e in evidence if e.record.digest == subject.digest)
    outcomes = tuple(
        _judge_rule(i, rule, subject, evidence, now) for i, rule in enumerate(policy.rules, 1)
    )
    covering = [o for o in outcomes if o.covers]
    if not covering:
        return Evaluation(
            subject.digest,
            Status.UNKNOWN,
            policy.default,
            f"no rule of {policy.source} covers this image" + _recorded_by(evidence, frozenset()),
            (),
            (),
            outcomes,
            evidence,
        )
    worst = min(covering, key=lambda o: _VERDICT_ORDER.index(o.status))
    counted = tuple(sorted({a for o in covering for a in o.counted}, key=str))
    vouching = tuple(
        sorted(_vouching(policy, covering, evidence), key=str),
    )
    failed = [c.text for c in worst.checks if not c.passed]
    if worst.status is Status.TRUSTED:
        reason = f"trusted: {'; '.join(c.text for c in worst.checks if c.passed)}"
    else:
        reason = "; ".join(failed) or worst.status.value.lower()
        if len(covering) > 1:
            reason = f"rule {worst.index}: {reason}"
    decision = Decision.ALLOW if worst.status is Status.TRUSTED else Decision.DENY
    return Evaluation(
        subject.digest, worst.status, decision, reason, counted, vouching, outcomes, evidence
    )


def _judge_rule(
    index: int,
    rule: TrustRule,
    subject: Subject,
    evidence: tuple[RecordEvidence, ...],
    now: int,
) -> RuleOutcome:
    if not covers(rule, subject, evidence):
        return RuleOutcome(index, rule.line, False, Status.UNKNOWN, (), ())
    counting = [e for e in evidence if _counts(rule, e)]
    if not counting:
        text = "no record by a publisher this rule trusts" + _recorded_by(evidence, rule.publishers)
        return RuleOutcome(index, rule.line, True, Status.UNKNOWN, (), (Check(False, text),))
    counted = tuple(sorted({e.record.publisher for e in counting}, key=str))
    worst = min(counting, key=lambda e: _RECORD_ORDER.index(e.record.status))
    checks: list[Check] = []
    if worst.record.status is not Status.TRUSTED:
        said = f": {worst.status_reason}" if worst.status_reason else ""
        checks.append(
            Check(False, f"{worst.record.status.value} by {worst.record.publisher}{said}")
        )
        return RuleOutcome(index, rule.line, True, worst.record.status, counted, tuple(checks))
    checks.append(Check(True, "recorded by " + ", ".join(str(a) for a in counted)))
    checks.extend(_scan_checks(rule, counting, now))
    checks.extend(_attestation_checks(rule, counting))
    status = Status.TRUSTED if all(c.passed for c in checks) else Status.UNTRUSTED
    return RuleOutcome(index, rule.line, True, status, counted, tuple(checks))


def covers(rule: TrustRule, subject: Subject, evidence: Sequence[RecordEvidence]) -> bool:
    """Whether ``rule`` speaks about ``subject`` (see the module's rules)."""
    names = set(subject.names)
    names.update(ref for e in evidence if e.record.publisher in rule.publishers for ref in e.tags)
    return any(_matches(pattern, subject.digest, names) for pattern in rule.images)


def _matches(pattern: str, digest: str, names: set[str]) -> bool:
    if pattern == EVERY_IMAGE:
        return True
    if pattern.startswith(DIGEST_PREFIX):
        return pattern == digest
    for ref in names:
        target = ref if ":" in pattern else ref.rpartition(":")[0] or ref
        if fnmatch.fnmatchcase(target, pattern):
            return True
    return False


def _counts(rule: TrustRule, item: RecordEvidence) -> bool:
    if item.record.publisher in rule.publishers:
        return True
    return any(
        a.live and a.kind == APPROVED and a.attester in rule.publishers for a in item.attestations
    )


def _scan_checks(rule: TrustRule, counting: Sequence[RecordEvidence], now: int) -> list[Check]:
    scanned = [e for e in counting if not e.record.scan.not_scanned]
    checks: list[Check] = []
    if rule.require_scan or rule.max_severity is not None:
        checks.append(
            Check(True, "scanned")
            if scanned
            else Check(False, "published without a vulnerability scan")
        )
    if rule.max_severity is not None and scanned:
        allowed = CEILINGS.index(rule.max_severity)
        worse = SEVERITIES[:allowed]
        found = {level: max(getattr(e.record.scan, level) for e in scanned) for level in worse}
        over = [f"{n} {level}" for level, n in found.items() if n]
        checks.append(
            Check(False, f"scan found {', '.join(over)}, over the ceiling {rule.max_severity}")
            if over
            else Check(True, f"no finding over {rule.max_severity}")
        )
    if rule.max_scan_age is not None:
        times = [e.record.published_at for e in scanned]
        if any(req.kind == SCAN for req in rule.attestations):
            scan_attesters = frozenset().union(
                *(rule.attesters(r) for r in rule.attestations if r.kind == SCAN)
            )
            times += [
                a.at
                for e in counting
                for a in e.attestations
                if a.live and a.kind == SCAN and a.attester in scan_attesters
            ]
        newest = max(times, default=None)
        if newest is None:
            checks.append(Check(False, "no scan to judge the scan's age by"))
        elif now - newest > rule.max_scan_age:
            days = (now - newest) // 86400
            checks.append(Check(False, f"the newest scan is {days} days old, too old"))
        else:
            checks.append(Check(True, "scan recent enough"))
    return checks


def _attestation_checks(rule: TrustRule, counting: Sequence[RecordEvidence]) -> list[Check]:
    checks = []
    for req in rule.attestations:
        allowed = rule.attesters(req)
        by = {
            a.attester
            for e in counting
            for a in e.attestations
            if a.live and a.kind == req.kind and a.attester in allowed
        }
        text = f"{len(by)} of {req.min} required {req.kind!r} attestations"
        checks.append(Check(len(by) >= req.min, text))
    return checks


def _vouching(
    policy: TrustPolicy, covering: Sequence[RuleOutcome], evidence: Sequence[RecordEvidence]
) -> set[Address]:
    out: set[Address] = set()
    for outcome in covering:
        rule = policy.rules[outcome.index - 1]
        allowed = frozenset().union(
            rule.publishers, *(rule.attesters(r) for r in rule.attestations)
        )
        kinds = {APPROVED} | {r.kind for r in rule.attestations}
        for item in evidence:
            if item.record.publisher in outcome.counted:
                out.update(
                    a.attester
                    for a in item.attestations
                    if a.live and a.kind in kinds and a.attester in allowed
                )
    return out


def _recorded_by(evidence: Sequence[RecordEvidence], trusted: frozenset[Address]) -> str:
    others = sorted({str(e.record.publisher) for e in evidence} - {str(a) for a in trusted})
    if not others:
        return ""
    return " (recorded by " + ", ".join(others) + ", which it does not trust)"


@dataclass(frozen=True, slots=True)
class NameResolution:
    name: str  # "name:tag", or the digest itself
    digest: str
    publisher: Address | None  # whose tag it is; None for a digest, which is nobody's


def trusted_taggers(policy: TrustPolicy, ref: str) -> frozenset[Address]:
    """The accounts whose tags ``ref`` ("name:tag") resolves through: the publishers of
    every rule with a pattern that covers the name."""
    names = {ref}
    out: set[Address] = set()
    for rule in policy.rules:
        if any(not p.startswith(DIGEST_PREFIX) and _matches(p, "", names) for p in rule.images):
            out |= rule.publishers
    return frozenset(out)


def resolve_name(
    policy: TrustPolicy,
    ref: str,
    taggers: Sequence[TagEntry],
    publisher: Address | None = None,
) -> NameResolution:
    """The digest that ``ref`` names: where the trusted publishers' tags point.

    ``taggers`` is every publisher's current pointer for the name. Two trusted
    publishers pointing at different digests is an error naming both, unless
    ``publisher`` picks one; a name only untrusted accounts tagged is not found.
    """
    trusted = trusted_taggers(policy, ref)
    entries = [t for t in taggers if t.ref == ref]
    if publisher is not None:
        chosen = [t for t in entries if t.publisher == publisher]
        if not chosen:
            raise NotFoundError(f"{publisher} has not tagged {ref}")
        return NameResolution(ref, chosen[0].digest, publisher)
    counting = [t for t in entries if t.publisher in trusted]
    if not counting:
        others = sorted({str(t.publisher) for t in entries})
        hint = f" (tagged by {', '.join(others)}, not trusted by {policy.source})" if others else ""
        raise NotFoundError(f"no image named {ref} by a publisher the policy trusts{hint}")
    digests = {t.digest for t in counting}
    if len(digests) > 1:
        said = "; ".join(f"{t.publisher} tags {t.digest}" for t in counting)
        raise AmbiguousNameError(
            f"trusted publishers disagree on {ref}: {said}; pick one with --publisher"
        )
    first = min(counting, key=lambda t: str(t.publisher))
    return NameResolution(ref, first.digest, first.publisher)


class AmbiguousNameError(ConflictError):
    """A name that trusted publishers point at different images."""
