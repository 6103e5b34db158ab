"""schemathesis over the served OpenAPI document, against a running server: whatever it
sends to a read route, the answer is no 5xx, carries a documented status, content type
and headers, and has a body its schema allows.

Two servers: one that allows anonymous reads, and one that does not, read with a
viewer's bearer token. Live events are a stream that never ends, so they are left
to the API tests. Each operation gets its own bounded run of generated cases.
"""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.server.world import ServerWorld, running, token_for

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES = 30
# The read routes, at least: the document may hold others' too.
READ_OPERATIONS = {
    "GET /api/v1/images",
    "GET /api/v1/images/{ref}",
    "GET /api/v1/verify",
    "GET /api/v1/audit",
    "GET /api/v1/keys",
    "GET /api/v1/keys/{address}",
    "GET /api/v1/policy",
    "GET /api/v1/vulndb",
    "GET /api/v1/watch",
    "GET /api/v1/health",
}


def exercise(url: str, headers: dict[str, str] | None = None) -> None:
    """Every read operation of the document ``url`` serves, tried with generated cases."""
    schema = (
        schemathesis.openapi.from_url(url + "/api/v1/openapi.json")
        .include(tag="read", method="GET")
        .exclude(path="/api/v1/events")
    )
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
    assert tried >= READ_OPERATIONS
    assert not failures, "\n\n".join(failures)


def test_anonymous_reads_conform(world: ServerWorld) -> None:
    with running(world.context(world.config(anonymous_read=True))) as url:
        exercise(url)


def test_a_viewers_reads_conform(world: ServerWorld) -> None:
    ctx = world.context(world.config())
    with running(ctx) as url:
        exercise(url, token_for(ctx, world.viewer))


def test_unauthenticated_reads_conform_too(world: ServerWorld) -> None:
    with running(world.context(world.config())) as url:
        exercise(url)
