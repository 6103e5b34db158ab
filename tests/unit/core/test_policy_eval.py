"""The trust policy's evaluation, field by field and in combination, and name resolution."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from sedis.core.address import Address
from sedis.core.errors import NotFoundError
from sedis.core.policy import (
    APPROVED,
    SCAN,
    AmbiguousNameError,
    Decision,
    RecordEvidence,
    Subject,
    TrustPolicy,
    TrustRule,
    evaluate,
    resolve_name,
    trusted_taggers,
)
from sedis.core.records import ScanSummary, Status, TagEntry
from tests.unit.core.policy_cases import (
    ALICE,
    APPROVER,
    BOB,
    CAROL,
    DAY,
    DIGEST,
    HOUR,
    MALLORY,
    NOW,
    OTHER,
    SCANNER,
    UNSCANNED,
    att,
    need,
    rec,
    rule,
)

TRUSTED, UNTRUSTED, UNKNOWN = Status.TRUSTED, Status.UNTRUSTED, Status.UNKNOWN
REVOKED, UNSUPPORTED = Status.REVOKED, Status.UNSUPPORTED
ALLOW, DENY = Decision.ALLOW, Decision.DENY
NAME = "acme/app:1.0"
HIGH = ScanSummary(high=1)
CRITICAL = ScanSummary(critical=1)


def case(
    label: str,
    rules: Sequence[TrustRule],
    evidence: Sequence[RecordEvidence],
    expect: tuple[Status, Decision],
    reason: str,
    *,
    names: tuple[str, ...] = (),
    default: Decision = DENY,
    narrow: tuple[Address, ...] | None = None,
) -> object:
    return pytest.param(
        tuple(rules), tuple(evidence), names, default, narrow, expect, reason, id=label
    )


CASES = [
    # -- images: globs, tags, digests ------------------------------------------------------
    case("star covers every image", [rule(ALICE)], [rec()], (TRUSTED, ALLOW),
         f"trusted: recorded by {ALICE}"),
    case("glob matches the name asked for", [rule(ALICE, images=("acme/*",))], [rec()],
         (TRUSTED, ALLOW), "trusted", names=(NAME,)),
    case("glob misses another name", [rule(ALICE, images=("acme/*",))], [rec()],
         (UNKNOWN, DENY), "no rule of test policy covers this image", names=("beta/app:1.0",)),
    case("glob matches a trusted publisher's own tag", [rule(ALICE, images=("acme/*",))],
         [rec(tags=(NAME,))], (TRUSTED, ALLOW), "trusted"),
    case("an untrusted publisher's tag covers nothing", [rule(ALICE, images=("acme/*",))],
         [rec(), rec(MALLORY, tags=(NAME,))], (UNKNOWN, DENY), "no rule of test policy covers"),
    case("glob with a tag matches that tag", [rule(ALICE, images=("acme/app:1.*",))], [rec()],
         (TRUSTED, ALLOW), "trusted", names=("acme/app:1.2",)),
    case("glob with a tag misses another tag", [rule(ALICE, images=("acme/app:1.*",))],
         [rec()], (UNKNOWN, DENY), "covers this image", names=("acme/app:2.0",)),
    case("a registry's port is not a tag", [rule(ALICE, images=("localhost:5000/acme/*",))],
         [rec()], (TRUSTED, ALLOW), "trusted", names=("localhost:5000/acme/app:1",)),
    case("a digest entry covers that digest", [rule(ALICE, images=(DIGEST,))], [rec()],
         (TRUSTED, ALLOW), "trusted"),
    case("a digest entry covers no other", [rule(ALICE, images=(OTHER,))], [rec()],
         (UNKNOWN, DENY), "no rule of test policy covers", names=(NAME,)),
    case("the default decides an image no rule covers", [rule(ALICE, images=("beta/*",))],
         [rec()], (UNKNOWN, ALLOW), "covers this image", default=ALLOW),
    case("a covered image never recorded", [rule(ALICE)], [], (UNKNOWN, DENY),
         "nobody has recorded it"),
    case("a record of another digest is no evidence", [rule(ALICE)], [rec(digest=OTHER)],
         (UNKNOWN, DENY), "no record by a publisher this rule trusts"),
    case("a tag on another digest covers nothing", [rule(ALICE, images=("acme/*",))],
         [rec(), rec(CAROL, tags=(NAME,), digest=OTHER)], (UNKNOWN, DENY),
         "no rule of test policy covers"),
    case("a trusted publisher's tag on another digest covers nothing",
         [rule(ALICE, images=("acme/*",))], [rec(), rec(ALICE, tags=(NAME,), digest=OTHER)],
         (UNKNOWN, DENY), "no rule of test policy covers"),
    # -- publishers: squatters, several trusted publishers -----------------------------------
    case("the squatter's revocation counts for nothing", [rule(ALICE)],
         [rec(MALLORY, REVOKED, reason="mine now"), rec()], (TRUSTED, ALLOW), f"{ALICE}"),
    case("a squatter's record alone is not the owner's", [rule(ALICE)],
         [rec(MALLORY, tags=(NAME,))], (UNKNOWN, DENY), f"recorded only by {MALLORY}"),
    case("a policy trusting the squatter sees its revocation", [rule(MALLORY)],
         [rec(MALLORY, REVOKED, reason="mine now"), rec()], (REVOKED, DENY),
         f"REVOKED by {MALLORY}: mine now"),
    case("one of two trusted publishers revoked", [rule(ALICE, CAROL)],
         [rec(), rec(CAROL, REVOKED, reason="key leaked")], (REVOKED, DENY),
         f"REVOKED by {CAROL}: key leaked"),
    case("two trusted publishers, both trusted", [rule(ALICE, CAROL)],
         [rec(), rec(CAROL)], (TRUSTED, ALLOW), f"recorded by {ALICE}, {CAROL}"),
    case("untrusted by its publisher", [rule(ALICE)], [rec(status=UNTRUSTED, reason="CVE")],
         (UNTRUSTED, DENY), f"UNTRUSTED by {ALICE}: CVE"),
    case("unsupported by its publisher", [rule(ALICE)], [rec(status=UNSUPPORTED)],
         (UNSUPPORTED, DENY), f"UNSUPPORTED by {ALICE}"),
    case("revoked beats untrusted", [rule(ALICE, CAROL)],
         [rec(status=UNTRUSTED), rec(CAROL, REVOKED)], (REVOKED, DENY), f"REVOKED by {CAROL}"),
    case("a record reading unknown counts as unknown", [rule(ALICE)], [rec(status=UNKNOWN)],
         (UNKNOWN, DENY), f"UNKNOWN by {ALICE}"),
    # -- approval adoption -----------------------------------------------------------------
    case("an approval adopts another's record", [rule(BOB)],
         [rec(attestations=(att(BOB),))], (TRUSTED, ALLOW), f"approved record by {ALICE}"),
    case("a revoked approval adopts nothing", [rule(BOB)],
         [rec(attestations=(att(BOB, revoked=True),))], (UNKNOWN, DENY),
         "no record by a publisher this rule trusts"),
    case("an approval by an untrusted account adopts nothing", [rule(BOB)],
         [rec(attestations=(att(MALLORY),))], (UNKNOWN, DENY), f"recorded only by {ALICE}"),
    case("an adopted record revoked by its publisher", [rule(BOB)],
         [rec(status=REVOKED, attestations=(att(BOB),))], (REVOKED, DENY),
         f"REVOKED by {ALICE}"),
    case("an attestation of another kind adopts nothing", [rule(BOB)],
         [rec(attestations=(att(BOB, SCAN),))], (UNKNOWN, DENY), "no record by a publisher"),
    # The review's case: a scanner's rescan (kind scan) is no vote for the image ...
    case("a rescan by the signer is not an approval", [rule(SCANNER)],
         [rec(scan=CRITICAL, attestations=(att(SCANNER, SCAN),))], (UNKNOWN, DENY),
         "no record by a publisher"),
    # ... its approval is, and taking it back undoes it.
    case("the signer's approval after a rescan", [rule(SCANNER)],
         [rec(scan=CRITICAL, attestations=(att(SCANNER, SCAN), att(SCANNER)))],
         (TRUSTED, ALLOW), "trusted"),
    case("the signer's revoked approval after a rescan", [rule(SCANNER)],
         [rec(scan=CRITICAL, attestations=(att(SCANNER, SCAN), att(SCANNER, revoked=True)))],
         (UNKNOWN, DENY), "no record by a publisher"),
    # -- attestation requirements -----------------------------------------------------------
    case("a required approval present", [rule(ALICE, attestations=(need(APPROVED, APPROVER),))],
         [rec(attestations=(att(APPROVER),))], (TRUSTED, ALLOW),
         f"1 of 1 required 'approved' attestations (by {APPROVER})"),
    case("a required approval missing", [rule(ALICE, attestations=(need(APPROVED, APPROVER),))],
         [rec()], (UNTRUSTED, DENY), "0 of 1 required 'approved' attestations"),
    case("a revoked attestation never counts",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER),))],
         [rec(attestations=(att(APPROVER, revoked=True),))], (UNTRUSTED, DENY),
         "0 of 1 required 'approved' attestations, 1 revoked"),
    case("an attestation by someone not in by",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER),))],
         [rec(attestations=(att(MALLORY),))], (UNTRUSTED, DENY), "0 of 1 required"),
    case("min 2: one of two attesters",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER, BOB, least=2),))],
         [rec(attestations=(att(APPROVER),))], (UNTRUSTED, DENY),
         "1 of 2 required 'approved' attestations"),
    case("min 2: both attesters",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER, BOB, least=2),))],
         [rec(attestations=(att(APPROVER), att(BOB)))], (TRUSTED, ALLOW), "2 of 2 required"),
    case("min 2: one attester twice is one account",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER, BOB, least=2),))],
         [rec(attestations=(att(APPROVER), att(APPROVER)))], (UNTRUSTED, DENY), "1 of 2"),
    case("no by: the rule's publishers attest", [rule(ALICE, attestations=(need("signed"),))],
         [rec(attestations=(att(ALICE, "signed"),))], (TRUSTED, ALLOW),
         "1 of 1 required 'signed'"),
    case("the kind must match", [rule(ALICE, attestations=(need("reviewed", APPROVER),))],
         [rec(attestations=(att(APPROVER),))], (UNTRUSTED, DENY),
         "0 of 1 required 'reviewed'"),
    case("an attestation on a record that does not count",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER),))],
         [rec(), rec(MALLORY, attestations=(att(APPROVER, on=MALLORY),))], (UNTRUSTED, DENY),
         "0 of 1 required 'approved'"),
    case("a scan attestation counts where a rule names the kind",
         [rule(ALICE, attestations=(need(SCAN, SCANNER),))],
         [rec(attestations=(att(SCANNER, SCAN),))], (TRUSTED, ALLOW), "1 of 1 required 'scan'"),
    # -- max_severity, at each ceiling ---------------------------------------------------------
    case("ceiling critical allows a critical", [rule(ALICE, max_severity="critical")],
         [rec(scan=CRITICAL)], (TRUSTED, ALLOW), "no finding over critical"),
    case("ceiling high allows a high", [rule(ALICE, max_severity="high")], [rec(scan=HIGH)],
         (TRUSTED, ALLOW), "no finding over high"),
    case("ceiling high refuses a critical", [rule(ALICE, max_severity="high")],
         [rec(scan=CRITICAL)], (UNTRUSTED, DENY), "scan found 1 critical, over the ceiling high"),
    case("ceiling medium refuses a high", [rule(ALICE, max_severity="medium")],
         [rec(scan=HIGH)], (UNTRUSTED, DENY), "1 high, over the ceiling medium"),
    case("ceiling low allows a low", [rule(ALICE, max_severity="low")],
         [rec(scan=ScanSummary(low=3))], (TRUSTED, ALLOW), "no finding over low"),
    case("ceiling low refuses a medium", [rule(ALICE, max_severity="low")],
         [rec(scan=ScanSummary(medium=2, low=3))], (UNTRUSTED, DENY), "2 medium, over"),
    case("ceiling unknown allows an unknown", [rule(ALICE, max_severity="unknown")],
         [rec(scan=ScanSummary(unknown=1))], (TRUSTED, ALLOW), "no finding over unknown"),
    case("ceiling none refuses an unknown", [rule(ALICE, max_severity="none")],
         [rec(scan=ScanSummary(unknown=1))], (UNTRUSTED, DENY), "1 unknown, over the ceiling"),
    case("ceiling none allows a clean scan", [rule(ALICE, max_severity="none")], [rec()],
         (TRUSTED, ALLOW), "no finding over none"),
    case("a ceiling needs a scan", [rule(ALICE, max_severity="critical")],
         [rec(scan=UNSCANNED)], (UNTRUSTED, DENY), "published without a vulnerability scan"),
    case("the worst counting record's scan", [rule(ALICE, CAROL, max_severity="high")],
         [rec(), rec(CAROL, scan=CRITICAL)], (UNTRUSTED, DENY), "1 critical"),
    case("a squatter's scan is no evidence", [rule(ALICE, max_severity="none")],
         [rec(), rec(MALLORY, scan=CRITICAL)], (TRUSTED, ALLOW), "no finding over none"),
    # -- max_scan_age, with and without a scan attestation -------------------------------------
    case("a recent scan", [rule(ALICE, max_scan_age=30 * DAY)], [rec(age=10 * DAY)],
         (TRUSTED, ALLOW), "the newest scan is 10d old, within 30d"),
    case("an old scan", [rule(ALICE, max_scan_age=30 * DAY)], [rec(age=40 * DAY)],
         (UNTRUSTED, DENY), "the newest scan is 40d old, older than 30d"),
    case("no scan to judge the age by", [rule(ALICE, max_scan_age=30 * DAY)],
         [rec(scan=UNSCANNED, age=HOUR)], (UNTRUSTED, DENY), "no scan to judge the scan's age"),
    case("a recent scan attestation where the rule names it",
         [rule(ALICE, max_scan_age=30 * DAY, attestations=(need(SCAN, SCANNER),))],
         [rec(age=40 * DAY, attestations=(att(SCANNER, SCAN, age=DAY),))], (TRUSTED, ALLOW),
         "the newest scan is 1d old, within 30d"),
    case("a scan attestation the rule does not name",
         [rule(ALICE, SCANNER, max_scan_age=30 * DAY)],
         [rec(age=40 * DAY, attestations=(att(SCANNER, SCAN, age=DAY),))], (UNTRUSTED, DENY),
         "40d old, older than 30d"),
    case("a revoked scan attestation is no recent scan",
         [rule(ALICE, max_scan_age=30 * DAY, attestations=(need(SCAN, SCANNER),))],
         [rec(age=40 * DAY, attestations=(att(SCANNER, SCAN, age=DAY, revoked=True),))],
         (UNTRUSTED, DENY), "older than 30d"),
    case("a scan attestation by someone not in by",
         [rule(ALICE, max_scan_age=30 * DAY, attestations=(need(SCAN, SCANNER),))],
         [rec(age=40 * DAY, attestations=(att(MALLORY, SCAN, age=DAY),))], (UNTRUSTED, DENY),
         "older than 30d"),
    # -- require_scan ------------------------------------------------------------------------------
    case("a required scan missing", [rule(ALICE, require_scan=True)], [rec(scan=UNSCANNED)],
         (UNTRUSTED, DENY), "published without a vulnerability scan"),
    case("a required scan present", [rule(ALICE, require_scan=True)], [rec()],
         (TRUSTED, ALLOW), "scanned"),
    case("one counting record's scan is enough", [rule(ALICE, CAROL, require_scan=True)],
         [rec(), rec(CAROL, scan=UNSCANNED)], (TRUSTED, ALLOW), "scanned"),
    case("every field at once",
         [rule(ALICE, images=("acme/*",), attestations=(need(APPROVED, APPROVER),),
               max_severity="high", max_scan_age=30 * DAY, require_scan=True)],
         [rec(scan=HIGH, age=2 * DAY, tags=(NAME,), attestations=(att(APPROVER),))],
         (TRUSTED, ALLOW), f"recorded by {ALICE}; scanned; no finding over high"),
    # -- several rules: every one that covers must hold ------------------------------------------
    case("a second covering rule fails",
         [rule(ALICE), rule(ALICE, images=("acme/*",), attestations=(need(APPROVED, APPROVER),))],
         [rec()], (UNTRUSTED, DENY), "rule 2: 0 of 1 required 'approved'", names=(NAME,)),
    case("two covering rules hold", [rule(ALICE), rule(ALICE, images=("acme/*",))], [rec()],
         (TRUSTED, ALLOW), "trusted", names=(NAME,)),
    case("a covering rule without a record of its publishers",
         [rule(ALICE), rule(CAROL, images=("acme/*",))], [rec()], (UNKNOWN, DENY),
         "rule 2: no record by a publisher this rule trusts", names=(NAME,)),
    case("a rule that does not cover need not hold",
         [rule(ALICE), rule(ALICE, images=("beta/*",), require_scan=True)],
         [rec(scan=UNSCANNED)], (TRUSTED, ALLOW), "trusted", names=(NAME,)),
    case("the worst rule wins", [rule(ALICE), rule(CAROL, images=(DIGEST,))],
         [rec(), rec(CAROL, REVOKED)], (REVOKED, DENY), f"rule 2: REVOKED by {CAROL}"),
    # -- narrowed (--signer) --------------------------------------------------------------------
    case("narrowed to the trusted publisher", [rule(ALICE, CAROL)], [rec()], (TRUSTED, ALLOW),
         f"recorded by {ALICE}", narrow=(ALICE,)),
    case("narrowed to another account", [rule(ALICE)], [rec()], (UNKNOWN, DENY),
         f"recorded only by {ALICE}", narrow=(BOB,)),
    case("narrowed never adds an account", [rule(ALICE)], [rec(MALLORY)], (UNKNOWN, DENY),
         "no record by a publisher", narrow=(MALLORY,)),
    case("narrowed attesters",
         [rule(ALICE, attestations=(need(APPROVED, APPROVER, BOB),))],
         [rec(attestations=(att(APPROVER),))], (UNTRUSTED, DENY), "0 of 1 required",
         narrow=(ALICE, BOB)),
    case("narrowed drops a revoking publisher", [rule(ALICE, CAROL)],
         [rec(), rec(CAROL, REVOKED)], (TRUSTED, ALLOW), "trusted", narrow=(ALICE,)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "evidence", "names", "default", "narrow", "expect", "reason"), CASES
)
def test_evaluate(
    rules: tuple[TrustRule, ...],
    evidence: tuple[RecordEvidence, ...],
    names: tuple[str, ...],
    default: Decision,
    narrow: tuple[Address, ...] | None,
    expect: tuple[Status, Decision],
    reason: str,
) -> None:
    policy = TrustPolicy(rules, default, "test policy")
    if narrow is not None:
        policy = policy.narrowed(narrow)
    result = evaluate(policy, Subject(DIGEST, names), evidence, NOW)
    assert (result.status, result.decision) == expect, result.reason
    assert reason in result.reason


def test_there_are_enough_cases() -> None:
    assert len(CASES) >= 40


# -- what an explanation reads ------------------------------------------------------------------


def test_rule_outcomes_carry_what_an_explanation_shows() -> None:
    policy = TrustPolicy(
        (
            rule(ALICE, images=("beta/*",), line=1),
            rule(BOB, images=("acme/*",), attestations=(need(APPROVED, APPROVER),), line=5),
        ),
        source="p.toml",
    )
    evidence = [rec(attestations=(att(BOB), att(APPROVER, revoked=True))), rec(MALLORY)]
    result = evaluate(policy, Subject(DIGEST, (NAME,)), evidence, NOW)
    first, second = result.rules
    assert (first.index, first.line, first.covers, first.status) == (1, 1, False, UNKNOWN)
    assert first.checks == () and first.counted == ()
    assert first.scope == f"does not cover it: beta/* match neither its digest nor {NAME}"
    assert (second.index, second.line, second.covers, second.status) == (2, 5, True, UNTRUSTED)
    assert second.scope == f"covers it: acme/* matches {NAME} (asked for)"
    assert second.counted == (ALICE,)
    assert [(c.passed, c.text) for c in second.checks] == [
        (True, f"approved record by {ALICE}"),
        (False, "0 of 1 required 'approved' attestations, 1 revoked"),
    ]
    assert result.reason == "0 of 1 required 'approved' attestations, 1 revoked"
    assert result.counted == (ALICE,) and result.vouching == (BOB,)
    assert result.record_of(ALICE) == evidence[0].record and result.record_of(CAROL) is None


def test_a_scope_names_the_tag_that_brought_the_image_in() -> None:
    policy = TrustPolicy((rule(ALICE, images=("acme/*",)),))
    result = evaluate(policy, Subject(DIGEST), [rec(tags=(NAME,))], NOW)
    assert result.rules[0].scope == f"covers it: acme/* matches {NAME} (tagged by {ALICE})"
    by_digest = evaluate(TrustPolicy((rule(ALICE, images=(DIGEST,)),)), Subject(DIGEST), [], NOW)
    assert by_digest.rules[0].scope == "covers the image by its digest"


def test_vouching_names_the_attesters_whose_word_counted() -> None:
    policy = TrustPolicy((rule(ALICE, attestations=(need(APPROVED, APPROVER, BOB),)),))
    evidence = [rec(attestations=(att(APPROVER), att(BOB, revoked=True), att(MALLORY)))]
    result = evaluate(policy, Subject(DIGEST), evidence, NOW)
    assert result.status is TRUSTED and result.vouching == (APPROVER,)


def test_an_image_no_rule_covers_says_who_recorded_it() -> None:
    policy = TrustPolicy((rule(ALICE, images=("beta/*",)),), source="p.toml")
    result = evaluate(policy, Subject(DIGEST), [rec(MALLORY)], NOW)
    assert result.reason == f"no rule of p.toml covers this image (recorded only by {MALLORY})"
    assert (result.counted, result.vouching) == ((), ())


def test_a_policy_without_rules_trusts_nothing() -> None:
    for default in Decision:
        result = evaluate(TrustPolicy((), default), Subject(DIGEST), [rec()], NOW)
        assert (result.status, result.decision) == (UNKNOWN, default)


def test_narrowed_intersects_publishers_and_attesters() -> None:
    policy = TrustPolicy(
        (rule(ALICE, CAROL, attestations=(need(APPROVED, APPROVER), need("signed"))),)
    )
    narrowed = policy.narrowed([CAROL, APPROVER, MALLORY])
    (only,) = narrowed.rules
    assert only.publishers == frozenset({CAROL})
    assert [r.by for r in only.attestations] == [frozenset({APPROVER}), frozenset({CAROL})]
    assert policy.publishers == frozenset({ALICE, CAROL})
    assert narrowed.publishers == frozenset({CAROL})


# -- resolve_name -----------------------------------------------------------------------------


def tag(publisher: Address, digest: str, ref: str = NAME) -> TagEntry:
    name, _, label = ref.rpartition(":")
    return TagEntry(publisher, name, label, digest, None, NOW - DAY)


def trusting(*rules: TrustRule) -> TrustPolicy:
    return TrustPolicy(tuple(rules), source="p.toml")


def test_one_trusted_tagger_names_the_image() -> None:
    found = resolve_name(trusting(rule(ALICE)), NAME, [tag(ALICE, DIGEST)])
    assert (found.name, found.digest, found.publisher) == (NAME, DIGEST, ALICE)


def test_a_squatters_tag_is_passed_over_for_the_trusted_one() -> None:
    found = resolve_name(trusting(rule(ALICE)), NAME, [tag(MALLORY, OTHER), tag(ALICE, DIGEST)])
    assert (found.digest, found.publisher) == (DIGEST, ALICE)


def test_a_name_only_untrusted_accounts_tagged_is_not_found() -> None:
    with pytest.raises(NotFoundError) as refused:
        resolve_name(trusting(rule(ALICE)), NAME, [tag(MALLORY, OTHER), tag(BOB, OTHER)])
    assert str(refused.value) == (
        f"no image named {NAME} by a publisher the policy trusts "
        f"(tagged by {BOB}, {MALLORY}, not trusted by p.toml)"
    )


def test_a_name_nobody_tagged_is_not_found_without_a_hint() -> None:
    with pytest.raises(NotFoundError) as refused:
        resolve_name(trusting(rule(ALICE)), NAME, [tag(ALICE, DIGEST, "acme/app:2.0")])
    assert str(refused.value) == f"no image named {NAME} by a publisher the policy trusts"


def test_two_trusted_taggers_who_agree() -> None:
    found = resolve_name(
        trusting(rule(ALICE, CAROL)), NAME, [tag(CAROL, DIGEST), tag(ALICE, DIGEST)]
    )
    assert found.digest == DIGEST and found.publisher in {ALICE, CAROL}


def test_two_trusted_taggers_who_disagree_are_named_both() -> None:
    with pytest.raises(AmbiguousNameError) as refused:
        resolve_name(trusting(rule(ALICE, CAROL)), NAME, [tag(CAROL, OTHER), tag(ALICE, DIGEST)])
    message = str(refused.value)
    assert f"{ALICE} tags {DIGEST}" in message and f"{CAROL} tags {OTHER}" in message
    assert message.startswith(f"trusted publishers disagree on {NAME}: ")
    assert message.endswith("pick one with --publisher")
    assert refused.value.exit_code == 9  # a conflict


def test_publisher_picks_one_of_the_disagreeing() -> None:
    taggers = [tag(CAROL, OTHER), tag(ALICE, DIGEST)]
    policy = trusting(rule(ALICE, CAROL))
    assert resolve_name(policy, NAME, taggers, publisher=CAROL).digest == OTHER
    assert resolve_name(policy, NAME, taggers, publisher=ALICE).digest == DIGEST
    with pytest.raises(NotFoundError, match=f"{BOB} has not tagged {NAME}"):
        resolve_name(policy, NAME, taggers, publisher=BOB)


def test_taggers_are_trusted_only_for_the_names_their_rule_covers() -> None:
    policy = trusting(rule(ALICE, images=("acme/*",)), rule(CAROL, images=("beta/*",)))
    taggers = [tag(CAROL, OTHER), tag(ALICE, DIGEST)]
    assert resolve_name(policy, NAME, taggers).publisher == ALICE
    assert trusted_taggers(policy, NAME) == frozenset({ALICE})
    assert trusted_taggers(policy, "beta/app:1.0") == frozenset({CAROL})
    only_carol = [tag(CAROL, OTHER)]
    with pytest.raises(NotFoundError, match=f"tagged by {CAROL}, not trusted"):
        resolve_name(policy, NAME, only_carol)


def test_a_digest_only_rule_trusts_no_tagger() -> None:
    policy = trusting(rule(ALICE, images=(DIGEST,)))
    assert trusted_taggers(policy, NAME) == frozenset()
    with pytest.raises(NotFoundError):
        resolve_name(policy, NAME, [tag(ALICE, DIGEST)])


def test_a_glob_with_a_tag_scopes_taggers_to_that_tag() -> None:
    policy = trusting(rule(ALICE, images=("acme/app:1.*",)))
    assert trusted_taggers(policy, "acme/app:1.4") == frozenset({ALICE})
    assert trusted_taggers(policy, "acme/app:2.0") == frozenset()
