"""schemathesis over the actions of the served OpenAPI document, against a running server:
whatever it sends, as an admin or with no credentials, no 5xx and every answer as
documented (status, content type, body)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.world import ServerWorld, running, token_for

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 25
ACTIONS = {
    "POST /api/v1/images/{ref}/status",
    "POST /api/v1/images/{ref}/grants",
    "DELETE /api/v1/images/{ref}/grants/{address}",
    "POST /api/v1/images/{ref}/attestations",
    "DELETE /api/v1/images/{ref}/attestations/{kind}",
    "POST /api/v1/images/{ref}/rescan",
    "POST /api/v1/watch/report",
}


def exercise(url: str, headers: dict[str, str] | None = None) -> None:
    schema = schemathesis.openapi.from_url(url + "/api/v1/openapi.json").include(tag="actions")
    failures: list[str] = []
    tried: set[str] = set()
    for result in schema.get_all_operations():
        operation = result.ok()
        tried.add(operation.label)

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def run(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS, timeout=30)

        try:
            run()
        except Exception as exc:  # every operation's failure, not only the first
            failures.append(f"{operation.label}: {exc}")
    assert tried == ACTIONS
    assert not failures, "\n\n".join(failures)


def test_an_admins_actions_conform(world: ServerWorld) -> None:
    ctx = world.context()
    with running(ctx) as url:
        exercise(url, token_for(ctx, world.admin))


def test_unauthenticated_actions_conform(world: ServerWorld) -> None:
    with running(world.context()) as url:
        exercise(url)
