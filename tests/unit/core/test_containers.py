"""The container model, pure: the worst counted judgement wins, UNKNOWN candidates hide
nothing, a withdrawn grant is NOT_GRANTED, exemptions match as they say."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

import pytest

from sedis.core.address import Address
from sedis.core.containers import (
    ContainerState,
    ContainerVerdict,
    Exemption,
    RunningContainer,
    error_verdict,
    exempt_verdict,
    exemption_for,
    judge_running,
)
from sedis.core.policy import Decision, Evaluation
from sedis.core.records import Grant, Status

NOW = 1_767_225_600
ALICE = Address("0x" + "a1" * 20)
BOB = Address("0x" + "b0" * 20)
NODE = Address("0x" + "0d" * 20)


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


IMAGE_ID = digest_of("config")
M1, M2, M3 = digest_of("m1"), digest_of("m2"), digest_of("m3")
WEB = RunningContainer("c0ffee", "web", "registry.local/web:1", IMAGE_ID, (M1, M2))


def evaluation(digest: str, status: Status, *counted: Address) -> Evaluation:
    decision = Decision.ALLOW if status is Status.TRUSTED else Decision.DENY
    return Evaluation(digest, status, decision, f"{digest[:12]} is {status.value}", counted, ())


def judge(
    *evaluations: Evaluation,
    node: Address | None = None,
    node_grants: Mapping[tuple[Address, str], Grant | None] | None = None,
) -> ContainerVerdict:
    return judge_running(
        WEB,
        evaluations,
        host="node-1",
        policy="test policy",
        block=9,
        now=NOW,
        judged_at=123.5,
        node=node,
        node_grants=node_grants,
    )


def grant(digest: str, *, revoked_at: int | None = None, expires_at: int | None = None) -> Grant:
    return Grant(ALICE, digest, NODE, "bafy", digest_of("share"), NOW - 100, expires_at, revoked_at)


def test_the_worst_counted_judgement_wins_and_unknown_hides_nothing() -> None:
    verdict = judge_running(
        WEB,
        [
            evaluation(M1, Status.TRUSTED, ALICE),
            evaluation(M2, Status.UNKNOWN),
            evaluation(M3, Status.REVOKED, ALICE),
        ],
        host="node-1",
        policy="p",
        block=9,
        now=NOW,
        judged_at=1.0,
    )
    assert verdict.state is ContainerState.REVOKED
    assert verdict.digest == M3
    assert verdict.digests == (M1, M2, M3)
    assert verdict.publishers == (ALICE,)
    assert verdict.decision is Decision.DENY
    assert (verdict.host, verdict.container, verdict.container_id) == ("node-1", "web", "c0ffee")
    assert (verdict.block, verdict.judged_at, verdict.cause, verdict.exemption) == (
        9,
        1.0,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        ((Status.TRUSTED, Status.UNSUPPORTED), ContainerState.UNSUPPORTED),
        ((Status.UNSUPPORTED, Status.UNTRUSTED), ContainerState.UNTRUSTED),
        ((Status.UNTRUSTED, Status.REVOKED), ContainerState.REVOKED),
        ((Status.UNKNOWN, Status.TRUSTED), ContainerState.TRUSTED),
        ((Status.UNKNOWN, Status.UNKNOWN), ContainerState.UNKNOWN),
    ],
)
def test_states_in_order_of_how_bad_they_are(
    statuses: tuple[Status, Status], expected: ContainerState
) -> None:
    evaluations = [evaluation(d, s, ALICE) for d, s in zip((M1, M2), statuses, strict=True)]
    assert judge(*evaluations).state is expected


def test_a_container_found_by_its_image_id_alone_names_no_digest() -> None:
    verdict = judge_running(
        WEB,
        [evaluation(IMAGE_ID, Status.UNKNOWN)],
        host="h",
        policy="p",
        block=None,
        now=NOW,
        judged_at=0.0,
    )
    assert verdict.state is ContainerState.UNKNOWN
    assert verdict.digest is None and verdict.digests == ()


def test_no_evaluation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="at least one evaluation"):
        judge()


def test_a_revoked_grant_to_this_node_is_not_granted() -> None:
    grants = {(ALICE, M1): grant(M1, revoked_at=NOW - 10)}
    verdict = judge(evaluation(M1, Status.TRUSTED, ALICE), node=NODE, node_grants=grants)
    assert verdict.state is ContainerState.NOT_GRANTED
    assert verdict.decision is Decision.DENY
    assert f"{ALICE} revoked the grant of {M1} to {NODE}" in verdict.reason


def test_an_expired_grant_to_this_node_is_not_granted() -> None:
    grants = {(ALICE, M1): grant(M1, expires_at=NOW - 1)}
    verdict = judge(evaluation(M1, Status.TRUSTED, ALICE), node=NODE, node_grants=grants)
    assert verdict.state is ContainerState.NOT_GRANTED
    assert "expired at" in verdict.reason


def test_a_live_grant_or_none_ever_shared_is_trusted() -> None:
    trusted = evaluation(M1, Status.TRUSTED, ALICE, BOB)
    live = {(ALICE, M1): grant(M1, revoked_at=NOW - 10), (BOB, M1): None}
    # Bob's record was never shared with the node, Alice's grant was revoked: withdrawn.
    assert judge(trusted, node=NODE, node_grants=live).state is ContainerState.NOT_GRANTED
    live[(BOB, M1)] = Grant(BOB, M1, NODE, "bafy", digest_of("s"), NOW - 5, NOW + 60)
    assert judge(trusted, node=NODE, node_grants=live).state is ContainerState.TRUSTED
    never = {(ALICE, M1): None}
    assert judge(trusted, node=NODE, node_grants=never).state is ContainerState.TRUSTED
    # Without a node identity grants are not asked about.
    withdrawn = {(ALICE, M1): grant(M1, revoked_at=NOW - 10)}
    assert judge(trusted, node_grants=withdrawn).state is ContainerState.TRUSTED


def test_a_withdrawn_grant_does_not_hide_a_worse_state() -> None:
    grants = {(ALICE, M1): grant(M1, revoked_at=NOW - 10)}
    verdict = judge(evaluation(M1, Status.REVOKED, ALICE), node=NODE, node_grants=grants)
    assert verdict.state is ContainerState.REVOKED


def test_states_parse_and_say_whether_they_fail() -> None:
    assert ContainerState.parse(" not-granted ") is ContainerState.NOT_GRANTED
    assert ContainerState.parse("error") is ContainerState.ERROR
    with pytest.raises(ValueError, match="unknown container state 'fine'"):
        ContainerState.parse("fine")
    assert {s for s in ContainerState if not s.failed} == {
        ContainerState.TRUSTED,
        ContainerState.EXEMPT,
    }
    assert ContainerState.of(Status.REVOKED) is ContainerState.REVOKED


def test_exemptions_match_every_field_given_and_any_pattern_within_one() -> None:
    labelled = RunningContainer(
        "id", "debug-shell", "registry.local/tools/sh:2", IMAGE_ID, labels=(("team", "sre-eu"),)
    )
    assert Exemption("r", containers=("web", "debug-*")).matches(labelled)
    assert not Exemption("r", containers=("debug-*",), images=("docker.io/*",)).matches(labelled)
    assert Exemption("r", images=("registry.local/tools/*",)).matches(labelled)
    assert Exemption("r", image_ids=(IMAGE_ID,)).matches(labelled)
    assert not Exemption("r", image_ids=(digest_of("other"),)).matches(labelled)
    assert Exemption("r", labels=(("team", "sre-*"),)).matches(labelled)
    assert not Exemption("r", labels=(("team", "dev"),)).matches(labelled)
    assert not Exemption("r", labels=(("owner", "*"),)).matches(labelled)
    # Globs are case-sensitive, and match the whole name.
    assert not Exemption("r", containers=("DEBUG-*",)).matches(labelled)
    assert not Exemption("r", containers=("debug",)).matches(labelled)
    first = Exemption("first", containers=("debug-*",), line=3)
    second = Exemption("second", containers=("*",), line=9)
    assert exemption_for([first, second], labelled) is first
    assert exemption_for([first], WEB) is None


def test_exempt_and_error_verdicts_say_so() -> None:
    exemption = Exemption("the on-call shell", containers=("web",), line=12)
    exempt = exempt_verdict(WEB, exemption, host="h", policy="p", judged_at=5.0)
    assert exempt.state is ContainerState.EXEMPT and not exempt.failed
    assert (
        exempt.reason
        == exempt.exemption
        == ("exempt by the watch configuration (line 12): the on-call shell")
    )
    assert exempt.digests == (M1, M2) and exempt.decision is Decision.ALLOW
    error = error_verdict(
        WEB, "the ledger could not be read: down", host="h", policy="p", judged_at=5.0
    )
    assert error.state is ContainerState.ERROR and error.failed
    assert error.decision is Decision.DENY and error.block is None


def test_a_grant_withdrawn_on_any_trusted_manifest_of_what_runs_is_found() -> None:
    """The same config recorded under two manifests, only the second shared with the
    node: its grant revoked, the node may not run it, whichever manifest comes first."""
    trusted = (evaluation(M1, Status.TRUSTED, ALICE), evaluation(M2, Status.TRUSTED, ALICE))
    grants = {(ALICE, M1): None, (ALICE, M2): grant(M2, revoked_at=NOW - 10)}
    verdict = judge(*trusted, node=NODE, node_grants=grants)
    assert verdict.state is ContainerState.NOT_GRANTED
    assert f"revoked the grant of {M2}" in verdict.reason
    # A live grant of either keeps it TRUSTED.
    grants[(ALICE, M1)] = Grant(ALICE, M1, NODE, "bafy", digest_of("s"), NOW - 5)
    assert judge(*trusted, node=NODE, node_grants=grants).state is ContainerState.TRUSTED
