"""schemathesis over the sign-in routes of the served OpenAPI document, against a
running server: whatever is sent, no 5xx, and every answer is one the document
describes (status, content type, headers, body)."""

from __future__ import annotations

import pytest
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
AUTH_OPERATIONS = {
    "GET /api/v1/auth/nonce",
    "POST /api/v1/auth/signin",
    "POST /api/v1/auth/session",
    "GET /api/v1/auth/me",
    "POST /api/v1/auth/signout",
}


@pytest.mark.parametrize("per_minute", [10_000, 5], ids=["unlimited", "limited"])
def test_the_sign_in_routes_conform(world: ServerWorld, per_minute: int) -> None:
    # A limit generous enough for the generated cases, and one that bites within them.
    ctx = world.context(world.config(sign_in_per_minute=per_minute))
    with running(ctx) as url:
        schema = schemathesis.openapi.from_url(url + "/api/v1/openapi.json").include(tag="auth")
        tried: set[str] = set()
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            tried.add(operation.label)

            @given(case=operation.as_strategy())
            @settings(
                max_examples=25,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: schemathesis.Case) -> None:
                # Each case brings a live token: sign-out may close the last one.
                case.call_and_validate(
                    headers=token_for(ctx, world.viewer), checks=CHECKS, timeout=30
                )

            try:
                run()
            except Exception as exc:  # every operation's failure, not only the first
                failures.append(f"{operation.label}: {exc}")
        assert tried == AUTH_OPERATIONS
        assert not failures, "\n\n".join(failures)
