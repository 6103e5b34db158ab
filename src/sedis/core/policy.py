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
  it. A glob with a tag (a ``:`` after its last ``/``) matches ``name:tag``,
  one without matches the name; a ``:`` before the last ``/`` is a port.
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

``parse_policy`` reads a policy file (TOML: ``[[trust]]`` rules and a
``[default]`` decision) and refuses a bad one in one line that names the
file, the line and the key. A file without any ``[[trust]]`` rule is refused.
"""

from __future__ import annotations

import difflib
import fnmatch
import re
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum

from sedis.core.address import Address
from sedis.core.durations import format_duration, parse_duration
from sedis.core.errors import ConflictError, InvalidInputError, NotFoundError
from sedis.core.records import Attestation, ImageRecord, Status, TagEntry
from sedis.core.tomltext import KEY, shown, syntax_error, unquote

APPROVED = "approved"
SCAN = "scan"
EVERY_IMAGE = "*"
DIGEST_PREFIX = "sha256:"


class Decision(Enum):
    """What an operator's gate does with an image: let it run, or not."""

    ALLOW = "allow"
    DENY = "deny"


# Worst first: the order in which statuses win when several records or rules speak.
_RECORD_ORDER = (
    Status.REVOKED,
    Status.UNTRUSTED,
    Status.UNSUPPORTED,
    Status.UNKNOWN,
    Status.TRUSTED,
)
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
    # Made from the local identities and trusted contacts, not written by anyone:
    # ``--signer`` then names whom to trust instead of narrowing.
    implicit: bool = False

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
    """What one rule said about the image, with everything an explanation shows."""

    index: int  # from 1, in policy order
    line: int
    covers: bool
    status: Status  # UNKNOWN for a rule that does not cover the image
    counted: tuple[Address, ...]  # the publishers whose records counted
    checks: tuple[Check, ...]  # empty for a rule that does not cover the image
    scope: str = ""  # why the rule covers the image, or why not


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
            f"no rule of {policy.source} covers this image" + _recorded(evidence),
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
    scope = _scope(rule, subject, evidence)
    if scope is None:
        return RuleOutcome(
            index, rule.line, False, Status.UNKNOWN, (), (), _not_covering(rule, subject, evidence)
        )
    counting = [e for e in evidence if _counts(rule, e)]
    if not counting:
        text = "no record by a publisher this rule trusts" + _recorded(evidence)
        return RuleOutcome(index, rule.line, True, Status.UNKNOWN, (), (Check(False, text),), scope)
    counted = tuple(sorted({e.record.publisher for e in counting}, key=str))
    worst = min(counting, key=lambda e: _RECORD_ORDER.index(e.record.status))
    checks = [Check(True, _counted_text(rule, counting))]
    if worst.record.status is not Status.TRUSTED:
        said = f": {worst.status_reason}" if worst.status_reason else ""
        checks.append(
            Check(False, f"{worst.record.status.value} by {worst.record.publisher}{said}")
        )
        return RuleOutcome(
            index, rule.line, True, worst.record.status, counted, tuple(checks), scope
        )
    checks.extend(_scan_checks(rule, counting, now))
    checks.extend(_attestation_checks(rule, counting))
    status = Status.TRUSTED if all(c.passed for c in checks) else Status.UNTRUSTED
    return RuleOutcome(index, rule.line, True, status, counted, tuple(checks), scope)


def covers(rule: TrustRule, subject: Subject, evidence: Sequence[RecordEvidence]) -> bool:
    """Whether ``rule`` speaks about ``subject`` (see the module's rules)."""
    return _scope(rule, subject, evidence) is not None


def _rule_names(
    rule: TrustRule, subject: Subject, evidence: Sequence[RecordEvidence]
) -> dict[str, str]:
    """The names a rule's globs look at, each with where it came from."""
    names = {ref: "asked for" for ref in subject.names}
    for item in evidence:
        if item.record.publisher in rule.publishers:
            for ref in item.tags:
                names.setdefault(ref, f"tagged by {item.record.publisher}")
    return names


def _scope(rule: TrustRule, subject: Subject, evidence: Sequence[RecordEvidence]) -> str | None:
    names = _rule_names(rule, subject, evidence)
    for pattern in rule.images:
        if pattern == EVERY_IMAGE:
            return "covers every image (*)"
        if pattern.startswith(DIGEST_PREFIX):
            if pattern == subject.digest:
                return "covers the image by its digest"
            continue
        for ref, origin in names.items():
            if _matches(pattern, "", {ref}):
                return f"covers it: {pattern} matches {ref} ({origin})"
    return None


def _not_covering(rule: TrustRule, subject: Subject, evidence: Sequence[RecordEvidence]) -> str:
    names = _rule_names(rule, subject, evidence)
    patterns = ", ".join(rule.images)
    if not names:
        return f"does not cover it: {patterns} match neither its digest nor a name"
    return f"does not cover it: {patterns} match neither its digest nor {', '.join(names)}"


def _split_ref(ref: str) -> tuple[str, str | None]:
    """A reference's name and tag; a ``:`` before the last ``/`` is a registry's port."""
    slash = ref.rfind("/")
    colon = ref.rfind(":")
    if colon > slash:
        return ref[:colon], ref[colon + 1 :]
    return ref, None


def _matches(pattern: str, digest: str, names: set[str]) -> bool:
    if pattern == EVERY_IMAGE:
        return True
    if pattern.startswith(DIGEST_PREFIX):
        return pattern == digest
    with_tag = _split_ref(pattern)[1] is not None
    for ref in names:
        target = ref if with_tag else _split_ref(ref)[0]
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
            age, ceiling = format_duration(now - newest), format_duration(rule.max_scan_age)
            checks.append(Check(False, f"the newest scan is {age} old, older than {ceiling}"))
        else:
            age, ceiling = format_duration(max(now - newest, 0)), format_duration(rule.max_scan_age)
            checks.append(Check(True, f"the newest scan is {age} old, within {ceiling}"))
    return checks


def _attestation_checks(rule: TrustRule, counting: Sequence[RecordEvidence]) -> list[Check]:
    checks = []
    for req in rule.attestations:
        allowed = rule.attesters(req)
        of_kind = [
            a
            for e in counting
            for a in e.attestations
            if a.kind == req.kind and a.attester in allowed
        ]
        by = sorted({a.attester for a in of_kind if a.live}, key=str)
        revoked = {a.attester for a in of_kind if not a.live} - set(by)
        text = f"{len(by)} of {req.min} required {req.kind!r} attestations"
        if by:
            text += " (by " + ", ".join(str(a) for a in by) + ")"
        if revoked:
            text += f", {len(revoked)} revoked"
        if not allowed:
            text += ", and nobody the policy names may give one"
        checks.append(Check(len(by) >= req.min, text))
    return checks


def _counted_text(rule: TrustRule, counting: Sequence[RecordEvidence]) -> str:
    own = sorted(
        {str(e.record.publisher) for e in counting if e.record.publisher in rule.publishers}
    )
    adopted = sorted(
        {str(e.record.publisher) for e in counting if e.record.publisher not in rule.publishers}
    )
    parts = []
    if own:
        parts.append("recorded by " + ", ".join(own))
    if adopted:
        parts.append("approved record by " + ", ".join(adopted))
    return "; ".join(parts)


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


def _recorded(evidence: Sequence[RecordEvidence]) -> str:
    """Who did record the digest, for a reason that found nothing to count."""
    others = sorted({str(e.record.publisher) for e in evidence})
    if not others:
        return " (nobody has recorded it)"
    return " (recorded only by " + ", ".join(others) + ")"


@dataclass(frozen=True, slots=True)
class NameResolution:
    name: str  # "name:tag", or the digest itself when a digest was asked for
    digest: str
    publisher: Address | None  # whose tag it followed; None for a digest


def trusted_taggers(policy: TrustPolicy, ref: str) -> frozenset[Address]:
    """The accounts whose tags ``ref`` ("name:tag") resolves through: the publishers of
    every rule with a pattern that covers the name."""
    out: set[Address] = set()
    for rule in policy.rules:
        if _names(rule, ref):
            out |= rule.publishers
    return frozenset(out)


def covers_name(policy: TrustPolicy, ref: str) -> bool:
    """Whether some rule of ``policy`` speaks for the name ``ref`` ("name:tag")."""
    return any(_names(rule, ref) for rule in policy.rules)


def _names(rule: TrustRule, ref: str) -> bool:
    return any(not p.startswith(DIGEST_PREFIX) and _matches(p, "", {ref}) for p in rule.images)


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
    counting.sort(key=lambda t: str(t.publisher))
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


# -- the policy file ---------------------------------------------------------------------
#
# A file that parses is a policy that means what it says: every refusal is one
# line naming the file, the line and the key. A file without any [[trust]] rule
# is refused too: it would trust nobody, and such a file is far more often an
# empty or mistaken one than a deliberate "deny everything".

MAX_POLICY_BYTES = 1 << 20

_TOP_KEYS = ("trust", "default")
_RULE_KEYS = (
    "images",
    "publishers",
    "attestations",
    "max_severity",
    "max_scan_age",
    "require_scan",
)
_REQUIREMENT_KEYS = ("kind", "by", "min")
_DEFAULT_KEYS = ("decision",)

_FULL_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HEADER = re.compile(r"\s*(\[\[?)([^\[\]]*)\]\]?\s*(?:#.*)?$")
_BAD_GLOB_CHARS = re.compile(r"[\s\x00-\x1f\x7f@]")


def parse_policy(text: str, source: str, resolve_account: Callable[[str], Address]) -> TrustPolicy:
    """The policy that ``text`` (TOML, from ``source``) writes.

    ``resolve_account`` turns a ``publishers``/``by`` entry (an address, an
    identity's or a contact's name) into an address. Every refusal is an
    InvalidInputError of one line, ``SOURCE:LINE: key 'KEY': what is wrong``.
    """
    if len(text) > MAX_POLICY_BYTES or len(text.encode("utf-8", "replace")) > MAX_POLICY_BYTES:
        raise InvalidInputError(f"{source}: larger than 1 MiB, which no trust policy needs")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise syntax_error(source, text, str(error)) from None
    except RecursionError:
        raise InvalidInputError(f"{source}: nested too deeply to be a trust policy") from None
    return _PolicyReader(source, _KeyLines.scan(text), resolve_account).policy(data)


@dataclass(slots=True)
class _KeyLines:
    """Where each table starts and each key is first written, by a scan of the text.

    tomllib gives values without lines, so this finds them: the headers
    ``[[trust]]``, ``[[trust.attestations]]`` and ``[default]``, and the first
    ``key =`` under each. A value written inline (an attestation's table)
    answers with the line of the key that holds it.
    """

    rules: list[int] = field(default_factory=list)
    keys: dict[tuple[object, ...], int] = field(default_factory=dict)

    @classmethod
    def scan(cls, text: str) -> _KeyLines:
        found = cls()
        section: tuple[object, ...] = ("top",)
        requirements = 0
        in_string: str | None = None
        for number, line in enumerate(text.splitlines(), 1):
            if in_string is not None:
                if line.count(in_string) % 2:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header is not None:
                parts = tuple(unquote(p.strip()) for p in header.group(2).split("."))
                found.keys.setdefault(("top", parts[0]), number)
                if parts == ("trust",) and header.group(1) == "[[":
                    section = ("trust", len(found.rules))
                    found.rules.append(number)
                    requirements = 0
                elif parts == ("trust", "attestations") and found.rules:
                    rule = len(found.rules) - 1
                    found.keys.setdefault(("trust", rule, "attestations"), number)
                    section = ("trust", rule, "attestations", requirements)
                    requirements += 1
                elif parts == ("default",):
                    section = ("default",)
                else:
                    section = ("other", parts)
                continue
            key = KEY.match(line)
            if key is not None:
                found.keys.setdefault((*section, unquote(key.group(1))), number)
            for quote in ('"""', "'''"):
                if line.count(quote) % 2:
                    in_string = quote
                    break
        return found

    def top(self, key: str) -> int:
        return self.keys.get(("top", key), 1)

    def rule(self, index: int) -> int:
        return self.rules[index] if index < len(self.rules) else self.top("trust")

    def rule_key(self, index: int, key: str) -> int:
        return self.keys.get(("trust", index, key)) or self.rule(index)

    def requirement_key(self, index: int, entry: int, key: str) -> int:
        return self.keys.get(("trust", index, "attestations", entry, key)) or self.rule_key(
            index, "attestations"
        )

    def default_key(self, key: str) -> int:
        return self.keys.get(("default", key)) or self.top("default")


class _PolicyReader:
    def __init__(
        self, source: str, lines: _KeyLines, resolve_account: Callable[[str], Address]
    ) -> None:
        self.source = source
        self.lines = lines
        self.resolve_account = resolve_account

    def refuse(self, line: int, key: str, problem: str) -> InvalidInputError:
        return InvalidInputError(f"{self.source}:{line}: key {shown(key, 60)}: {problem}")

    def policy(self, data: dict[str, object]) -> TrustPolicy:
        for key in data:
            if key not in _TOP_KEYS:
                raise self.refuse(self.lines.top(key), key, _unknown(key, _TOP_KEYS, "a policy"))
        trust = data.get("trust")
        if trust is None or trust == []:
            raise InvalidInputError(
                f"{self.source}:1: key 'trust': no [[trust]] rule: a policy that trusts "
                "nobody verifies nothing (add a [[trust]] rule with images and publishers)"
            )
        if not isinstance(trust, list) or not all(isinstance(r, dict) for r in trust):
            raise self.refuse(
                self.lines.top("trust"),
                "trust",
                f"expected rules written as [[trust]] tables, not {_kind_of(trust)}",
            )
        rules = tuple(self.rule(i, raw) for i, raw in enumerate(trust))
        return TrustPolicy(rules, self.default(data.get("default", {})), self.source)

    def default(self, raw: object) -> Decision:
        if not isinstance(raw, dict):
            raise self.refuse(
                self.lines.top("default"), "default", f"expected a table, not {_kind_of(raw)}"
            )
        for key in raw:
            if key not in _DEFAULT_KEYS:
                raise self.refuse(
                    self.lines.default_key(key), key, _unknown(key, _DEFAULT_KEYS, "[default]")
                )
        decision = raw.get("decision", Decision.DENY.value)
        line = self.lines.default_key("decision")
        choices = tuple(d.value for d in Decision)
        if not isinstance(decision, str):
            raise self.refuse(
                line, "decision", f'expected "allow" or "deny", not {_kind_of(decision)}'
            )
        if decision.lower() not in choices:
            raise self.refuse(
                line,
                "decision",
                f"unknown decision {shown(decision)} (expected allow or deny)"
                + _did_you_mean(decision.lower(), choices),
            )
        return Decision(decision.lower())

    def rule(self, index: int, raw: dict[str, object]) -> TrustRule:
        def line(key: str) -> int:
            return self.lines.rule_key(index, key)

        for key in raw:
            if key not in _RULE_KEYS:
                raise self.refuse(line(key), key, _unknown(key, _RULE_KEYS, "a [[trust]] rule"))
        for key in ("images", "publishers"):
            if key not in raw:
                raise self.refuse(
                    self.lines.rule(index),
                    key,
                    f"missing: every [[trust]] rule names its {key}"
                    + (' ("*" for every image)' if key == "images" else ""),
                )
        images = tuple(
            self.image(line("images"), p)
            for p in self.strings(line("images"), "images", raw["images"])
        )
        publishers = self.accounts(line("publishers"), "publishers", raw["publishers"])
        attestations = raw.get("attestations", [])
        if not isinstance(attestations, list):
            raise self.refuse(
                line("attestations"),
                "attestations",
                'expected a list of tables like { kind = "approved" }, '
                f"not {_kind_of(attestations)}",
            )
        requirements = tuple(
            self.requirement(index, entry, item, publishers)
            for entry, item in enumerate(attestations)
        )
        return TrustRule(
            images=images,
            publishers=publishers,
            attestations=requirements,
            max_severity=self.severity(line("max_severity"), raw.get("max_severity")),
            max_scan_age=self.duration(line("max_scan_age"), raw.get("max_scan_age")),
            require_scan=self.flag(
                line("require_scan"), "require_scan", raw.get("require_scan", False)
            ),
            line=self.lines.rule(index),
        )

    def strings(self, line: int, key: str, raw: object) -> list[str]:
        if not isinstance(raw, list):
            raise self.refuse(line, key, f"expected a list of strings, not {_kind_of(raw)}")
        if not raw:
            raise self.refuse(line, key, "empty: name at least one")
        for position, item in enumerate(raw, 1):
            if not isinstance(item, str):
                raise self.refuse(line, key, f"entry {position} is {_kind_of(item)}, not a string")
            if not item:
                raise self.refuse(line, key, f"entry {position} is an empty string")
        return [str(item) for item in raw]

    def image(self, line: int, pattern: str) -> str:
        if pattern.lower().startswith(DIGEST_PREFIX):
            digest = pattern.lower()
            if _FULL_DIGEST.fullmatch(digest) is None:
                raise self.refuse(
                    line,
                    "images",
                    f"{shown(pattern)} is not a full digest (sha256: and 64 hex digits)",
                )
            return digest
        if _BAD_GLOB_CHARS.search(pattern):
            raise self.refuse(
                line,
                "images",
                f"{shown(pattern)} is not a name glob (no spaces, control characters or @; "
                "write a digest alone as sha256:…)",
            )
        if pattern.count("[") != pattern.count("]"):
            raise self.refuse(line, "images", f"{shown(pattern)} has an unclosed [ or ]")
        return pattern

    def accounts(self, line: int, key: str, raw: object) -> frozenset[Address]:
        out: set[Address] = set()
        for who in self.strings(line, key, raw):
            try:
                out.add(self.resolve_account(who))
            except (InvalidInputError, NotFoundError) as error:
                raise self.refuse(line, key, str(error)) from None
        return frozenset(out)

    def requirement(
        self, index: int, entry: int, raw: object, publishers: frozenset[Address]
    ) -> AttestationRequirement:
        label = f"attestations[{entry + 1}]"

        def line(key: str) -> int:
            return self.lines.requirement_key(index, entry, key)

        if not isinstance(raw, dict):
            raise self.refuse(
                self.lines.rule_key(index, "attestations"),
                label,
                f'expected a table like {{ kind = "approved" }}, not {_kind_of(raw)}',
            )
        for key in raw:
            if key not in _REQUIREMENT_KEYS:
                raise self.refuse(
                    line(key),
                    f"{label}.{key}",
                    _unknown(key, _REQUIREMENT_KEYS, "an attestation requirement"),
                )
        kind = raw.get("kind")
        if kind is None:
            raise self.refuse(
                line("kind"),
                f"{label}.kind",
                "missing: which kind of attestation (approved, scan, …)",
            )
        if not isinstance(kind, str) or not kind or _BAD_GLOB_CHARS.search(kind):
            raise self.refuse(
                line("kind"),
                f"{label}.kind",
                f'expected a kind such as "approved", not {shown(kind)}',
            )
        by = None if "by" not in raw else self.accounts(line("by"), f"{label}.by", raw["by"])
        least = raw.get("min", 1)
        if not isinstance(least, int) or isinstance(least, bool):
            raise self.refuse(
                line("min"), f"{label}.min", f"expected an integer, not {_kind_of(least)}"
            )
        if least < 1:
            raise self.refuse(line("min"), f"{label}.min", f"is {least}, and must be at least 1")
        who = by if by is not None else publishers
        if least > len(who):
            named = "'by' names" if by is not None else "the rule's publishers (no 'by') are"
            raise self.refuse(
                line("min"),
                f"{label}.min",
                f"is {least}, but {named} only {len(who)} account{'s' if len(who) != 1 else ''}",
            )
        return AttestationRequirement(kind, by, least)

    def severity(self, line: int, raw: object) -> str | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self.refuse(
                line, "max_severity", f"expected a severity name, not {_kind_of(raw)}"
            )
        level = raw.strip().lower()
        if level not in CEILINGS:
            raise self.refuse(
                line,
                "max_severity",
                f"unknown severity {shown(raw)} (expected one of {', '.join(CEILINGS)})"
                + _did_you_mean(level, CEILINGS),
            )
        return level

    def duration(self, line: int, raw: object) -> int | None:
        if raw is None:
            return None
        if not isinstance(raw, str):
            raise self.refuse(
                line, "max_scan_age", f'expected a duration such as "30d", not {_kind_of(raw)}'
            )
        try:
            return parse_duration(raw)
        except InvalidInputError as error:
            raise self.refuse(line, "max_scan_age", str(error)) from None

    def flag(self, line: int, key: str, raw: object) -> bool:
        if not isinstance(raw, bool):
            raise self.refuse(line, key, f"expected true or false, not {_kind_of(raw)}")
        return raw


def _unknown(key: str, known: Sequence[str], where: str) -> str:
    return f"unknown key in {where} (expected {', '.join(known)})" + _did_you_mean(key, known)


def _did_you_mean(word: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _kind_of(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return "a date or time"
