"""Verdicts to feed the watchdog's sinks in tests."""

from __future__ import annotations

import hashlib

from sedis.core.containers import ContainerState, ContainerVerdict
from sedis.core.policy import Decision


def digest_of(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def verdict(
    name: str,
    state: ContainerState,
    *,
    image: str | None = None,
    image_id: str | None = None,
    host: str = "node-1",
    block: int | None = 7,
) -> ContainerVerdict:
    return ContainerVerdict(
        host=host,
        container=name,
        container_id=hashlib.sha256(name.encode()).hexdigest(),
        image=image if image is not None else f"registry.local/{name}:1",
        image_id=image_id if image_id is not None else digest_of(f"config of {name}"),
        digests=(digest_of(f"manifest of {name}"),),
        digest=digest_of(f"manifest of {name}"),
        state=state,
        reason=f"{name} is {state.value}",
        decision=Decision.DENY if state.failed else Decision.ALLOW,
        policy="test",
        block=block,
    )
