"""What holds of every verdict, over policies and evidence drawn from a few accounts."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from sedis.core.address import Address
from sedis.core.policy import (
    APPROVED,
    CEILINGS,
    SCAN,
    AttestationRequirement,
    Decision,
    Evaluation,
    RecordEvidence,
    Subject,
    TrustPolicy,
    TrustRule,
    covers,
    evaluate,
)
from sedis.core.records import Attestation, ImageRecord, ScanSummary, Status
from tests.unit.core.policy_cases import (
    ALICE,
    APPROVER,
    BOB,
    CAROL,
    CONFIG,
    DAY,
    DIGEST,
    MALLORY,
    NOW,
    OTHER,
    SCANNER,
)

# The accounts a policy may name, and two it never does.
NAMED = (ALICE, CAROL, BOB, APPROVER, SCANNER)
EVE = Address("0x" + "ee" * 20)
STRANGERS = (MALLORY, EVE)
NAMES = ("acme/app:1.0", "acme/tool:2.0", "beta/app:1.0", "localhost:5000/acme/app:1")
PATTERNS = ("*", "*", "acme/*", "beta/*", "acme/app:1.*", "localhost:5000/*", DIGEST, OTHER)
KINDS = (APPROVED, SCAN, "signed")
SCANS = (
    ScanSummary(),
    ScanSummary(),
    ScanSummary.unscanned(),
    ScanSummary(high=1),
    ScanSummary(critical=2, low=1),
    ScanSummary(unknown=3),
)
AGES = (0, DAY, 10 * DAY, 40 * DAY)
# Revocations and other bad news drawn often, so that they meet the properties about them;
# and requirements often enough absent that a fair share of verdicts is TRUSTED.
STATUSES = (
    Status.TRUSTED,
    Status.TRUSTED,
    Status.TRUSTED,
    Status.REVOKED,
    Status.UNTRUSTED,
    Status.UNSUPPORTED,
)

PROPERTY = settings(max_examples=150, deadline=None, database=None)


def accounts(pool: tuple[Address, ...]) -> st.SearchStrategy[frozenset[Address]]:
    return st.frozensets(st.sampled_from(pool), min_size=1, max_size=3)


requirements = st.builds(
    AttestationRequirement,
    kind=st.sampled_from(KINDS),
    by=st.none() | accounts(NAMED),
    min=st.integers(1, 2),
)

rules = st.builds(
    TrustRule,
    images=st.lists(st.sampled_from(PATTERNS), min_size=1, max_size=3).map(tuple),
    publishers=accounts(NAMED),
    attestations=st.one_of(
        st.just(()), st.just(()), st.lists(requirements, min_size=1, max_size=2).map(tuple)
    ),
    max_severity=st.sampled_from((None, None, None, *CEILINGS)),
    max_scan_age=st.sampled_from((None, None, None, DAY, 30 * DAY)),
    require_scan=st.sampled_from((False, False, True)),
)

policies = st.builds(
    TrustPolicy,
    rules=st.lists(rules, min_size=1, max_size=2).map(tuple),
    default=st.sampled_from(Decision),
    source=st.just("drawn policy"),
)

subjects = st.builds(
    Subject,
    digest=st.just(DIGEST),
    names=st.lists(st.sampled_from(NAMES), max_size=2).map(tuple),
)


@st.composite
def attestation(
    draw: st.DrawFn, on: Address, digest: str, attesters: tuple[Address, ...]
) -> Attestation:
    at = NOW - draw(st.sampled_from(AGES))
    revoked = draw(st.booleans())
    return Attestation(
        on,
        digest,
        draw(st.sampled_from(attesters)),
        draw(st.sampled_from((APPROVED, *KINDS))),
        "sha256:" + "ef" * 32,
        "bafy-payload",
        at,
        draw(st.integers(1, 1000)),
        at + 1 if revoked else None,
    )


@st.composite
def record(draw: st.DrawFn, publisher: Address, attesters: tuple[Address, ...]) -> RecordEvidence:
    digest = draw(st.sampled_from((DIGEST, DIGEST, DIGEST, OTHER)))
    published = ImageRecord(
        publisher,
        digest,
        CONFIG,
        "bafy-root",
        NOW - draw(st.sampled_from(AGES)),
        draw(st.sampled_from(STATUSES)),
        draw(st.sampled_from(SCANS)),
    )
    said = draw(st.lists(attestation(publisher, digest, attesters), max_size=3))
    tags = draw(st.lists(st.sampled_from(NAMES), max_size=2))
    return RecordEvidence(published, tuple(said), tuple(tags), "drawn reason")


@st.composite
def evidence(
    draw: st.DrawFn,
    publishers: tuple[Address, ...] = NAMED + STRANGERS,
    attesters: tuple[Address, ...] = NAMED + STRANGERS,
    least: int = 1,
) -> tuple[RecordEvidence, ...]:
    """At most one record per publisher, as on the ledger."""
    chosen = draw(st.lists(st.sampled_from(publishers), unique=True, min_size=least, max_size=4))
    return tuple(draw(record(p, attesters)) for p in chosen)


def judged(policy: TrustPolicy, subject: Subject, items: tuple[RecordEvidence, ...]) -> Evaluation:
    return evaluate(policy, subject, items, NOW)


# -- (a) trusting one more publisher never lifts a revocation ---------------------------------


@PROPERTY
@given(
    policy=policies,
    subject=subjects,
    items=evidence(),
    which=st.integers(0, 2),
    added=st.sampled_from(NAMED + STRANGERS),
    counted=st.none() | st.integers(0, 3),
    everything=st.booleans(),
)
def test_adding_a_publisher_never_turns_revoked_into_trusted(
    policy: TrustPolicy,
    subject: Subject,
    items: tuple[RecordEvidence, ...],
    which: int,
    added: Address,
    counted: int | None,
    everything: bool,
) -> None:
    index = which % len(policy.rules)
    if everything:  # often enough, the widened rule is sure to speak about the image
        chosen = replace(policy.rules[index], images=("*",))
        policy = replace(policy, rules=(*policy.rules[:index], chosen, *policy.rules[index + 1 :]))
    if items and counted is not None:  # often, someone with a record of the image to count
        added = items[counted % len(items)].record.publisher
    before = judged(policy, subject, items)
    widened = list(policy.rules)
    widened[index] = replace(widened[index], publishers=widened[index].publishers | {added})
    after = judged(replace(policy, rules=tuple(widened)), subject, items)
    if before.status is Status.REVOKED:
        assert after.status is Status.REVOKED, after.reason


@PROPERTY
@given(
    policy=policies,
    subject=subjects,
    items=evidence(),
    squatter=st.sampled_from(STRANGERS),
)
def test_a_revoked_record_of_a_newly_trusted_publisher_is_never_trusted(
    policy: TrustPolicy,
    subject: Subject,
    items: tuple[RecordEvidence, ...],
    squatter: Address,
) -> None:
    # The squatter's own record of the image, revoked; a policy that comes to trust it
    # in every rule can say REVOKED or less, never TRUSTED.
    revoked = ImageRecord(
        squatter, DIGEST, CONFIG, "bafy", NOW - DAY, Status.REVOKED, ScanSummary()
    )
    with_squat = (*[e for e in items if e.record.publisher != squatter], RecordEvidence(revoked))
    trusting = replace(
        policy, rules=tuple(replace(r, publishers=r.publishers | {squatter}) for r in policy.rules)
    )
    assert judged(trusting, subject, with_squat).status is not Status.TRUSTED


# -- (b) nothing is trusted without a rule that covers it ---------------------------------------


@PROPERTY
@given(policy=policies, subject=subjects, items=evidence())
def test_no_verdict_is_trusted_without_a_covering_rule(
    policy: TrustPolicy, subject: Subject, items: tuple[RecordEvidence, ...]
) -> None:
    result = judged(policy, subject, items)
    # A record of another digest is no evidence about this one, its tags included.
    about = [e for e in items if e.record.digest == subject.digest]
    covering = [r for r in policy.rules if covers(r, subject, about)]
    if result.status is Status.TRUSTED:
        assert covering
        assert all(o.status is Status.TRUSTED for o in result.rules if o.covers)
        assert result.counted and result.decision is Decision.ALLOW
    if not covering:
        assert (result.status, result.decision) == (Status.UNKNOWN, policy.default)
    elif result.status is not Status.TRUSTED:
        assert result.decision is Decision.DENY


@PROPERTY
@given(default=st.sampled_from(Decision), subject=subjects, items=evidence())
def test_a_policy_without_rules_trusts_nothing(
    default: Decision, subject: Subject, items: tuple[RecordEvidence, ...]
) -> None:
    result = judged(TrustPolicy((), default), subject, items)
    assert (result.status, result.decision, result.counted) == (Status.UNKNOWN, default, ())


# -- (c) an account no rule names counts for nothing --------------------------------------------


@PROPERTY
@given(
    policy=policies,
    subject=subjects,
    items=evidence(publishers=NAMED),
    squats=evidence(publishers=STRANGERS, attesters=STRANGERS, least=0),
    remarks=st.lists(st.tuples(st.integers(0, 3), attestation(MALLORY, DIGEST, STRANGERS))),
)
def test_records_and_attestations_of_strangers_never_change_a_verdict(
    policy: TrustPolicy,
    subject: Subject,
    items: tuple[RecordEvidence, ...],
    squats: tuple[RecordEvidence, ...],
    remarks: list[tuple[int, Attestation]],
) -> None:
    before = judged(policy, subject, items)
    # Strangers' own records (tagged, attested by strangers), and their attestations of
    # every kind on the named publishers' records.
    remarked = list(items)
    for position, remark in remarks:
        if remarked:
            target = remarked[position % len(remarked)]
            about = replace(remark, publisher=target.record.publisher, digest=target.record.digest)
            remarked[position % len(remarked)] = replace(
                target, attestations=(*target.attestations, about)
            )
    after = judged(policy, subject, (*squats, *remarked))
    assert (after.status, after.decision) == (before.status, before.decision), after.reason
    assert after.counted == before.counted
    assert after.vouching == before.vouching
