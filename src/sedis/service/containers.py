"""judge_container: what the ledger, under the trust policy, says of one running container.

The container is matched by what it runs: the manifest digests the engine
knows for its image, and every record whose config digest is its image ID.
Each candidate digest is judged with ``trust.judge`` (the policy's pure
evaluation) from one block of the ledger, and ``core.containers.judge_running``
combines them, with this node's grants where the node has an identity. A
ledger that cannot be read gives ERROR with the reason, never UNKNOWN.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from sedis.core.address import Address
from sedis.core.containers import (
    ContainerVerdict,
    Exemption,
    RunningContainer,
    error_verdict,
    exempt_verdict,
    exemption_for,
    judge_running,
)
from sedis.core.errors import SedisError
from sedis.core.policy import Evaluation, TrustPolicy
from sedis.core.records import Grant
from sedis.service import trust
from sedis.service.engines import Engines


@dataclass(frozen=True, slots=True)
class Judgement:
    """A container's verdict, with the digests it rests on (for invalidating a cache)."""

    verdict: ContainerVerdict
    digests: frozenset[str]  # every manifest digest whose ledger changes may change it
    # When time alone may change it (a live grant to the node expiring), if it can.
    valid_until: float | None = None


def candidate_digests(engines: Engines, container: RunningContainer) -> tuple[str, ...]:
    """The manifest digests that ``container`` runs: the engine's, then the ledger's records
    whose config is its image ID, each once, in that order."""
    seen: dict[str, None] = dict.fromkeys(container.repo_digests)
    for record in engines.ledger.images_by_config(container.image_id):
        seen.setdefault(record.digest, None)
    return tuple(seen)


def judge_container(
    engines: Engines,
    policy: TrustPolicy,
    container: RunningContainer,
    *,
    host: str,
    node: Address | None = None,
    exemptions: Sequence[Exemption] = (),
) -> Judgement:
    """The verdict on ``container`` under ``policy``; ERROR where the ledger fails."""
    exemption = exemption_for(exemptions, container)
    if exemption is not None:
        verdict = exempt_verdict(
            container, exemption, host=host, policy=policy.source, judged_at=time.time()
        )
        return Judgement(verdict, frozenset())
    ledger = engines.ledger
    try:
        with ledger.pinned():
            block = ledger.info().block_number
            digests = candidate_digests(engines, container)
            subjects = digests or (container.image_id,)
            evaluations: list[Evaluation] = [trust.judge(engines, policy, d) for d in subjects]
            now = ledger.now()
            grants: dict[tuple[Address, str], Grant | None] = {}
            if node is not None:
                for evaluation in evaluations:
                    for publisher in evaluation.counted:
                        key = (publisher, evaluation.digest)
                        grants[key] = ledger.grant_of(publisher, evaluation.digest, node)
    except SedisError as exc:
        verdict = error_verdict(
            container,
            f"the ledger could not be read: {exc}",
            host=host,
            policy=policy.source,
            judged_at=time.time(),
        )
        return Judgement(verdict, frozenset(container.repo_digests))
    verdict = judge_running(
        container,
        evaluations,
        host=host,
        policy=policy.source,
        block=block,
        now=now,
        judged_at=time.time(),
        node=node,
        node_grants=grants,
    )
    expiries = [
        g.expires_at
        for g in grants.values()
        if g is not None and g.expires_at is not None and g.active_at(now)
    ]
    return Judgement(verdict, frozenset(digests), min(expiries) if expiries else None)
