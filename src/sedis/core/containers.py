"""What a running container is judged as: the watchdog's states and verdicts, all pure.

A container is identified by what it runs, never by what it was started as:
the config digest of its image (the engine's image ID) and the manifest
digests the engine knows for that image. Every publisher's record of any of
those manifests, and every record whose config is that image ID, is
evidence; each candidate digest is judged under the trust policy on its own
(``core.policy.evaluate``) and the worst of the judgements that found a
counted record wins, so a revocation of any manifest that carries this
config reaches the container.

Beside the policy's five statuses, a container can be NOT_GRANTED (this
node's grant to the image was withdrawn), EXEMPT (an explicit rule of the
watch configuration, shown as such) or ERROR (the ledger or the engine could
not be read). None of these is ever folded into another state.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from sedis.core.address import Address
from sedis.core.policy import Decision, Evaluation
from sedis.core.records import Grant, Status


class ContainerState(Enum):
    TRUSTED = "TRUSTED"
    UNTRUSTED = "UNTRUSTED"
    UNSUPPORTED = "UNSUPPORTED"
    REVOKED = "REVOKED"
    UNKNOWN = "UNKNOWN"  # no record that the policy counts
    NOT_GRANTED = "NOT_GRANTED"  # this node's grant was revoked or has expired
    EXEMPT = "EXEMPT"  # an explicit exemption of the watch configuration
    ERROR = "ERROR"  # the ledger or the engine could not be read

    @classmethod
    def of(cls, status: Status) -> ContainerState:
        return cls(status.value)

    @classmethod
    def parse(cls, text: str) -> ContainerState:
        try:
            return cls(text.strip().upper().replace("-", "_"))
        except ValueError:
            names = ", ".join(s.value for s in cls)
            raise ValueError(f"unknown container state {text!r} (one of {names})") from None

    @property
    def failed(self) -> bool:
        """Whether this state means the container is not what is allowed to run."""
        return self not in (ContainerState.TRUSTED, ContainerState.EXEMPT)


# Worst first, among the states that a ledger judgement gives.
_JUDGED_ORDER = (
    Status.REVOKED,
    Status.UNTRUSTED,
    Status.UNSUPPORTED,
    Status.TRUSTED,
)


@dataclass(frozen=True, slots=True)
class RunningContainer:
    """A container as its engine reports it."""

    id: str
    name: str
    image: str  # the reference it was started with: shown, never trusted
    image_id: str  # "sha256:<hex>", the config digest of the image it runs
    repo_digests: tuple[str, ...] = ()  # "sha256:<hex>" manifest digests the engine knows
    labels: tuple[tuple[str, str], ...] = ()
    started_at: float | None = None  # Unix seconds, where the engine says

    def label(self, key: str) -> str | None:
        for k, v in self.labels:
            if k == key:
                return v
        return None


@dataclass(frozen=True, slots=True)
class Exemption:
    """An explicit rule of the watch configuration: matching containers are EXEMPT.

    Every field given must match (and), any pattern within a field may (or);
    names and images match as shell globs, image IDs exactly, labels as
    ``key=value`` with the value a glob. An exemption with no field is refused
    when the configuration is read.
    """

    reason: str
    containers: tuple[str, ...] = ()
    images: tuple[str, ...] = ()
    image_ids: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    line: int = 0  # where it starts in its file

    def matches(self, container: RunningContainer) -> bool:
        if self.containers and not any(
            fnmatch.fnmatchcase(container.name, p) for p in self.containers
        ):
            return False
        if self.images and not any(fnmatch.fnmatchcase(container.image, p) for p in self.images):
            return False
        if self.image_ids and container.image_id not in self.image_ids:
            return False
        for key, pattern in self.labels:
            value = container.label(key)
            if value is None or not fnmatch.fnmatchcase(value, pattern):
                return False
        return True

    def describe(self) -> str:
        where = f" (line {self.line})" if self.line else ""
        return f"exempt by the watch configuration{where}: {self.reason}"


def exemption_for(exemptions: Sequence[Exemption], container: RunningContainer) -> Exemption | None:
    """The first exemption that matches ``container``, if any."""
    for exemption in exemptions:
        if exemption.matches(container):
            return exemption
    return None


@dataclass(frozen=True, slots=True)
class LedgerCause:
    """The ledger change that a verdict follows: who made it, in which block and transaction."""

    event: str  # StatusChanged, GrantRevoked, Attested, ...
    actor: Address
    block: int
    tx_hash: str
    at: int


@dataclass(frozen=True, slots=True)
class ContainerVerdict:
    """What one running container was judged as, and why."""

    host: str
    container: str  # its name
    container_id: str
    image: str  # as it was started: shown, never trusted
    image_id: str
    digests: tuple[str, ...]  # the manifest digests it was matched by
    digest: str | None  # the one the verdict rests on, if any
    state: ContainerState
    reason: str
    decision: Decision
    policy: str
    publishers: tuple[Address, ...] = ()  # whose records counted
    vouching: tuple[Address, ...] = ()  # whose attestations counted
    block: int | None = None  # the ledger block it was judged at
    judged_at: float = 0.0  # Unix seconds, of the watchdog's clock
    exemption: str | None = None
    cause: LedgerCause | None = None

    @property
    def failed(self) -> bool:
        return self.state.failed


def judge_running(
    container: RunningContainer,
    evaluations: Sequence[Evaluation],
    *,
    host: str,
    policy: str,
    block: int | None,
    now: int,
    judged_at: float,
    node: Address | None = None,
    node_grants: Mapping[tuple[Address, str], Grant | None] | None = None,
) -> ContainerVerdict:
    """The verdict on ``container`` from the policy's judgement of each candidate digest.

    ``evaluations`` holds one evaluation per candidate manifest digest (or one of
    the image ID when there is no candidate). ``node_grants`` holds, for the
    counted records, this node's latest grant (None where it never had one).
    """
    if not evaluations:
        raise ValueError("a container is judged on at least one evaluation")
    judged = [e for e in evaluations if e.status is not Status.UNKNOWN]
    # An UNKNOWN candidate (nobody trusted recorded that manifest) hides nothing.
    chosen = min(judged, key=_worst_first) if judged else evaluations[0]
    state = ContainerState.of(chosen.status)
    reason = chosen.reason
    decision = chosen.decision
    if state is ContainerState.TRUSTED and node is not None and node_grants:
        # Any trusted manifest of what runs may be the one shared with this node.
        trusted = [e for e in judged if e.status is Status.TRUSTED]
        withdrawn = _withdrawn_grant(trusted, node, node_grants, now)
        if withdrawn is not None:
            state, reason, decision = ContainerState.NOT_GRANTED, withdrawn, Decision.DENY
    candidates = tuple(e.digest for e in evaluations if e.digest != container.image_id)
    return ContainerVerdict(
        host=host,
        container=container.name,
        container_id=container.id,
        image=container.image,
        image_id=container.image_id,
        digests=candidates,
        digest=chosen.digest if chosen.digest != container.image_id else None,
        state=state,
        reason=reason,
        decision=decision,
        policy=policy,
        publishers=chosen.counted,
        vouching=chosen.vouching,
        block=block,
        judged_at=judged_at,
    )


def _worst_first(evaluation: Evaluation) -> int:
    return _JUDGED_ORDER.index(evaluation.status)


def _withdrawn_grant(
    trusted: Sequence[Evaluation],
    node: Address,
    node_grants: Mapping[tuple[Address, str], Grant | None],
    now: int,
) -> str | None:
    """Why this node may no longer run the image: every counted record of its trusted
    manifests that was shared with it has that grant revoked or expired. None while one
    is live, or where none was ever shared with it."""
    withdrawn: list[Grant] = []
    for evaluation in trusted:
        for publisher in evaluation.counted:
            grant = node_grants.get((publisher, evaluation.digest))
            if grant is None:
                continue
            if grant.active_at(now):
                return None
            withdrawn.append(grant)
    if not withdrawn:
        return None
    grant = withdrawn[0]
    if grant.revoked_at is not None:
        when = _utc(grant.revoked_at)
        return f"{grant.publisher} revoked the grant of {grant.digest} to {node} at {when}"
    return f"the grant of {grant.digest} by {grant.publisher} to {node} expired at " + _utc(
        grant.expires_at or 0
    )


def exempt_verdict(
    container: RunningContainer,
    exemption: Exemption,
    *,
    host: str,
    policy: str,
    judged_at: float,
) -> ContainerVerdict:
    described = exemption.describe()
    return _unjudged(
        container,
        ContainerState.EXEMPT,
        described,
        Decision.ALLOW,
        host,
        policy,
        judged_at,
        exemption=described,
    )


def error_verdict(
    container: RunningContainer,
    reason: str,
    *,
    host: str,
    policy: str,
    judged_at: float,
) -> ContainerVerdict:
    """A container whose verdict could not be read: ERROR, never UNKNOWN or TRUSTED."""
    return _unjudged(
        container, ContainerState.ERROR, reason, Decision.DENY, host, policy, judged_at
    )


def _unjudged(
    container: RunningContainer,
    state: ContainerState,
    reason: str,
    decision: Decision,
    host: str,
    policy: str,
    judged_at: float,
    exemption: str | None = None,
) -> ContainerVerdict:
    """A verdict that no ledger judgement made: it names what the engine reported."""
    return ContainerVerdict(
        host=host,
        container=container.name,
        container_id=container.id,
        image=container.image,
        image_id=container.image_id,
        digests=container.repo_digests,
        digest=None,
        state=state,
        reason=reason,
        decision=decision,
        policy=policy,
        judged_at=judged_at,
        exemption=exemption,
    )


def _utc(seconds: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(seconds))
