"""What every response of the app carries, whatever the route."""

from __future__ import annotations

from fastapi.testclient import TestClient

from sedis.server.app import create_app
from tests.server.world import ServerWorld, running


def test_every_response_has_a_request_id_and_no_cors_header(world: ServerWorld) -> None:
    client = TestClient(create_app(world.context(), start_events=False))
    answer = client.get("/api/v1/no-such-route", headers={"Origin": "https://evil.example"})
    assert answer.status_code == 404
    assert answer.json()["errors"][0]["code"] == "NOT_FOUND"
    assert len(answer.headers["X-Request-Id"]) == 16
    assert "access-control-allow-origin" not in answer.headers
    echoed = client.get("/api/v1/x", headers={"X-Request-Id": "abc-123"})
    assert echoed.headers["X-Request-Id"] == "abc-123"
    forged = client.get("/api/v1/x", headers={"X-Request-Id": "bad\x7fid"})
    assert forged.headers["X-Request-Id"] != "bad\x7fid"


def test_the_world_serves_over_real_http(world: ServerWorld) -> None:
    import httpx

    with running(world.context()) as url:
        answer = httpx.get(url + "/api/v1/openapi.json", timeout=10)
    assert answer.status_code == 200 and answer.json()["info"]["title"] == "sedis"
    assert len(world.images) == 3 and all(p.digest.startswith("sha256:") for p in world.images)
