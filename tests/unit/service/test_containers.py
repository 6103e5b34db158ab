"""judge_container on the fake ledger: a container is matched by the manifests its engine
knows and by every record of the config it runs, each judged under the policy; a node's
withdrawn grant is NOT_GRANTED; an exemption reads nothing; a ledger that fails is ERROR."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from sedis.core.containers import ContainerState, Exemption, RunningContainer
from sedis.core.errors import UnavailableError
from sedis.core.records import GrantRequest, ScanSummary, Status
from sedis.service.containers import candidate_digests, judge_container
from sedis.service.engines import Actor, Engines
from tests.unit.service.fakes import FakeLedger
from tests.unit.service.images import trusting

ROOT = "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


CONFIG = digest_of("config")
M1, M2, M3 = digest_of("m1"), digest_of("m2"), digest_of("m3")


def running(*repo_digests: str, image_id: str = CONFIG, name: str = "web") -> RunningContainer:
    return RunningContainer(
        hashlib.sha256(name.encode()).hexdigest(),
        name,
        f"registry.local/{name}:1",
        image_id,
        tuple(repo_digests),
    )


def publish(actor: Actor, digest: str, config: str = CONFIG) -> None:
    actor.ledger.publish(digest, config, ROOT, ScanSummary.unscanned())


def test_candidates_are_the_engines_digests_then_the_records_of_the_config(
    engines: Engines, alice: Actor, bob: Actor
) -> None:
    publish(alice, M2)
    publish(bob, M2)
    publish(alice, M3)
    publish(alice, digest_of("another image"), digest_of("another config"))
    assert candidate_digests(engines, running(M1, M2)) == (M1, M2, M3)
    assert candidate_digests(engines, running(image_id=digest_of("nothing"))) == ()


def test_a_revocation_of_any_manifest_of_the_config_reaches_the_container(
    engines: Engines, alice: Actor
) -> None:
    publish(alice, M1)
    publish(alice, M2)
    policy = trusting(alice)
    judgement = judge_container(engines, policy, running(M1), host="node-1")
    assert judgement.verdict.state is ContainerState.TRUSTED
    assert judgement.digests == {M1, M2}
    alice.ledger.set_status(M2, Status.REVOKED, "that build is compromised")
    judgement = judge_container(engines, policy, running(M1), host="node-1")
    verdict = judgement.verdict
    assert verdict.state is ContainerState.REVOKED
    assert verdict.digest == M2
    assert "compromised" in verdict.reason
    assert verdict.block == engines.ledger.info().block_number
    assert verdict.host == "node-1" and verdict.policy == policy.source


def test_only_the_policys_publishers_count(engines: Engines, alice: Actor, bob: Actor) -> None:
    publish(bob, M1)
    bob.ledger.set_status(M1, Status.REVOKED, "squatted, so nobody may run it")
    verdict = judge_container(engines, trusting(alice), running(M1), host="h").verdict
    assert verdict.state is ContainerState.UNKNOWN
    publish(alice, M1)
    verdict = judge_container(engines, trusting(alice), running(M1), host="h").verdict
    assert verdict.state is ContainerState.TRUSTED
    assert verdict.publishers == (alice.address,)


def test_a_node_whose_grant_was_revoked_is_not_granted(
    engines: Engines, alice: Actor, bob: Actor
) -> None:
    publish(alice, M1)
    alice.ledger.grant(M1, GrantRequest(bob.address, ROOT, digest_of("share")))
    policy = trusting(alice)
    assert (
        judge_container(engines, policy, running(M1), host="h", node=bob.address).verdict.state
        is ContainerState.TRUSTED
    )
    alice.ledger.revoke_grant(M1, bob.address)
    verdict = judge_container(engines, policy, running(M1), host="h", node=bob.address).verdict
    assert verdict.state is ContainerState.NOT_GRANTED
    assert f"revoked the grant of {M1} to {bob.address}" in verdict.reason
    # Without the node's identity the same container is TRUSTED.
    assert judge_container(engines, policy, running(M1), host="h").verdict.state is (
        ContainerState.TRUSTED
    )


def test_an_exempt_container_reads_nothing_from_the_ledger(
    engines: Engines, ledger: FakeLedger, monkeypatch: pytest.MonkeyPatch, alice: Actor
) -> None:
    def unreachable(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the ledger was read")

    monkeypatch.setattr(ledger, "info", unreachable)
    exemption = Exemption("vendor appliance", containers=("web",), line=4)
    judgement = judge_container(
        engines, trusting(alice), running(M1), host="h", exemptions=(exemption,)
    )
    assert judgement.verdict.state is ContainerState.EXEMPT
    assert judgement.digests == frozenset()


def test_a_ledger_that_fails_is_error_with_the_reason(
    engines: Engines, ledger: FakeLedger, monkeypatch: pytest.MonkeyPatch, alice: Actor
) -> None:
    publish(alice, M1)

    def down(*args: Any, **kwargs: Any) -> Any:
        raise UnavailableError("the ledger node at http://127.0.0.1:8545 is unreachable")

    monkeypatch.setattr(ledger, "records", down)
    judgement = judge_container(engines, trusting(alice), running(M1), host="h")
    verdict = judgement.verdict
    assert verdict.state is ContainerState.ERROR
    assert verdict.reason == (
        "the ledger could not be read: the ledger node at http://127.0.0.1:8545 is unreachable"
    )
    assert judgement.digests == {M1}
